// Driving frozen cells through one quantum of virtual time, the scheme of docs/live.md ("Driving
// scheme" and "Time accounting"). The runtime's barrier loop (runner.ts) calls it once per window.
// Every cell is frozen between quanta.
//
// A quantum [start, barrier) is run in slices. A slice:
//   1. anchor = now + lead: the instant at which the cells will be thawed. `lead` covers writing every
//      clock file (measured, adaptive), so that the thaw never comes later than the anchor.
//   2. clock.set(sliceStart, rate, { anchorNs: anchor, untilNs: barrier }) for every cell of the
//      slice: each program's clock reads `sliceStart` at the anchor, advances at rate = 1/speed, and
//      never passes the barrier.
//   3. Wait until the anchor (letting the event loop run), thaw the cells.
//   4. Each cell has its own freeze deadline: anchor + need − freezeMargin, where need is the wall time
//      it needs to reach the barrier (virtual time left × speed) and freezeMargin the freeze latency
//      seen so far (adaptive, at most a quarter of need). CpuTime cells: at the deadline, the wall time their
//      threads spent waiting for a CPU so far (steal) is read and the deadline moved by it, until it
//      stops growing. Cells whose deadlines are near are frozen together.
//   5. After its freeze, a cell's progress in the slice is span × rate for WallTime (span = anchor →
//      seen frozen); for CpuTime, the wall time its threads could run (settle(): min over threads of
//      a busy thread's CPU time, or the thawed stretch minus the thread's waits) × rate. WallTime
//      cells are done after one slice. A CpuTime cell short of the barrier by more than its slack
//      (max(2 µs, 1 % of the quantum, 2 × freezeMargin), at most a quarter quantum) gets another
//      slice, alone or with the other cells still short; cells at the barrier stay frozen. At most
//      MAX_EXTRA_SLICES extra slices per quantum; cells still short then are credited the rest
//      (QuantumResult.capped, shortNs). What a CpuTime cell is still owed (< slack) or computed past
//      the barrier (frozen late) is carried into the next quantum (carryNs).
//
// Steal of a cell in a slice = max over its threads of the growth of run_delay (field 2 of
// /proc/<pid>/task/<tid>/schedstat: time runnable but not on a CPU); progress, correspondingly, the
// min over threads. Why: virtual time is one per cell, and with the max every thread of the cell got
// at least as much CPU as the virtual time granted, as on a host of its own, however the waits were
// spread. A sum would count two threads waiting at the same time twice (a cell with two busy threads
// that each waited half the slice would not advance at all); a mean would let the most delayed
// thread (often the one the others wait for) fall behind. The price: the other threads get a little
// more CPU per virtual second than they would have, and waits among the cell's own threads (more
// runnable threads than CPUs) count as steal.
//
// The programs' clock never goes back. Within a slice it advances with the wall (× rate), also while a
// thread waits for a CPU; the next slice of a CpuTime cell starts its clock where the previous one
// could have left it (not at the lower progress), and the cell runs until its progress reaches the
// barrier; its clock stands at the barrier meanwhile. So, over a quantum, a CpuTime cell's clock
// advances by the quantum while the cell gets the CPU time of a quantum (× speed); within a quantum,
// the clock may run ahead of the CPU the cell got by up to the steal of that quantum. (Setting each
// extra slice's clock back to the progress would step the programs' CLOCK_MONOTONIC back.)
import assert from 'node:assert/strict'
import type { Cell } from './cell.ts'
import type { VirtualClock } from './clock.ts'
import {
  anchorLeadNs,
  BUSY_SLACK_NS,
  cpuTimeCarry,
  freezeDeadlineNs,
  nextFreezeMarginNs,
  nextWriteNsPerClock,
  preciseAfter,
  preciseDeadlineNs,
  settleSlice,
  slackNs as slackOf,
  stealSinceNs,
  toleranceNs,
  type SettledSlice,
} from './accounting.ts'
import { nap, SchedstatReader, type TaskSchedstat } from './proc.ts'

export type ClockMode = 'CpuTime' | 'WallTime'

export interface DrivenCell {
  cell: Cell
  clock?: VirtualClock
  /** CpuTime: virtual time advances with the time the cell's threads got a CPU (wall minus steal). WallTime: with the wall while thawed. */
  clockMode: ClockMode
  /** > 0: CPU speed of the simulated host relative to this machine (default 1). The clock runs at rate 1/speed; a quantum of V virtual ns gets V × speed of wall (CPU) time. */
  speed: number
}

/**
 * What the runtime does around a run. Nothing is delivered inside a run: the runtime splits its
 * quanta at delivery times (runner.ts) and writes what is due in onStart, while the cells stand still.
 */
export interface QuantumHooks {
  /**
   * Cell i starts this run with a precise slice (docs/live.md, "Precise slices"): the runtime has just
   * written data into it. Its clock starts at the first reading after the thaw, readings wait at the
   * barrier, and the cell is frozen once its clock has had the slice (or it did not read the clock
   * within PRECISE_WAIT_NS). A cell whose readings waited at the barrier gets a precise slice next.
   */
  precise?(i: number): boolean
  /** Called once at the start of run(), every cell frozen: the runtime writes what is due at startNs. */
  onStart?(): void
  /**
   * Drivers that split a run per cell (QuantumDriver.splitsPerCell): the first time after afterNs at
   * which data is due for cell i (Infinity: none). The cell's clock stops there, the runtime writes
   * it (deliver), and the cell goes on with a precise slice; the other cells are not stopped.
   */
  nextDue?(i: number, afterNs: number): number
  /** Write what is due for cell i at atNs (its clock is there); whether anything was written. */
  deliver?(i: number, atNs: number): boolean
}

export interface QuantumResult {
  /** Wall ns from the first slice's anchor until every cell was frozen for the last time. */
  spanNs: number
  /** Largest wall ns a cell ran past its barrier (CpuTime: not counting steal): how far past the barrier a program may have read its clock (WallTime) or computed (CpuTime). */
  overrunNs: number
  /** Worst lateness of a thaw after its anchor (a clock file write took longer than the lead): wall time the programs' clocks skipped. */
  lateThawNs: number
  /** Worst wall ns from a freeze request to all frozen. */
  freezeNs: number
  /** CPU ns each cell consumed in this quantum (same order as the cells). */
  cpuNs: number[]
  /** Slices each cell was thawed for (1 for WallTime cells; 0 for a CpuTime cell that was ahead by the whole quantum). */
  slices: number[]
  /** Wall ns each cell's threads waited for a CPU while thawed (max over threads per slice, summed over slices); CpuTime cells only, 0 for WallTime cells. */
  stolenNs: number[]
  /** Slices after the first, all cells together (at most MAX_EXTRA_SLICES). */
  extraSlices: number
  /** Cells still short of the barrier after MAX_EXTRA_SLICES extra slices (credited the rest). */
  capped: number[]
  /** Virtual ns each cell was credited without running for them: WallTime, the freeze margin (the forward jump of the next quantum); CpuTime, what was left beyond the slack when capped. */
  shortNs: number[]
  /**
   * CpuTime: virtual ns of CPU each cell got past the barrier (> 0: frozen late) or is still owed
   * (< 0: it ended its last slice a little short, within the slack), carried into the next quantum if
   * it starts at this barrier: the cell gets that much less (more) CPU then.
   */
  carryNs: number[]
  /** Precise slices each cell had (hooks.precise, or readings that waited at the last barrier). */
  preciseSlices: number[]
  /**
   * Cooperative cells only: why each cell was at the barrier (coop.ts): "read" (its clock was read
   * and had the quantum's wall time since), "idle" (nobody read it and no thread was runnable),
   * "computing" (nobody read it and it used the quantum's CPU time). In the runner's trace log.
   */
  finishedBy?: CoopFinish[]
  /** Drivers that split a run per cell: the stretches each cell's run was split into (at its deliveries). */
  stretches?: number[]
}

export type CoopFinish = 'read' | 'idle' | 'computing'

export interface QuantumDriver {
  /** Advance every cell from virtual startNs to startNs+virtualNs. Cells are frozen before and after. */
  run(startNs: number, virtualNs: number, hooks?: QuantumHooks): Promise<QuantumResult>
  /**
   * During run(): cell i's current virtual time from its current slice (anchor, rate), clamped to
   * [startNs, startNs+virtualNs], never less than a value returned before. Outside run(): the end of
   * the last quantum (0 before the first). Cheap (called per socket read).
   */
  virtualNowNs(i: number): number
  /**
   * run() takes hooks.nextDue and hooks.deliver and stops each cell at its own deliveries (coop.ts);
   * otherwise the runner splits the run at every delivery of the driver's cells, stopping them all.
   */
  readonly splitsPerCell?: boolean
  /** Release what the driver keeps open (files); the runner calls it when it stops. */
  close?(): void
}

/** The first interface (cells and clocks apart, WallTime, the rate given per quantum); test/live/clock.test.ts drives cells with it. */
export interface RateQuantumDriver {
  /** Run every cell from virtual `startNs` for `virtualNs`, its clock advancing at `rate` (wall budget virtualNs / rate). */
  run(startNs: number, virtualNs: number, rate?: number): Promise<QuantumResult>
  virtualNowNs(i: number): number
  /**
   * run() takes hooks.nextDue and hooks.deliver and stops each cell at its own deliveries (coop.ts);
   * otherwise the runner splits the run at every delivery of the driver's cells, stopping them all.
   */
  readonly splitsPerCell?: boolean
  /** Release what the driver keeps open (files); the runner calls it when it stops. */
  close?(): void
}

/** Extra slices per quantum before the cells still short of the barrier are credited the rest. */
export const MAX_EXTRA_SLICES = 50
/** Steal readings per cell and slice (each may move the freeze deadline). */
const MAX_CHECKS = 32
/** Cells whose freeze deadlines fall within this of each other are frozen together (one shared wait; signals mode: one /proc scan). */
const BATCH_NS = 20_000

const hrNow = () => process.hrtime.bigint()
const hr = () => Number(process.hrtime.bigint())
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * One step towards the hrtime instant `until` (ns) that lets the event loop run: a timer for the bulk
 * (> 2.5 ms away), then thread naps of ≤ 200 µs (they give the CPU to the cells; a nap wakes ~60 µs
 * late) each followed by a setImmediate turn, then a synchronous spin over the last ≤ 150 µs.
 */
export async function waitStep(until: number): Promise<void> {
  const left = until - hr()
  if (left > 2_500_000) return sleepMs(Math.floor((left - 1_500_000) / 1e6))
  if (left > 150_000) {
    nap(Math.min(left - 120_000, 200_000) / 1e6)
    return immediate()
  }
  while (hr() < until) {
    // the last tens of µs
  }
}

async function waitUntil(until: number): Promise<void> {
  while (hr() < until) await waitStep(until)
}

export function createQuantumDriver(cells: DrivenCell[]): QuantumDriver
export function createQuantumDriver(cells: Cell[], clocks: (VirtualClock | undefined)[]): RateQuantumDriver
export function createQuantumDriver(cells: DrivenCell[] | Cell[], clocks?: (VirtualClock | undefined)[]): QuantumDriver | RateQuantumDriver {
  if (clocks !== undefined) {
    if (clocks.length !== cells.length) throw new Error('one clock (or undefined) per cell')
    const core = new SliceDriver((cells as Cell[]).map((cell, i) => ({ cell, clock: clocks[i], clockMode: 'WallTime', speed: 1 })))
    const driver: RateQuantumDriver = {
      run: async (startNs, virtualNs, rate = 1) => {
        if (!(rate > 0) || !Number.isFinite(rate)) throw new Error(`rate must be > 0, got ${rate}`)
        return core.run(startNs, virtualNs, undefined, rate)
      },
      virtualNowNs: (i) => core.virtualNowNs(i),
      close: () => core.close(),
    }
    return driver
  }
  const core = new SliceDriver(cells as DrivenCell[])
  const driver: QuantumDriver = { run: (startNs, virtualNs, hooks) => core.run(startNs, virtualNs, hooks), virtualNowNs: (i) => core.virtualNowNs(i), close: () => core.close() }
  return driver
}

/** One run(): the quantum [startNs, barrierNs) of every cell, and what it reports. */
class Quantum {
  readonly startNs: number
  readonly virtualNs: number
  readonly barrierNs: number
  /** The least slack of a CpuTime cell (accounting.ts, slackNs). */
  readonly toleranceNs: number
  /** The longest wall budget of a cell in this quantum: bounds the freeze margin. */
  readonly quantumWallNs: number
  /** Each cell's CPU time at the start. */
  readonly cpuBeforeNs: number[]
  /** Cells at the barrier. */
  readonly done: Uint8Array
  /** Cells whose first slice is precise (hooks.precise, or readings that waited at the last barrier). */
  readonly preciseFirst: Uint8Array
  readonly slices: number[]
  readonly stolenNs: number[]
  readonly preciseSlices: number[]
  readonly shortNs: number[]
  readonly capped: number[] = []
  lateThawNs = 0
  freezeMaxNs = 0
  overrunNs = 0
  extraSlices = 0
  firstAnchorNs: number | undefined
  lastFrozenNs = 0

  constructor(n: number, startNs: number, virtualNs: number, quantumWallNs: number, cpuBeforeNs: number[]) {
    this.startNs = startNs
    this.virtualNs = virtualNs
    this.barrierNs = startNs + virtualNs
    this.toleranceNs = toleranceNs(virtualNs)
    this.quantumWallNs = quantumWallNs
    this.cpuBeforeNs = cpuBeforeNs
    this.done = new Uint8Array(n)
    this.preciseFirst = new Uint8Array(n)
    this.slices = new Array<number>(n).fill(0)
    this.stolenNs = new Array<number>(n).fill(0)
    this.preciseSlices = new Array<number>(n).fill(0)
    this.shortNs = new Array<number>(n).fill(0)
  }
}

/** One slice of a quantum: the cells thawed together at one anchor, their freeze deadlines, the freezes under way. */
class Slice {
  readonly active: number[]
  readonly first: boolean
  /** Cells whose slice is precise (docs/live.md, "Precise slices"). */
  readonly precise: Uint8Array
  /** Wall ns (hrtime) of the thaw request, and when every cell was thawed. */
  thawAtNs = 0
  thawDoneNs = 0
  /** Each cell's freeze deadline, wall ns (Infinity: a precise cell whose clock was not read yet). */
  readonly deadlineNs: Float64Array
  /** Steal already added to each cell's deadline, and the readings taken for it (at most MAX_CHECKS). */
  readonly accountedNs: Float64Array
  readonly checks: Uint8Array
  /** Precise cells whose clock has not been read yet. */
  readonly unread = new Set<number>()
  /** Thawed and not being frozen. */
  readonly thawed: Set<number>
  /** Freezes under way (the loop goes on checking deadlines meanwhile). */
  readonly inflight = new Set<Promise<void>>()
  failure: { e: unknown } | undefined

  constructor(n: number, active: number[], preciseFirst: Uint8Array | undefined) {
    this.active = active
    this.first = preciseFirst !== undefined
    this.precise = new Uint8Array(n)
    for (const i of active) this.precise[i] = preciseFirst ? (preciseFirst[i] as number) : 0
    this.deadlineNs = new Float64Array(n)
    this.accountedNs = new Float64Array(n)
    this.checks = new Uint8Array(n)
    this.thawed = new Set(active)
  }
}

/** The quantum driver of frozen cells (CpuTime and WallTime): the scheme of the file comment. */
class SliceDriver {
  private readonly cells: DrivenCell[]
  private readonly n: number
  private readonly cpuMode: boolean[]
  /** Wall ns writing one clock file takes: the anchor's lead (adapted from measurements). */
  private writeNsPerClock = 100_000
  /** The freeze latency seen so far (nextFreezeMarginNs): a cell is frozen that much before it reaches the barrier. */
  private freezeMarginNs = 200_000
  // Per cell, during run(): the slice its clock is in, how far its clock may have gone, its progress.
  private readonly rate: Float64Array
  /** Virtual ns the cell's clock reads at the anchor of its current (or last) slice. */
  private readonly sliceStart: Float64Array
  /** The highest virtual time the cell's clock may have shown: where its next slice starts. */
  private readonly clockAt: Float64Array
  /** Virtual time the cell got to: CpuTime (wall − steal) × rate summed over slices, WallTime wall × rate. */
  private readonly progress: Float64Array
  /** virtualNowNs never returns less than this. */
  private readonly floor: Float64Array
  private readonly inSlice: Uint8Array
  /** Cells this driver thawed and has not seen frozen since: none between quanta. */
  private readonly thawed: Uint8Array
  /** CpuTime: virtual ns of CPU a cell got past the last barrier (> 0: it was frozen late) or was still owed (< 0), carried into the next quantum. */
  private readonly carry: Float64Array
  /** CpuTime: the cell's last slice's progress was a busy thread's CPU time (not wall minus waits). */
  private readonly lastBusy: Uint8Array
  /** The cell's next slice is precise: its readings waited at the last barrier (or its last precise slice's clock was not read). */
  private readonly preciseNext: Uint8Array
  /** Its last precise slice was one carried over unread. */
  private readonly preciseCarried: Uint8Array
  private anchorNs = 0
  private barrierNs = 0
  private lastEndNs = 0
  private running = false
  // CpuTime: schedstat of every thread at the thaw, the processes seen then, a scratch map. A frozen
  // cell's threads neither run nor wait, so the reading taken after a freeze is the next thaw's
  // baseline, as long as nothing thawed the cell in between (checked by its CPU time between run()s).
  private readonly baseStats: Map<number, TaskSchedstat>[]
  private readonly baseValid: Uint8Array
  /** The processes of each cell's baseline: one that appears later (spawned into the frozen cell) is added at the next thaw. */
  private readonly basePids: number[][]
  private readonly cpuAtEnd: Float64Array
  private readonly slicePids: number[][]
  private scratch = new Map<number, TaskSchedstat>()
  /** Each cell's threads' schedstat files, kept open between readings. */
  private readonly schedstats: SchedstatReader[]

  constructor(cells: DrivenCell[]) {
    cells.forEach((c, i) => {
      if (c.clockMode !== 'CpuTime' && c.clockMode !== 'WallTime') throw new Error(`cell ${i} (${c.cell.name}): clockMode must be CpuTime or WallTime, got ${JSON.stringify(c.clockMode)}`)
      if (!(c.speed > 0) || !Number.isFinite(c.speed)) throw new Error(`cell ${i} (${c.cell.name}): speed must be > 0, got ${c.speed}`)
    })
    const n = cells.length
    this.cells = cells
    this.n = n
    this.cpuMode = cells.map((c) => c.clockMode === 'CpuTime')
    this.rate = new Float64Array(n)
    this.sliceStart = new Float64Array(n)
    this.clockAt = new Float64Array(n)
    this.progress = new Float64Array(n)
    this.floor = new Float64Array(n)
    this.inSlice = new Uint8Array(n)
    this.thawed = new Uint8Array(n)
    this.carry = new Float64Array(n)
    this.lastBusy = new Uint8Array(n)
    this.preciseNext = new Uint8Array(n)
    this.preciseCarried = new Uint8Array(n)
    this.baseStats = cells.map(() => new Map<number, TaskSchedstat>())
    this.baseValid = new Uint8Array(n)
    this.basePids = cells.map(() => [])
    this.cpuAtEnd = new Float64Array(n).fill(-1)
    this.slicePids = cells.map(() => [])
    this.schedstats = cells.map(() => new SchedstatReader())
  }

  virtualNowNs(i: number): number {
    if (!this.running) return this.lastEndNs
    let v = this.inSlice[i] ? this.sliceStart[i]! + Math.max(0, hr() - this.anchorNs) * this.rate[i]! : this.clockAt[i]!
    if (v > this.barrierNs) v = this.barrierNs
    v = Math.floor(v)
    const f = this.floor[i]!
    if (v <= f) return f
    this.floor[i] = v
    return v
  }

  close(): void {
    for (const r of this.schedstats) r.close()
  }

  async run(startNs: number, virtualNs: number, hooks: QuantumHooks | undefined, rateOverride?: number): Promise<QuantumResult> {
    if (this.running) throw new Error('quantum driver: run() is already running')
    if (!Number.isSafeInteger(startNs) || startNs < 0) throw new Error(`startNs must be a non-negative safe integer, got ${startNs}`)
    if (!Number.isSafeInteger(virtualNs) || virtualNs <= 0 || !Number.isSafeInteger(startNs + virtualNs)) throw new Error(`virtualNs must be a positive safe integer, got ${virtualNs}`)
    if (this.cells.some((c) => !c.cell.frozen)) throw new Error('quantum driver: every cell must be frozen before a quantum')
    const q = this.begin(startNs, virtualNs, hooks, rateOverride)
    try {
      await this.runSlices(q)
    } catch (e) {
      // Frozen before and after, also when a hook or a freeze failed.
      this.baseValid.fill(0)
      await Promise.allSettled(this.cells.filter((c) => !c.cell.frozen).map((c) => c.cell.freeze()))
      for (let i = 0; i < this.n; i++) if (this.cells[i]!.cell.frozen) this.thawed[i] = 0
      throw e
    } finally {
      this.running = false
      this.lastEndNs = q.barrierNs
      this.inSlice.fill(0)
    }
    return this.result(q)
  }

  /** Every cell at startNs, frozen, its progress carried from the last quantum; then hooks.onStart and which cells start precise. */
  private begin(startNs: number, virtualNs: number, hooks: QuantumHooks | undefined, rateOverride: number | undefined): Quantum {
    const n = this.n
    assert(this.thawed.every((t) => t === 0), 'quantum driver: a cell it thawed is not frozen between quanta')
    // A CpuTime cell that ran past the previous barrier (a late freeze) starts this quantum that far
    // ahead: it gets correspondingly less CPU now (all of it when ahead by a whole quantum).
    const contiguous = startNs === this.lastEndNs
    for (let i = 0; i < n; i++) {
      this.rate[i] = rateOverride ?? 1 / this.cells[i]!.speed
      this.sliceStart[i] = startNs
      this.clockAt[i] = startNs
      this.progress[i] = startNs + (contiguous ? this.carry[i]! : 0)
      this.carry[i] = 0
      this.floor[i] = startNs
      this.inSlice[i] = 0
    }
    const quantumWallNs = Math.max(...Array.from(this.rate, (r) => virtualNs / r), 0)
    this.barrierNs = startNs + virtualNs
    this.running = true
    const cpuBeforeNs = this.cells.map((c) => c.cell.cpuTimeNs())
    for (let i = 0; i < n; i++) if (cpuBeforeNs[i] !== this.cpuAtEnd[i]) this.baseValid[i] = 0 // it ran outside the driver
    const q = new Quantum(n, startNs, virtualNs, quantumWallNs, cpuBeforeNs)
    hooks?.onStart?.()
    for (let i = 0; i < n; i++) q.preciseFirst[i] = this.preciseNext[i] || (hooks?.precise?.(i) && this.cells[i]!.clock ? 1 : 0)
    return q
  }

  /** Slices until every cell is at the barrier: every cell first, then those still short together; after MAX_EXTRA_SLICES, the rest is credited. */
  private async runSlices(q: Quantum): Promise<void> {
    for (let k = 0; ; k++) {
      const active: number[] = []
      for (let i = 0; i < this.n; i++) {
        if (q.done[i]) continue
        // Ahead by (nearly) the whole quantum: no slice, unless the runtime just woke it with data.
        if (k === 0 && this.cpuMode[i] && this.reached(q, i) && !q.preciseFirst[i]) this.finish(q, i)
        else active.push(i)
      }
      if (active.length === 0) break
      if (k > 0) {
        if (q.extraSlices >= MAX_EXTRA_SLICES) {
          for (const i of active) {
            q.capped.push(i)
            this.finish(q, i)
          }
          break
        }
        q.extraSlices++
      }
      await this.slice(q, active, k === 0)
    }
  }

  private slackNs(q: Quantum, i: number): number {
    return slackOf(q.toleranceNs, this.freezeMarginNs, this.rate[i]!, q.virtualNs)
  }

  private reached(q: Quantum, i: number): boolean {
    return !this.cpuMode[i] || this.progress[i]! >= q.barrierNs - this.slackNs(q, i)
  }

  /** Cell i is at the barrier: what it is owed or got past it is carried (CpuTime) or credited (short). */
  private finish(q: Quantum, i: number): void {
    const B = q.barrierNs
    q.done[i] = 1
    this.inSlice[i] = 0
    const p = this.progress[i]!
    if (this.cpuMode[i]) {
      const c = cpuTimeCarry(p, B, this.slackNs(q, i), this.lastBusy[i] === 1)
      q.shortNs[i] = q.shortNs[i]! + c.shortNs
      this.carry[i] = c.carryNs
    } else {
      q.shortNs[i] = q.shortNs[i]! + Math.max(0, B - p)
    }
    this.progress[i] = B
    this.clockAt[i] = B
  }

  /** One slice of the cells `active`: thawed together at an anchor, each frozen at its deadline, its progress accounted. */
  private async slice(q: Quantum, active: number[], first: boolean): Promise<void> {
    const s = new Slice(this.n, active, first ? q.preciseFirst : undefined)
    this.refreshBaselines(active)
    await this.thawAtAnchor(q, s)
    this.planDeadlines(q, s)
    await this.freezeAll(q, s)
  }

  /** CpuTime cells' thread readings before a thaw: anew when the baseline is invalid, else for the processes new since it. */
  private refreshBaselines(active: number[]): void {
    for (const i of active) {
      if (!this.cpuMode[i]) continue
      const pids = this.cells[i]!.cell.pids()
      this.slicePids[i] = pids
      const base = this.baseStats[i]!
      const reader = this.schedstats[i]!
      if (!this.baseValid[i]) {
        reader.read(pids, base)
        this.basePids[i] = pids
        this.baseValid[i] = 1
      } else {
        const known = new Set(this.basePids[i])
        const added = pids.filter((p) => !known.has(p))
        if (added.length > 0) {
          for (const [tid, st] of reader.read(added, this.scratch)) base.set(tid, st)
          this.basePids[i] = pids
        }
      }
    }
  }

  /** Steps 1-3 of a slice: the clocks set to read their slice's start at an anchor far enough ahead to write them all; at the anchor, the thaw. */
  private async thawAtAnchor(q: Quantum, s: Slice): Promise<void> {
    const B = q.barrierNs
    let nClocks = 0
    for (const i of s.active) if (this.cells[i]!.clock) nClocks++
    const t0 = hrNow()
    const anchor = t0 + BigInt(anchorLeadNs(this.writeNsPerClock, nClocks))
    for (const i of s.active) {
      const start = Math.min(B, Math.floor(this.clockAt[i]!))
      // The programs' clocks never go back within a run (the file comment): a slice starts where the last could have left them.
      assert(start >= this.sliceStart[i]!, 'quantum driver: a slice would set a clock back')
      this.sliceStart[i] = start
      this.cells[i]!.clock?.set(start, this.rate[i]!, { anchorNs: anchor, untilNs: B, precise: s.precise[i] === 1, frozen: true })
    }
    const written = hrNow()
    if (nClocks > 0) this.writeNsPerClock = nextWriteNsPerClock(this.writeNsPerClock, Number(written - t0), nClocks)
    this.anchorNs = Number(anchor)
    q.firstAnchorNs ??= this.anchorNs
    for (const i of s.active) {
      assert(this.thawed[i] === 0, 'quantum driver: a slice thaws frozen cells only')
      this.inSlice[i] = 1
      this.thawed[i] = 1
    }
    await waitUntil(this.anchorNs)
    s.thawAtNs = hr()
    await Promise.all(s.active.map((i) => this.cells[i]!.cell.thaw()))
    s.thawDoneNs = hr()
    q.lateThawNs = Math.max(q.lateThawNs, s.thawAtNs - this.anchorNs)
  }

  /** Each cell's freeze deadline: its need less the margin after the anchor; a precise cell's, once its clock is read (watchPrecise). */
  private planDeadlines(q: Quantum, s: Slice): void {
    for (const i of s.active) {
      const need = (q.barrierNs - this.progress[i]!) / this.rate[i]!
      if (s.precise[i]) {
        q.preciseSlices[i] = q.preciseSlices[i]! + 1
        s.unread.add(i)
        s.deadlineNs[i] = Infinity
      } else s.deadlineNs[i] = freezeDeadlineNs(this.anchorNs, need, this.freezeMarginNs)
    }
  }

  /** Step 4: freeze the cells as their deadlines come, those due together in one batch, while earlier batches' freezes complete. */
  private async freezeAll(q: Quantum, s: Slice): Promise<void> {
    while (s.thawed.size > 0 || s.inflight.size > 0) {
      if (s.failure) throw s.failure.e
      if (s.unread.size > 0) this.watchPrecise(q, s)
      const t = hr()
      const batch = this.dueBatch(s, t)
      if (batch) {
        this.startFreeze(q, s, batch)
        continue
      }
      if (s.thawed.size === 0) {
        await Promise.race(s.inflight)
        continue
      }
      let next = s.unread.size > 0 ? t + 5_000 : Infinity
      for (const i of s.thawed) next = Math.min(next, s.deadlineNs[i]!)
      await (s.inflight.size > 0 ? Promise.race([...s.inflight, waitStep(next)]) : waitStep(next))
    }
    // A failed freeze of the last batch under way ended the loop (nothing thawed or in flight) unseen.
    if (s.failure) throw s.failure.e
  }

  /** Precise cells: freeze once the clock has had its slice from its first reading on. */
  private watchPrecise(q: Quantum, s: Slice): void {
    const now = hr()
    for (const i of s.unread) {
      if (!s.thawed.has(i)) {
        s.unread.delete(i)
        continue
      }
      const need = (q.barrierNs - this.sliceStart[i]!) / this.rate[i]!
      const d = preciseDeadlineNs(this.cells[i]!.clock!.slice().startedAt, now, s.thawDoneNs, need)
      if (d !== undefined) {
        s.deadlineNs[i] = d
        s.unread.delete(i)
      }
    }
  }

  /** The thawed cells whose deadlines fall within BATCH_NS of `t`, a CpuTime cell's deadline first moved by its steal so far. */
  private dueBatch(s: Slice, t: number): number[] | undefined {
    let batch: number[] | undefined
    for (const i of s.thawed) {
      let d = s.deadlineNs[i]!
      if (d > t + BATCH_NS) continue
      const c = s.checks[i]!
      if (this.cpuMode[i] && !s.precise[i] && c < MAX_CHECKS) {
        // Steal so far (complete only for the waits that ended): move the deadline by what is new.
        s.checks[i] = c + 1
        const steal = this.stealOf(i, this.slicePids[i]!, t - s.thawAtNs)
        const before = s.accountedNs[i]!
        if (steal > before + 5_000) {
          d += steal - before
          s.deadlineNs[i] = d
          s.accountedNs[i] = steal
          if (d > t + BATCH_NS) continue
        }
      }
      ;(batch ??= []).push(i)
    }
    return batch
  }

  /** Freeze `batch` in the background; a failure fails the slice at the loop's next turn. */
  private startFreeze(q: Quantum, s: Slice, batch: number[]): void {
    for (const i of batch) s.thawed.delete(i)
    const p: Promise<void> = this.freezeBatch(q, s, batch).then(
      () => void s.inflight.delete(p),
      (e: unknown) => {
        s.inflight.delete(p)
        s.failure ??= { e }
      },
    )
    s.inflight.add(p)
  }

  private async freezeBatch(q: Quantum, s: Slice, batch: number[]): Promise<void> {
    const freezeAt = hr()
    await Promise.all(batch.map((i) => this.cells[i]!.cell.freeze()))
    const frozenAt = hr()
    q.lastFrozenNs = Math.max(q.lastFrozenNs, frozenAt)
    const freezeNs = frozenAt - freezeAt
    q.freezeMaxNs = Math.max(q.freezeMaxNs, freezeNs)
    this.freezeMarginNs = nextFreezeMarginNs(freezeNs, this.freezeMarginNs, q.quantumWallNs)
    const span = frozenAt - this.anchorNs
    for (const i of batch) {
      this.thawed[i] = 0
      this.account(q, s, i, span, frozenAt, freezeAt)
    }
  }

  /** Step 5, cell i just frozen: how far its clock may have gone, its progress in the slice, whether it is at the barrier. */
  private account(q: Quantum, s: Slice, i: number, spanNs: number, frozenAtNs: number, freezeAtNs: number): void {
    const B = q.barrierNs
    this.inSlice[i] = 0
    q.slices[i] = q.slices[i]! + 1
    const r = this.rate[i]!
    this.clockAt[i] = Math.max(this.clockAt[i]!, Math.min(B, this.sliceStart[i]! + spanNs * r))
    const need = (B - this.progress[i]!) / r
    let ran = spanNs
    if (this.cpuMode[i]) {
      const st = this.settle(i, frozenAtNs - s.thawAtNs, freezeAtNs - s.thawDoneNs - BUSY_SLACK_NS)
      q.stolenNs[i] = q.stolenNs[i]! + st.stealNs
      ran = st.ranNs
      this.lastBusy[i] = st.busy ? 1 : 0
    }
    if (s.precise[i]) {
      // The clock had the slice from its first reading on (and waited at the barrier after), or
      // nobody read it: either way the cell is at the barrier. Precise next time: preciseAfter.
      const st = this.cells[i]!.clock!.slice()
      ran = need
      this.lastBusy[i] = 0
      const after = preciseAfter(st.waited, st.startedAt === undefined, this.preciseCarried[i] === 1)
      this.preciseNext[i] = after.next ? 1 : 0
      this.preciseCarried[i] = after.carried ? 1 : 0
    } else if (s.first) {
      this.preciseNext[i] = 0
    }
    // A slice never takes a cell back; a precise one takes it to the barrier, from wherever it was.
    assert(ran >= 0 || s.precise[i] === 1, 'quantum driver: a negative progress in a slice')
    q.overrunNs = Math.max(q.overrunNs, ran - need)
    this.progress[i] = this.progress[i]! + ran * r
    if (this.reached(q, i)) this.finish(q, i)
  }

  /** Steal so far: max over the cell's threads of the growth of run_delay since the thaw (threads new since then: all of theirs). */
  private stealOf(i: number, pids: number[], sinceThawNs: number): number {
    return stealSinceNs(this.baseStats[i]!, this.schedstats[i]!.read(pids, this.scratch), sinceThawNs)
  }

  /** After a CpuTime cell's freeze: its steal and progress in the slice (settleSlice); the reading is its next slice's baseline. */
  private settle(i: number, thawedNs: number, busyNs: number): SettledSlice {
    const pids = this.cells[i]!.cell.pids()
    const base = this.baseStats[i]!
    const settled = settleSlice(base, this.schedstats[i]!.read(pids, this.scratch), thawedNs, busyNs)
    // This reading is the baseline of the cell's next slice.
    this.baseStats[i] = this.scratch
    this.scratch = base
    this.basePids[i] = pids
    this.baseValid[i] = 1
    return settled
  }

  private result(q: Quantum): QuantumResult {
    assert(q.extraSlices <= MAX_EXTRA_SLICES, 'quantum driver: more than MAX_EXTRA_SLICES extra slices')
    for (let i = 0; i < this.n; i++) {
      assert(q.done[i] === 1 && this.thawed[i] === 0, 'quantum driver: a cell ends a quantum short of the barrier or thawed')
      assert(q.slices[i]! <= 1 + q.extraSlices, 'quantum driver: a cell had more slices than the quantum')
    }
    const spanNs = q.firstAnchorNs === undefined ? 0 : q.lastFrozenNs - q.firstAnchorNs
    for (let i = 0; i < this.n; i++) this.cpuAtEnd[i] = this.cells[i]!.cell.cpuTimeNs()
    return {
      spanNs,
      overrunNs: Math.max(0, q.overrunNs),
      lateThawNs: Math.max(0, q.lateThawNs),
      freezeNs: q.freezeMaxNs,
      cpuNs: Array.from(this.cpuAtEnd, (c, i) => c - q.cpuBeforeNs[i]!),
      slices: q.slices,
      stolenNs: q.stolenNs,
      extraSlices: q.extraSlices,
      capped: q.capped,
      shortNs: q.shortNs,
      carryNs: Array.from(this.carry),
      preciseSlices: q.preciseSlices,
    }
  }
}

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
    const core = makeDriver((cells as Cell[]).map((cell, i) => ({ cell, clock: clocks[i], clockMode: 'WallTime', speed: 1 })))
    const driver: RateQuantumDriver = {
      run: async (startNs, virtualNs, rate = 1) => {
        if (!(rate > 0) || !Number.isFinite(rate)) throw new Error(`rate must be > 0, got ${rate}`)
        return core.run(startNs, virtualNs, undefined, rate)
      },
      virtualNowNs: core.virtualNowNs,
      close: core.close,
    }
    return driver
  }
  const core = makeDriver(cells as DrivenCell[])
  const driver: QuantumDriver = { run: (startNs, virtualNs, hooks) => core.run(startNs, virtualNs, hooks), virtualNowNs: core.virtualNowNs, close: core.close }
  return driver
}

function makeDriver(cells: DrivenCell[]) {
  cells.forEach((c, i) => {
    if (c.clockMode !== 'CpuTime' && c.clockMode !== 'WallTime') throw new Error(`cell ${i} (${c.cell.name}): clockMode must be CpuTime or WallTime, got ${JSON.stringify(c.clockMode)}`)
    if (!(c.speed > 0) || !Number.isFinite(c.speed)) throw new Error(`cell ${i} (${c.cell.name}): speed must be > 0, got ${c.speed}`)
  })
  const n = cells.length
  const cpuMode = cells.map((c) => c.clockMode === 'CpuTime')
  let writeNsPerClock = 100_000 // adapted from measurements
  let freezeMarginNs = 200_000
  // Per cell, during run(): the slice its clock is in, how far its clock may have gone, its progress.
  const rate = new Float64Array(n)
  /** Virtual ns the cell's clock reads at the anchor of its current (or last) slice. */
  const sliceStart = new Float64Array(n)
  /** The highest virtual time the cell's clock may have shown: where its next slice starts. */
  const clockAt = new Float64Array(n)
  /** Virtual time the cell got to: CpuTime (wall − steal) × rate summed over slices, WallTime wall × rate. */
  const progress = new Float64Array(n)
  /** virtualNowNs never returns less than this. */
  const floor = new Float64Array(n)
  const inSlice = new Uint8Array(n)
  /** CpuTime: virtual ns of CPU a cell got past the last barrier (> 0: it was frozen late) or was still owed (< 0), carried into the next quantum. */
  const carry = new Float64Array(n)
  /** CpuTime: the cell's last slice's progress was a busy thread's CPU time (not wall minus waits). */
  const lastBusy = new Uint8Array(n)
  /** The cell's next slice is precise: its readings waited at the last barrier (or its last precise slice's clock was not read). */
  const preciseNext = new Uint8Array(n)
  /** Its last precise slice was one carried over unread. */
  const preciseCarried = new Uint8Array(n)
  let anchorNum = 0
  let barrier = 0
  let lastEnd = 0
  let running = false
  // CpuTime: schedstat of every thread at the thaw, the processes seen then, a scratch map. A frozen
  // cell's threads neither run nor wait, so the reading taken after a freeze is the next thaw's
  // baseline, as long as nothing thawed the cell in between (checked by its CPU time between run()s).
  const baseStats = cells.map(() => new Map<number, TaskSchedstat>())
  const baseValid = new Uint8Array(n)
  /** The processes of each cell's baseline: one that appears later (spawned into the frozen cell) is added at the next thaw. */
  const basePids: number[][] = cells.map(() => [])
  const cpuAtEnd = new Float64Array(n).fill(-1)
  const slicePids: number[][] = cells.map(() => [])
  let scratch = new Map<number, TaskSchedstat>()
  /** Each cell's threads' schedstat files, kept open between readings. */
  const schedstats = cells.map(() => new SchedstatReader())

  const virtualNowNs = (i: number): number => {
    if (!running) return lastEnd
    let v = inSlice[i] ? (sliceStart[i] as number) + Math.max(0, hr() - anchorNum) * (rate[i] as number) : (clockAt[i] as number)
    if (v > barrier) v = barrier
    v = Math.floor(v)
    const f = floor[i] as number
    if (v <= f) return f
    floor[i] = v
    return v
  }

  /** Steal so far: max over the cell's threads of the growth of run_delay since the thaw (threads new since then: all of theirs). */
  const stealOf = (i: number, pids: number[], sinceThawNs: number): number =>
    stealSinceNs(baseStats[i] as Map<number, TaskSchedstat>, (schedstats[i] as SchedstatReader).read(pids, scratch), sinceThawNs)

  /** After a CpuTime cell's freeze: its steal and progress in the slice (settleSlice); the reading is its next slice's baseline. */
  const settle = (i: number, thawedNs: number, busyNs: number): SettledSlice => {
    const pids = (cells[i] as DrivenCell).cell.pids()
    const settled = settleSlice(baseStats[i] as Map<number, TaskSchedstat>, (schedstats[i] as SchedstatReader).read(pids, scratch), thawedNs, busyNs)
    // This reading is the baseline of the cell's next slice.
    const base = baseStats[i] as Map<number, TaskSchedstat>
    baseStats[i] = scratch
    scratch = base
    basePids[i] = pids
    baseValid[i] = 1
    return settled
  }

  async function run(startNs: number, virtualNs: number, hooks: QuantumHooks | undefined, rateOverride?: number): Promise<QuantumResult> {
    if (running) throw new Error('quantum driver: run() is already running')
    if (!Number.isSafeInteger(startNs) || startNs < 0) throw new Error(`startNs must be a non-negative safe integer, got ${startNs}`)
    if (!Number.isSafeInteger(virtualNs) || virtualNs <= 0 || !Number.isSafeInteger(startNs + virtualNs)) throw new Error(`virtualNs must be a positive safe integer, got ${virtualNs}`)
    if (cells.some((c) => !c.cell.frozen)) throw new Error('quantum driver: every cell must be frozen before a quantum')
    const B = startNs + virtualNs
    const tolNs = toleranceNs(virtualNs)
    // A CpuTime cell that ran past the previous barrier (a late freeze) starts this quantum that far
    // ahead: it gets correspondingly less CPU now (all of it when ahead by a whole quantum).
    const contiguous = startNs === lastEnd
    for (let i = 0; i < n; i++) {
      rate[i] = rateOverride ?? 1 / (cells[i] as DrivenCell).speed
      sliceStart[i] = startNs
      clockAt[i] = startNs
      progress[i] = startNs + (contiguous ? (carry[i] as number) : 0)
      carry[i] = 0
      floor[i] = startNs
      inSlice[i] = 0
    }
    const quantumWallNs = Math.max(...Array.from(rate, (r) => virtualNs / r), 0)
    barrier = B
    running = true
    const done = new Uint8Array(n)
    const slices = new Array<number>(n).fill(0)
    const stolen = new Array<number>(n).fill(0)
    const preciseSlices = new Array<number>(n).fill(0)
    const short = new Array<number>(n).fill(0)
    const capped: number[] = []
    let lateThaw = 0
    let freezeMax = 0
    let overrun = 0
    let extra = 0
    let firstAnchor: number | undefined
    let lastFrozen = 0
    const cpuBefore = cells.map((c) => c.cell.cpuTimeNs())
    for (let i = 0; i < n; i++) if (cpuBefore[i] !== cpuAtEnd[i]) baseValid[i] = 0 // it ran outside the driver
    hooks?.onStart?.()
    const preciseFirst = new Uint8Array(n)
    for (let i = 0; i < n; i++) preciseFirst[i] = preciseNext[i] || (hooks?.precise?.(i) && cells[i]!.clock ? 1 : 0)
    const slackNs = (i: number) => slackOf(tolNs, freezeMarginNs, rate[i] as number, virtualNs)
    const reached = (i: number) => !cpuMode[i] || (progress[i] as number) >= B - slackNs(i)
    const finish = (i: number) => {
      done[i] = 1
      inSlice[i] = 0
      const p = progress[i] as number
      if (cpuMode[i]) {
        const c = cpuTimeCarry(p, B, slackNs(i), lastBusy[i] === 1)
        short[i] = (short[i] as number) + c.shortNs
        carry[i] = c.carryNs
      } else {
        short[i] = (short[i] as number) + Math.max(0, B - p)
      }
      progress[i] = B
      clockAt[i] = B
    }

    const slice = async (active: number[], first: boolean) => {
      const precise = new Uint8Array(n)
      for (const i of active) precise[i] = first ? (preciseFirst[i] as number) : 0
      for (const i of active) {
        if (!cpuMode[i]) continue
        const pids = (cells[i] as DrivenCell).cell.pids()
        slicePids[i] = pids
        const base = baseStats[i] as Map<number, TaskSchedstat>
        const reader = schedstats[i] as SchedstatReader
        if (!baseValid[i]) {
          reader.read(pids, base)
          basePids[i] = pids
          baseValid[i] = 1
        } else {
          const known = new Set(basePids[i])
          const added = pids.filter((p) => !known.has(p))
          if (added.length > 0) {
            for (const [tid, st] of reader.read(added, scratch)) base.set(tid, st)
            basePids[i] = pids
          }
        }
      }
      let nClocks = 0
      for (const i of active) if ((cells[i] as DrivenCell).clock) nClocks++
      const t0 = hrNow()
      const anchor = t0 + BigInt(anchorLeadNs(writeNsPerClock, nClocks))
      for (const i of active) {
        const s = Math.min(B, Math.floor(clockAt[i] as number))
        sliceStart[i] = s
        ;(cells[i] as DrivenCell).clock?.set(s, rate[i] as number, { anchorNs: anchor, untilNs: B, precise: precise[i] === 1 })
      }
      const written = hrNow()
      if (nClocks > 0) writeNsPerClock = nextWriteNsPerClock(writeNsPerClock, Number(written - t0), nClocks)
      anchorNum = Number(anchor)
      firstAnchor ??= anchorNum
      for (const i of active) inSlice[i] = 1
      await waitUntil(anchorNum)
      const thawAt = hr()
      await Promise.all(active.map((i) => (cells[i] as DrivenCell).cell.thaw()))
      const thawDone = hr()
      lateThaw = Math.max(lateThaw, thawAt - anchorNum)

      const deadline = new Map<number, number>()
      const accounted = new Map<number, number>()
      const checks = new Map<number, number>()
      /** Precise cells whose clock has not been read yet. */
      const unread = new Set<number>()
      for (const i of active) {
        const need = (B - (progress[i] as number)) / (rate[i] as number)
        if (precise[i]) {
          preciseSlices[i] = (preciseSlices[i] as number) + 1
          unread.add(i)
          deadline.set(i, Infinity)
        } else deadline.set(i, freezeDeadlineNs(anchorNum, need, freezeMarginNs))
        accounted.set(i, 0)
        checks.set(i, 0)
      }
      /** Thawed and not being frozen. */
      const thawed = new Set(active)
      /** Freezes under way (the loop goes on checking deadlines meanwhile). */
      const inflight = new Set<Promise<void>>()
      let failure: { e: unknown } | undefined

      const freezeBatch = async (batch: number[]) => {
        const freezeAt = hr()
        await Promise.all(batch.map((i) => (cells[i] as DrivenCell).cell.freeze()))
        const frozenAt = hr()
        lastFrozen = Math.max(lastFrozen, frozenAt)
        const freezeNs = frozenAt - freezeAt
        freezeMax = Math.max(freezeMax, freezeNs)
        freezeMarginNs = nextFreezeMarginNs(freezeNs, freezeMarginNs, quantumWallNs)
        const span = frozenAt - anchorNum
        for (const i of batch) {
          inSlice[i] = 0
          slices[i] = (slices[i] as number) + 1
          const r = rate[i] as number
          clockAt[i] = Math.max(clockAt[i] as number, Math.min(B, (sliceStart[i] as number) + span * r))
          const need = (B - (progress[i] as number)) / r
          let ran = span
          if (cpuMode[i]) {
            const st = settle(i, frozenAt - thawAt, freezeAt - thawDone - BUSY_SLACK_NS)
            stolen[i] = (stolen[i] as number) + st.stealNs
            ran = st.ranNs
            lastBusy[i] = st.busy ? 1 : 0
          }
          if (precise[i]) {
            // The clock had the slice from its first reading on (and waited at the barrier after), or
            // nobody read it: either way the cell is at the barrier. Precise next time: preciseAfter.
            const st = (cells[i] as DrivenCell).clock!.slice()
            ran = need
            lastBusy[i] = 0
            const after = preciseAfter(st.waited, st.startedAt === undefined, preciseCarried[i] === 1)
            preciseNext[i] = after.next ? 1 : 0
            preciseCarried[i] = after.carried ? 1 : 0
          } else if (first) {
            preciseNext[i] = 0
          }
          overrun = Math.max(overrun, ran - need)
          progress[i] = (progress[i] as number) + ran * r
          if (reached(i)) finish(i)
        }
      }

      while (thawed.size > 0 || inflight.size > 0) {
        if (failure) throw failure.e
        if (unread.size > 0) {
          // Precise cells: freeze once the clock has had its slice from its first reading on.
          const now = hr()
          for (const i of unread) {
            if (!thawed.has(i)) {
              unread.delete(i)
              continue
            }
            const need = (B - (sliceStart[i] as number)) / (rate[i] as number)
            const d = preciseDeadlineNs((cells[i] as DrivenCell).clock!.slice().startedAt, now, thawDone, need)
            if (d !== undefined) {
              deadline.set(i, d)
              unread.delete(i)
            }
          }
        }
        const t = hr()
        let batch: number[] | undefined
        for (const i of thawed) {
          let d = deadline.get(i) as number
          if (d > t + BATCH_NS) continue
          const c = checks.get(i) as number
          if (cpuMode[i] && !precise[i] && c < MAX_CHECKS) {
            // Steal so far (complete only for the waits that ended): move the deadline by what is new.
            checks.set(i, c + 1)
            const s = stealOf(i, slicePids[i] as number[], t - thawAt)
            const before = accounted.get(i) as number
            if (s > before + 5_000) {
              d += s - before
              deadline.set(i, d)
              accounted.set(i, s)
              if (d > t + BATCH_NS) continue
            }
          }
          ;(batch ??= []).push(i)
        }
        if (batch) {
          for (const i of batch) thawed.delete(i)
          const p: Promise<void> = freezeBatch(batch).then(
            () => void inflight.delete(p),
            (e: unknown) => {
              inflight.delete(p)
              failure ??= { e }
            },
          )
          inflight.add(p)
          continue
        }
        if (thawed.size === 0) {
          await Promise.race(inflight)
          continue
        }
        let next = unread.size > 0 ? t + 5_000 : Infinity
        for (const i of thawed) next = Math.min(next, deadline.get(i) as number)
        await (inflight.size > 0 ? Promise.race([...inflight, waitStep(next)]) : waitStep(next))
      }
    }

    try {
      for (let k = 0; ; k++) {
        const active: number[] = []
        for (let i = 0; i < n; i++) {
          if (done[i]) continue
          // Ahead by (nearly) the whole quantum: no slice, unless the runtime just woke it with data.
          if (k === 0 && cpuMode[i] && reached(i) && !preciseFirst[i]) finish(i)
          else active.push(i)
        }
        if (active.length === 0) break
        if (k > 0) {
          if (extra >= MAX_EXTRA_SLICES) {
            for (const i of active) {
              capped.push(i)
              finish(i)
            }
            break
          }
          extra++
        }
        await slice(active, k === 0)
      }
    } catch (e) {
      // Frozen before and after, also when a hook or a freeze failed.
      baseValid.fill(0)
      await Promise.allSettled(cells.filter((c) => !c.cell.frozen).map((c) => c.cell.freeze()))
      throw e
    } finally {
      running = false
      lastEnd = B
      inSlice.fill(0)
    }
    const spanNs = firstAnchor === undefined ? 0 : lastFrozen - firstAnchor
    for (let i = 0; i < n; i++) cpuAtEnd[i] = (cells[i] as DrivenCell).cell.cpuTimeNs()
    return {
      spanNs,
      overrunNs: Math.max(0, overrun),
      lateThawNs: Math.max(0, lateThaw),
      freezeNs: freezeMax,
      cpuNs: Array.from(cpuAtEnd, (c, i) => c - (cpuBefore[i] as number)),
      slices,
      stolenNs: stolen,
      extraSlices: extra,
      capped,
      shortNs: short,
      carryNs: Array.from(carry),
      preciseSlices,
    }
  }

  const close = () => {
    for (const r of schedstats) r.close()
  }
  return { run, virtualNowNs, close }
}

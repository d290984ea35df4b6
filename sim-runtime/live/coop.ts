// Cooperative cells (`clock: Cooperative`; docs/live.md, "Cooperative cells"): cells that are never
// frozen while the run goes on. Their programs stop at each barrier by themselves: every clock
// reading and every socket write goes through the shim (shim.ts), whose clock stands at the barrier
// and waits there (a few µs naps) until the runtime moves it. So nothing a program shows the world (a
// time it read, a byte it wrote) can be later than the barrier, without a freeze and a thaw per
// quantum (tens to hundreds of µs on this kind of machine, much longer than a quantum of a few µs).
//
// A quantum [start, barrier) of a cooperative cell:
//   1. clock.set(start, rate, { untilNs: barrier, precise: true }) through the state's seqlock: the
//      clock starts at the first reading after the set (not at the set), advances with the wall ×
//      rate, and waits at the barrier;
//   2. hooks.onStart(): the runtime writes what is due at `start` into the programs' sockets (after
//      the set, so that a program woken by it reads the new clock);
//   3. the cell is at the barrier
//      - once its clock has been read and has had the quantum's wall time since (its readings wait
//        there from then on);
//      - or, nobody having read it, when none of its threads is runnable: an idle program (blocked in
//        a read or a poll) has nothing to do in the quantum. A cell that was just written to, or whose
//        readings waited at the last barrier, is first given WAKE_GRACE_NS to wake up. Its programs'
//        timed waits (the shim's deadline registry, read through clock.waits()) may hold it back:
//        a waiter waits on the real clock, so an idle cell's clock goes no faster than the wall
//        takes each waiter to its deadline (deadlines.ts), and stops at a deadline inside the
//        stretch until its waiter's wait has ended (the stretch is split there). After a timer
//        fired, every thread is looked at: a thread the timer woke has no wait registered, and may
//        not have had a CPU yet;
//      - or, nobody having read it but a thread running, once the cell has used the quantum's CPU
//        time (counted from where the last quantum's ended): a program that computes without reading
//        its clock advances with its CPU time, as in CpuTime.
// Data due for a cell inside the quantum (hooks.nextDue) ends that cell's stretch there: the runtime
// writes it (hooks.deliver) and the cell goes on with a precise slice to its next delivery or the
// barrier. The other cells are not stopped: nothing a cell does inside a quantum reaches another
// before the quantum's end (the quantum is at most the smallest link latency), and every stop costs a
// busy program more than the stop itself (its caches are cold after it), so a C=10 redis-benchmark,
// stopped at every reply redis-server got as well as its own, ran ~4 % slower in virtual time.
// Work a program does past the barrier before its next reading (or write, or poll/select/epoll_wait
// that may block) is its overshoot: the shim notes it, and the next slice's clock starts that much
// early (shim.ts, "Overshoot"), so that a busy program's time is all counted.
// Idle cells thus cost a few system calls per quantum. The price: the clock runs with the wall from
// the first reading on; time a thread waits for a CPU is taken off only for the thread that started
// the slice, through its overshoot (shim.ts, "Steal"), so a noisy neighbour slows the others as in
// WallTime; CPU time a program spends between its last reading and going idle without a poll,
// select or epoll_wait (a blocking read(), a futex) is not counted.
import assert from 'node:assert/strict'
import { firedLately, idleReach } from './deadlines.ts'
import { ThreadStates } from './proc.ts'
import { waitStep, type CoopFinish, type DrivenCell, type QuantumDriver, type QuantumHooks, type QuantumResult } from './quantum.ts'

/** How long (wall ns) a woken cooperative cell (written to, or its readings waited at the last barrier) may take to become runnable before it counts as idle. */
const WAKE_GRACE_NS = 50_000
/** A reading that waited at the last barrier is waited for this long (wall ns) at most before its cell may count as idle. */
const NAPPING_MAX_NS = 5_000_000
/** Thread states are read at most this often (wall ns) per cell. */
const STATE_EVERY_NS = 10_000
/** After a cell's clock has had its quantum, wait this much more (wall ns) before the next quantum. */
const SLACK_NS = 1_000
/** An idle cell held back by its programs' timed waits is looked at again at least this often (wall ns): something else may wake it. */
const HELD_LOOK_NS = 1_000_000

const hr = () => Number(process.hrtime.bigint())

export function createCoopDriver(cells: DrivenCell[]): QuantumDriver {
  const core = new CoopDriver(cells)
  return { run: (startNs, virtualNs, hooks) => core.run(startNs, virtualNs, hooks), virtualNowNs: (i) => core.virtualNowNs(i), splitsPerCell: true, close: () => core.close() }
}

/** One run(): the quantum's barrier, the hooks, the cells not at it yet, and what it reports. */
class CoopRun {
  readonly barrierNs: number
  readonly hooks: QuantumHooks | undefined
  /** Wall ns (hrtime) at the start: spanNs. */
  readonly t0Ns: number
  /** Cells not at the barrier yet. */
  readonly pending: Set<number>
  readonly stretches: number[]
  readonly preciseSlices: number[]
  readonly finishedBy: CoopFinish[]

  constructor(n: number, barrierNs: number, hooks: QuantumHooks | undefined) {
    this.barrierNs = barrierNs
    this.hooks = hooks
    this.t0Ns = hr()
    this.pending = new Set<number>()
    this.stretches = new Array<number>(n).fill(0)
    this.preciseSlices = new Array<number>(n).fill(0)
    this.finishedBy = new Array<CoopFinish>(n).fill('idle')
  }
}

/** The driver of cooperative cells: the scheme of the file comment. */
class CoopDriver {
  private readonly cells: DrivenCell[]
  private readonly n: number
  /** Its readings waited at the last barrier: give it time to read its clock in the next quantum. */
  private readonly waitedLast: Uint8Array
  private readonly sliceStart: Float64Array
  private readonly startedAt: Float64Array
  private readonly floor: Float64Array
  /** CPU ns of the cell at which its last quantum's budget ended (a cell that computes without reading its clock). */
  private readonly cpuMark: Float64Array
  /** Which of each cell's threads are runnable (an idle cell's threads are looked at every STATE_EVERY_NS). */
  private readonly threads: ThreadStates[]
  /** The end of each cell's current stretch (its clock's barrier). */
  private readonly until: Float64Array
  // Per stretch, set by begin(): whether the runtime just wrote into the cell (or its readings waited
  // at the last barrier), when (wall ns) the stretch began (the grace for a woken cell, the napping
  // bound), when its clock has had the stretch, when its threads were last looked at, its CPU budget.
  private readonly woken: Uint8Array
  private readonly stretchAt: Float64Array
  private readonly doneAt: Float64Array
  private readonly stateAt: Float64Array
  private readonly budget: Float64Array
  /** When (wall ns) cell i's CPU time was last read in this stretch while nobody read its clock, and what it was. */
  private readonly cpuAt: Float64Array
  private readonly cpuSeen: Float64Array
  /** Cell i's CPU time at the end of the last run (NaN before the first): each run reads it once. */
  private readonly cpuLast: Float64Array
  private lastEnd = 0
  private running = false

  constructor(cells: DrivenCell[]) {
    const n = cells.length
    cells.forEach((c, i) => {
      if (!c.clock) throw new Error(`cell ${i} (${c.cell.name}): a cooperative cell needs a virtual clock`)
      if (!(c.speed > 0) || !Number.isFinite(c.speed)) throw new Error(`cell ${i} (${c.cell.name}): speed must be > 0, got ${c.speed}`)
    })
    this.cells = cells
    this.n = n
    this.waitedLast = new Uint8Array(n)
    this.sliceStart = new Float64Array(n)
    this.startedAt = new Float64Array(n)
    this.floor = new Float64Array(n)
    this.cpuMark = new Float64Array(n).fill(NaN)
    this.threads = cells.map((c) => new ThreadStates(() => c.cell.pids()))
    this.until = new Float64Array(n)
    this.woken = new Uint8Array(n)
    this.stretchAt = new Float64Array(n)
    this.doneAt = new Float64Array(n)
    this.stateAt = new Float64Array(n)
    this.budget = new Float64Array(n)
    this.cpuAt = new Float64Array(n)
    this.cpuSeen = new Float64Array(n)
    this.cpuLast = new Float64Array(n).fill(NaN)
  }

  virtualNowNs(i: number): number {
    if (!this.running) return this.lastEnd
    const rate = 1 / this.cells[i]!.speed
    const startedAt = this.startedAt[i]!
    let v = Number.isNaN(startedAt) ? this.sliceStart[i]! : this.sliceStart[i]! + Math.max(0, hr() - startedAt) * rate
    v = Math.floor(Math.min(v, this.until[i]!))
    if (v < this.floor[i]!) return this.floor[i]!
    this.floor[i] = v
    return v
  }

  close(): void {
    for (const t of this.threads) t.close()
  }

  async run(startNs: number, virtualNs: number, hooks?: QuantumHooks): Promise<QuantumResult> {
    if (this.running) throw new Error('cooperative driver: run() is already running')
    if (!Number.isSafeInteger(startNs) || startNs < 0) throw new Error(`startNs must be a non-negative safe integer, got ${startNs}`)
    if (!Number.isSafeInteger(virtualNs) || virtualNs <= 0) throw new Error(`virtualNs must be a positive safe integer, got ${virtualNs}`)
    const B = startNs + virtualNs
    this.running = true
    for (let i = 0; i < this.n; i++) if (Number.isNaN(this.cpuLast[i])) this.cpuLast[i] = this.cells[i]!.cell.cpuTimeNs()
    const r = new CoopRun(this.n, B, hooks)
    try {
      await this.start(r, startNs)
      await this.watch(r)
      return this.result(r)
    } finally {
      this.running = false
      this.lastEnd = B
    }
  }

  /** Every cell's first stretch from startNs; what is due then; the programs go on (thawed if they were started frozen). */
  private async start(r: CoopRun, startNs: number): Promise<void> {
    for (let i = 0; i < this.n; i++) this.begin(r, i, startNs, true)
    // What is due at startNs (the runtime writes it after the sets, so that a program woken by it reads the new clock).
    r.hooks?.onStart?.()
    for (let i = 0; i < this.n; i++) if (!this.woken[i] && r.hooks?.precise?.(i) === true) {
      this.woken[i] = 1
      r.preciseSlices[i] = r.preciseSlices[i]! + 1
    }
    // Programs started frozen (runner.ts): from the first quantum on they run.
    await Promise.all(this.cells.filter((c) => c.cell.frozen).map((c) => c.cell.thaw()))
    for (let i = 0; i < this.n; i++) this.stretchAt[i] = hr()
    for (let i = 0; i < this.n; i++) r.pending.add(i)
  }

  /**
   * Cell i's clock for the stretch [from, its next delivery or B): each cell stops where data is
   * due for it, not where data is due for any cell of the runtime (hooks.nextDue), so that a busy
   * program is not stopped at every other cell's deliveries. A cell that data was just written to
   * (deliver; for the first stretch, precise() after onStart) or whose readings waited at its last
   * barrier gets WAKE_GRACE_NS to wake up.
   */
  private begin(r: CoopRun, i: number, from: number, first: boolean): void {
    const B = r.barrierNs
    const c = this.cells[i]!
    const end = Math.min(B, Math.max(from + 1, r.hooks?.nextDue?.(i, from) ?? B))
    // A stretch goes on from where the last one ended: the clock never goes back within a run.
    assert(end > from && (first || from >= this.sliceStart[i]!), 'cooperative driver: a stretch would set a clock back')
    this.sliceStart[i] = from
    this.startedAt[i] = NaN
    this.floor[i] = from
    this.until[i] = end
    c.clock!.set(from, 1 / c.speed, { untilNs: end, precise: true })
    const wrote = !first && r.hooks?.deliver?.(i, from) === true
    this.woken[i] = this.waitedLast[i] === 1 || wrote ? 1 : 0
    this.stretchAt[i] = hr()
    this.doneAt[i] = NaN
    this.stateAt[i] = -Infinity
    this.cpuAt[i] = -Infinity
    this.budget[i] = (end - from) * c.speed
    r.stretches[i] = r.stretches[i]! + 1
    if (this.woken[i]) r.preciseSlices[i] = r.preciseSlices[i]! + 1
  }

  /** Until every cell is at the barrier: look at each, then wait until the next look is due. */
  private async watch(r: CoopRun): Promise<void> {
    while (r.pending.size > 0) {
      const now = hr()
      let next = Infinity
      for (const i of r.pending) next = Math.min(next, this.step(r, i, now))
      if (r.pending.size === 0) break
      // Long waits nap (the programs need the CPU more than we do), short ones spin.
      if (next > now) await waitStep(next)
    }
  }

  /** Cell i at `now`: at its stretch's barrier once its clock, read, has had the stretch; when to look at it next (now: at once). */
  private step(r: CoopRun, i: number, now: number): number {
    if (Number.isNaN(this.doneAt[i])) {
      const sl = this.cells[i]!.clock!.slice()
      const at = sl.startedAt
      if (at === undefined) return this.stepUnread(r, i, now, sl.waited)
      this.startedAt[i] = Number(at)
      this.doneAt[i] = Number(at) + this.budget[i]! + SLACK_NS
    }
    if (now >= this.doneAt[i]!) {
      this.finish(r, i, NaN, 'read')
      return now
    }
    return this.doneAt[i]!
  }

  /** Cell i, its clock not read in this stretch: at the barrier by its CPU time (computing), or with no thread runnable (idle). */
  private stepUnread(r: CoopRun, i: number, now: number, waited: number): number {
    // The cell's CPU time (a file read) at most every STATE_EVERY_NS; after a stretch that
    // ended on a reading, the next budget counts from the first look here.
    if (now - this.cpuAt[i]! >= STATE_EVERY_NS) {
      this.cpuAt[i] = now
      this.cpuSeen[i] = this.cells[i]!.cell.cpuTimeNs()
    }
    const cpu = this.cpuSeen[i]!
    if (Number.isNaN(this.cpuMark[i])) this.cpuMark[i] = cpu
    // A reading waiting at the last barrier (napping: its naps cost a little CPU) goes on
    // soon: neither idle nor computing, unless it takes very long.
    const napping = waited > 0 && now - this.stretchAt[i]! < NAPPING_MAX_NS
    if (!napping && cpu - this.cpuMark[i]! >= this.budget[i]!) {
      this.finish(r, i, cpu, 'computing') // without reading the clock: the stretch's CPU time is used
      return now
    }
    if (!napping && now - this.stateAt[i]! >= STATE_EVERY_NS && (!this.woken[i] || now - this.stretchAt[i]! >= WAKE_GRACE_NS)) {
      this.stateAt[i] = now
      // Exact when the runtime wrote into the cell: its reader may be runnable without having had a CPU yet.
      if (!this.threads[i]!.runnable(now, this.woken[i] === 1)) {
        // Idle, but only as far as its programs' timed waits allow (deadlines.ts), read after its
        // threads: a thread seen blocked registered its wait before it blocked. A thread a timer
        // woke has none: after a timer fired, every thread is looked at.
        const c = this.cells[i]!
        const waits = c.clock!.waits()
        const fired = firedLately(waits, now)
        if (fired && !this.woken[i] && this.threads[i]!.runnable(now, true)) return now + 5_000
        const from = this.sliceStart[i]!
        const reach = idleReach(waits, { fromNs: from, untilNs: this.until[i]!, speed: c.speed, stretchAtNs: this.stretchAt[i]!, nowNs: now })
        if (reach.toNs > from) {
          this.until[i] = reach.toNs // short of the barrier: the stretch ends at a waiter's deadline
          this.finish(r, i, cpu, 'idle')
          return now
        }
        if (fired) return now + 5_000
        // Held: its threads are looked at again when the waits allow more or a waiter wakes.
        const again = Math.max(now + STATE_EVERY_NS, Math.min(reach.againNs, now + HELD_LOOK_NS))
        this.stateAt[i] = again - STATE_EVERY_NS
        return again
      }
    }
    return now + 5_000
  }

  /** Cell i is at its stretch's barrier, for the reason `why` (computing: by its CPU time, the next budget starting where this one ended; else from now); at B it is done, else its next stretch begins. */
  private finish(r: CoopRun, i: number, cpu: number, why: CoopFinish): void {
    r.finishedBy[i] = why
    this.cpuMark[i] = why === 'computing' && !Number.isNaN(this.cpuMark[i]) ? this.cpuMark[i]! + this.budget[i]! : cpu
    this.waitedLast[i] = this.cells[i]!.clock!.slice().waited > 0 ? 1 : 0
    if (this.until[i]! >= r.barrierNs) r.pending.delete(i)
    else this.begin(r, i, this.until[i]!, false)
  }

  private result(r: CoopRun): QuantumResult {
    const n = this.n
    for (let i = 0; i < n; i++) assert(this.until[i] === r.barrierNs, 'cooperative driver: a cell ends a run short of the barrier')
    // CPU since the last run's end: a cooperative cell also runs (waits at its barrier) between runs.
    const cpuNs = this.cells.map((c, i) => {
      const now = c.cell.cpuTimeNs()
      const used = now - this.cpuLast[i]!
      this.cpuLast[i] = now
      return used
    })
    return {
      spanNs: hr() - r.t0Ns,
      overrunNs: 0,
      lateThawNs: 0,
      freezeNs: 0,
      cpuNs,
      slices: r.stretches,
      stolenNs: new Array<number>(n).fill(0),
      extraSlices: 0,
      capped: [],
      shortNs: new Array<number>(n).fill(0),
      carryNs: new Array<number>(n).fill(0),
      preciseSlices: r.preciseSlices,
      finishedBy: r.finishedBy,
      stretches: r.stretches,
    }
  }
}

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
//        readings waited at the last barrier, is first given WAKE_GRACE_NS to wake up;
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

const hr = () => Number(process.hrtime.bigint())

export function createCoopDriver(cells: DrivenCell[]): QuantumDriver {
  const n = cells.length
  cells.forEach((c, i) => {
    if (!c.clock) throw new Error(`cell ${i} (${c.cell.name}): a cooperative cell needs a virtual clock`)
    if (!(c.speed > 0) || !Number.isFinite(c.speed)) throw new Error(`cell ${i} (${c.cell.name}): speed must be > 0, got ${c.speed}`)
  })
  /** Its readings waited at the last barrier: give it time to read its clock in the next quantum. */
  const waitedLast = new Uint8Array(n)
  const sliceStart = new Float64Array(n)
  const startedAt = new Float64Array(n)
  const floor = new Float64Array(n)
  /** CPU ns of the cell at which its last quantum's budget ended (a cell that computes without reading its clock). */
  const cpuMark = new Float64Array(n).fill(NaN)
  /** Which of each cell's threads are runnable (an idle cell's threads are looked at every STATE_EVERY_NS). */
  const threads = cells.map((c) => new ThreadStates(() => c.cell.pids()))
  /** The end of each cell's current stretch (its clock's barrier). */
  const until = new Float64Array(n)
  // Per stretch, set by begin(): whether the runtime just wrote into the cell (or its readings waited
  // at the last barrier), when (wall ns) the stretch began (the grace for a woken cell, the napping
  // bound), when its clock has had the stretch, when its threads were last looked at, its CPU budget.
  const woken = new Uint8Array(n)
  const stretchAt = new Float64Array(n)
  const doneAt = new Float64Array(n)
  const stateAt = new Float64Array(n)
  const budget = new Float64Array(n)
  /** When (wall ns) cell i's CPU time was last read in this stretch while nobody read its clock, and what it was. */
  const cpuAt = new Float64Array(n)
  const cpuSeen = new Float64Array(n)
  /** Cell i's CPU time at the end of the last run (NaN before the first): each run reads it once. */
  const cpuLast = new Float64Array(n).fill(NaN)
  let lastEnd = 0
  let running = false

  const virtualNowNs = (i: number): number => {
    if (!running) return lastEnd
    const rate = 1 / (cells[i] as DrivenCell).speed
    let v = Number.isNaN(startedAt[i]) ? (sliceStart[i] as number) : (sliceStart[i] as number) + Math.max(0, hr() - (startedAt[i] as number)) * rate
    v = Math.floor(Math.min(v, until[i] as number))
    if (v < (floor[i] as number)) return floor[i] as number
    floor[i] = v
    return v
  }

  async function run(startNs: number, virtualNs: number, hooks?: QuantumHooks): Promise<QuantumResult> {
    if (running) throw new Error('cooperative driver: run() is already running')
    if (!Number.isSafeInteger(startNs) || startNs < 0) throw new Error(`startNs must be a non-negative safe integer, got ${startNs}`)
    if (!Number.isSafeInteger(virtualNs) || virtualNs <= 0) throw new Error(`virtualNs must be a positive safe integer, got ${virtualNs}`)
    const B = startNs + virtualNs
    running = true
    for (let i = 0; i < n; i++) if (Number.isNaN(cpuLast[i])) cpuLast[i] = (cells[i] as DrivenCell).cell.cpuTimeNs()
    const t0 = hr()
    const stretches = new Array<number>(n).fill(0)
    const preciseSlices = new Array<number>(n).fill(0)
    const finishedBy = new Array<CoopFinish>(n).fill('idle')
    /**
     * Cell i's clock for the stretch [from, its next delivery or B): each cell stops where data is
     * due for it, not where data is due for any cell of the runtime (hooks.nextDue), so that a busy
     * program is not stopped at every other cell's deliveries. A cell that data was just written to
     * (deliver; for the first stretch, precise() after onStart) or whose readings waited at its last
     * barrier gets WAKE_GRACE_NS to wake up.
     */
    const begin = (i: number, from: number, first: boolean) => {
      const c = cells[i] as DrivenCell
      const end = Math.min(B, Math.max(from + 1, hooks?.nextDue?.(i, from) ?? B))
      sliceStart[i] = from
      startedAt[i] = NaN
      floor[i] = from
      until[i] = end
      c.clock!.set(from, 1 / c.speed, { untilNs: end, precise: true })
      const wrote = !first && hooks?.deliver?.(i, from) === true
      woken[i] = waitedLast[i] === 1 || wrote ? 1 : 0
      stretchAt[i] = hr()
      doneAt[i] = NaN
      stateAt[i] = -Infinity
      cpuAt[i] = -Infinity
      budget[i] = (end - from) * c.speed
      stretches[i] = (stretches[i] as number) + 1
      if (woken[i]) preciseSlices[i] = (preciseSlices[i] as number) + 1
    }
    try {
      for (let i = 0; i < n; i++) begin(i, startNs, true)
      // What is due at startNs (the runtime writes it after the sets, so that a program woken by it reads the new clock).
      hooks?.onStart?.()
      for (let i = 0; i < n; i++) if (!woken[i] && hooks?.precise?.(i) === true) {
        woken[i] = 1
        preciseSlices[i] = (preciseSlices[i] as number) + 1
      }
      // Programs started frozen (runner.ts): from the first quantum on they run.
      await Promise.all(cells.filter((c) => c.cell.frozen).map((c) => c.cell.thaw()))
      for (let i = 0; i < n; i++) stretchAt[i] = hr()
      const pending = new Set(cells.keys())
      /** Cell i is at its stretch's barrier, for the reason `why` (computing: by its CPU time, the next budget starting where this one ended; else from now); at B it is done, else its next stretch begins. */
      const finish = (i: number, cpu: number, why: CoopFinish) => {
        finishedBy[i] = why
        cpuMark[i] = why === 'computing' && !Number.isNaN(cpuMark[i]) ? (cpuMark[i] as number) + (budget[i] as number) : cpu
        waitedLast[i] = (cells[i] as DrivenCell).clock!.slice().waited > 0 ? 1 : 0
        if ((until[i] as number) >= B) pending.delete(i)
        else begin(i, until[i] as number, false)
      }
      while (pending.size > 0) {
        const now = hr()
        let next = Infinity
        for (const i of pending) {
          const c = cells[i] as DrivenCell
          if (Number.isNaN(doneAt[i])) {
            const sl = c.clock!.slice()
            const at = sl.startedAt
            if (at !== undefined) {
              startedAt[i] = Number(at)
              doneAt[i] = Number(at) + (budget[i] as number) + SLACK_NS
            } else {
              // The cell's CPU time (a file read) at most every STATE_EVERY_NS; after a stretch that
              // ended on a reading, the next budget counts from the first look here.
              if (now - (cpuAt[i] as number) >= STATE_EVERY_NS) {
                cpuAt[i] = now
                cpuSeen[i] = c.cell.cpuTimeNs()
              }
              const cpu = cpuSeen[i] as number
              if (Number.isNaN(cpuMark[i])) cpuMark[i] = cpu
              // A reading waiting at the last barrier (napping: its naps cost a little CPU) goes on
              // soon: neither idle nor computing, unless it takes very long.
              const napping = sl.waited > 0 && now - (stretchAt[i] as number) < NAPPING_MAX_NS
              if (!napping && cpu - (cpuMark[i] as number) >= (budget[i] as number)) {
                finish(i, cpu, 'computing') // without reading the clock: the stretch's CPU time is used
                next = now
                continue
              }
              if (!napping && now - (stateAt[i] as number) >= STATE_EVERY_NS && (!woken[i] || now - (stretchAt[i] as number) >= WAKE_GRACE_NS)) {
                stateAt[i] = now
                // Exact when the runtime wrote into the cell: its reader may be runnable without having had a CPU yet.
                if (!(threads[i] as ThreadStates).runnable(now, woken[i] === 1)) {
                  finish(i, cpu, 'idle')
                  next = now
                  continue
                }
              }
              next = Math.min(next, now + 5_000)
              continue
            }
          }
          if (now >= (doneAt[i] as number)) {
            finish(i, NaN, 'read')
            next = now
          } else next = Math.min(next, doneAt[i] as number)
        }
        if (pending.size === 0) break
        // Long waits nap (the programs need the CPU more than we do), short ones spin.
        if (next > now) await waitStep(next)
      }
      // CPU since the last run's end: a cooperative cell also runs (waits at its barrier) between runs.
      const cpuNs = cells.map((c, i) => {
        const now = c.cell.cpuTimeNs()
        const used = now - (cpuLast[i] as number)
        cpuLast[i] = now
        return used
      })
      return {
        spanNs: hr() - t0,
        overrunNs: 0,
        lateThawNs: 0,
        freezeNs: 0,
        cpuNs,
        slices: stretches,
        stolenNs: new Array<number>(n).fill(0),
        extraSlices: 0,
        capped: [],
        shortNs: new Array<number>(n).fill(0),
        carryNs: new Array<number>(n).fill(0),
        preciseSlices,
        finishedBy,
        stretches,
      }
    } finally {
      running = false
      lastEnd = B
    }
  }

  const close = () => {
    for (const t of threads) t.close()
  }

  return { run, virtualNowNs, splitsPerCell: true, close }
}


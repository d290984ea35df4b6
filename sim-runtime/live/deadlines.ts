// How far the cooperative driver (coop.ts) may move an idle cell's clock, given the timed waits of
// its programs (the deadline registry: shim/deadlines.c, shim/layout.ts WAITS_*; docs/live.md,
// "Cooperative cells").
//
// A program's timed wait waits on the real clock for what is left of its virtual deadline at the
// clock's rate: it ends at a real instant `wake`, and is never late as long as the clock runs no
// faster than rate × wall from where the waiter saw it. An idle cell (nobody read its clock, no
// thread runnable) used to be moved to its barrier at once, quantum after quantum: its clock ran far
// faster than the wall, and the waiter woke to find its deadline long past. So at wall time `now`
// the clock may stand at most at
//     deadline - (wake - now) × rate          (the waiter's own schedule, while it waits)
//     deadline                                (once its wait has ended: it is waking up)
// for every registered wait; from there the wall reaches the deadline no sooner than the waiter
// wakes. A wait its waiter left long ago (WAIT_STALE_NS) is ignored: the waiter died in it, or
// blocks elsewhere. A wait that found the registry full left only its wake: until then the cell's
// clock runs no faster than the wall from the stretch's start (what a frozen cell's does). And a
// thread a timekeeper woke has no wait registered: firedLately() tells the driver to look harder.
import { WAIT_STALE_NS } from './shim/layout.ts'

/** The registry as the runtime reads it (VirtualClock.waits()). */
export interface ClockWaits {
  /** Each registered wait's deadline: virtual ns, on the time line of VirtualClock.set(). */
  deadlineNs: number[]
  /** Each one's real end: CLOCK_MONOTONIC ns (process.hrtime's time line), the same index. */
  wakeNs: number[]
  /** The latest real end of a wait that found no free slot (0: none). */
  overflowWakeNs: number
  /** When (CLOCK_MONOTONIC ns) a timekeeper of the cell last fired timers (0: never). */
  firedNs: number
}

export const NO_WAITS: ClockWaits = { deadlineNs: [], wakeNs: [], overflowWakeNs: 0, firedNs: 0 }

/**
 * A timekeeper fired timers lately: a thread it woke (a signal, a timerfd's count), which has no
 * wait registered, may be runnable without having had a CPU yet, which the driver's usual look (a
 * thread that has not run since the last look is taken as still asleep) misses. Look at every
 * thread, for as long as a waiting thread may wait for a CPU (WAIT_STALE_NS).
 */
export function firedLately(w: ClockWaits, nowNs: number): boolean {
  return w.firedNs > 0 && nowNs - w.firedNs < WAIT_STALE_NS
}

/** An idle cell's stretch: its clock stands at fromNs (virtual), its barrier is untilNs, it began at stretchAtNs (wall). */
export interface IdleStretch {
  fromNs: number
  untilNs: number
  /** Wall ns per virtual ns (the cell's speed: its clock runs at 1/speed of the wall). */
  speed: number
  stretchAtNs: number
  nowNs: number
}

/**
 * Where an idle cell's clock may go now: `toNs`, the barrier (untilNs) if every wait allows it,
 * else the latest registered deadline inside the stretch that every wait allows (its waiter's wake
 * has come: the stretch is split there, like a delivery, and the waiter finds its deadline come),
 * else fromNs (not now). `againNs`: when (wall) to look again if not at the barrier: when the
 * barrier will be allowed if nothing changes, or a waiter's wake, whichever comes first (nowNs: a
 * waiter is waking up now).
 */
export function idleReach(w: ClockWaits, s: IdleStretch): { toNs: number; againNs: number } {
  const { fromNs, untilNs, speed, nowNs } = s
  // The farthest the clock may stand now; the wall instant from which it may stand at untilNs
  // (never, while a waiter whose deadline is short of it has not left its wait); the first wake.
  let limit = Infinity
  let untilAt = -Infinity
  let wakeAt = Infinity
  const live: number[] = []
  for (let k = 0; k < w.deadlineNs.length; k++) {
    const d = w.deadlineNs[k]!
    const wake = w.wakeNs[k]!
    if (wake + WAIT_STALE_NS < nowNs) continue
    live.push(d)
    limit = Math.min(limit, d - Math.max(0, wake - nowNs) / speed)
    untilAt = Math.max(untilAt, untilNs <= d ? wake - (d - untilNs) * speed : Infinity)
    wakeAt = Math.min(wakeAt, Math.max(wake, nowNs))
  }
  if (w.overflowWakeNs > 0 && w.overflowWakeNs + WAIT_STALE_NS >= nowNs) {
    limit = Math.min(limit, fromNs + Math.max(0, nowNs - s.stretchAtNs) / speed)
    untilAt = Math.max(untilAt, s.stretchAtNs + (untilNs - fromNs) * speed)
  }
  if (untilNs <= limit) return { toNs: untilNs, againNs: nowNs }
  let to = fromNs
  for (const d of live) if (d > to && d < untilNs && d <= limit) to = d
  return { toNs: to, againNs: Math.min(untilAt, wakeAt) }
}

// How far the cooperative driver may move an idle cell's clock given its programs' timed waits
// (sim-runtime/live/deadlines.ts): never so far that a waiter, waiting on the real clock, wakes to
// find its deadline past; never past a deadline whose waiter has not left its wait; a wait that
// found the registry full paces the clock to the wall; after a timer fired, the driver looks harder.
import { describe, expect, it } from 'vitest'
import { firedLately, idleReach, NO_WAITS, type ClockWaits } from '../../sim-runtime/live/deadlines.ts'
import { WAIT_STALE_NS } from '../../sim-runtime/live/shim/layout.ts'

const MS = 1_000_000
const NOW = 1_000 * MS
/** A stretch [10 ms, 11 ms) of a cell at speed 4 (its clock runs at a quarter of the wall), begun 1 ms of wall ago. */
const STRETCH = { fromNs: 10 * MS, untilNs: 11 * MS, speed: 4, stretchAtNs: NOW - MS, nowNs: NOW }
const waits = (...w: [deadlineNs: number, wakeNs: number][]): ClockWaits => ({ deadlineNs: w.map((x) => x[0]), wakeNs: w.map((x) => x[1]), overflowWakeNs: 0, firedNs: 0 })

describe('idleReach', () => {
  it('with no timed wait, an idle cell goes to its barrier at once', () => {
    expect(idleReach(NO_WAITS, STRETCH)).toEqual({ toNs: 11 * MS, againNs: NOW })
  })

  it('a waiter whose deadline lies beyond the barrier allows it once the wall, at the clock’s rate, reaches the deadline no sooner than its wake', () => {
    // Deadline 15 ms; its wait ends in 12 ms of wall = 3 ms of virtual time at speed 4: the clock may stand at 12 ms now.
    expect(idleReach(waits([15 * MS, NOW + 12 * MS]), STRETCH)).toEqual({ toNs: 11 * MS, againNs: NOW })
    // Its wait ends in 20 ms of wall (5 ms virtual): at most 10 ms now; 11 ms from 4 ms of wall on.
    expect(idleReach(waits([15 * MS, NOW + 20 * MS]), STRETCH)).toEqual({ toNs: 10 * MS, againNs: NOW + 4 * MS })
  })

  it('a deadline inside the stretch splits it there once its waiter’s wait has ended, and holds the clock there until the waiter has left', () => {
    // Its wait ends in 2 ms of wall: the clock may stand at 10.5 - 0.5 = 10 ms; look again at its wake.
    expect(idleReach(waits([10.5 * MS, NOW + 2 * MS]), STRETCH)).toEqual({ toNs: 10 * MS, againNs: NOW + 2 * MS })
    // Its wait has ended: the stretch ends at its deadline (the waiter wakes to find it come).
    expect(idleReach(waits([10.5 * MS, NOW - 1_000]), STRETCH)).toEqual({ toNs: 10.5 * MS, againNs: NOW })
    // At its deadline, not yet gone: held (a waiter waking up now: look again soon).
    expect(idleReach(waits([10 * MS, NOW - 1_000]), STRETCH)).toEqual({ toNs: 10 * MS, againNs: NOW })
  })

  it('splits at the latest deadline every waiter allows', () => {
    const w = waits([10.2 * MS, NOW - 1_000], [10.4 * MS, NOW - 1_000], [10.7 * MS, NOW + 4 * MS])
    // The third allows 10.7 - 1 = 9.7 ms only: nothing now (the first two are waking up: look again soon).
    expect(idleReach(w, STRETCH)).toEqual({ toNs: 10 * MS, againNs: NOW })
    const w2 = waits([10.2 * MS, NOW - 1_000], [10.4 * MS, NOW - 1_000], [12.7 * MS, NOW + 4 * MS])
    expect(idleReach(w2, STRETCH).toNs).toBe(10.2 * MS)
  })

  it('ignores a wait its waiter left long ago (it died in it, or blocks elsewhere)', () => {
    expect(idleReach(waits([10.5 * MS, NOW - WAIT_STALE_NS - 1]), STRETCH)).toEqual({ toNs: 11 * MS, againNs: NOW })
    expect(idleReach(waits([10.5 * MS, NOW - WAIT_STALE_NS + 1]), STRETCH).toNs).toBe(10.5 * MS)
  })

  it('a wait that found the registry full paces the clock to the wall from the stretch’s start', () => {
    const full = { ...NO_WAITS, overflowWakeNs: NOW + 10 * MS }
    // 1 ms of wall since the stretch began = 0.25 ms virtual: short of 1 ms; the barrier after 4 ms of wall.
    expect(idleReach(full, STRETCH)).toEqual({ toNs: 10 * MS, againNs: NOW + 3 * MS })
    expect(idleReach(full, { ...STRETCH, stretchAtNs: NOW - 4 * MS }).toNs).toBe(11 * MS)
    // Its wake long past: no pacing.
    expect(idleReach({ ...NO_WAITS, overflowWakeNs: NOW - WAIT_STALE_NS - 1 }, STRETCH).toNs).toBe(11 * MS)
  })

  it('a timekeeper that fired lately (a thread it woke may not have run yet) is worth every thread’s state, for as long as a waiter may wait for a CPU', () => {
    expect(firedLately(NO_WAITS, NOW)).toBe(false)
    expect(firedLately({ ...NO_WAITS, firedNs: NOW - 1_000 }, NOW)).toBe(true)
    expect(firedLately({ ...NO_WAITS, firedNs: NOW - WAIT_STALE_NS }, NOW)).toBe(false)
  })
})

// The quantum driver's time accounting (sim-runtime/live/accounting.ts; docs/live.md, "Time
// accounting"), without cells: progress and steal from thread readings, slack, carry, deadlines.
import { describe, expect, it } from 'vitest'
import {
  anchorLeadNs,
  BUSY_SLACK_NS,
  cpuTimeCarry,
  freezeDeadlineNs,
  MIN_MARGIN_NS,
  nextFreezeMarginNs,
  nextWriteNsPerClock,
  preciseAfter,
  preciseDeadlineNs,
  PRECISE_SLACK_NS,
  PRECISE_WAIT_NS,
  settleSlice,
  slackNs,
  stealSinceNs,
  toleranceNs,
  UNKNOWN_SLACK_NS,
} from '../../sim-runtime/live/accounting.ts'
import type { TaskSchedstat } from '../../sim-runtime/live/proc.ts'

/** Thread readings: tid → [runNs, delayNs]. */
const readings = (threads: Record<number, [number, number]>) => new Map<number, TaskSchedstat>(Object.entries(threads).map(([tid, [runNs, delayNs]]) => [Number(tid), { runNs, delayNs }]))

const MS = 1_000_000

describe('settleSlice: a CpuTime cell after its freeze', () => {
  it('a thread busy from thaw to freeze progressed its CPU time, the steal is its wait', () => {
    const base = readings({ 1: [10 * MS, 1 * MS] })
    // 2 ms thawed, 1.9 ms up to the freeze request: 1.2 ms on a CPU, 0.8 ms waiting for one.
    const s = settleSlice(base, readings({ 1: [11.2 * MS, 1.8 * MS] }), 2 * MS, 1.9 * MS - BUSY_SLACK_NS)
    expect(s).toEqual({ stealNs: 0.8 * MS, ranNs: 1.2 * MS, busy: true })
  })

  it('a thread that slept progressed the stretch thawed minus its waits (its sleeps count)', () => {
    const base = readings({ 1: [10 * MS, 1 * MS] })
    // 0.1 ms on a CPU, 0.3 ms waiting, the rest asleep.
    const s = settleSlice(base, readings({ 1: [10.1 * MS, 1.3 * MS] }), 2 * MS, 1.9 * MS - BUSY_SLACK_NS)
    expect(s.busy).toBe(false)
    expect(s.ranNs).toBeCloseTo(1.7 * MS, 0)
    expect(s.stealNs).toBeCloseTo(0.3 * MS, 0)
  })

  it('progress is the min over threads, steal the max: two busy threads that each waited half the slice advance half of it', () => {
    const base = readings({ 1: [0, 0], 2: [0, 0] })
    const s = settleSlice(base, readings({ 1: [1 * MS, 1 * MS], 2: [1 * MS, 1 * MS] }), 2 * MS, 2 * MS - BUSY_SLACK_NS)
    expect(s).toEqual({ stealNs: 1 * MS, ranNs: 1 * MS, busy: true })
    // One of them delayed more: it sets the progress (the cell's virtual time is one).
    const t = settleSlice(base, readings({ 1: [1.5 * MS, 0.5 * MS], 2: [0.4 * MS, 1.6 * MS] }), 2 * MS, 2 * MS - BUSY_SLACK_NS)
    expect(t).toEqual({ stealNs: 1.6 * MS, ranNs: 0.4 * MS, busy: true })
  })

  it('a slice shorter than the busy slack tells nothing about sleeping: no thread counts as busy', () => {
    const base = readings({ 1: [0, 0] })
    const s = settleSlice(base, readings({ 1: [5_000, 1_000] }), 6_000, BUSY_SLACK_NS - 1)
    expect(s).toEqual({ stealNs: 1_000, ranNs: 5_000, busy: false })
  })

  it('a thread born in the slice counts from its birth; one that joined from outside is left out', () => {
    const base = readings({ 1: [0, 0] })
    // Thread 2 is new and fits in the slice: all of its wait is steal.
    const born = settleSlice(base, readings({ 1: [0.1 * MS, 0], 2: [0.2 * MS, 0.5 * MS] }), 2 * MS, 2 * MS - BUSY_SLACK_NS)
    expect(born.stealNs).toBe(0.5 * MS)
    expect(born.ranNs).toBe(1.5 * MS) // new threads never count as busy: thawed minus waits
    // Thread 3 ran and waited longer than the slice lasted: a process placed from outside, unknown share.
    const joined = settleSlice(base, readings({ 1: [0.1 * MS, 0], 3: [150 * MS, 40 * MS] }), 2 * MS, 2 * MS - BUSY_SLACK_NS)
    expect(joined.stealNs).toBe(0)
    expect(joined.ranNs).toBe(2 * MS)
  })

  it('a reused tid (smaller readings than its baseline) is a new thread', () => {
    const base = readings({ 1: [50 * MS, 9 * MS] })
    const s = settleSlice(base, readings({ 1: [0.3 * MS, 0.2 * MS] }), 1 * MS, 1 * MS - BUSY_SLACK_NS)
    expect(s).toEqual({ stealNs: 0.2 * MS, ranNs: 0.8 * MS, busy: false })
  })

  it('steal never exceeds the stretch thawed, progress is never negative', () => {
    const base = readings({ 1: [0, 0] })
    // Seen frozen late: the thread's wait (for the CPU it needed to freeze) outgrew the thawed stretch.
    const s = settleSlice(base, readings({ 1: [0, UNKNOWN_SLACK_NS] }), UNKNOWN_SLACK_NS - 10_000, 0)
    expect(s.stealNs).toBe(UNKNOWN_SLACK_NS - 10_000)
    expect(s.ranNs).toBe(0)
  })

  it('a cell without threads progressed the whole stretch', () => {
    expect(settleSlice(new Map(), new Map(), 3 * MS, 3 * MS)).toEqual({ stealNs: 0, ranNs: 3 * MS, busy: false })
  })
})

describe('stealSinceNs: steal so far, at a freeze deadline', () => {
  it('is the max over threads of their waits since the thaw', () => {
    const base = readings({ 1: [0, 1 * MS], 2: [0, 0] })
    expect(stealSinceNs(base, readings({ 1: [1 * MS, 1.2 * MS], 2: [1 * MS, 0.5 * MS] }), 2 * MS)).toBe(0.5 * MS)
  })

  it('counts a new thread whole if it fits since the thaw, not one that joined from outside', () => {
    const base = readings({ 1: [0, 0] })
    expect(stealSinceNs(base, readings({ 1: [0, 0], 2: [0.1 * MS, 0.3 * MS] }), 1 * MS)).toBe(0.3 * MS)
    expect(stealSinceNs(base, readings({ 1: [0, 0], 2: [5 * MS, 3 * MS] }), 1 * MS)).toBe(0)
  })
})

describe('slack, carry and deadlines', () => {
  it('the slack is twice the freeze margin in virtual ns, at least the tolerance, at most a quarter quantum', () => {
    expect(toleranceNs(100_000)).toBe(2_000)
    expect(toleranceNs(10 * MS)).toBe(100_000)
    expect(slackNs(toleranceNs(10 * MS), 200_000, 1, 10 * MS)).toBe(400_000)
    expect(slackNs(toleranceNs(10 * MS), 200_000, 0.5, 10 * MS)).toBe(200_000) // speed 2: half the virtual ns
    expect(slackNs(toleranceNs(10 * MS), 30_000, 1, 10 * MS)).toBe(100_000) // the tolerance
    expect(slackNs(toleranceNs(1 * MS), 200_000, 1, 1 * MS)).toBe(250_000) // a quarter quantum
  })

  it('carries what a CpuTime cell is owed within the slack, credits the rest (short), and carries CPU past the barrier', () => {
    expect(cpuTimeCarry(9_900, 10_000, 500, false)).toEqual({ carryNs: -100, shortNs: 0 })
    expect(cpuTimeCarry(9_000, 10_000, 500, false)).toEqual({ carryNs: -500, shortNs: 500 })
    expect(cpuTimeCarry(10_300, 10_000, 500, true)).toEqual({ carryNs: 300, shortNs: 0 })
    // Past the barrier asleep (progress from wall minus waits): not CPU, not carried.
    expect(cpuTimeCarry(10_300, 10_000, 500, false)).toEqual({ carryNs: 0, shortNs: 0 })
    expect(cpuTimeCarry(10_000, 10_000, 500, true)).toEqual({ carryNs: 0, shortNs: 0 })
  })

  it('a cell is frozen its need after the anchor, less the margin, which is at most a quarter of the need', () => {
    expect(freezeDeadlineNs(1_000, 2 * MS, 200_000)).toBe(1_000 + 1.8 * MS)
    expect(freezeDeadlineNs(1_000, 400_000, 200_000)).toBe(1_000 + 300_000)
    expect(freezeDeadlineNs(1_000, 0, 200_000)).toBe(1_000)
    expect(freezeDeadlineNs(1_000, -5_000, 200_000)).toBe(1_000) // ahead of the barrier: at once
  })

  it('the freeze margin follows 1.5 × the latency up, decays by 5 % per freeze, within [MIN_MARGIN_NS, a quarter of the wall budget]', () => {
    expect(nextFreezeMarginNs(300_000, 200_000, 10 * MS)).toBe(450_000)
    expect(nextFreezeMarginNs(10_000, 200_000, 10 * MS)).toBe(190_000)
    expect(nextFreezeMarginNs(10_000, 20_000, 10 * MS)).toBe(MIN_MARGIN_NS)
    expect(nextFreezeMarginNs(5 * MS, 200_000, 10 * MS)).toBe(2.5 * MS)
    expect(nextFreezeMarginNs(5 * MS, 200_000, 40_000)).toBe(MIN_MARGIN_NS) // the floor wins over a tiny budget
  })

  it('the anchor leaves 1.5 × the measured clock writes plus 20 µs; the measure is a moving average', () => {
    expect(anchorLeadNs(100_000, 2)).toBe(320_000)
    expect(anchorLeadNs(100_000, 0)).toBe(20_000)
    expect(nextWriteNsPerClock(100_000, 100_000, 2)).toBe(90_000)
  })

  it('a precise slice is frozen its need after the first reading, or at once when nobody read it in time', () => {
    expect(preciseDeadlineNs(5_000_000n, 6 * MS, 4 * MS, 100_000)).toBe(5_000_000 + 100_000 + PRECISE_SLACK_NS)
    expect(preciseDeadlineNs(undefined, 4 * MS + 100_000 + PRECISE_WAIT_NS, 4 * MS, 100_000)).toBeUndefined()
    expect(preciseDeadlineNs(undefined, 4 * MS + 100_001 + PRECISE_WAIT_NS, 4 * MS, 100_000)).toBe(4 * MS + 100_001 + PRECISE_WAIT_NS)
  })

  it('the next slice is precise after a reading waited, or once after an unread precise slice', () => {
    expect(preciseAfter(1, false, false)).toEqual({ next: true, carried: false })
    expect(preciseAfter(0, false, false)).toEqual({ next: false, carried: false })
    expect(preciseAfter(0, true, false)).toEqual({ next: true, carried: true })
    expect(preciseAfter(0, true, true)).toEqual({ next: false, carried: false })
    expect(preciseAfter(2, true, true)).toEqual({ next: true, carried: true })
  })
})

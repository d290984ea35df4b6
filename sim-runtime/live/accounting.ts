// The time accounting of the quantum driver (quantum.ts; docs/live.md, "Time accounting"): how far a
// cell got in a slice, what it is owed or got past the barrier, when it is frozen. Pure functions of
// the driver's readings and state, so that tests check them without cells.
import assert from 'node:assert/strict'
import type { TaskSchedstat } from './proc.ts'

/** Sleeps shorter than this do not stop a thread from counting as busy (settleSlice). */
export const BUSY_SLACK_NS = 10_000
/** A thread new to a cell counts from its birth if its run + wait times fit in the slice so far, give or take this. */
export const UNKNOWN_SLACK_NS = 50_000
/** The freeze margin never drops below this (wall ns). */
export const MIN_MARGIN_NS = 30_000
/** A precise slice whose clock nobody read within this (wall ns) after the thaw ends anyway. */
export const PRECISE_WAIT_NS = 200_000
/** A precise slice is frozen this long (wall ns) after its clock reached the barrier (readings wait there meanwhile). */
export const PRECISE_SLACK_NS = 2_000

/**
 * Steal so far in a slice: max over the cell's threads of the growth of run_delay since the thaw
 * (`base`, the readings at the thaw; threads new since then: all of theirs).
 */
export function stealSinceNs(base: ReadonlyMap<number, TaskSchedstat>, now: ReadonlyMap<number, TaskSchedstat>, sinceThawNs: number): number {
  let max = 0
  for (const [tid, st] of now) {
    const b = base.get(tid)
    let d: number
    if (b === undefined || st.delayNs < b.delayNs || st.runNs < b.runNs) {
      // Not in the baseline (or a reused tid): all of it, if it can have been born since the thaw.
      if (st.runNs + st.delayNs > sinceThawNs + UNKNOWN_SLACK_NS) continue
      d = st.delayNs
    } else {
      d = st.delayNs - b.delayNs
    }
    if (d > max) max = d
  }
  return max
}

/** A CpuTime cell's slice, settled after its freeze (settleSlice). */
export interface SettledSlice {
  /** Max over threads of the growth of run_delay: wall ns the cell waited for a CPU. */
  stealNs: number
  /** Wall ns the cell ran for: min over threads of what each got to run. */
  ranNs: number
  /** The thread that set ranNs was busy (its CPU time, not the stretch minus its waits). */
  busy: boolean
}

/**
 * After a CpuTime cell's freeze: its steal in the slice (max over threads of the growth of
 * run_delay) and the wall time it ran for, `ranNs` = min over threads of what each got to run:
 * - a thread that was runnable from the thaw to the freeze request (run + delay covers at least that
 *   stretch: it never slept) progressed exactly as long as it was on a CPU: its run time;
 * - any other thread: the stretch thawed minus its waits (its sleeps count as progress).
 * The first is exact; the second also counts, as progress, the time between the thread's real
 * freeze and the moment the driver saw the whole cell frozen (up to a few ms when a freeze waits
 * for a CPU). `base`: the readings at the thaw; `now`: after the freeze; `thawedNs`: thaw to seen
 * frozen; `busyNs`: thawed to the freeze request, less BUSY_SLACK_NS.
 */
export function settleSlice(base: ReadonlyMap<number, TaskSchedstat>, now: ReadonlyMap<number, TaskSchedstat>, thawedNs: number, busyNs: number): SettledSlice {
  assert(thawedNs >= 0, 'a slice is settled after its thaw')
  let steal = 0
  let ran = thawedNs
  let busy = false
  for (const [tid, st] of now) {
    const b = base.get(tid)
    const fresh = b === undefined || st.delayNs < b.delayNs || st.runNs < b.runNs // new thread (or a reused tid)
    // A thread that is not in the baseline and ran or waited longer than the slice lasted was not
    // born in it (a process that joined the cell from outside): its share of the slice is unknown.
    if (fresh && st.runNs + st.delayNs > thawedNs + UNKNOWN_SLACK_NS) continue
    const dDelay = fresh ? st.delayNs : st.delayNs - b.delayNs
    const dRun = fresh ? st.runNs : st.runNs - b.runNs
    if (dDelay > steal) steal = dDelay
    // A slice shorter than the slack tells nothing about sleeping (every thread would count as busy).
    const isBusy = !fresh && busyNs >= BUSY_SLACK_NS && dRun + dDelay >= busyNs
    const r = isBusy ? dRun : thawedNs - dDelay
    if (r < ran) {
      ran = r
      busy = isBusy
    }
  }
  return { stealNs: Math.min(steal, thawedNs), ranNs: Math.max(0, ran), busy }
}

/** How far a CpuTime cell's quantum may end short of the barrier without another slice: 1 % of the quantum, at least 2 µs. */
export function toleranceNs(virtualNs: number): number {
  return Math.max(2_000, virtualNs * 0.01)
}

/**
 * How far short of the barrier a CpuTime cell may end its quantum: the rest is carried into the
 * next one instead of costing another slice here. Twice the freeze margin (a cell frozen at its
 * deadline falls short by about the margin), at least the tolerance, at most a quarter quantum.
 */
export function slackNs(toleranceNs: number, freezeMarginNs: number, rate: number, virtualNs: number): number {
  return Math.max(toleranceNs, Math.min(2 * freezeMarginNs * rate, virtualNs / 4))
}

/**
 * A CpuTime cell at the end of its quantum, its progress at `progressNs`: what it carries into the
 * next quantum, and what it is credited without running for it (`shortNs`, beyond the slack
 * `owedMaxNs`, when capped). `busy`: its last slice's progress was a busy thread's CPU time.
 */
export function cpuTimeCarry(progressNs: number, barrierNs: number, owedMaxNs: number, busy: boolean): { carryNs: number; shortNs: number } {
  // Carried: CPU got past the barrier (> 0), or still owed (< 0, at most the slack; beyond that, when capped, credited).
  const shortNs = progressNs < barrierNs - owedMaxNs ? barrierNs - owedMaxNs - progressNs : 0
  // Past the barrier only counts when it was CPU (the slice's progress came from a busy
  // thread): an idle cell frozen late slept past it, and must not skip the next quantum.
  const carryNs = Math.max(progressNs > barrierNs && !busy ? 0 : progressNs - barrierNs, -owedMaxNs)
  return { carryNs, shortNs }
}

/**
 * When a cell is frozen: at the anchor (its thaw) plus the wall time it needs to reach the barrier,
 * less the freeze margin (a freeze takes that long to land), at most a quarter of the need.
 */
export function freezeDeadlineNs(anchorNs: number, needNs: number, freezeMarginNs: number): number {
  return anchorNs + Math.max(0, needNs - Math.min(freezeMarginNs, needNs / 4))
}

/**
 * The margin: the freeze latency, remembered as a slowly decaying maximum, never more than a
 * quarter of the quantum's wall budget. (An overrun caused by a late timer — the runtime did
 * not get a CPU — is not fixed by a larger margin; it is reported.)
 */
export function nextFreezeMarginNs(freezeNs: number, freezeMarginNs: number, quantumWallNs: number): number {
  return Math.min(Math.max(freezeNs * 1.5, freezeMarginNs * 0.95, MIN_MARGIN_NS), Math.max(MIN_MARGIN_NS, quantumWallNs / 4))
}

/** Wall ns from now to a slice's anchor: writing `clocks` clock files (measured per file, with room to spare), plus 20 µs. */
export function anchorLeadNs(writeNsPerClock: number, clocks: number): number {
  return Math.round(writeNsPerClock * clocks * 1.5 + 20_000)
}

/** The time one clock file takes to write, adapted from the last slice's `clocks` writes (`writtenNs` in all). */
export function nextWriteNsPerClock(writeNsPerClock: number, writtenNs: number, clocks: number): number {
  return 0.8 * writeNsPerClock + 0.2 * (writtenNs / clocks)
}

/**
 * A precise slice's freeze deadline: once its clock has had the slice's `needNs` from the first
 * reading (`startedAtNs`, the shim's), and PRECISE_SLACK_NS more; or now, nobody having read it
 * within PRECISE_WAIT_NS after the thaw; undefined while it may still be read.
 */
export function preciseDeadlineNs(startedAtNs: bigint | undefined, nowNs: number, thawDoneNs: number, needNs: number): number | undefined {
  if (startedAtNs !== undefined) return Number(startedAtNs) + needNs + PRECISE_SLACK_NS
  if (nowNs > thawDoneNs + needNs + PRECISE_WAIT_NS) return nowNs
  return undefined
}

/**
 * Whether a cell's next slice is precise, after a precise slice: precise again if a reading waited
 * (it resumes at the barrier), or, once, if the clock was not read (`carried`: the slice was itself
 * one carried over unread).
 */
export function preciseAfter(waited: number, unread: boolean, carried: boolean): { next: boolean; carried: boolean } {
  const next = waited > 0 || (unread && !carried)
  return { next, carried: unread && next }
}

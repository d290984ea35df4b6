// What a SimSweep does next, as a pure function of what is known of its trials. Trials are created
// in index order (point by point, seeds within a point), so "the first `created` trials" is the whole
// record of which trials exist or existed: a trial below that mark that is neither finished nor
// present was deleted before its results were read, and is never created again (the sweep retries
// nothing; a trial's own runPolicy does).
import assert from 'node:assert/strict'
import type { TrialRecord } from '../../sim-runtime/sweep/summary.ts'

export type TrialState = TrialRecord['status']

export interface SweepView {
  /** Grid points × seeds. */
  total: number
  /** Trials created so far: indices 0 … created − 1. */
  created: number
  /** Per trial index: Succeeded or Failed once its results are read, else NotRun. */
  states: readonly TrialState[]
  parallelism: number
  maxFailedTrials: number
}

export interface NextStep {
  /** Indices of the trials to create now, in order. */
  create: number[]
  /** Created, not finished. */
  unfinished: number
  succeeded: number
  failed: number
  /** Why no further trial starts (more than maxFailedTrials failed). */
  stopping?: string
  /** The sweep's end, once nothing is left to wait for. */
  finished?: 'Succeeded' | 'Failed'
}

/**
 * The high-water mark of created trials: the largest of what status said (succeeded + failed +
 * running), the trials present, and the trials already finished. Every source can lag; none can run
 * ahead of the truth, so the largest is right.
 */
export function createdMark(statusCount: number, present: Iterable<number>, states: readonly TrialState[]): number {
  let mark = statusCount
  for (const i of present) mark = Math.max(mark, i + 1)
  states.forEach((s, i) => {
    if (s !== 'NotRun') mark = Math.max(mark, i + 1)
  })
  assert(mark <= states.length, `created mark ${mark} is past the ${states.length} trials`)
  return mark
}

export function nextStep(v: SweepView): NextStep {
  assert(v.states.length === v.total, `${v.states.length} trial states for ${v.total} trials`)
  assert(v.created >= 0 && v.created <= v.total, `created ${v.created} of ${v.total}`)
  assert(Number.isInteger(v.parallelism) && v.parallelism >= 1, `parallelism ${v.parallelism}`)
  let succeeded = 0
  let failed = 0
  let unfinished = 0
  v.states.forEach((s, i) => {
    if (s === 'Succeeded') succeeded++
    else if (s === 'Failed') failed++
    else if (i < v.created) unfinished++
  })
  const out: NextStep = { create: [], unfinished, succeeded, failed }
  if (failed > v.maxFailedTrials) {
    out.stopping = `${failed} trial${failed === 1 ? '' : 's'} failed, more than maxFailedTrials (${v.maxFailedTrials}); no further trials are started`
    if (unfinished === 0) out.finished = 'Failed'
    return out
  }
  if (succeeded + failed === v.total) {
    out.finished = 'Succeeded'
    return out
  }
  const slots = Math.max(0, v.parallelism - unfinished)
  for (let i = v.created; i < v.total && out.create.length < slots; i++) out.create.push(i)
  assert(unfinished + out.create.length <= Math.max(v.parallelism, unfinished), 'never more than parallelism unfinished trials')
  return out
}

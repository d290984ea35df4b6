// Statistics of a sweep: per grid point and metric, the mean over its seeds and a 95 % confidence
// interval of that mean (Student t with n − 1 degrees of freedom: the seeds are independent
// replications, their number small); the best point by the objective; and which points' intervals
// do not overlap the best point's, i.e. differ from it by more than the noise of the seeds shows.
import tQuantile from '@stdlib/stats-base-dists-t-quantile'

export const CONFIDENCE = 0.95

export interface Summary {
  /** Values summarised (trials that reported the metric). */
  n: number
  mean: number | null
  /** Sample standard deviation (n − 1), n ≥ 2. */
  sd: number | null
  /** The confidence interval of the mean, n ≥ 2. */
  ciLow: number | null
  ciHigh: number | null
}

export function summarize(xs: readonly number[]): Summary {
  const n = xs.length
  if (n === 0) return { n, mean: null, sd: null, ciLow: null, ciHigh: null }
  const mean = xs.reduce((a, b) => a + b, 0) / n
  if (n === 1) return { n, mean, sd: null, ciLow: null, ciHigh: null }
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1))
  const half = tQuantile(1 - (1 - CONFIDENCE) / 2, n - 1) * (sd / Math.sqrt(n))
  if (!Number.isFinite(half)) throw new Error(`confidence interval of ${n} values is not finite`)
  return { n, mean, sd, ciLow: mean - half, ciHigh: mean + half }
}

/** Index of the best mean by the goal (the first of equals); undefined when no point has one. */
export function bestIndex(means: readonly (number | null)[], goal: 'Minimize' | 'Maximize'): number | undefined {
  let best: number | undefined
  means.forEach((m, i) => {
    if (m === null) return
    const b = best === undefined ? null : means[best]!
    if (b === null || (goal === 'Minimize' ? m < b : m > b)) best = i
  })
  return best
}

/**
 * Whether a point's interval lies wholly apart from the best point's: known only when both have
 * intervals (n ≥ 2); undefined otherwise.
 */
export function distinctFrom(a: Summary, best: Summary): boolean | undefined {
  if (a.ciLow === null || a.ciHigh === null || best.ciLow === null || best.ciHigh === null) return undefined
  return a.ciHigh < best.ciLow || a.ciLow > best.ciHigh
}

// The results of a host group: its replicas' component results merged into one record per
// component, as if one host had carried them all. Histogram summaries merge exactly (their buckets
// add: the group's percentiles are those of the union of samples); counters add; fields that say a
// maximum, a minimum or a utilisation keep the maximum, the minimum or the mean; anything else (a
// string, a pid, a list) is kept when every replica agrees and left out when they differ. Beside
// each number, `perReplica` gives its spread over the replicas (count, min, max, sum), so that a
// replica's extreme (a SimSweep's Max of p99) needs no per-host results.
//
// Replicas merge in plan order, so the result does not depend on which runtime carried which host.
import { round } from '../components/component.ts'
import { Histogram, type HistogramBuckets } from '../engine/histogram.ts'
import { canonicalJson } from './results.ts'

/** A histogram summary in group results: the summary of the merged histogram, and its buckets. */
export type MergedHistogram = ReturnType<Histogram['summary']> & { histogram: HistogramBuckets }

/** Spread of one number over the replicas that report it. */
export interface ReplicaSpread {
  n: number
  min: number
  max: number
  sum: number
}

type Rule = 'sum' | 'max' | 'min' | 'mean' | 'same'

/** Numbers that name a thing, not an amount: kept when equal, else left out. */
const SAME = new Set(['pid', 'exitCode', 'exitSignal', 'port'])

/** How the replicas' values of a number named `key` combine. */
export function numberRule(key: string): Rule {
  if (SAME.has(key)) return 'same'
  if (key === 'max' || /^max[A-Z]|Max(Ns)?$|At(Ns)?$/.test(key)) return 'max'
  if (key === 'min' || /^min[A-Z]|Min(Ns)?$/.test(key)) return 'min'
  if (key === 'utilization' || /(Ratio|Fraction|Utilization)$/.test(key)) return 'mean'
  return 'sum'
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * One component's results over a group's replicas (`replicas[i]`: replica i's results, in plan
 * order; `histograms[i]`: the buckets of its histogram summaries by dotted path).
 */
export function mergeComponent(replicas: Record<string, unknown>[], histograms: (Record<string, HistogramBuckets> | undefined)[]): Record<string, unknown> {
  const merged = mergeObject(replicas, '', histograms) ?? {}
  if (replicas.length > 1) merged.perReplica = spreadOf(replicas)
  return merged
}

function mergeObject(values: Record<string, unknown>[], path: string, histograms: (Record<string, HistogramBuckets> | undefined)[]): Record<string, unknown> | undefined {
  const keys = new Set<string>()
  for (const v of values) for (const k of Object.keys(v)) keys.add(k)
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const p = path ? `${path}.${k}` : k
    const present = values.map((v) => v[k]).filter((x) => x !== undefined)
    const buckets = histograms.map((h) => h?.[p]).filter((b): b is HistogramBuckets => b !== undefined)
    const m = buckets.length ? mergeHistograms(buckets) : mergeValues(k, present, p, histograms)
    if (m !== undefined) out[k] = m
  }
  return out
}

function mergeValues(key: string, values: unknown[], path: string, histograms: (Record<string, HistogramBuckets> | undefined)[]): unknown {
  if (values.every((v) => typeof v === 'number')) return mergeNumbers(numberRule(key), values as number[])
  if (values.every(isPlainObject)) return mergeObject(values, path, histograms)
  const first = canonicalJson(values[0])
  return values.every((v) => canonicalJson(v) === first) ? values[0] : undefined
}

function mergeNumbers(rule: Rule, xs: number[]): number | undefined {
  switch (rule) {
    case 'max':
      return Math.max(...xs)
    case 'min':
      return Math.min(...xs)
    case 'same':
      return xs.every((x) => x === xs[0]) ? xs[0] : undefined
    case 'mean':
      return round(xs.reduce((a, b) => a + b, 0) / xs.length)
    case 'sum': {
      const s = xs.reduce((a, b) => a + b, 0)
      return Number.isInteger(s) ? s : round(s)
    }
  }
}

/** The exact merge of histograms: the summary of one histogram holding every sample, and its buckets. */
export function mergeHistograms(buckets: HistogramBuckets[]): MergedHistogram {
  const h = new Histogram()
  for (const b of buckets) h.merge(Histogram.fromBuckets(b))
  return { ...h.summary(), histogram: h.buckets() }
}

/** Every number in the replicas' results, by dotted path: its spread over the replicas. */
function spreadOf(replicas: Record<string, unknown>[]): Record<string, ReplicaSpread> {
  const out: Record<string, ReplicaSpread> = {}
  const visit = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      const s = out[path]
      if (!s) out[path] = { n: 1, min: v, max: v, sum: v }
      else {
        s.n++
        s.min = Math.min(s.min, v)
        s.max = Math.max(s.max, v)
        s.sum += v
      }
    } else if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) visit(x, path ? `${path}.${k}` : k)
    }
  }
  for (const r of replicas) visit(r, '')
  for (const s of Object.values(out)) if (!Number.isInteger(s.sum)) s.sum = round(s.sum)
  return out
}

// A sweep's results from its trials: results.json (the grid, every trial, one row per point with
// each metric's mean and confidence interval, the best point) and results.csv (one row per trial).
// The point rows have the shape of SimSweep status.points, so the operator can write them as they are.
import assert from 'node:assert/strict'
import { stringify } from 'csv-stringify/sync'
import { API_VERSION, type SweepMetric, type SweepPointStatus } from '../api/schema.ts'
import { formatValue, type Grid, type Trial } from './grid.ts'
import { bestIndex, distinctFrom, summarize, type Summary } from './stats.ts'

export const PERCENTILES = ['p50Ns', 'p90Ns', 'p99Ns', 'p999Ns', 'maxNs'] as const
export type Percentile = (typeof PERCENTILES)[number]

/** What a sweep keeps of one trial. */
export interface TrialRecord extends Trial {
  status: 'Succeeded' | 'Failed' | 'NotRun'
  /** Its results were on disk from an earlier run with the same spec hash. */
  reused: boolean
  specHash: string
  digest?: string
  /** In spec.metrics order; null where the trial did not report the metric. */
  metrics: (number | null)[]
  /** Latency percentiles of the report's latency component, ns. */
  latency?: Record<Percentile, number | null>
  wallSeconds?: number
  message?: string
}

export interface PointRow extends SweepPointStatus {
  trialsFailed: number
  /** Per percentile of the latency component: the summary over the point's seeds. */
  latency?: Record<Percentile, Summary>
}

export interface SweepResults {
  apiVersion: string
  kind: 'SimSweepResults'
  sweep: string
  phase: 'Succeeded' | 'Failed'
  message?: string
  parameters: { name: string; path: string; values: unknown[] }[]
  seeds: number
  baseSeed: number
  metrics: SweepMetric[]
  objective: Grid['objective']
  /** The component whose latency percentiles the report plots, and its field. */
  latency?: { component: string; field: string }
  confidence: number
  trials: TrialRecord[]
  points: PointRow[]
  best?: PointRow
}

/** One row per grid point: each metric summarised over the point's succeeded trials; the best by the objective. */
export function pointRows(grid: Grid, records: readonly TrialRecord[]): { rows: PointRow[]; best: number | undefined } {
  const byPoint = Array.from({ length: grid.points }, () => [] as TrialRecord[])
  for (const r of records) {
    assert(r.point < grid.points && r.metrics.length === grid.metrics.length, `trial ${r.name} does not belong to this grid`)
    byPoint[r.point]!.push(r)
  }
  const summaries = byPoint.map((rs) => {
    const ok = rs.filter((r) => r.status === 'Succeeded')
    return grid.metrics.map((_, m) => summarize(ok.map((r) => r.metrics[m]).filter((v): v is number => v !== null)))
  })
  const objective = grid.metrics.findIndex((m) => m.name === grid.objective.metric)
  if (objective < 0) throw new Error(`objective ${grid.objective.metric} is not a metric`)
  const best = bestIndex(summaries.map((s) => s[objective]!.mean), grid.objective.goal)
  const rows = byPoint.map((rs, p): PointRow => {
    const ok = rs.filter((r) => r.status === 'Succeeded')
    const metrics = grid.metrics.map((m, i) => {
      const s = summaries[p]![i]!
      const distinct = best === undefined ? undefined : distinctFrom(s, summaries[best]![i]!)
      return { name: m.name, n: s.n, ...defined({ mean: s.mean, ciLow: s.ciLow, ciHigh: s.ciHigh }), ...(distinct === undefined ? {} : { distinctFromBest: distinct }) }
    })
    const latency = ok.some((r) => r.latency) ? latencySummary(ok) : undefined
    return { point: p, values: rs[0]?.values ?? [], trialsDone: ok.length, trialsFailed: rs.filter((r) => r.status === 'Failed').length, metrics, ...(latency ? { latency } : {}) }
  })
  return { rows, best }
}

function latencySummary(records: readonly TrialRecord[]): Record<Percentile, Summary> {
  const out = {} as Record<Percentile, Summary>
  for (const p of PERCENTILES) out[p] = summarize(records.map((r) => r.latency?.[p] ?? null).filter((v): v is number => v !== null))
  return out
}

/** The fields of `o` that are not null. */
function defined<T extends Record<string, number | null>>(o: T): Partial<Record<keyof T, number>> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) as Partial<Record<keyof T, number>>
}

export function sweepResults(grid: Grid, records: readonly TrialRecord[], outcome: { phase: 'Succeeded' | 'Failed'; message?: string; latency?: SweepResults['latency'] }): SweepResults {
  const { rows, best } = pointRows(grid, records)
  return {
    apiVersion: API_VERSION,
    kind: 'SimSweepResults',
    sweep: grid.sweep,
    phase: outcome.phase,
    ...(outcome.message ? { message: outcome.message } : {}),
    parameters: grid.parameters.map((p) => ({ name: p.name, path: p.path, values: p.values })),
    seeds: grid.seeds,
    baseSeed: grid.baseSeed,
    metrics: grid.metrics,
    objective: grid.objective,
    ...(outcome.latency ? { latency: outcome.latency } : {}),
    confidence: 0.95,
    trials: [...records],
    points: rows,
    ...(best === undefined ? {} : { best: rows[best] }),
  }
}

/** results.csv: trial, point, seed, each parameter, each metric, status, digest; one row per trial. */
export function resultsCsv(grid: Grid, records: readonly TrialRecord[]): string {
  const header = ['trial', 'point', 'seed', ...grid.parameters.map((p) => p.name), ...grid.metrics.map((m) => m.name), 'status', 'digest']
  const rows = records.map((r) => [r.name, r.point, r.seed, ...r.values.map(formatValue), ...r.metrics.map((v) => (v === null ? '' : v)), r.status, r.digest ?? ''])
  return stringify([header, ...rows])
}

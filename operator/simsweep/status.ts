// A SimSweep's status: KEP-1623 conditions read right by kubectl wait, kstatus (Flux) and Argo CD
// (charts/livesim/argocd/health.lua), and the table of points bounded to what an object can carry.
//   in progress → Reconciling=True, Progressing=True;  Succeeded → Ready=True, Complete=True;
//   Failed → Stalled=True, Failed=True, Ready=False.
import type { SweepPointStatus } from '../../sim-runtime/api/schema.ts'
import { SWEEP_LIMITS } from '../../sim-runtime/api/schema.ts'
import { describePoint, type Grid } from '../../sim-runtime/sweep/grid.ts'
import type { PointRow } from '../../sim-runtime/sweep/summary.ts'
import type { Condition } from '../simcluster/status.ts'
import type { SweepPhase } from './results.ts'

export interface SweepStatus {
  observedGeneration?: number
  phase?: SweepPhase
  message?: string
  startTime?: string
  completionTime?: string
  trials?: { total: number; succeeded: number; failed: number; running: number }
  trialsSummary?: string
  best?: SweepPointStatus
  bestSummary?: string
  points?: SweepPointStatus[]
  results?: { configMap: string }
  conditions?: Condition[]
}

/**
 * Bytes of status.points at most: the rows are rewritten as trials finish, and the object (spec
 * and status) must stay well under the API server's 1.5 MiB; every row is in the results ConfigMap.
 */
export const STATUS_POINTS_BYTES_MAX = 128 * 1024

const ORDER = ['Ready', 'Reconciling', 'Progressing', 'Stalled', 'Complete', 'Failed']

function setCondition(conds: Condition[], c: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const prev = conds.find((x) => x.type === c.type)
  const changed = !prev || prev.status !== c.status
  const out = conds.filter((x) => x.type !== c.type)
  out.push({ ...c, lastTransitionTime: changed ? now.toISOString().replace(/\.\d+Z$/, 'Z') : prev.lastTransitionTime })
  return out.sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type))
}

/** Every condition from the phase, so they never disagree with each other. */
export function sweepConditions(st: SweepStatus, generation: number, reason: string, message: string, now: Date): Condition[] {
  const phase = st.phase ?? 'Pending'
  const g = { observedGeneration: generation }
  const going = phase === 'Pending' || phase === 'Running'
  const ok = phase === 'Succeeded'
  const bad = phase === 'Failed'
  let c = st.conditions ?? []
  c = setCondition(c, { type: 'Ready', status: ok ? 'True' : 'False', reason: ok ? 'Succeeded' : reason, message, ...g }, now)
  c = setCondition(c, { type: 'Reconciling', status: going ? 'True' : 'False', reason: going ? reason : phase, message: going ? message : '', ...g }, now)
  c = setCondition(c, { type: 'Progressing', status: going ? 'True' : 'False', reason: going ? reason : phase, message: going ? message : '', ...g }, now)
  c = setCondition(c, { type: 'Stalled', status: bad ? 'True' : 'False', reason: bad ? reason : 'NotStalled', message: bad ? message : '', ...g }, now)
  c = setCondition(c, { type: 'Complete', status: ok ? 'True' : 'False', reason: ok ? 'SweepSucceeded' : 'NotComplete', message: ok ? message : '', ...g }, now)
  c = setCondition(c, { type: 'Failed', status: bad ? 'True' : 'False', reason: bad ? reason : 'NotFailed', message: bad ? message : '', ...g }, now)
  return c
}

/** A point row as status.points has it (SweepPointStatus: no failure count, no latency percentiles). */
export function statusRow(r: PointRow): SweepPointStatus {
  return { point: r.point, values: r.values, trialsDone: r.trialsDone, metrics: r.metrics }
}

/** The first rows that fit in SWEEP_LIMITS.statusPointsMax rows and STATUS_POINTS_BYTES_MAX bytes. */
export function statusRows(rows: readonly PointRow[]): SweepPointStatus[] {
  const out: SweepPointStatus[] = []
  let bytes = 2
  for (const r of rows) {
    if (out.length >= SWEEP_LIMITS.statusPointsMax) break
    const row = statusRow(r)
    bytes += Buffer.byteLength(JSON.stringify(row)) + 1
    if (bytes > STATUS_POINTS_BYTES_MAX) break
    out.push(row)
  }
  return out
}

/** "p3 (workers=4, latency=50us): p99 1.234e+6", for the Best printer column. */
export function bestSummary(grid: Grid, best: PointRow): string {
  const m = best.metrics.find((x) => x.name === grid.objective.metric)
  const mean = m?.mean === undefined ? '' : `: ${grid.objective.metric} ${formatNumber(m.mean)}`
  return `p${best.point} (${describePoint(grid.parameters, best.values)})${mean}`.slice(0, 200)
}

function formatNumber(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e7) return String(x)
  return Math.abs(x) >= 1e7 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(4) : String(Number(x.toPrecision(6)))
}

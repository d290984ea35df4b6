// Status helpers: KEP-1623 conditions (lastTransitionTime changes only when status changes) and
// the kstatus view of a SimCluster, so that kubectl wait, Flux and Argo CD read it right:
// in progress → Reconciling=True; Succeeded → Ready=True, Complete=True; Failed → Stalled=True,
// Failed=True, Ready=False.
import type { StragglerStatus } from '../../sim-runtime/api/schema.ts'

export interface Condition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  observedGeneration?: number
  lastTransitionTime: string
  reason: string
  message: string
}

export type Phase = 'Pending' | 'Scheduling' | 'Running' | 'Succeeded' | 'Failed'

export interface ClusterStatus {
  observedGeneration?: number
  phase?: Phase
  attempt?: number
  startTime?: string
  completionTime?: string
  leader?: string
  virtualTime?: string
  virtualTimeNs?: number
  progress?: string
  slowdown?: string
  message?: string
  hosts?: { ready: number; total: number }
  hostsSummary?: string
  stragglers?: StragglerStatus[]
  placement?: { runtimes: number; hostsPerRuntimeMax: number; cutLatency: string }
  results?: { configMap: string; digest: string; barriers: number; causalityViolations: number; wallSeconds: number; liveCellMode?: string }
  conditions?: Condition[]
}

export function setCondition(conds: Condition[], c: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const out = conds.filter((x) => x.type !== c.type)
  const prev = conds.find((x) => x.type === c.type)
  const changed = !prev || prev.status !== c.status
  out.push({ ...c, lastTransitionTime: changed ? now.toISOString().replace(/\.\d+Z$/, 'Z') : prev.lastTransitionTime })
  return out.sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type))
}

const ORDER = ['Ready', 'Reconciling', 'Stalled', 'HostsReady', 'Complete', 'Failed']

/** Set every condition from the phase, so they can never disagree with each other. */
export function conditionsFor(
  status: ClusterStatus,
  generation: number,
  reason: string,
  message: string,
  hostsReady: boolean,
  now: Date,
): Condition[] {
  let c = status.conditions ?? []
  const phase = status.phase ?? 'Pending'
  const g = { observedGeneration: generation }
  const inProgress = phase === 'Pending' || phase === 'Scheduling' || phase === 'Running'
  c = setCondition(c, { type: 'Ready', status: phase === 'Succeeded' ? 'True' : 'False', reason: phase === 'Succeeded' ? 'Succeeded' : reason, message, ...g }, now)
  c = setCondition(c, { type: 'Reconciling', status: inProgress ? 'True' : 'False', reason: inProgress ? reason : phase, message: inProgress ? message : '', ...g }, now)
  c = setCondition(c, { type: 'Stalled', status: phase === 'Failed' ? 'True' : 'False', reason: phase === 'Failed' ? reason : 'NotStalled', message: phase === 'Failed' ? message : '', ...g }, now)
  c = setCondition(
    c,
    { type: 'HostsReady', status: hostsReady ? 'True' : 'False', reason: hostsReady ? 'AllHostsRegistered' : 'WaitingForHosts', message: hostsReady ? 'every host registered with the leader' : 'waiting for every host to register with the leader', ...g },
    now,
  )
  c = setCondition(c, { type: 'Complete', status: phase === 'Succeeded' ? 'True' : 'False', reason: phase === 'Succeeded' ? 'RunSucceeded' : 'NotComplete', message: phase === 'Succeeded' ? message : '', ...g }, now)
  c = setCondition(c, { type: 'Failed', status: phase === 'Failed' ? 'True' : 'False', reason: phase === 'Failed' ? reason : 'NotFailed', message: phase === 'Failed' ? message : '', ...g }, now)
  return c
}

export function isTerminal(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed'
}

/** Fields that change continuously while a run goes: their writes are rate-limited. */
export const PROGRESS_FIELDS = ['virtualTime', 'virtualTimeNs', 'progress', 'slowdown', 'hosts', 'hostsSummary', 'stragglers'] as const

export function onlyProgressDiffers(a: ClusterStatus, b: ClusterStatus): boolean {
  const strip = (s: ClusterStatus) => {
    const c: Record<string, unknown> = { ...s }
    for (const f of PROGRESS_FIELDS) delete c[f]
    return JSON.stringify(c)
  }
  return strip(a) === strip(b)
}

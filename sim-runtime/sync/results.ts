// The results document (ARCHITECTURE.md "Results") and its digest: SHA-256 of the canonical JSON
// (keys sorted, no whitespace) of everything except `wall`, `digest` and `sync.barriers`.
// barriers is left out because it describes how the run was stepped, not what it simulated:
// fixed stepping and skip-ahead simulate the same thing in different numbers of barriers.
import { createHash } from 'node:crypto'
import type { RunPlan } from '../api/plan.ts'
import { API_VERSION } from '../api/schema.ts'
import type { HostResults } from '../engine/group.ts'

export interface SimResults {
  apiVersion: string
  kind: 'SimResults'
  cluster: string
  seed: number
  endTimeNs: number
  virtualTimeNs: number
  sync: {
    mode: 'Conservative' | 'Slack'
    lookaheadNs: number | null
    barriers: number
    causalityViolations: number
    latenessTotalNs: number
    latenessMaxNs: number
  }
  wall: { seconds: number; slowdown: number; runtimes: number }
  hosts: Record<string, { events: number; components: Record<string, unknown>; live?: Record<string, unknown> }>
  links: Record<string, { messages: number; bytes: number; drops: number }>
  /** Runs with live components: the cell mode and totals; per host details in hosts[*].live. */
  live?: { cellMode: string; cellModeWhy: string; hosts: number; cpuTimeNs: number; stolenNs: number; overrunMaxNs: number }
  digest: string
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  const parts: string[] = []
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k]
    if (v === undefined) continue
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`)
  }
  return `{${parts.join(',')}}`
}

export function digestOf(results: Omit<SimResults, 'digest'> | SimResults): string {
  const { wall: _wall, digest: _digest, ...rest } = results as SimResults
  const { barriers: _barriers, ...sync } = rest.sync
  return `sha256:${createHash('sha256').update(canonicalJson({ ...rest, sync })).digest('hex')}`
}

export function assembleResults(
  plan: RunPlan,
  perHost: Record<string, HostResults>,
  barriers: number,
  virtualTimeNs: number,
  wallSeconds: number,
  runtimes: number,
): SimResults {
  const hosts: SimResults['hosts'] = {}
  const links: SimResults['links'] = {}
  let violations = 0
  let latenessTotalNs = 0
  let latenessMaxNs = 0
  let live: SimResults['live']
  for (const h of plan.hosts) {
    const r = perHost[h.name]
    if (!r) throw new Error(`no results for host ${h.name}`)
    hosts[h.name] = r.live ? { events: r.events, components: r.components, live: r.live } : { events: r.events, components: r.components }
    if (r.live) {
      live ??= { cellMode: String(r.live.cellMode), cellModeWhy: String(r.live.cellModeWhy ?? ''), hosts: 0, cpuTimeNs: 0, stolenNs: 0, overrunMaxNs: 0 }
      live.hosts++
      live.cpuTimeNs += Number(r.live.cpuTimeNs ?? 0)
      live.stolenNs += Number(r.live.stolenNs ?? 0)
      live.overrunMaxNs = Math.max(live.overrunMaxNs, Number(r.live.overrunMaxNs ?? 0))
      if (live.cellMode !== r.live.cellMode) live.cellMode = 'mixed'
    }
    Object.assign(links, r.links)
    violations += r.causalityViolations
    latenessTotalNs += r.latenessSumNs
    latenessMaxNs = Math.max(latenessMaxNs, r.latenessMaxNs)
  }
  const base = {
    apiVersion: API_VERSION,
    kind: 'SimResults' as const,
    cluster: plan.cluster,
    seed: plan.seed,
    endTimeNs: plan.endTimeNs,
    virtualTimeNs,
    sync: {
      mode: plan.mode,
      lookaheadNs: Number.isFinite(plan.lookaheadNs) ? plan.lookaheadNs : null,
      barriers,
      causalityViolations: violations,
      latenessTotalNs,
      latenessMaxNs,
    },
    wall: {
      seconds: Math.round(wallSeconds * 1000) / 1000,
      slowdown: Math.round((wallSeconds / (virtualTimeNs / 1e9)) * 1000) / 1000,
      runtimes,
    },
    hosts,
    links,
    ...(live ? { live } : {}),
  }
  return { ...base, digest: digestOf(base) }
}

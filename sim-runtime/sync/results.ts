// The results document (ARCHITECTURE.md "Results") and its digest: SHA-256 of the canonical JSON
// (keys sorted, no whitespace) of everything except `wall`, `profile`, `digest` and `sync.barriers`.
// barriers is left out because it describes how the run was stepped, not what it simulated:
// fixed stepping and skip-ahead simulate the same thing in different numbers of barriers; wall and
// profile are wall-clock measurements, different at every run.
//
// Its size is bounded by the groups, not the hosts (plan.results): per host group, the merged
// results of its components (group-results.ts); per pair of groups, link totals; the outliers (the
// replicas of each group with the highest p99, the links with the most drops). With detail Hosts it
// also holds every host and every link; with Groups `hosts` and `links` are empty.
import { createHash } from 'node:crypto'
import type { RunPlan } from '../api/plan.ts'
import { API_VERSION } from '../api/schema.ts'
import type { HostResults } from '../engine/group.ts'
import type { LinkCounters, LinkDrop } from '../engine/host.ts'
import { mergeComponent } from './group-results.ts'
import { STRAGGLERS_SHOWN, type RunProfile, type RuntimeProfile } from './profile.ts'

export interface GroupResults {
  replicas: number
  events: number
  /** Each component's results merged over the replicas (group-results.ts). */
  components: Record<string, Record<string, unknown>>
}

/** The replicas of a group whose component has the highest p99 of its latency field. */
export interface P99Outliers {
  /** The histogram summary ranked: latency (a Client), response (a Server, a live program), else the first. */
  field: string
  hosts: { host: string; p99Ns: number; count: number }[]
}

export interface Outliers {
  /** The most entries of each list (spec.results.outliers). */
  perList: number
  /** "group/component" → its slowest replicas, for groups of more than one replica. */
  p99: Record<string, P99Outliers>
  /** The links with the most drops (only links that dropped any), most first. */
  drops: LinkDrop[]
}

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
  /** Hosts: `hosts` and `links` hold every host and link; Groups: they are empty. */
  detail: 'Groups' | 'Hosts'
  groups: Record<string, GroupResults>
  /** "group->group" → the links between their hosts that carried traffic, and their totals. */
  groupLinks: Record<string, LinkCounters & { links: number }>
  outliers: Outliers
  hosts: Record<string, { events: number; components: Record<string, unknown>; live?: Record<string, unknown> }>
  links: Record<string, LinkCounters>
  /** Runs with live components: the cell mode and totals; per host details in hosts[*].live. */
  live?: { cellMode: string; cellModeWhy: string; hosts: number; cpuTimeNs: number; stolenNs: number; overrunMaxNs: number }
  /** Who held the barriers up (profile.ts): wall time, outside the digest. */
  profile?: RunProfile
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

/** Widest object or list of plain values that resultsJson writes on one line. */
const INLINE_MAX = 100

/**
 * The results as a file holds them: JSON indented by two spaces, except that an object or a list
 * of plain values that fits in INLINE_MAX characters stays on one line (a link's counters, a
 * replica spread), which keeps a thousand of them readable.
 */
export function resultsJson(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  const entries: [string | undefined, unknown][] = Array.isArray(value)
    ? value.map((v) => [undefined, v])
    : Object.entries(value).filter(([, v]) => v !== undefined)
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}']
  if (entries.length === 0) return `${open}${close}`
  if (entries.every(([, v]) => v === null || typeof v !== 'object')) {
    const line = JSON.stringify(value)
    if (line.length <= INLINE_MAX) return line
  }
  const inner = `${indent}  `
  const lines = entries.map(([k, v]) => inner + (k === undefined ? '' : `${JSON.stringify(k)}: `) + resultsJson(v, inner))
  return `${open}\n${lines.join(',\n')}\n${indent}${close}`
}

export function digestOf(results: Omit<SimResults, 'digest'> | SimResults): string {
  const { wall: _wall, digest: _digest, profile: _profile, ...rest } = results as SimResults
  const { barriers: _barriers, ...sync } = rest.sync
  return `sha256:${createHash('sha256').update(canonicalJson({ ...rest, sync })).digest('hex')}`
}

/** What the leader knows of the run besides the hosts' results. */
export interface RunFacts {
  barriers: number
  virtualTimeNs: number
  wallSeconds: number
  /** Runtime processes: 0 when the hosts ran in the leader's process. */
  runtimes: number
  /** The runtimes' profile (profile.ts), when measured. */
  profile?: RuntimeProfile[]
  /** Per host: its share of the windows' wall time, ns (HostGroup.busyNs). */
  hostBusyNs?: Record<string, number>
}

export function assembleResults(plan: RunPlan, perHost: Record<string, HostResults>, facts: RunFacts): SimResults {
  const ordered = plan.hosts.map((h) => {
    const r = perHost[h.name]
    if (!r) throw new Error(`no results for host ${h.name}`)
    return r
  })
  const detail = plan.results.detail === 'Hosts'
  const base = {
    apiVersion: API_VERSION,
    kind: 'SimResults' as const,
    cluster: plan.cluster,
    seed: plan.seed,
    endTimeNs: plan.endTimeNs,
    virtualTimeNs: facts.virtualTimeNs,
    sync: syncOf(plan, ordered, facts.barriers),
    wall: {
      seconds: Math.round(facts.wallSeconds * 1000) / 1000,
      slowdown: Math.round((facts.wallSeconds / (facts.virtualTimeNs / 1e9)) * 1000) / 1000,
      runtimes: facts.runtimes,
    },
    detail: plan.results.detail,
    groups: groupsOf(plan, ordered),
    groupLinks: groupLinksOf(plan, ordered),
    outliers: outliersOf(plan, ordered),
    hosts: detail ? hostsOf(plan, ordered) : {},
    links: detail ? Object.assign({}, ...ordered.map((r) => r.links)) : {},
    ...liveOf(ordered),
  }
  const profile = facts.profile ? { profile: profileOf(plan, ordered, facts.barriers, facts.profile, facts.hostBusyNs ?? {}) } : {}
  return { ...base, ...profile, digest: digestOf(base) }
}

function syncOf(plan: RunPlan, ordered: HostResults[], barriers: number): SimResults['sync'] {
  let causalityViolations = 0
  let latenessTotalNs = 0
  let latenessMaxNs = 0
  for (const r of ordered) {
    causalityViolations += r.causalityViolations
    latenessTotalNs += r.latenessSumNs
    latenessMaxNs = Math.max(latenessMaxNs, r.latenessMaxNs)
  }
  return { mode: plan.mode, lookaheadNs: Number.isFinite(plan.lookaheadNs) ? plan.lookaheadNs : null, barriers, causalityViolations, latenessTotalNs, latenessMaxNs }
}

function hostsOf(plan: RunPlan, ordered: HostResults[]): SimResults['hosts'] {
  const hosts: SimResults['hosts'] = {}
  ordered.forEach((r, i) => {
    hosts[plan.hosts[i]!.name] = r.live ? { events: r.events, components: r.components, live: r.live } : { events: r.events, components: r.components }
  })
  return hosts
}

function liveOf(ordered: HostResults[]): Pick<SimResults, 'live'> {
  let live: SimResults['live']
  for (const r of ordered) {
    if (!r.live) continue
    live ??= { cellMode: String(r.live.cellMode), cellModeWhy: String(r.live.cellModeWhy ?? ''), hosts: 0, cpuTimeNs: 0, stolenNs: 0, overrunMaxNs: 0 }
    live.hosts++
    live.cpuTimeNs += Number(r.live.cpuTimeNs ?? 0)
    live.stolenNs += Number(r.live.stolenNs ?? 0)
    live.overrunMaxNs = Math.max(live.overrunMaxNs, Number(r.live.overrunMaxNs ?? 0))
    if (live.cellMode !== r.live.cellMode) live.cellMode = 'mixed'
  }
  return live ? { live } : {}
}

function groupsOf(plan: RunPlan, ordered: HostResults[]): Record<string, GroupResults> {
  const groups: Record<string, GroupResults> = {}
  for (const [name, members] of plan.groups) {
    const replicas = members.map((i) => ordered[i]!)
    const components: GroupResults['components'] = {}
    for (const c of plan.hosts[members[0]!]!.components) {
      const values = replicas.map((r) => r.components[c.name] as Record<string, unknown>)
      components[c.name] = mergeComponent(values, replicas.map((r) => r.histograms[c.name]))
    }
    groups[name] = { replicas: members.length, events: replicas.reduce((n, r) => n + r.events, 0), components }
  }
  return groups
}

function groupLinksOf(plan: RunPlan, ordered: HostResults[]): SimResults['groupLinks'] {
  const out: SimResults['groupLinks'] = {}
  ordered.forEach((r, i) => {
    const from = plan.hosts[i]!.group
    for (const [to, l] of Object.entries(r.linkGroups)) {
      const g = (out[`${from}->${to}`] ??= { links: 0, messages: 0, bytes: 0, drops: 0 })
      g.links += l.links
      g.messages += l.messages
      g.bytes += l.bytes
      g.drops += l.drops
    }
  })
  return out
}

function outliersOf(plan: RunPlan, ordered: HostResults[]): Outliers {
  const k = plan.results.outliers
  const index = (name: string) => plan.hostIndex.get(name)!
  const drops = ordered
    .flatMap((r) => r.linkDrops)
    .sort((a, b) => b.drops - a.drops || index(a.from) - index(b.from) || index(a.to) - index(b.to))
    .slice(0, k)
  const p99: Outliers['p99'] = {}
  for (const [group, members] of plan.groups) {
    if (members.length < 2 || k === 0) continue
    for (const c of plan.hosts[members[0]!]!.components) {
      const field = latencyField(members.map((i) => ordered[i]!.histograms[c.name]))
      if (!field) continue
      const hosts = members
        .map((i) => ({ i, h: ordered[i]!.histograms[c.name]?.[field] }))
        .filter((x) => x.h !== undefined && x.h.count > 0)
        .map((x) => ({ i: x.i, p99Ns: summaryOf(ordered[x.i]!, c.name, field).p99Ns, count: x.h!.count }))
        .sort((a, b) => b.p99Ns - a.p99Ns || a.i - b.i)
        .slice(0, k)
      if (hosts.length) p99[`${group}/${c.name}`] = { field, hosts: hosts.map(({ i, p99Ns, count }) => ({ host: plan.hosts[i]!.name, p99Ns, count })) }
    }
  }
  return { perList: k, p99, drops }
}

/** The histogram field a component's latency is: latency, response, else the first there is. */
function latencyField(replicas: (Record<string, unknown> | undefined)[]): string | undefined {
  const fields = new Set(replicas.flatMap((h) => Object.keys(h ?? {})))
  if (fields.has('latency')) return 'latency'
  if (fields.has('response')) return 'response'
  return [...fields][0]
}

/** The summary at a dotted path of a host's component results. */
function summaryOf(r: HostResults, component: string, field: string): { p99Ns: number } {
  let node: unknown = r.components[component]
  for (const k of field.split('.')) node = (node as Record<string, unknown>)[k]
  return node as { p99Ns: number }
}

/** Every runtime and host with detail Hosts; else the stragglers and the busiest hosts, as many as the outliers. */
function profileOf(plan: RunPlan, ordered: HostResults[], barriers: number, runtimes: RuntimeProfile[], busyNs: Record<string, number>): RunProfile {
  const hosts = ordered.map((r, i) => ({ host: plan.hosts[i]!.name, events: r.events, busyNs: busyNs[plan.hosts[i]!.name] ?? 0 })).sort((a, b) => b.busyNs - a.busyNs)
  const all = plan.results.detail === 'Hosts'
  const listed = Math.max(plan.results.outliers, STRAGGLERS_SHOWN)
  return { barriers, runtimeCount: runtimes.length, runtimes: all ? runtimes : runtimes.slice(0, listed), hosts: all ? hosts : hosts.slice(0, plan.results.outliers) }
}

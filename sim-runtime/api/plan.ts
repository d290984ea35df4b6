// The run plan: a validated SimCluster compiled into what the leader and the runtimes execute.
// Every runtime builds the same plan from the same spec, so host and component indices agree
// everywhere without being sent over the wire. Indices follow declaration order in the manifest,
// never placement, which is what keeps the event ordering key placement-independent.
import { RESULTS_LIMITS, type ComponentSpec, type HostSpec, type LinkSpec, type PlacementSpec, type SimCluster } from './schema.ts'
import { parseBandwidthBitsPerSec, parseDurationNs } from './units.ts'

export const DEFAULT_LINK = { latency: '100us', bandwidth: '10Gbps', loss: 0, queueLimit: 100_000 } as const

export interface PlanComponent {
  /** Index within its host. */
  index: number
  name: string
  /** "host/component", the stable identity used for random streams and results. */
  path: string
  spec: ComponentSpec
}

export interface PlanHost {
  index: number
  name: string
  group: string
  replica: number
  spec: HostSpec
  components: PlanComponent[]
  componentIndex: Map<string, number>
}

export interface PlanLink {
  latencyNs: number
  bandwidthBitsPerSec: number
  loss: number
  queueLimit: number
}

/**
 * A `spec.network.links` override as compilePlan applies it: `from` and `to` are the host indices
 * it names (a whole group, or one replica); later rules win; `bidirectional` rules also match b→a.
 */
export interface PlanLinkRule {
  from: ReadonlySet<number>
  to: ReadonlySet<number>
  bidirectional: boolean
  link: PlanLink
}

export interface ResolvedTarget {
  /** Host indices a request may go to (several for a group target). */
  hosts: number[]
  /** Component index on each of those hosts (replicas of a group share their component list). */
  component: number
  /** "group/component" as written, for messages. */
  label: string
}

export interface RunPlan {
  cluster: string
  seed: number
  endTimeNs: number
  mode: 'Conservative' | 'Slack'
  /** Smallest link latency between distinct hosts; Infinity with a single host. */
  lookaheadNs: number
  quantumNs: number
  slackNs: number
  hosts: PlanHost[]
  hostIndex: Map<string, number>
  groups: Map<string, number[]>
  /** Egress link from host a to host b. */
  link(a: number, b: number): PlanLink
  /** The link of every pair no rule matches. */
  defaultLink: PlanLink
  /** The overrides in manifest order (link() takes the last one that matches a pair). */
  linkRules: readonly PlanLinkRule[]
  /** Resolve a target string as seen from host `from`; throws TargetError with an explanation. */
  resolve(from: number, target: string): ResolvedTarget
  liveComponents: number
  /** What the results hold (spec.results), Auto resolved by the number of hosts. */
  results: ResultsPlan
  /** spec.placement: how many runtimes carry the hosts (sync/placement.ts); unset: one per host on Kubernetes. */
  placement?: PlacementSpec
}

export interface ResultsPlan {
  /** Groups: per group, group pair and the outliers; Hosts: also every host and every link. */
  detail: 'Groups' | 'Hosts'
  /** Entries in each list of outliers. */
  outliers: number
}

export function resultsPlan(spec: SimCluster['spec'], hosts: number): ResultsPlan {
  const detail = spec.results?.detail ?? 'Auto'
  return {
    detail: detail === 'Auto' ? (hosts <= RESULTS_LIMITS.autoHostsMax ? 'Hosts' : 'Groups') : detail,
    outliers: spec.results?.outliers ?? RESULTS_LIMITS.outliersDefault,
  }
}

export class TargetError extends Error {}

/** Up to this many link rules, link() looks through them each time instead of caching each pair. */
const RULES_UNCACHED_MAX = 8

function toLink(base: PlanLink, spec: Partial<LinkSpec>): PlanLink {
  return {
    latencyNs: spec.latency !== undefined ? parseDurationNs(spec.latency) : base.latencyNs,
    bandwidthBitsPerSec: spec.bandwidth !== undefined ? parseBandwidthBitsPerSec(spec.bandwidth) : base.bandwidthBitsPerSec,
    loss: spec.loss ?? base.loss,
    queueLimit: spec.queueLimit ?? base.queueLimit,
  }
}

/**
 * Host indices 0…count-1 split into `partition` runtimes (at most one per host): contiguous blocks
 * in plan order, which keeps the replicas of a group together. `livesim run --partition` places
 * hosts so, and validation estimates each runtime's heap from the same split.
 */
export function partitionHostIndices(count: number, partition: number): number[][] {
  const n = Math.max(1, Math.min(partition, count))
  const parts: number[][] = Array.from({ length: n }, () => [])
  for (let i = 0; i < count; i++) parts[Math.floor((i * n) / count)]!.push(i)
  return parts
}

/** Names in a link's from/to: a group (all its replicas) or one replica. */
export function expandHostRef(ref: string, hostIndex: Map<string, number>, groups: Map<string, number[]>): number[] | undefined {
  const group = groups.get(ref)
  if (group) return group
  const one = hostIndex.get(ref)
  return one === undefined ? undefined : [one]
}

export function compilePlan(cluster: SimCluster): RunPlan {
  const spec = cluster.spec
  const hosts: PlanHost[] = []
  const hostIndex = new Map<string, number>()
  const groups = new Map<string, number[]>()
  let liveComponents = 0
  for (const h of spec.hosts) {
    const members: number[] = []
    for (let r = 0; r < (h.replicas ?? 1); r++) {
      const name = `${h.name}-${r}`
      const index = hosts.length
      const componentIndex = new Map<string, number>()
      const components = h.components.map((c, i) => {
        componentIndex.set(c.name, i)
        if (c.live) liveComponents++
        return { index: i, name: c.name, path: `${name}/${c.name}`, spec: c }
      })
      hosts.push({ index, name, group: h.name, replica: r, spec: h, components, componentIndex })
      hostIndex.set(name, index)
      members.push(index)
    }
    groups.set(h.name, members)
  }

  const base = toLink(
    {
      latencyNs: parseDurationNs(DEFAULT_LINK.latency),
      bandwidthBitsPerSec: parseBandwidthBitsPerSec(DEFAULT_LINK.bandwidth),
      loss: DEFAULT_LINK.loss,
      queueLimit: DEFAULT_LINK.queueLimit,
    },
    spec.network?.default ?? {},
  )
  const n = hosts.length
  // Overrides stay rules (later ones win) and are resolved per pair on first use: expanding every
  // pair up front would cost groups² × links, which a manifest within the limits can make huge.
  const rules = (spec.network?.links ?? []).map((o) => ({
    from: new Set(expandHostRef(o.from, hostIndex, groups) ?? []),
    to: new Set(expandHostRef(o.to, hostIndex, groups) ?? []),
    both: o.bidirectional ?? true,
    link: toLink(base, o),
    groupLevel: groups.has(o.from) && groups.has(o.to),
    spec: o,
  }))
  // A few rules are quicker to look through than a cache of every pair that was asked for, which
  // all-to-all traffic (PHOLD) grows to millions of entries.
  const resolved = rules.length > RULES_UNCACHED_MAX ? new Map<number, PlanLink>() : undefined
  const match = (a: number, b: number): PlanLink => {
    for (let i = rules.length - 1; i >= 0; i--) {
      const r = rules[i]!
      if ((r.from.has(a) && r.to.has(b)) || (r.both && r.from.has(b) && r.to.has(a))) return r.link
    }
    return base
  }
  const link = (a: number, b: number): PlanLink => {
    if (!resolved) return match(a, b)
    const key = a * n + b
    let l = resolved.get(key)
    if (l === undefined) {
      l = match(a, b)
      resolved.set(key, l)
    }
    return l
  }
  let lookaheadNs = Infinity
  if (n > 1) {
    for (const r of rules) {
      // A rule that names only one host on both sides covers no pair of distinct hosts.
      if (r.from.size > 1 || r.to.size > 1 || [...r.from][0] !== [...r.to][0]) lookaheadNs = Math.min(lookaheadNs, r.link.latencyNs)
    }
    // The default latency counts unless group-level rules cover every ordered pair of groups.
    const covered = new Set<string>()
    for (const r of rules) {
      if (!r.groupLevel) continue
      covered.add(`${r.spec.from}>${r.spec.to}`)
      if (r.both) covered.add(`${r.spec.to}>${r.spec.from}`)
    }
    search: for (const [ga, ma] of groups) {
      for (const [gb] of groups) {
        if (ga === gb && ma.length < 2) continue
        if (!covered.has(`${ga}>${gb}`)) {
          lookaheadNs = Math.min(lookaheadNs, base.latencyNs)
          break search
        }
      }
    }
  }

  const mode = spec.sync?.mode ?? 'Conservative'
  const endTimeNs = parseDurationNs(spec.endTime)
  const quantumNs = spec.sync?.quantum !== undefined ? parseDurationNs(spec.sync.quantum) : Math.min(lookaheadNs, endTimeNs)
  const slackNs = spec.sync?.slack !== undefined ? parseDurationNs(spec.sync.slack) : 0

  const resolve = (from: number, target: string): ResolvedTarget => {
    const slash = target.indexOf('/')
    const fromHost = hosts[from]
    if (!fromHost) throw new TargetError(`no host with index ${from}`)
    if (slash < 0) {
      const c = fromHost.componentIndex.get(target)
      if (c === undefined) {
        throw new TargetError(
          `no component ${JSON.stringify(target)} on host ${fromHost.group}; its components are: ${fromHost.components.map((x) => x.name).join(', ')} (use host/component for another host)`,
        )
      }
      return { hosts: [from], component: c, label: target }
    }
    const hostRef = target.slice(0, slash)
    const compName = target.slice(slash + 1).split(':')[0] ?? ''
    const members = expandHostRef(hostRef, hostIndex, groups)
    if (!members) {
      throw new TargetError(`no host ${JSON.stringify(hostRef)}; hosts are: ${[...groups.keys()].join(', ')}`)
    }
    const first = hosts[members[0]!]!
    const c = first.componentIndex.get(compName)
    if (c === undefined) {
      throw new TargetError(
        `host ${hostRef} has no component ${JSON.stringify(compName)}; its components are: ${first.components.map((x) => x.name).join(', ')}`,
      )
    }
    return { hosts: members, component: c, label: target }
  }

  return {
    cluster: cluster.metadata.name,
    seed: spec.seed ?? 1,
    endTimeNs,
    mode,
    lookaheadNs,
    quantumNs,
    slackNs,
    hosts,
    hostIndex,
    groups,
    link,
    defaultLink: base,
    linkRules: rules.map((r) => ({ from: r.from, to: r.to, bidirectional: r.both, link: r.link })),
    resolve,
    liveComponents,
    results: resultsPlan(spec, hosts.length),
    ...(spec.placement ? { placement: spec.placement } : {}),
  }
}

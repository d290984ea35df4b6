// What each kind of component reports in a run's results, as far as it is known before the run:
// the fields a SimSweep metric may name, and how to read one out of a results document. Custom
// components report whatever their module returns, so any path is accepted for them. Results that
// hold groups only (spec.results.detail Groups) answer a metric over a group's replicas from the
// group's perReplica spread, which gives the same Mean, Max, Min and Sum as the replicas' results.
// test/unit/sweep-fields.test.ts checks this table against what Client and Server really report.
import type { RunPlan } from '../api/plan.ts'
import type { ComponentSpec } from '../api/schema.ts'
import type { SimResults } from '../sync/results.ts'

/** A number; `count`: a counter whose absence means zero (a status code that never occurred). */
type Leaf = { leaf: 'number' } | { leaf: 'count' }
interface Fields {
  fields: Record<string, FieldNode>
}
/** Keys known only at run time (status codes), each holding `value`. */
interface KeyMap {
  key: RegExp
  keyHelp: string
  value: FieldNode
  /** Why a component of this spec never reports it, if it does not. */
  absentWhy?: (c: ComponentSpec) => string | undefined
}
export type FieldNode = Leaf | Fields | KeyMap

const num: Leaf = { leaf: 'number' }
const count: Leaf = { leaf: 'count' }
const summary: Fields = { fields: { count: num, meanNs: num, p50Ns: num, p90Ns: num, p99Ns: num, p999Ns: num, maxNs: num } }
const statusCodes = (absentWhy: KeyMap['absentWhy']): KeyMap => ({ key: /^[1-5][0-9][0-9]$/, keyHelp: 'an HTTP status code, e.g. 200', value: count, absentWhy })

const httpClientOnly = (c: ComponentSpec) => (c.model?.http ? undefined : 'reported only by a Client with http: (HTTP requests to a live component)')
const httpCallsOnly = (c: ComponentSpec) => (c.model?.calls?.some((x) => x.http) ? undefined : 'reported only by a Server whose calls speak http:')

export const REPORTS: Record<'Client' | 'Server' | 'Live', Fields> = {
  Client: {
    fields: {
      sent: num,
      completed: num,
      errors: num,
      timeouts: num,
      outstanding: num,
      throughputPerSec: num,
      latency: summary,
      status: statusCodes(httpClientOnly),
      latencyByStatusClass: { key: /^[1-5]xx$/, keyHelp: 'a status class, e.g. 2xx', value: summary, absentWhy: httpClientOnly },
    },
  },
  Server: {
    fields: {
      arrivals: num,
      completed: num,
      rejected: num,
      errors: num,
      queued: num,
      maxQueue: num,
      utilization: num,
      wait: summary,
      response: summary,
      callStatus: statusCodes(httpCallsOnly),
    },
  },
  Live: {
    fields: {
      connections: num,
      closed: num,
      bytesIn: num,
      bytesOut: num,
      requests: num,
      replies: num,
      errors: num,
      unstampedBytes: num,
      exitCode: num,
      exitedAtNs: num,
      response: summary,
    },
  },
}

const isKeyMap = (n: FieldNode): n is KeyMap => 'key' in n
const isLeaf = (n: FieldNode): n is Leaf => 'leaf' in n

/** The kind whose report a component gives, or undefined when it cannot be known (Custom). */
export function reportKind(c: ComponentSpec): keyof typeof REPORTS | undefined {
  if (c.live) return 'Live'
  const kind = c.model?.kind
  return kind === 'Client' || kind === 'Server' ? kind : undefined
}

/**
 * Why `field` cannot be a metric of component `c`, or undefined when it can (or cannot be known).
 * The answer names the fields that are there.
 */
export function fieldProblem(c: ComponentSpec, field: string): string | undefined {
  const kind = reportKind(c)
  if (!kind) return undefined
  let node: FieldNode = REPORTS[kind]
  let shown = ''
  for (const seg of field.split('.')) {
    const here = shown ? `${shown} ` : `${kind} `
    if (isLeaf(node)) return `${shown} is a number; the path cannot go further`
    if (isKeyMap(node)) {
      if (!node.key.test(seg)) return `${here}has keys that are ${node.keyHelp}; got ${JSON.stringify(seg)}`
      node = node.value
    } else {
      const next: FieldNode | undefined = node.fields[seg]
      if (!next) return `${here}reports no field ${JSON.stringify(seg)}; its fields are: ${Object.keys(node.fields).join(', ')}`
      if (isKeyMap(next)) {
        const why = next.absentWhy?.(c)
        if (why) return `${seg} is ${why}`
      }
      node = next
    }
    shown = shown ? `${shown}.${seg}` : seg
  }
  if (isLeaf(node)) return undefined
  if (isKeyMap(node)) return `${shown} is a map; a metric takes one number: ${shown}.<${node.keyHelp}>`
  return `${shown} is an object; a metric takes one number: ${Object.keys(node.fields).map((k) => `${shown}.${k}`).join(', ')}`
}

/** Whether `field` of a component of this results' kind is a counter whose absence means zero. */
function isCount(component: Record<string, unknown>, field: string): boolean {
  const kind = component.kind === 'Client' || component.kind === 'Server' || component.kind === 'Live' ? component.kind : undefined
  let schema: FieldNode | undefined = kind ? REPORTS[kind] : undefined
  for (const seg of field.split('.')) schema = schema && !isLeaf(schema) ? (isKeyMap(schema) ? schema.value : schema.fields[seg]) : undefined
  return schema !== undefined && isLeaf(schema) && schema.leaf === 'count'
}

/** A field of one component's results: a number, 0 for an absent counter, undefined when it is not there. */
function readField(component: Record<string, unknown>, field: string): number | undefined {
  let node: unknown = component
  for (const seg of field.split('.')) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined
  if (typeof node === 'number' && Number.isFinite(node)) return node
  if (node === undefined && isCount(component, field)) return 0
  return undefined
}

export type Aggregate = 'Mean' | 'Max' | 'Min' | 'Sum'

/** "group/component" → every replica of the group; "host/component" → that host. Empty when there is no such host. */
export function metricHosts(plan: RunPlan, component: string): { hosts: string[]; component: string } {
  const [ref, name] = component.split('/') as [string, string]
  const group = plan.groups.get(ref)
  const indices = group ?? (plan.hostIndex.has(ref) ? [plan.hostIndex.get(ref)!] : [])
  return { hosts: indices.map((i) => plan.hosts[i]!.name), component: name }
}

/** A metric's value in one trial's results: the field over the hosts, aggregated; null when no host reports it. */
export function metricValue(results: SimResults, hosts: string[], component: string, field: string, aggregate: Aggregate = 'Mean'): number | null {
  if (hosts.length > 0 && results.groups && !hosts.some((h) => results.hosts?.[h])) return groupValue(results, hosts, component, field, aggregate)
  const xs: number[] = []
  for (const h of hosts) {
    const c = results.hosts[h]?.components[component]
    if (c === null || typeof c !== 'object') continue
    const v = readField(c as Record<string, unknown>, field)
    if (v !== undefined) xs.push(v)
  }
  if (xs.length === 0) return null
  switch (aggregate) {
    case 'Max':
      return Math.max(...xs)
    case 'Min':
      return Math.min(...xs)
    case 'Sum':
      return xs.reduce((a, b) => a + b, 0)
    case 'Mean':
      return xs.reduce((a, b) => a + b, 0) / xs.length
  }
}

/**
 * A metric over every replica of one group, from results that hold groups only: a group of one
 * replica reports its own values; a larger one the spread of each number over its replicas. null
 * when `hosts` are not every replica of a group (one replica of several needs detail Hosts).
 */
function groupValue(results: SimResults, hosts: string[], component: string, field: string, aggregate: Aggregate): number | null {
  const entry = Object.entries(results.groups).find(([g, x]) => x.replicas === hosts.length && hosts.every((h, i) => h === `${g}-${i}`))
  const c = entry?.[1].components[component]
  if (!entry || !c) return null
  const replicas = entry[1].replicas
  if (replicas === 1) return readField(c, field) ?? null
  const spread = (c.perReplica as Record<string, { n: number; min: number; max: number; sum: number }> | undefined)?.[field]
  const count = isCount(c, field)
  if (!spread) return count ? 0 : null
  // An absent counter is a zero of its replica, as readField has it.
  const n = count ? replicas : spread.n
  const zeros = n > spread.n
  switch (aggregate) {
    case 'Max':
      return zeros ? Math.max(spread.max, 0) : spread.max
    case 'Min':
      return zeros ? Math.min(spread.min, 0) : spread.min
    case 'Sum':
      return spread.sum
    case 'Mean':
      return spread.sum / n
  }
}

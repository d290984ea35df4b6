// How much V8 heap a manifest's modelled state needs in the runtimes that carry its hosts, estimated
// before the run. Validation (validate.ts, with a HeapBudget) refuses a manifest that cannot fit,
// naming the field that makes the state and the figures, instead of a runtime dying of a heap OOM
// mid-run. The estimate counts what the manifest bounds: hosts and components, closed-loop users,
// open-loop requests outstanding (rate × timeout, capped by the target's queue limit) and their
// timeout timers. It leaves out what only the run decides: the timers of answered closed-loop
// requests (throughput × timeout) and Custom components' own state.
import v8 from 'node:v8'
import { partitionHostIndices, type PlanHost, type RunPlan } from './plan.ts'
import type { ModelSpec } from './schema.ts'
import { NS_PER_SEC, parseDurationNs } from './units.ts'

/**
 * V8 heap bytes per item, measured with `node --expose-gc hack/measure-state-bytes.ts` (Node 24.21,
 * x64): the heap in use after a full GC, with the hosts built and run to where the items are alive,
 * less the heap before, per item. Measured, then rounded up:
 * - host: 1336 (1000 hosts with one Server, less that Server);
 * - component: 2140 a Server, 2027 a Client (8000 of each on 1000 hosts; random streams, context,
 *   histogram objects);
 * - request: 494, a closed-loop user whose request is in flight on a link (the message queued at the
 *   receiver, the link's queue entry, the client's pending entry); 598 with a timeout timer; 384
 *   with the request and its timer queued at the server; 100 a user thinking (200000 users each);
 * - timer: 151, the timeout timer of a request (100000 answered ones, open loop), which lives until
 *   the timeout, answered or not;
 * - runtime: 20 MB of modules in a runtime before its first host.
 * Histogram buckets are ArrayBuffers, outside the V8 heap (16 KiB a Server to start with): not counted.
 */
export const STATE_BYTES = {
  host: 1_400,
  component: 2_200,
  request: 500,
  timer: 160,
  runtime: 32 * 2 ** 20,
} as const

/**
 * The share of the heap limit that modelled state may fill: the rest is headroom for garbage (each
 * barrier's messages and frames) and for V8's collector, which fails a heap that full collections
 * can no longer free. Near the limit a runtime does not fail at once but collects without end: with
 * a 256 MiB heap, 600000 closed-loop users with their requests in flight (~286 MiB estimated)
 * stalled the run until the barrier timeout; 300000 (~143 MiB, 56 % of the limit) ran.
 */
export const HEAP_FILL = 0.75

export interface HeapBudget {
  /** The V8 heap limit of each runtime process (v8.getHeapStatistics().heap_size_limit), bytes. */
  heapLimitBytes: number
  /** Runtimes the hosts are split into, as `livesim run --partition` does (partitionHostIndices). */
  partition: number
  /**
   * The hosts of each runtime when spec.placement places them (sync/placement.ts, which the caller
   * passes in: api/ does not depend on sync/); undefined: `partition` blocks.
   */
  runtimes?: (plan: RunPlan) => readonly (readonly number[])[] | undefined
}

/** The heap of a runtime that `livesim run` starts on this machine: this process's (run/local.ts gives it the same limit). */
export function localHeapBudget(partition: number): HeapBudget {
  return { heapLimitBytes: v8.getHeapStatistics().heap_size_limit, partition }
}

/** One field's share of a host's modelled state. */
interface Term {
  path: string
  bytes: number
  /** What the bytes are, for one host: "1000000 users". */
  what: string
  /** Bytes per item of `what`, when they are items of one kind. */
  each?: number
  /** What to lower. */
  lever: string
}

/** Requests of an open-loop client that can be outstanding at once. */
function openLoopOutstanding(plan: RunPlan, host: PlanHost, m: ModelSpec, rate: number): { requests: number; timers: number; bound: string } {
  const timeoutNs = m.timeout !== undefined ? Math.min(parseDurationNs(m.timeout), plan.endTimeNs) : undefined
  const windowNs = timeoutNs ?? plan.endTimeNs
  let requests = (rate * windowNs) / NS_PER_SEC
  let bound = timeoutNs !== undefined && timeoutNs < plan.endTimeNs ? 'rate × timeout' : 'rate × endTime'
  // A Server with a queue limit holds at most (queueLimit + workers) per replica; it rejects the rest,
  // and a rejection is back within a round trip.
  const target = plan.resolve(host.index, m.target!)
  const tm = plan.hosts[target.hosts[0]!]!.components[target.component]!.spec.model
  if (tm?.kind === 'Server' && tm.queueLimit !== undefined) {
    const rttNs = target.hosts[0] === host.index ? 0 : 2 * plan.link(host.index, target.hosts[0]!).latencyNs
    const held = target.hosts.length * (tm.queueLimit + (tm.workers ?? 1)) + (rate * rttNs) / NS_PER_SEC
    if (held < requests) {
      requests = held
      bound = `${target.label}'s queue limit`
    }
  }
  const timers = timeoutNs === undefined ? 0 : (rate * timeoutNs) / NS_PER_SEC
  return { requests: Math.ceil(requests), timers: Math.ceil(timers), bound }
}

/** Bytes of one outstanding request of a Client: its own timeout timer included, if it has a timeout. */
const requestBytes = (m: ModelSpec) => STATE_BYTES.request + (m.timeout !== undefined ? STATE_BYTES.timer : 0)

/** The modelled state of one host, by the field that makes it. `at`: the host group's index in spec.hosts. */
function hostState(plan: RunPlan, host: PlanHost, at: number): Term[] {
  const terms: Term[] = [
    {
      path: `spec.hosts[${at}].components`,
      bytes: STATE_BYTES.host + host.components.length * STATE_BYTES.component,
      what: `${host.components.length} component${host.components.length === 1 ? '' : 's'}`,
      lever: 'use fewer hosts or components',
    },
  ]
  host.components.forEach((c, j) => {
    const m = c.spec.model
    if (m?.kind !== 'Client') return
    const cp = `spec.hosts[${at}].components[${j}].model`
    if (m.closedLoop) {
      const each = requestBytes(m)
      terms.push({ path: `${cp}.closedLoop.users`, bytes: m.closedLoop.users * each, what: `${m.closedLoop.users} users`, each, lever: 'lower users' })
    } else if (m.openLoop) {
      const o = openLoopOutstanding(plan, host, m, m.openLoop.rate)
      const answered = Math.max(0, o.timers - o.requests)
      terms.push({
        path: `${cp}.openLoop.rate`,
        bytes: o.requests * requestBytes(m) + answered * STATE_BYTES.timer,
        what: `up to ${o.requests} requests outstanding (${o.bound})${answered ? ` and ${answered} timeout timers of answered ones` : ''}`,
        each: answered ? undefined : requestBytes(m),
        lever: 'lower the rate or the timeout',
      })
    }
  })
  return terms
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** "3.1 GiB", "512 MiB". */
export function formatBytes(bytes: number): string {
  const gib = bytes / 2 ** 30
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.max(1, Math.round(bytes / 2 ** 20))} MiB`
}

/**
 * The runtimes of `budget` whose hosts' modelled state cannot fit their heap: one issue, at the
 * field that makes most of the state of the fullest runtime, with the figures and what to change.
 */
export function heapIssues(plan: RunPlan, budget: HeapBudget): { path: string; message: string }[] {
  if (!(budget.heapLimitBytes > 0) || !Number.isInteger(budget.partition) || budget.partition < 1) {
    throw new Error(`heap budget: heapLimitBytes must be > 0 and partition a positive integer; got ${budget.heapLimitBytes}, ${budget.partition}`)
  }
  const usable = budget.heapLimitBytes * HEAP_FILL - STATE_BYTES.runtime
  const groupAt = new Map<string, number>()
  const groups = [...plan.groups.keys()]
  groups.forEach((g, i) => groupAt.set(g, i))
  const terms = plan.hosts.map((h) => hostState(plan, h, groupAt.get(h.group)!))
  const hostBytes = terms.map((ts) => sum(ts.map((t) => t.bytes)))
  const fits = (partition: number) => partitionHostIndices(plan.hosts.length, partition).every((p) => sum(p.map((i) => hostBytes[i]!)) <= usable)
  const placed = budget.runtimes?.(plan)
  const parts = placed ?? partitionHostIndices(plan.hosts.length, budget.partition)
  const partBytes = parts.map((p) => sum(p.map((i) => hostBytes[i]!)))
  const worst = partBytes.indexOf(Math.max(...partBytes))
  if (partBytes[worst]! <= usable) return []

  // The field that makes most of that runtime's state, summed over the replicas it carries.
  const byPath = new Map<string, { term: Term; bytes: number; hosts: number }>()
  for (const i of parts[worst]!) {
    for (const t of terms[i]!) {
      const e = byPath.get(t.path)
      if (e) {
        e.bytes += t.bytes
        e.hosts++
      } else byPath.set(t.path, { term: t, bytes: t.bytes, hosts: 1 })
    }
  }
  const top = [...byPath.values()].reduce((a, b) => (b.bytes > a.bytes ? b : a))
  let advice = top.term.lever
  if (placed && Math.max(...hostBytes) <= usable) {
    advice += ' or spread the hosts over more runtimes (spec.placement)'
  } else if (Math.max(...hostBytes) <= usable) {
    let n = budget.partition + 1
    while (n < plan.hosts.length && !fits(n)) n++
    advice += ` or split hosts across runtimes (--partition ${n})`
  } else {
    advice += ' (one host is more than a runtime can carry)'
  }
  const where = parts.length > 1 ? ` in runtime ${worst + 1} of ${parts.length}` : ''
  const share = top.bytes < 0.95 * partBytes[worst]! ? `: ~${formatBytes(top.bytes)} of it` : ''
  const what = `${top.hosts > 1 ? `${top.hosts} hosts × ` : ''}${top.term.what}${share}${top.term.each ? `, ~${top.term.each} B each` : ''}`
  return [
    {
      path: top.term.path,
      message:
        `needs ~${formatBytes(partBytes[worst]!)} of modelled state${where} (${what}), the runtime's heap holds ~${formatBytes(usable)} ` +
        `(${Math.round(HEAP_FILL * 100)} % of its ${formatBytes(budget.heapLimitBytes)} limit, less the runtime itself); ${advice}`,
    },
  ]
}

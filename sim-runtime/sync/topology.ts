// Who can send to whom, and how soon: the static communication graph of a run, and the windows it
// allows (docs/design.md, "Topology-aware windows"; notes/scale-out.md §1).
//
// The graph is built per host group from the manifest: a Client's target, a Server's calls and a
// Phold's target make an edge each way (replies go back), a Custom component may address any host
// (edges to and from every group), a host with live components reaches every host that serves live
// ports. An edge's latency is a lower bound of the link latency between two distinct hosts of the
// groups, read from the link rules (the last rule that covers every pair decides; the default counts
// unless such a rule exists), so the graph has O(groups + edges) entries whatever the replicas.
//
// Windows of runtime processes. The earliest a message can reach a host of runtime R is bounded by
// the pending work of every runtime P (its next event or message in flight, E_P) plus the shortest
// path from P's hosts to R's: D[P][R]. Paths that start in R only count if they leave it: C_R, the
// shortest such cycle (messages between R's own hosts are handed over inside R, runtime.ts). So
//   W_R = min(endTime, E_R + C_R, min over P ≠ R of E_P + D[P][R])
// is a window end no later message can undercut: any message's chain of causes starts at a pending
// event and crosses at least those latencies. D and C are computed once, over cells (a group's hosts
// in one runtime), with each hop's latency the group lower bound: a lower bound of the host paths.
import assert from 'node:assert/strict'
import type { RunPlan } from '../api/plan.ts'

/** A directed edge of the communication graph between groups (indices in plan order). */
export interface GroupEdge {
  from: number
  to: number
  /** A lower bound of the link latency from a host of `from` to a distinct host of `to`. */
  latencyNs: number
}

export interface Topology {
  /** Group names in plan order. */
  groups: string[]
  /** Host index → group index. */
  groupOf: Int32Array
  groupSize: Int32Array
  /** At most one edge per ordered pair of groups; within a group only when it has two hosts or more. */
  edges: GroupEdge[]
}

/** Build the communication graph of a plan. Cost: O(hosts + groups · components + edges + rules). */
export function buildTopology(plan: RunPlan): Topology {
  const groups = [...plan.groups.keys()]
  const groupOf = new Int32Array(plan.hosts.length)
  const groupSize = new Int32Array(groups.length)
  groups.forEach((g, i) => {
    const members = plan.groups.get(g)!
    groupSize[i] = members.length
    for (const h of members) groupOf[h] = i
  })
  const pairs = new Set<number>()
  const G = groups.length
  const add = (a: number, b: number) => {
    if (a === b && groupSize[a]! < 2) return // one host: its messages to itself cross no link
    pairs.add(a * G + b).add(b * G + a) // every request has its reply
  }
  const liveSenders: number[] = []
  const liveServers: number[] = []
  groups.forEach((name, g) => {
    const first = plan.hosts[plan.groups.get(name)![0]!]!
    let live = false
    let serves = false
    for (const c of first.components) {
      if (c.spec.live) {
        live = true
        serves ||= (c.spec.live.ports?.length ?? 0) > 0
        continue
      }
      const m = c.spec.model!
      if (m.kind === 'Custom') {
        for (let x = 0; x < G; x++) add(g, x)
        continue
      }
      const targets = m.kind === 'Server' ? (m.calls ?? []).map((k) => k.target) : m.target !== undefined ? [m.target] : []
      for (const t of targets) {
        if (!t.includes('/')) continue // a component of the same host
        add(g, groupOf[plan.resolve(first.index, t).hosts[0]!]!)
      }
    }
    if (live) liveSenders.push(g)
    if (serves) liveServers.push(g)
  })
  for (const a of liveSenders) for (const b of liveServers) add(a, b)
  const latency = groupLatencies(plan, groupOf, groupSize, G)
  const edges = [...pairs].sort((x, y) => x - y).map((k) => {
    const from = Math.floor(k / G)
    const to = k % G
    return { from, to, latencyNs: latency(from, to) }
  })
  for (const e of edges) assert(e.latencyNs >= plan.lookaheadNs, `edge ${groups[e.from]}→${groups[e.to]} is shorter than the run's lookahead`)
  return { groups, groupOf, groupSize, edges }
}

/**
 * The lower bound of link latencies from a host of group a to a distinct host of group b: the link
 * rules that can match such a pair, from the last, down to the first that matches every pair (a
 * whole group on both sides); the default unless such a rule exists. Rules are indexed by their pair
 * of groups, so each lookup reads only the rules about that pair.
 */
function groupLatencies(plan: RunPlan, groupOf: Int32Array, groupSize: Int32Array, G: number): (a: number, b: number) => number {
  const byPair = new Map<number, { latencyNs: number; whole: boolean; sameHost: boolean }[]>()
  const side = (hosts: ReadonlySet<number>) => {
    const first = hosts.values().next().value!
    const g = groupOf[first]!
    if (hosts.size > 1) assert.equal(hosts.size, groupSize[g], 'a link rule names one replica or a whole group')
    return { g, whole: hosts.size === groupSize[g], first }
  }
  for (const r of plan.linkRules) {
    const from = side(r.from)
    const to = side(r.to)
    const entry = { latencyNs: r.link.latencyNs, whole: from.whole && to.whole, sameHost: r.from.size === 1 && r.to.size === 1 && from.first === to.first }
    const keys = new Set([from.g * G + to.g, ...(r.bidirectional ? [to.g * G + from.g] : [])])
    for (const k of keys) {
      let list = byPair.get(k)
      if (!list) byPair.set(k, (list = []))
      list.push(entry)
    }
  }
  return (a, b) => {
    const rules = byPair.get(a * G + b) ?? []
    let best = Infinity
    for (let i = rules.length - 1; i >= 0; i--) {
      const r = rules[i]!
      if (r.sameHost) continue // matches no pair of distinct hosts
      best = Math.min(best, r.latencyNs)
      if (r.whole) return best
    }
    return Math.min(best, plan.defaultLink.latencyNs)
  }
}

/** How many hosts of each group `hosts` holds. */
function countByGroup(topo: Topology, hosts: readonly number[]): Int32Array {
  const n = new Int32Array(topo.groups.length)
  for (const h of hosts) n[topo.groupOf[h]!]!++
  return n
}

/**
 * The smallest latency of an edge between two distinct hosts of `hosts`: how far apart a runtime
 * carrying them must hand messages between them over (Infinity when none can reach another).
 */
export function internalLookaheadNs(topo: Topology, hosts: readonly number[]): number {
  const n = countByGroup(topo, hosts)
  let min = Infinity
  for (const e of topo.edges) {
    if (n[e.from]! > 0 && n[e.to]! > 0 && (e.from !== e.to || n[e.from]! > 1)) min = Math.min(min, e.latencyNs)
  }
  return min
}

/** The smallest latency of an edge between hosts carried by different runtimes; Infinity with one runtime. */
export function cutLookaheadNs(topo: Topology, runtimes: readonly (readonly number[])[]): number {
  const carriers = groupCarriers(topo, runtimes)
  let min = Infinity
  for (const e of topo.edges) {
    const a = carriers[e.from]!
    const b = carriers[e.to]!
    // Within one runtime only when both groups live in that one runtime alone.
    const inside = a.length === 1 && b.length === 1 && a[0] === b[0]
    if (!inside && a.length > 0 && b.length > 0) min = Math.min(min, e.latencyNs)
  }
  return min
}

/** For each group, the runtimes carrying some of its hosts (ascending). */
function groupCarriers(topo: Topology, runtimes: readonly (readonly number[])[]): number[][] {
  const carriers: number[][] = topo.groups.map(() => [])
  runtimes.forEach((hosts, r) => {
    const n = countByGroup(topo, hosts)
    n.forEach((k, g) => {
      if (k > 0) carriers[g]!.push(r)
    })
  })
  return carriers
}

/** Above this many runtimes, or this much work for the distances, windows fall back to the cut lookahead. */
const PER_RUNTIME_MAX = 1024
const DISTANCE_WORK_MAX = 50_000_000

/**
 * Per-runtime window ends (the formula at the top of this file). `runtimes[r]` lists the hosts of
 * runtime r. Where the distances would cost too much to compute (PER_RUNTIME_MAX,
 * DISTANCE_WORK_MAX), every runtime gets the same window: the earliest pending time plus the
 * shortest edge between runtimes, which is also safe, only shorter.
 */
export class RuntimeWindows {
  readonly runtimes: number
  /** D[p * runtimes + r]: shortest path from a host of p to a host of r (p ≠ r). Undefined in the fallback. */
  private readonly dist: Float64Array | undefined
  /** C[r]: the shortest path from a host of r back to one, through a host of another runtime. */
  private readonly cycle: Float64Array | undefined
  /** The fallback's lookahead. */
  readonly cutLookaheadNs: number
  /** No window ends more than this past the earliest pending time. */
  readonly maxWindowNs: number

  constructor(topo: Topology, runtimes: readonly (readonly number[])[], maxWindowNs = Infinity) {
    assert(maxWindowNs > 0)
    this.runtimes = runtimes.length
    this.maxWindowNs = maxWindowNs
    this.cutLookaheadNs = cutLookaheadNs(topo, runtimes)
    const R = runtimes.length
    // One Dijkstra per runtime over the cells: R × (cells + cell edges) steps at most.
    const cells = R > PER_RUNTIME_MAX ? undefined : buildCells(topo, runtimes, DISTANCE_WORK_MAX / R)
    if (!cells) return
    this.dist = new Float64Array(R * R).fill(Infinity)
    this.cycle = new Float64Array(R).fill(Infinity)
    for (let s = 0; s < R; s++) {
      const d = leavingDistances(cells, s)
      const n = cells.runtime.length
      for (let c = 0; c < n; c++) {
        const r = cells.runtime[c]!
        const left = d[n + c]! // layer 1: the path has left s
        if (r === s) this.cycle[s] = Math.min(this.cycle[s]!, left)
        else this.dist[s * R + r] = Math.min(this.dist[s * R + r]!, left)
      }
      // Shortest paths never undercut the shortest edge between runtimes.
      assert(Math.min(this.cycle[s]!, ...Array.from({ length: R }, (_, r) => (r === s ? Infinity : this.dist![s * R + r]!))) >= this.cutLookaheadNs)
    }
  }

  /** D[p][r] (p ≠ r), or C[r] when p = r; Infinity where nothing leads; undefined in the fallback. */
  distanceNs(p: number, r: number): number | undefined {
    if (!this.dist || !this.cycle) return undefined
    return p === r ? this.cycle[r]! : this.dist[p * this.runtimes + r]!
  }

  /** Whether windows are per runtime (false: the fallback, one window for all). */
  get perRuntime(): boolean {
    return this.dist !== undefined
  }

  /**
   * Window ends, written into `ends`, given each runtime's earliest pending time (its next event or
   * message in flight to it). Not capped at the end time: the caller caps them.
   */
  ends(earliestNs: Float64Array, ends: Float64Array): void {
    const R = this.runtimes
    assert(earliestNs.length >= R && ends.length >= R)
    const { dist, cycle } = this
    let min = Infinity
    for (let r = 0; r < R; r++) min = Math.min(min, earliestNs[r]!)
    const cap = min + this.maxWindowNs
    if (!dist || !cycle) {
      ends.fill(min + Math.min(this.cutLookaheadNs, this.maxWindowNs), 0, R)
      return
    }
    for (let r = 0; r < R; r++) {
      let w = Math.min(cap, earliestNs[r]! + cycle[r]!)
      for (let p = 0; p < R; p++) {
        if (p === r) continue
        const t = earliestNs[p]! + dist[p * R + r]!
        if (t < w) w = t
      }
      ends[r] = w
    }
  }
}

/** The cell graph: one node per (group, runtime) that has hosts, edges from the group edges. */
interface Cells {
  runtime: Int32Array
  /** CSR adjacency: edges of cell c are at [start[c], start[c + 1]). */
  start: Int32Array
  target: Int32Array
  latencyNs: Float64Array
}

/** The cell graph, or undefined when it has more than `maxSize` cells and edges. */
function buildCells(topo: Topology, runtimes: readonly (readonly number[])[], maxSize: number): Cells | undefined {
  const byGroup: { cell: number; hosts: number }[][] = topo.groups.map(() => [])
  const runtimeOf: number[] = []
  runtimes.forEach((hosts, r) => {
    countByGroup(topo, hosts).forEach((k, g) => {
      if (k === 0) return
      byGroup[g]!.push({ cell: runtimeOf.length, hosts: k })
      runtimeOf.push(r)
    })
  })
  let size = runtimeOf.length
  for (const e of topo.edges) size += byGroup[e.from]!.length * byGroup[e.to]!.length
  if (size > maxSize) return undefined
  const out: [number, number, number][] = []
  for (const e of topo.edges) {
    for (const a of byGroup[e.from]!) {
      for (const b of byGroup[e.to]!) {
        if (a.cell === b.cell && a.hosts < 2) continue // one host of the group here: no pair within the cell
        out.push([a.cell, b.cell, e.latencyNs])
      }
    }
  }
  out.sort((x, y) => x[0] - y[0])
  const n = runtimeOf.length
  const start = new Int32Array(n + 1)
  for (const [a] of out) start[a + 1]!++
  for (let c = 0; c < n; c++) start[c + 1]! += start[c]!
  return {
    runtime: Int32Array.from(runtimeOf),
    start,
    target: Int32Array.from(out, (e) => e[1]),
    latencyNs: Float64Array.from(out, (e) => e[2]),
  }
}

/**
 * Dijkstra from the cells of runtime s over two layers: node c (the path has not left s; only cells
 * of s) and node n + c (it has). Returns the distances, Infinity where unreachable.
 */
function leavingDistances(cells: Cells, s: number): Float64Array {
  const n = cells.runtime.length
  const d = new Float64Array(2 * n).fill(Infinity)
  const heap = new MinHeap()
  for (let c = 0; c < n; c++) {
    if (cells.runtime[c] !== s) continue
    d[c] = 0
    heap.push(0, c)
  }
  while (heap.size > 0) {
    const [du, u] = heap.pop()
    if (du > d[u]!) continue
    const c = u < n ? u : u - n
    for (let i = cells.start[c]!; i < cells.start[c + 1]!; i++) {
      const t = cells.target[i]!
      const v = u >= n || cells.runtime[t] !== s ? n + t : t
      const dv = du + cells.latencyNs[i]!
      if (dv < d[v]!) {
        d[v] = dv
        heap.push(dv, v)
      }
    }
  }
  return d
}

/** A binary min-heap of (key, value) pairs, for Dijkstra. */
class MinHeap {
  private keys: number[] = []
  private values: number[] = []

  get size(): number {
    return this.keys.length
  }

  push(key: number, value: number): void {
    const k = this.keys
    const v = this.values
    let i = k.length
    k.push(key)
    v.push(value)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (k[p]! <= key) break
      k[i] = k[p]!
      v[i] = v[p]!
      i = p
    }
    k[i] = key
    v[i] = value
  }

  pop(): [number, number] {
    const k = this.keys
    const v = this.values
    const top: [number, number] = [k[0]!, v[0]!]
    const lastK = k.pop()!
    const lastV = v.pop()!
    const n = k.length
    if (n > 0) {
      let i = 0
      while (true) {
        let c = 2 * i + 1
        if (c >= n) break
        if (c + 1 < n && k[c + 1]! < k[c]!) c++
        if (k[c]! >= lastK) break
        k[i] = k[c]!
        v[i] = v[c]!
        i = c
      }
      k[i] = lastK
      v[i] = lastV
    }
    return top
  }
}

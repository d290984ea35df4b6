// spec.placement: which runtime (a pod on Kubernetes, a process with `livesim run`) carries which
// hosts. The operator and `livesim run` both place hosts with placeHosts, so a cluster runs in the
// same runtimes in both; results never depend on it (events are ordered by a placement-free key).
//
// The partitioner, after SST's "simple" one (notes/scale-out.md §3): every runtime carries at most
// C hosts (C = ceil(hosts / runtimes), or hostsPerRuntime). A host group is cut into runtimes of C
// replicas; what is left of each group (fewer than C) is merged with the others along the links of
// the communication graph, shortest latency first, as long as a merge fits in C (Kruskal with a
// cap): the hosts joined by the shortest links share a runtime, and the links between runtimes are
// the long ones, which is what lets each runtime run far ahead (topology.ts). The merged sets are
// packed largest first into the runtimes left, first fit, split across runtimes only when no
// runtime has room; if that fills fewer runtimes than asked for, the largest are halved. A host
// with a live component is never packed: it has a runtime of its own.
// Every choice is by index, never by a hash or a clock: the same manifest places hosts the same way.
import assert from 'node:assert/strict'
import type { RunPlan } from '../api/plan.ts'
import type { PlacementSpec } from '../api/schema.ts'
import { buildTopology, cutLookaheadNs, type Topology } from './topology.ts'

export interface Placement {
  /** Host indices of each runtime, ascending; runtimes ordered by their first host. */
  runtimes: number[][]
  /** Most hosts in one runtime. */
  hostsPerRuntimeMax: number
  /** The shortest link of the communication graph between two runtimes; Infinity when none crosses. */
  cutLatencyNs: number
}

/** Whether a host runs a live component: such a host always has a runtime of its own. */
export function isLiveHost(plan: RunPlan, host: number): boolean {
  return plan.hosts[host]!.components.some((c) => c.spec.live !== undefined)
}

/** How many runtimes carry `modelled` hosts under `spec`, and at most how many hosts each: (R, C). */
export function placementSize(spec: PlacementSpec, modelled: number): { runtimes: number; capacity: number } {
  assert(modelled >= 1, 'placementSize needs a modelled host')
  if (spec.runtimes !== undefined) {
    const runtimes = Math.min(spec.runtimes, modelled)
    return { runtimes, capacity: Math.ceil(modelled / runtimes) }
  }
  assert(spec.hostsPerRuntime !== undefined && spec.hostsPerRuntime >= 1, 'placement needs runtimes or hostsPerRuntime')
  const capacity = Math.min(spec.hostsPerRuntime, modelled)
  return { runtimes: Math.ceil(modelled / capacity), capacity }
}

/**
 * The runtimes of a run. Without `spec` every host has a runtime of its own (the operator's default).
 * Cost: O(hosts + edges · log edges + pieces · runtimes).
 */
export function placeHosts(plan: RunPlan, spec: PlacementSpec | undefined, topo: Topology = buildTopology(plan)): Placement {
  const alone: number[][] = []
  const modelledByGroup: number[][] = topo.groups.map(() => [])
  let modelled = 0
  for (const h of plan.hosts) {
    if (!spec || isLiveHost(plan, h.index)) alone.push([h.index])
    else {
      modelledByGroup[topo.groupOf[h.index]!]!.push(h.index)
      modelled++
    }
  }
  const packed = modelled === 0 ? [] : pack(topo, modelledByGroup, placementSize(spec!, modelled))
  const runtimes = [...packed, ...alone].map((r) => r.sort((a, b) => a - b)).sort((a, b) => a[0]! - b[0]!)
  const placed = runtimes.reduce((n, r) => n + r.length, 0)
  assert.equal(placed, plan.hosts.length, 'every host is placed exactly once')
  return { runtimes, hostsPerRuntimeMax: Math.max(0, ...runtimes.map((r) => r.length)), cutLatencyNs: cutLookaheadNs(topo, runtimes) }
}

/** A set of whole group remainders that share a runtime, hosts in merge order. */
interface Piece {
  hosts: number[]
}

function pack(topo: Topology, byGroup: number[][], size: { runtimes: number; capacity: number }): number[][] {
  const C = size.capacity
  const full: number[][] = []
  const pieceOf = new Int32Array(topo.groups.length).fill(-1)
  const pieces: Piece[] = []
  byGroup.forEach((hosts, g) => {
    const whole = Math.floor(hosts.length / C)
    for (let i = 0; i < whole; i++) full.push(hosts.slice(i * C, (i + 1) * C))
    if (hosts.length % C === 0) return
    pieceOf[g] = pieces.length
    pieces.push({ hosts: hosts.slice(whole * C) })
  })
  assert(full.length <= size.runtimes, 'full runtimes never outnumber the runtimes')
  const merged = mergeByLatency(topo, pieces, pieceOf, C)
  const out = [...full, ...binPack(merged, size.runtimes - full.length, C)]
  // Packing may fill fewer runtimes than asked for: halve the largest until there are as many.
  while (out.length < size.runtimes) {
    const largest = out.reduce((best, r) => (r.length > best.length ? r : best))
    assert(largest.length >= 2, 'a runtime to halve while there are more hosts than runtimes')
    out.push(largest.splice(Math.ceil(largest.length / 2)))
  }
  return out
}

/** Union the pieces along edges, shortest first (ties by group index), while a union fits in C. */
function mergeByLatency(topo: Topology, pieces: Piece[], pieceOf: Int32Array, C: number): number[][] {
  const parent = pieces.map((_, i) => i)
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!
    return i
  }
  const edges = topo.edges.filter((e) => e.from !== e.to && pieceOf[e.from]! >= 0 && pieceOf[e.to]! >= 0)
  edges.sort((x, y) => x.latencyNs - y.latencyNs || x.from - y.from || x.to - y.to)
  for (const e of edges) {
    const a = find(pieceOf[e.from]!)
    const b = find(pieceOf[e.to]!)
    if (a === b || pieces[a]!.hosts.length + pieces[b]!.hosts.length > C) continue
    // The root is the piece with the earlier first host; the other's hosts follow its own.
    const [root, other] = pieces[a]!.hosts[0]! < pieces[b]!.hosts[0]! ? [a, b] : [b, a]
    pieces[root]!.hosts.push(...pieces[other]!.hosts)
    pieces[other]!.hosts = []
    parent[other] = root
  }
  return pieces.filter((_, i) => find(i) === i).map((p) => p.hosts)
}

/**
 * Sets of hosts into at most `bins` runtimes of C hosts: largest first (ties by first host), into
 * the first runtime with room, else a new one while there are runtimes left, else split over the
 * runtimes with the most room. bins · C is at least the hosts, so everything fits.
 */
function binPack(sets: number[][], bins: number, C: number): number[][] {
  const total = sets.reduce((n, s) => n + s.length, 0)
  assert(bins * C >= total, `${total} hosts do not fit in ${bins} runtimes of ${C}`)
  const order = [...sets].sort((a, b) => b.length - a.length || a[0]! - b[0]!)
  const out: number[][] = []
  for (const set of order) {
    const fit = out.find((b) => b.length + set.length <= C)
    if (fit) fit.push(...set)
    else if (out.length < bins) out.push([...set])
    else {
      let rest = set
      while (rest.length > 0) {
        const roomiest = out.reduce((best, b) => (b.length < best.length ? b : best))
        const room = C - roomiest.length
        assert(room > 0, 'a runtime has room while hosts are left')
        roomiest.push(...rest.slice(0, room))
        rest = rest.slice(room)
      }
    }
  }
  return out
}

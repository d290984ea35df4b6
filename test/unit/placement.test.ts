// spec.placement: the partitioner (sync/placement.ts) that both the operator and `livesim run` use,
// and the short host lists that carry its runtimes in SimHosts and pod arguments.
import { describe, expect, it } from 'vitest'
import { formatHostList, parseHostList } from '../../sim-runtime/api/hostlist.ts'
import type { PlacementSpec } from '../../sim-runtime/api/schema.ts'
import { placeHosts } from '../../sim-runtime/sync/placement.ts'
import { buildTopology } from '../../sim-runtime/sync/topology.ts'
import { example, manifest } from '../helpers.ts'
import { mixedCluster } from './operator/fixtures.ts'

type Plan = ReturnType<typeof example>['plan']
const namesOf = (plan: Plan, runtimes: number[][]) => runtimes.map((r) => r.map((h) => plan.hosts[h]!.name))

/** Every host exactly once, each runtime ascending and within `capacity`, runtimes ordered by first host. */
function expectValid(plan: Plan, runtimes: number[][], capacity: number) {
  const all = runtimes.flat().sort((a, b) => a - b)
  expect(all).toEqual(plan.hosts.map((h) => h.index))
  for (const r of runtimes) {
    expect(r.length).toBeGreaterThan(0)
    expect(r.length).toBeLessThanOrEqual(capacity)
    expect([...r].sort((a, b) => a - b)).toEqual(r)
  }
  expect(runtimes.map((r) => r[0]!)).toEqual([...runtimes.map((r) => r[0]!)].sort((a, b) => a - b))
}

/** Groups a, b, c of `n` hosts each; a's clients call b over 1 ms, b calls c over 10 us. */
function chain(n: number, placement: string) {
  return manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: chain }
spec:
  endTime: 10ms
  placement: ${placement}
  network:
    default: { latency: 100us }
    links:
      - { from: a, to: b, latency: 1ms }
      - { from: b, to: c, latency: 10us }
  hosts:
    - name: a
      replicas: ${n}
      components: [{ name: load, model: { kind: Client, target: b/http, openLoop: { rate: 10 } } }]
    - name: b
      replicas: ${n}
      components: [{ name: http, model: { kind: Server, service: { distribution: Constant, mean: 1us }, calls: [{ target: c/sql }] } }]
    - name: c
      replicas: ${n}
      components: [{ name: sql, model: { kind: Server, service: { distribution: Constant, mean: 1us } } }]
`)
}

describe('host lists', () => {
  it('write consecutive replicas of a group as a range and read back the same names', () => {
    const names = ['client-0', 'client-1', 'client-2', 'db-0', 'web-3', 'web-5', 'web-6', 'x']
    expect(formatHostList(names)).toBe('client-0..2,db-0,web-3,web-5..6,x')
    expect(parseHostList(formatHostList(names))).toEqual(names)
    expect(parseHostList('web-0, web-1,')).toEqual(['web-0', 'web-1'])
  })
  it('keep 10,000 replicas of one group short', () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `lp-${i}`)
    expect(formatHostList(names)).toBe('lp-0..9999')
    expect(parseHostList('lp-0..9999')).toEqual(names)
  })
  it('refuse a range that runs backwards', () => {
    expect(() => parseHostList('web-5..2')).toThrow(/host range web-5..2: the last replica must be at least the first/)
  })
})

describe('placeHosts', () => {
  it('without placement gives every host a runtime of its own (one pod per host, as before)', () => {
    const m = example('quickstart.yaml')
    const p = placeHosts(m.plan, undefined)
    expect(p.runtimes).toEqual(m.plan.hosts.map((h) => [h.index]))
    expect(p.hostsPerRuntimeMax).toBe(1)
  })

  it('puts the 200 hosts of the fan-out on 8 runtimes of at most 25, big groups in ranges, the short links inside', () => {
    const m = example('fanout.yaml')
    const p = placeHosts(m.plan, { runtimes: 8 })
    expectValid(m.plan, p.runtimes, 25)
    expect(p.runtimes.length).toBe(8)
    expect(p.hostsPerRuntimeMax).toBe(25)
    const lists = namesOf(m.plan, p.runtimes).map(formatHostList)
    // 180 back ends: 7 runtimes of 25 consecutive replicas; the rest shares a runtime with the
    // databases (20 us away), the front ends (50 us) and, last, the clients (1 ms).
    expect(lists).toEqual(['client-0..3,fe-0..3,be-175..179,db-0..11', 'be-0..24', 'be-25..49', 'be-50..74', 'be-75..99', 'be-100..124', 'be-125..149', 'be-150..174'])
  })

  it('cuts the longest link: of a 1 ms and a 10 us link, the hosts across the 10 us one share a runtime', () => {
    const m = chain(3, '{ hostsPerRuntime: 6 }')
    const p = placeHosts(m.plan, m.plan.placement)
    expectValid(m.plan, p.runtimes, 6)
    expect(namesOf(m.plan, p.runtimes).map(formatHostList)).toEqual(['a-0..2', 'b-0..2,c-0..2'])
    expect(p.cutLatencyNs).toBe(1_000_000)
    // Plan order in blocks (--partition 2) would cut the 10 us link instead.
    expect(formatHostList(m.plan.hosts.slice(0, 5).map((h) => h.name))).toBe('a-0..2,b-0..1')
  })

  it('a host with a live component always has a runtime of its own', () => {
    const m = mixedCluster(2)
    const p = placeHosts(m.plan, { runtimes: 1 })
    expect(namesOf(m.plan, p.runtimes)).toEqual([['client-0', 'api-0'], ['db-0'], ['db-1']])
  })

  it('splits sets over runtimes only when no runtime has room, never past the capacity', () => {
    // Seven groups of 13 into 4 runtimes of 23: no two groups fit together.
    const groups = Array.from({ length: 7 }, (_, g) => `    - { name: g${g}, replicas: 13, components: [{ name: s, model: { kind: Server, service: { distribution: Constant, mean: 1us } } }] }`)
    const m = manifest(`apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: odd }\nspec:\n  endTime: 1ms\n  hosts:\n${groups.join('\n')}\n`)
    const p = placeHosts(m.plan, { runtimes: 4 })
    expectValid(m.plan, p.runtimes, 23)
    expect(p.runtimes.length).toBe(4)
  })

  it('holds its invariants for every number of runtimes and hosts per runtime, and is the same every time', () => {
    const m = example('fanout.yaml')
    const topo = buildTopology(m.plan)
    const specs: PlacementSpec[] = [1, 2, 3, 5, 7, 8, 13, 40, 199, 200].map((runtimes) => ({ runtimes }))
    specs.push(...[1, 3, 25, 64, 200, 10_000].map((hostsPerRuntime) => ({ hostsPerRuntime })))
    for (const spec of specs) {
      const p = placeHosts(m.plan, spec, topo)
      const capacity = spec.runtimes !== undefined ? Math.ceil(200 / spec.runtimes) : Math.min(spec.hostsPerRuntime!, 200)
      expectValid(m.plan, p.runtimes, capacity)
      expect(p.runtimes.length, JSON.stringify(spec)).toBe(spec.runtimes ?? Math.ceil(200 / capacity))
      expect(placeHosts(m.plan, spec)).toEqual(p)
    }
  })
})

// The communication graph and the windows it allows: edges only where a message can go, latencies
// that are lower bounds of every link they stand for, distances no host path undercuts.
import { describe, expect, it } from 'vitest'
import type { RunPlan } from '../../sim-runtime/api/plan.ts'
import { HostGroup } from '../../sim-runtime/engine/group.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { runLocalWindow } from '../../sim-runtime/sync/runtime.ts'
import { buildTopology, cutLookaheadNs, internalLookaheadNs, RuntimeWindows, type Topology } from '../../sim-runtime/sync/topology.ts'
import { TOPOLOGY_WINDOW_MAX_NS, WindowClock } from '../../sim-runtime/sync/windows.ts'
import { manifest } from '../helpers.ts'

const server = (mean = '20us', calls = '') => `{ kind: Server, workers: 4, service: { distribution: Exponential, mean: ${mean} }${calls} }`

/** notes/scale-out.md §1: client ×1, fe ×1, be ×24, db ×2; client–fe 1 ms, fe–be 50 µs, be–db 20 µs, db–db 5 µs. */
function fanout(opts: { custom?: boolean; endTime?: string } = {}) {
  return manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: fanout }
spec:
  endTime: ${opts.endTime ?? '20ms'}
  seed: 5
  network:
    default: { latency: 100us }
    links:
      - { from: client, to: fe, latency: 1ms }
      - { from: fe, to: be, latency: 50us }
      - { from: be, to: db, latency: 20us }
      - { from: db, to: db, latency: 5us }
  hosts:
    - name: client
      components: [{ name: load, model: { kind: Client, target: fe/http, openLoop: { rate: 20000 }, timeout: 10ms } }]
    - name: fe
      components: [{ name: http, model: ${server('10us', ', callMode: FanOut, calls: [{ target: be/api }, { target: be/api }]')} }]
    - name: be
      replicas: 24
      components: [{ name: api, model: ${server('30us', ', calls: [{ target: db/sql }]')} }]
    - name: db
      replicas: 2
      components: [{ name: sql, model: ${server()} }]
${opts.custom ? `    - name: probe\n      components: [{ name: p, model: { kind: Custom, module: examples/custom/cache.mjs, params: { backend: db/sql } } }]\n` : ''}`).plan
}

const edgeMap = (t: Topology) => Object.fromEntries(t.edges.map((e) => [`${t.groups[e.from]}>${t.groups[e.to]}`, e.latencyNs]))
const hostsOf = (plan: RunPlan, ...groups: string[]) => groups.flatMap((g) => plan.groups.get(g)!)

describe('the communication graph', () => {
  it('has an edge each way per target and call, none for a link nothing uses, the latency of the rule that decides', () => {
    const plan = fanout()
    expect(plan.lookaheadNs).toBe(5_000) // the db–db link, which carries nothing
    expect(edgeMap(buildTopology(plan))).toEqual({
      'client>fe': 1_000_000,
      'fe>client': 1_000_000,
      'fe>be': 50_000,
      'be>fe': 50_000,
      'be>db': 20_000,
      'db>be': 20_000,
    })
  })

  it('lets a Custom component reach every group, and every group reach it', () => {
    const t = buildTopology(fanout({ custom: true }))
    const e = edgeMap(t)
    for (const g of ['client', 'fe', 'be', 'db']) {
      expect(e[`probe>${g}`]).toBe(100_000) // the default link: no rule names probe
      expect(e[`${g}>probe`]).toBe(100_000)
    }
    expect(e['probe>probe']).toBeUndefined() // a single host: nothing crosses a link
  })

  it('takes the last rule that covers every pair, and every later one that covers some as a lower bound', () => {
    const plan = manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: rules }
spec:
  endTime: 1ms
  network:
    default: { latency: 10us }
    links:
      - { from: a, to: b, latency: 1ms }
      - { from: a, to: b, latency: 300us }
      - { from: a-1, to: b, latency: 40us, bidirectional: false }
  hosts:
    - { name: a, replicas: 2, components: [{ name: c, model: { kind: Client, target: b/s, openLoop: { rate: 1 } } }] }
    - { name: b, components: [{ name: s, model: ${server()} }] }
`).plan
    const e = edgeMap(buildTopology(plan))
    expect(e['a>b']).toBe(40_000) // a-1 → b-0 takes the one-replica rule
    expect(e['b>a']).toBe(300_000) // that rule is one-way: b → a takes the group rule
    expect(plan.link(plan.hostIndex.get('a-0')!, plan.hostIndex.get('b-0')!).latencyNs).toBe(300_000)
  })

  it('gives the lookahead inside a process and between processes from the edges alone', () => {
    const plan = fanout()
    const t = buildTopology(plan)
    expect(internalLookaheadNs(t, plan.hosts.map((h) => h.index))).toBe(20_000)
    expect(internalLookaheadNs(t, hostsOf(plan, 'client', 'fe'))).toBe(1_000_000)
    expect(internalLookaheadNs(t, hostsOf(plan, 'db'))).toBe(Infinity) // db talks to no db
    expect(cutLookaheadNs(t, [hostsOf(plan, 'client', 'fe'), hostsOf(plan, 'be', 'db')])).toBe(50_000)
    expect(cutLookaheadNs(t, [hostsOf(plan, 'client', 'fe', 'be', 'db')])).toBe(Infinity)
  })
})

/** Shortest host paths over the host-level graph (every pair of hosts of two connected groups, their real link). */
function hostDistances(plan: RunPlan, t: Topology): Float64Array {
  const n = plan.hosts.length
  const d = new Float64Array(n * n).fill(Infinity)
  for (const e of t.edges) {
    for (const a of plan.groups.get(t.groups[e.from]!)!) {
      for (const b of plan.groups.get(t.groups[e.to]!)!) if (a !== b) d[a * n + b] = plan.link(a, b).latencyNs
    }
  }
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) d[i * n + j] = Math.min(d[i * n + j]!, d[i * n + k]! + d[k * n + j]!)
  return d
}

describe('per-runtime windows', () => {
  it('on the fan-out of notes/scale-out.md §1: client 1 ms, fe 50 µs, be and db 20 µs past a busy T', () => {
    const plan = fanout()
    const be = plan.groups.get('be')!
    const runtimes = [hostsOf(plan, 'client'), hostsOf(plan, 'fe'), be.slice(0, 6), be.slice(6, 12), be.slice(12, 18), be.slice(18), hostsOf(plan, 'db')]
    const w = new RuntimeWindows(buildTopology(plan), runtimes)
    expect(w.perRuntime).toBe(true)
    const ends = new Float64Array(7)
    w.ends(new Float64Array(7).fill(1_000_000), ends)
    expect([...ends].map((e) => e - 1_000_000)).toEqual([1_000_000, 50_000, 20_000, 20_000, 20_000, 20_000, 20_000])
    // An idle runtime waits for no one; a runtime that only the client reaches waits for the client.
    w.ends(Float64Array.from([5_000_000, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity]), ends)
    expect(ends[1]).toBe(6_000_000)
    expect(ends[6]).toBe(6_000_000 + 50_000 + 20_000)
  })

  it('never exceed what the host paths allow, for any split of the hosts', () => {
    const plan = fanout({ custom: true })
    const t = buildTopology(plan)
    const n = plan.hosts.length
    const d = hostDistances(plan, t)
    for (const seed of [1, 2, 3, 4, 5]) {
      // A pseudo-random split into 4 runtimes.
      const runtimes: number[][] = [[], [], [], []]
      for (let h = 0; h < n; h++) runtimes[(h * 7 + seed * 13 + ((h * seed) % 5)) % 4]!.push(h)
      const w = new RuntimeWindows(t, runtimes)
      runtimes.forEach((from, p) =>
        runtimes.forEach((to, r) => {
          let min = Infinity
          for (const a of from) for (const b of to) if (p !== r || a !== b) min = Math.min(min, d[a * n + b]!)
          if (p === r) {
            // C[r]: a path out of r and back, through a host of another runtime.
            min = Infinity
            for (const a of from) for (const b of to) for (let x = 0; x < n; x++) if (!from.includes(x)) min = Math.min(min, d[a * n + x]! + d[x * n + b]!)
          }
          expect(w.distanceNs(p, r)!).toBeLessThanOrEqual(min)
        }),
      )
    }
  })

  it('fall back to one window for all, the shortest edge between runtimes past the earliest, when the distances would cost too much', () => {
    const plan = manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: many }
spec:
  endTime: 1ms
  network: { default: { latency: 100us } }
  hosts:
    - { name: lp, replicas: 1000, components: [{ name: p, model: { kind: Phold, target: lp/p } }] }
`).plan
    // One runtime per LP: 1,000 cells, a million cell edges, a Dijkstra for each runtime.
    const w = new RuntimeWindows(buildTopology(plan), plan.hosts.map((h) => [h.index]), 500_000)
    expect(w.perRuntime).toBe(false)
    expect(w.distanceNs(0, 1)).toBeUndefined()
    const earliest = new Float64Array(1000).fill(Infinity)
    earliest[7] = 3_000
    const ends = new Float64Array(1000)
    w.ends(earliest, ends)
    expect(new Set(ends)).toEqual(new Set([103_000]))
  })

  it('move forward, never back, and end at the end time', () => {
    const plan = fanout({ endTime: '3ms' })
    const clock = new WindowClock(plan)
    clock.configure([hostsOf(plan, 'client'), hostsOf(plan, 'fe'), hostsOf(plan, 'be', 'db')], 'topology', true)
    expect(clock.perRuntime?.perRuntime).toBe(true)
    const ends = new Float64Array(3)
    expect(clock.nextPerRuntime(Float64Array.from([0, 0, 0]), ends)).toBe(true)
    expect([...ends]).toEqual([Math.min(1_000_000, TOPOLOGY_WINDOW_MAX_NS), 50_000, 50_000])
    expect(clock.nowNs).toBe(50_000)
    expect(clock.nextPerRuntime(Float64Array.from([2_900_000, 2_950_000, 2_990_000]), ends)).toBe(true)
    expect([...ends]).toEqual([3_000_000, 3_000_000, 3_000_000])
    expect(clock.nextPerRuntime(Float64Array.from([3_000_000, Infinity, Infinity]), ends)).toBe(false)
    expect(clock.barriers).toBe(2)
    // Going back would mean a runtime already ran past what could still reach it.
    const again = new WindowClock(plan)
    again.configure([hostsOf(plan, 'client'), hostsOf(plan, 'fe'), hostsOf(plan, 'be', 'db')], 'topology', true)
    again.nextPerRuntime(Float64Array.from([500_000, 500_000, 500_000]), ends)
    expect(() => again.nextPerRuntime(Float64Array.from([0, 0, 0]), ends)).toThrow(/before its last one/)
  })
})

describe('sub-windows inside one process', () => {
  it('hand messages between its hosts over and simulate what global windows do', () => {
    const plan = fanout({ endTime: '5ms' })
    const all = plan.hosts.map((h) => h.index)
    const group = new HostGroup(plan, all)
    group.start()
    // The whole run as one window of one runtime: 20 µs sub-windows (be–db), not 5 µs ones.
    const sub = runLocalWindow(group, plan.endTimeNs, internalLookaheadNs(buildTopology(plan), all))
    const global = simulateInProcess(plan, { windows: 'global' })
    expect(sub).toBeLessThan(global.sync.barriers)
    const [, left] = group.drainOutbox()
    expect(left).toBe(0) // nothing for another runtime
    const results = group.results()
    const events = Object.values(results).reduce((n, r) => n + r.events, 0)
    expect(events).toBeGreaterThan(1000)
    expect(Object.values(results).every((r) => r.causalityViolations === 0)).toBe(true)
    const topology = simulateInProcess(plan, { windows: 'topology' })
    expect(topology.digest).toBe(global.digest)
    expect(topology.sync.barriers).toBeLessThan(global.sync.barriers)
    expect(topology.sync.causalityViolations).toBe(0)
  })
})

describe('windows topology leaves as they were', () => {
  const plan = (sync: string, live: boolean) =>
    manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: kept }
spec:
  endTime: 1ms
  ${sync}
  network:
    default: { latency: 10us }
    links: [{ from: z, to: c, latency: 2us }]
  hosts:
    - { name: c, components: [{ name: load, model: { kind: Client, target: s/svc, openLoop: { rate: 1000 } } }] }
    - { name: s, components: [{ name: svc, model: ${server()} }] }
    - { name: z, components: [${live ? '{ name: prog, live: { command: [sleep, "1"] } }' : `{ name: idle, model: ${server()} }`}] }
`).plan

  it('bound the aligned windows of a live run by the links between runtimes that can carry a message', () => {
    const p = plan('', true)
    const runtimes = [hostsOf(p, 'c', 's'), hostsOf(p, 'z')]
    // z serves no port and nothing targets it: the 2 µs link to it carries nothing.
    const topology = new WindowClock(p)
    topology.configure(runtimes, 'topology', true)
    expect(topology.runtimeLookaheadNs).toBe(Infinity)
    expect(topology.perRuntime).toBeUndefined()
    const global = new WindowClock(p)
    global.configure(runtimes, 'global', true)
    expect(global.runtimeLookaheadNs).toBe(2_000)
  })

  it('keep global windows in Slack mode and with fixed stepping', () => {
    for (const [p, stepping] of [[plan('sync: { mode: Slack, slack: 5us }', false), 'adaptive'], [plan('', false), 'fixed']] as const) {
      const clock = new WindowClock(p, stepping)
      clock.configure([hostsOf(p, 'c', 's'), hostsOf(p, 'z')], 'topology', true)
      expect(clock.perRuntime).toBeUndefined()
      expect(clock.lookaheadNs).toBe(2_000)
    }
    // Conservative and adaptive: the c–s links alone (10 µs) bound the windows.
    const p = plan('', false)
    const clock = new WindowClock(p)
    clock.configure([p.hosts.map((h) => h.index)], 'topology', false)
    expect(clock.lookaheadNs).toBe(10_000)
  })
})

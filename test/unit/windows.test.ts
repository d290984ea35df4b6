// Windows of runs with live components: as long as the links between runtimes allow, stepped through
// in quanta by each runtime, which hands messages between its own hosts over at every quantum's end.
import { describe, expect, it } from 'vitest'
import { HostGroup } from '../../sim-runtime/engine/group.ts'
import { WIRE_SLOTS } from '../../sim-runtime/engine/message.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { runWindow } from '../../sim-runtime/sync/runtime.ts'
import { LIVE_WINDOW_MAX_NS, runtimeLookaheadNs, WindowClock } from '../../sim-runtime/sync/windows.ts'
import { manifest } from '../helpers.ts'

const LIVE = `    - name: z
      components:
        - name: prog
          live: { command: [sleep, "1"] }
`
/** Client hosts c (Poisson, to s/svc), server s, and optionally the live host z; 10 µs links unless `network` says otherwise. */
function cluster(opts: { live?: boolean; quantum?: string; endTime?: string; network?: string; servers?: number } = {}) {
  return manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: windows }
spec:
  endTime: ${opts.endTime ?? '1ms'}
  seed: 7
  network: ${opts.network ?? '{ default: { latency: 10us, bandwidth: 10Gbps } }'}
${opts.quantum ? `  sync: { quantum: ${opts.quantum} }\n` : ''}  hosts:
    - name: c
      components:
        - name: load
          model: { kind: Client, target: s/svc, openLoop: { rate: 200000 }, timeout: 1ms }
    - name: s
      replicas: ${opts.servers ?? 1}
      components:
        - name: svc
          model: { kind: Server, workers: 2, service: { distribution: Exponential, mean: 3us } }
${opts.live === false ? '' : LIVE}`).plan
}

describe('windows of a run with live components', () => {
  it('span as many whole quanta as the links between runtimes allow, at most 1 ms and never past the end', () => {
    const plan = cluster({ endTime: '2500us' })
    expect(plan.quantumNs).toBe(10_000)
    expect(LIVE_WINDOW_MAX_NS).toBe(1_000_000)
    const clock = new WindowClock(plan)
    // Until the leader knows the runtimes: the run's lookahead, one quantum.
    expect(clock.next(Infinity)).toBe(10_000)
    // One runtime carries every host: 1 ms windows (100 quanta), whatever the next event.
    clock.runtimeLookaheadNs = Infinity
    expect(clock.next(Infinity)).toBe(1_010_000)
    expect(clock.next(1_010_500)).toBe(2_010_000)
    // The end time cuts the last window short.
    expect(clock.next(Infinity)).toBe(2_500_000)
    expect(clock.next(Infinity)).toBe(-1)
    expect(clock.barriers).toBe(4)

    // A quantum of 3 µs on 10 µs links between runtimes: windows of three quanta.
    const q3 = new WindowClock(cluster({ quantum: '3us' }))
    q3.runtimeLookaheadNs = 10_000
    expect([q3.next(Infinity), q3.next(Infinity)]).toEqual([9_000, 18_000])
  })

  it('leave a run without live components as it was: idle stretches skipped, one lookahead past the next event', () => {
    const clock = new WindowClock(cluster({ live: false }))
    clock.runtimeLookaheadNs = Infinity // not consulted without live components
    expect(clock.next(500_000)).toBe(510_000)
    expect(clock.next(510_000)).toBe(520_000)
  })

  it('runtime lookahead: the shortest link between hosts of different runtimes, Infinity with one runtime', () => {
    const plan = manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: lookahead }
spec:
  endTime: 1ms
  network:
    default: { latency: 50us }
    links: [{ from: a, to: b, latency: 2us }]
  hosts:
    - { name: a, components: [{ name: s, model: { kind: Server, service: { distribution: Constant, mean: 1us } } }] }
    - { name: b, components: [{ name: s, model: { kind: Server, service: { distribution: Constant, mean: 1us } } }] }
    - { name: c, components: [{ name: s, model: { kind: Server, service: { distribution: Constant, mean: 1us } } }] }
`).plan
    const [a, b, c] = ['a-0', 'b-0', 'c-0'].map((n) => plan.hostIndex.get(n)!) as [number, number, number]
    expect(plan.lookaheadNs).toBe(2_000)
    expect(runtimeLookaheadNs(plan, [[a, b, c]])).toBe(Infinity)
    expect(runtimeLookaheadNs(plan, [[a, b, c], []])).toBe(Infinity)
    // The 2 µs link a → b stays inside a runtime: only the 50 µs ones cross.
    expect(runtimeLookaheadNs(plan, [[a, b], [c]])).toBe(50_000)
    expect(runtimeLookaheadNs(plan, [[a], [b, c]])).toBe(2_000)
  })
})

describe('runWindow', () => {
  it('steps a window in quanta and hands messages between its own hosts over at each quantum end: the same results as windows routed by the leader', async () => {
    // The modelled hosts c-0 and s-0 of a live run, carried by one runtime (the live host z by
    // another), through one 1 ms window; against the same two hosts without z in the in-process
    // driver, whose 10 µs windows the messages cross one by one.
    const plan = cluster({ endTime: '1ms' })
    const group = new HostGroup(plan, ['c-0', 's-0'].map((n) => plan.hostIndex.get(n)!))
    group.start()
    const quanta: [number, number][] = []
    const live = { runQuantum: async (a: number, b: number) => void quanta.push([a, b]) }
    expect(await runWindow(group, live, 0, plan.endTimeNs)).toBe(100)
    expect(quanta).toHaveLength(100)
    expect(quanta[0]).toEqual([0, 10_000])
    expect(quanta[99]).toEqual([990_000, 1_000_000])
    expect(group.drainOutbox()[1]).toBe(0)

    const reference = simulateInProcess(cluster({ endTime: '1ms', live: false }))
    const got = group.results()
    const load = got['c-0']!.components.load as { sent: number; completed: number }
    expect(load.completed).toBeGreaterThan(100)
    expect(got['c-0']!.components).toEqual(reference.hosts['c-0']!.components)
    expect(got['s-0']!.components).toEqual(reference.hosts['s-0']!.components)
    expect(got['c-0']!.links['c-0->s-0']).toEqual(reference.links['c-0->s-0'])
    expect(got['s-0']!.links['s-0->c-0']).toEqual(reference.links['s-0->c-0'])
  })

  it('keeps messages to hosts of other runtimes for the leader, in the order they were sent', async () => {
    const plan = cluster({ servers: 2 })
    const remote = plan.hostIndex.get('s-1')!
    const group = new HostGroup(plan, ['c-0', 's-0'].map((n) => plan.hostIndex.get(n)!))
    group.start()
    await runWindow(group, undefined, 0, 100_000)
    const [msgs, n] = group.drainOutbox()
    expect(n).toBeGreaterThan(5)
    const times: number[] = []
    for (let i = 0; i < n; i++) {
      expect(msgs[i * WIRE_SLOTS + 4]).toBe(remote)
      times.push(msgs[i * WIRE_SLOTS]!)
    }
    expect(times).toEqual([...times].sort((x, y) => x - y))
    // Those sent to s-0 were served here within the window.
    expect((group.results()['s-0']!.components.svc as { completed: number }).completed).toBeGreaterThan(5)
  })

  it('runs a window of a run without live components in one go, as the in-process driver does', async () => {
    const plan = cluster({ live: false })
    const group = new HostGroup(plan, plan.hosts.map((h) => h.index))
    group.start()
    const live = { runQuantum: async () => { throw new Error('no live components') } }
    expect(await runWindow(group, live, 0, 50_000)).toBe(1) // five lookaheads: one step all the same
  })
})

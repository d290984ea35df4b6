// A window's work grows with the hosts that have events in it, not with all the hosts of a group;
// hosts left idle are brought to the group's time when a message reaches them.
import { describe, expect, it, vi } from 'vitest'
import { HostGroup } from '../../sim-runtime/engine/group.ts'
import { HostSim } from '../../sim-runtime/engine/host.ts'
import { HostQueue } from '../../sim-runtime/engine/host-queue.ts'
import { Rng } from '../../sim-runtime/engine/rng.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { WindowClock } from '../../sim-runtime/sync/windows.ts'
import { manifest } from '../helpers.ts'

describe('host queue', () => {
  it('always yields the slot with the earliest key (ties: the lowest slot), whatever the order of changes', () => {
    const rng = new Rng(3, 'host-queue-test')
    const n = 37
    const q = new HostQueue(n)
    const keys = new Array<number>(n).fill(Infinity)
    expect(q.minKey()).toBe(Infinity)
    for (let i = 0; i < 20_000; i++) {
      const slot = rng.below(n)
      const t = rng.below(10) === 0 ? Infinity : rng.below(200)
      q.set(slot, t)
      keys[slot] = t
      const min = Math.min(...keys)
      expect(q.minKey()).toBe(min)
      if (min < Infinity) expect(q.minSlot()).toBe(keys.indexOf(min))
      expect(q.keyOf(slot)).toBe(t)
    }
    expect(new HostQueue(0).minKey()).toBe(Infinity)
  })
})

/** One client and one server that talk (at `rate` requests/s), and `idle` servers nobody calls. */
function wide(idle: number, extra = '', rate = 20000) {
  return manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: wide }
spec:
  endTime: ${rate < 1000 ? "200ms" : "20ms"}
  seed: 5
  network: { default: { latency: 100us, bandwidth: 10Gbps } }
${extra}  hosts:
    - name: c
      components:
        - name: load
          model: { kind: Client, target: s/svc, openLoop: { rate: ${rate} }, timeout: 5ms }
    - name: s
      components:
        - name: svc
          model: { kind: Server, workers: 2, service: { distribution: Exponential, mean: 20us } }
    - name: idle
      replicas: ${idle}
      components:
        - name: svc
          model: { kind: Server, workers: 1, service: { distribution: Constant, mean: 1us } }
`).plan
}

describe('a group of hosts', () => {
  it('visits only the hosts with events in a window, however many are idle', () => {
    const runs = (idle: number) => {
      // Every link in both runs' host results, though 302 hosts would get per-group results by default.
      const plan = wide(idle, '  results: { detail: Hosts }\n')
      const spy = vi.spyOn(HostSim.prototype, 'runUntil')
      try {
        const group = new HostGroup(plan, plan.hosts.map((h) => h.index))
        const clock = new WindowClock(plan)
        group.start()
        group.routeLocal()
        for (let end = clock.next(group.nextEventNs()); end >= 0; end = clock.next(group.nextEventNs())) {
          group.runUntil(end)
          group.routeLocal()
        }
        const results = group.results()
        return { calls: spy.mock.calls.length, windows: clock.barriers, results }
      } finally {
        spy.mockRestore()
      }
    }
    const few = runs(2)
    const many = runs(300)
    expect(many.windows).toBe(few.windows)
    expect(few.windows).toBeGreaterThan(150)
    // At most the two busy hosts per window, plus one catch-up per delivery to a host left behind
    // and each host's final catch-up for its results: not 302 per window.
    expect(many.calls - few.calls).toBe(298)
    expect(many.calls).toBeLessThan(4 * many.windows + 302)
    expect(many.results['s-0']).toEqual(few.results['s-0'])
    expect(many.results['c-0']).toEqual(few.results['c-0'])
  })

  it('brings a host left idle to the group time before a message reaches it: late messages count as before (Slack)', () => {
    // In Slack mode a message may arrive after the time it was due: its receiver, idle since its
    // last request, must stand where every host stands for the lateness to be seen and counted.
    // 200 requests/s: the server is idle for ~5 ms between them, the client between replies.
    const plan = wide(3, '  sync: { mode: Slack, slack: 300us }\n', 200)
    const r = simulateInProcess(plan)
    const load = r.hosts['c-0']!.components.load as { completed: number }
    const svc = r.hosts['s-0']!.components.svc as { completed: number }
    expect(load.completed).toBeGreaterThan(0)
    // Every request and every reply crosses a 100 µs link inside windows of 400 µs: most arrive late.
    expect(r.sync.causalityViolations).toBeGreaterThanOrEqual(svc.completed)
    expect(r.sync.latenessMaxNs).toBeLessThanOrEqual(300_000)
    expect(r.sync.latenessTotalNs).toBeGreaterThan(0)
  })
})

import { describe, expect, it } from 'vitest'
import { EventHeap, type SimEvent } from '../../sim-runtime/engine/heap.ts'
import { Histogram } from '../../sim-runtime/engine/histogram.ts'
import { Rng } from '../../sim-runtime/engine/rng.ts'
import { Deque } from '../../sim-runtime/engine/deque.ts'
import '../../sim-runtime/components/index.ts'
import { componentFactory, type ComponentFactory } from '../../sim-runtime/components/component.ts'
import { HostSim } from '../../sim-runtime/engine/host.ts'
import { manifest } from '../helpers.ts'

describe('event heap', () => {
  it('pops in (time, origin host, origin sequence) order whatever the insertion order', () => {
    const rng = new Rng(1, 'heap-test')
    const events: SimEvent[] = []
    for (let i = 0; i < 5000; i++) events.push({ t: rng.below(50), o: rng.below(4), s: i })
    const heap = new EventHeap<SimEvent>()
    for (const e of [...events].reverse()) heap.push(e)
    const out: SimEvent[] = []
    while (heap.size) out.push(heap.pop()!)
    const sorted = [...events].sort((a, b) => a.t - b.t || a.o - b.o || a.s - b.s)
    expect(out).toEqual(sorted)
  })
})

describe('random streams', () => {
  it('are reproducible per (seed, path) and independent across paths', () => {
    const a = new Rng(42, 'web-0/http#service')
    const b = new Rng(42, 'web-0/http#service')
    const c = new Rng(42, 'web-1/http#service')
    const xs = Array.from({ length: 100 }, () => a.uniform())
    expect(Array.from({ length: 100 }, () => b.uniform())).toEqual(xs)
    expect(Array.from({ length: 100 }, () => c.uniform())).not.toEqual(xs)
  })
  it('draw uniforms in [0,1) and exponentials with the right mean', () => {
    const r = new Rng(7, 'mean')
    let sum = 0
    let min = 1
    let max = 0
    const n = 200_000
    for (let i = 0; i < n; i++) {
      const u = r.uniform()
      min = Math.min(min, u)
      max = Math.max(max, u)
      sum += r.exponential(3)
    }
    expect(min).toBeGreaterThanOrEqual(0)
    expect(max).toBeLessThan(1)
    // Standard error of the mean of Exp(3) over n draws is 3/sqrt(n) ≈ 0.0067: allow 5 of them.
    expect(Math.abs(sum / n - 3)).toBeLessThan(5 * (3 / Math.sqrt(n)))
  })
})

describe('histogram', () => {
  it('keeps count, mean, min and max exact and quantiles within 0.4%', () => {
    const h = new Histogram()
    for (let v = 1; v <= 100_000; v++) h.record(v * 1000)
    expect(h.count).toBe(100_000)
    expect(h.mean()).toBe(50_000_500)
    expect(h.min).toBe(1000)
    expect(h.max).toBe(100_000_000)
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = Math.ceil(q * 100_000) * 1000
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThan(0.004)
    }
  })
  it('is exact for small values', () => {
    const h = new Histogram()
    for (const v of [0, 1, 1, 2, 200]) h.record(v)
    expect(h.quantile(0.5)).toBe(1)
    expect(h.quantile(1)).toBe(200)
  })
})

describe('deque', () => {
  it('is FIFO across growth and wrap-around', () => {
    const d = new Deque<number>()
    const ref: number[] = []
    for (let i = 0; i < 1000; i++) {
      d.push(i)
      ref.push(i)
      if (i % 3 === 0) expect(d.shift()).toBe(ref.shift())
    }
    while (ref.length) expect(d.shift()).toBe(ref.shift())
    expect(d.shift()).toBeUndefined()
  })
})

describe('a loop that never advances virtual time', () => {
  const cluster = (think: string, service: string, users = 1) =>
    manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: instant }
spec:
  endTime: 50ms
  network: { default: { latency: 100us } }
  hosts:
    - name: a
      components:
        - name: c
          model: { kind: Client, target: a/s, closedLoop: { users: ${users}, thinkTime: ${think} } }
        - name: s
          model: { kind: Server, workers: 1, service: { distribution: Constant, mean: ${service} } }
`).plan

  /** The real Client, with a watchdog: should the guard not trip, the test fails instead of spinning forever. */
  const watched = (): Map<string, ComponentFactory> => {
    let events = 0
    const watch = () => {
      if (++events > 100_000) throw new Error('watchdog: 100000 client events and the guard did not trip')
    }
    const factory: ComponentFactory = (model, ctx) => {
      const inner = componentFactory('Client')!(model, ctx)
      return {
        start: () => inner.start(),
        onTimer: (type, data) => (watch(), inner.onTimer(type, data)),
        onMessage: (msg) => (watch(), inner.onMessage(msg)),
        results: (end) => inner.results(end),
      }
    }
    return new Map([['a-0/c', factory]])
  }

  it('fails the run, naming the components on the loop, instead of spinning at one instant', () => {
    const host = new HostSim(cluster('0s', '0s'), 0, watched())
    host.instantEventLimit = 5_000
    host.start()
    expect(() => host.runUntil(50_000_000)).toThrow(
      /^a-0: 5000 events at virtual time 0ns without time advancing: a loop with no delay in it, through a-0\/(c|s) \(500 of the last 1000\), a-0\/(c|s) \(500 of the last 1000\); give it time/,
    )
  })

  it('lets a burst at one instant below the limit through, and counts per instant, not per run', () => {
    // 1000 users start together (several thousand events at 0 ns), then ~50 requests each.
    const host = new HostSim(cluster('1ms', '1us', 1000), 0)
    host.instantEventLimit = 5_000
    host.start()
    host.runUntil(50_000_000)
    expect(host.eventsProcessed).toBeGreaterThan(20 * host.instantEventLimit)
  })
})

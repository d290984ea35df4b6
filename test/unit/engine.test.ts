import { describe, expect, it } from 'vitest'
import { EventHeap, type SimEvent } from '../../sim-runtime/engine/heap.ts'
import { Histogram } from '../../sim-runtime/engine/histogram.ts'
import { Rng } from '../../sim-runtime/engine/rng.ts'
import { Deque } from '../../sim-runtime/engine/deque.ts'

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

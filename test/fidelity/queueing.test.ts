// Fidelity against closed forms. Each estimate comes from R independent replications (different
// seeds, so independent streams); the bound is 4 standard errors of the replication means, and
// the estimate must also be within a few percent of the formula. Seeds are fixed, so the test is
// repeatable, but the bound is what a statistician would accept for these sample sizes.
import { describe, expect, it } from 'vitest'
import { LinkState } from '../../sim-runtime/network/link.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { manifest } from '../helpers.ts'

interface Stats {
  count: number
  meanNs: number
}

function queue(opts: { rate: number; workers: number; meanService: string; endTime: string; seed: number }) {
  return manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: mmc }
spec:
  endTime: ${opts.endTime}
  seed: ${opts.seed}
  hosts:
    - name: box
      components:
        - name: load
          model: { kind: Client, target: srv, openLoop: { rate: ${opts.rate} } }
        - name: srv
          model: { kind: Server, workers: ${opts.workers}, service: { distribution: Exponential, mean: ${opts.meanService} } }
`)
}

function replicate(reps: number, run: (seed: number) => number): { mean: number; se: number } {
  const xs = Array.from({ length: reps }, (_, i) => run(1000 + i))
  const mean = xs.reduce((a, b) => a + b, 0) / reps
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (reps - 1)
  return { mean, se: Math.sqrt(variance / reps) }
}

function erlangC(c: number, a: number): number {
  let sum = 0
  let term = 1
  for (let k = 0; k < c; k++) {
    if (k > 0) term *= a / k
    sum += term
  }
  const last = (term * a) / c // a^c / c!
  const tail = (last * c) / (c - a)
  return tail / (sum + tail)
}

describe('M/M/1 mean response time = 1/(μ−λ)', () => {
  it.each([
    { rho: 0.5, reps: 10, endTime: '60s' },
    { rho: 0.9, reps: 12, endTime: '200s' },
  ])('at ρ = $rho', ({ rho, reps, endTime }) => {
    const mu = 1000 // service rate per second: mean service 1ms
    const lambda = rho * mu
    const theoryNs = 1e9 / (mu - lambda)
    let samples = 0
    const est = replicate(reps, (seed) => {
      const r = simulateInProcess(queue({ rate: lambda, workers: 1, meanService: '1ms', endTime, seed }).plan)
      expect(r.sync.causalityViolations).toBe(0)
      const latency = (r.hosts['box-0']!.components.load as { latency: Stats }).latency
      samples += latency.count
      return latency.meanNs
    })
    expect(samples).toBeGreaterThan(reps * lambda * Number.parseInt(endTime) * 0.95)
    expect(Math.abs(est.mean - theoryNs)).toBeLessThan(4 * est.se)
    expect(Math.abs(est.mean - theoryNs) / theoryNs).toBeLessThan(rho < 0.8 ? 0.02 : 0.05)
  }, 120_000)
})

describe('M/M/c mean wait in queue = C(c, a) / (cμ − λ) (Erlang C)', () => {
  it.each([
    { c: 4, rho: 0.8 },
    { c: 2, rho: 0.6 },
  ])('with c = $c at ρ = $rho', ({ c, rho }) => {
    const mu = 1000
    const lambda = rho * c * mu
    const theoryNs = (erlangC(c, lambda / mu) / (c * mu - lambda)) * 1e9
    const est = replicate(10, (seed) => {
      const r = simulateInProcess(queue({ rate: lambda, workers: c, meanService: '1ms', endTime: '60s', seed }).plan)
      return (r.hosts['box-0']!.components.srv as { wait: Stats }).wait.meanNs
    })
    expect(Math.abs(est.mean - theoryNs)).toBeLessThan(4 * est.se)
    expect(Math.abs(est.mean - theoryNs) / theoryNs).toBeLessThan(0.05)
  }, 120_000)
})

describe('network links', () => {
  it('one transfer takes exactly latency + size/bandwidth, end to end through two hosts', () => {
    const m = manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: wire }
spec:
  endTime: 1s
  network: { default: { latency: 1ms, bandwidth: 1Mbps } }
  hosts:
    - name: a
      components:
        - name: c
          model: { kind: Client, target: b/s, closedLoop: { users: 1 }, requestSize: 1250, responseSize: 0 }
    - name: b
      components:
        - name: s
          model: { kind: Server, service: { distribution: Constant, mean: 0s } }
`)
    const r = simulateInProcess(m.plan)
    expect(r.sync.causalityViolations).toBe(0)
    const lat = (r.hosts['a-0']!.components.c as { latency: Stats & { maxNs: number; p50Ns: number } }).latency
    // Request: 1ms + 1250 B × 8 / 1 Mbps = 11ms; reply of 0 bytes: 1ms. Every round trip is 12ms.
    expect(lat.count).toBe(Math.floor(1e9 / 12e6))
    expect(lat.meanNs).toBe(12_000_000)
    expect(lat.maxNs).toBe(12_000_000)
    expect(r.links['a-0->b-0']).toEqual({ messages: lat.count + 1, bytes: (lat.count + 1) * 1250, drops: 0 })
  })

  it('queues FIFO at the sender, bounds the queue, and draws loss from its own stream', () => {
    const link = new LinkState({ latencyNs: 100, bandwidthBitsPerSec: 8e9, loss: 0, queueLimit: 2 }, 1, 'x')
    // 1000 B at 8 Gbps = 1000 ns each.
    expect(link.transmit(0, 1000)).toBe(1100)
    expect(link.transmit(0, 1000)).toBe(2100) // waits for the first
    expect(link.transmit(0, 1000)).toBe(3100) // second waiting
    expect(link.transmit(0, 1000)).toBe(-1) // two already waiting: dropped
    expect(link.transmit(5000, 1000)).toBe(6100) // link idle again
    expect(link.drops).toBe(1)
    const lossy = new LinkState({ latencyNs: 1, bandwidthBitsPerSec: 1e12, loss: 0.25, queueLimit: 1e6 }, 1, 'y')
    let lost = 0
    for (let i = 0; i < 40_000; i++) if (lossy.transmit(i * 1000, 1) < 0) lost++
    expect(Math.abs(lost / 40_000 - 0.25)).toBeLessThan(4 * Math.sqrt((0.25 * 0.75) / 40_000))
  })
})

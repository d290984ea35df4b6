import { describe, expect, it } from 'vitest'
import { manifest } from '../helpers.ts'

const base = (links: string, dflt = '{ latency: 100us, bandwidth: 10Gbps }', replicas = 2) =>
  manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: p }
spec:
  endTime: 1s
  network:
    default: ${dflt}
    links: ${links}
  hosts:
    - name: a
      replicas: ${replicas}
      components: [{ name: s, model: { kind: Server, service: { distribution: Constant, mean: 1ms } } }]
    - name: b
      components: [{ name: s, model: { kind: Server, service: { distribution: Constant, mean: 1ms } } }]
`).plan

describe('run plan links', () => {
  it('applies the last matching rule, both ways unless one-way, by group or by replica', () => {
    const p = base(`[{ from: a, to: b, latency: 1ms }, { from: a-1, to: b, latency: 2ms, bidirectional: false }]`)
    const [a0, a1, b0] = ['a-0', 'a-1', 'b-0'].map((n) => p.hostIndex.get(n)!) as [number, number, number]
    expect(p.link(a0, b0).latencyNs).toBe(1e6)
    expect(p.link(b0, a0).latencyNs).toBe(1e6)
    expect(p.link(a1, b0).latencyNs).toBe(2e6)
    expect(p.link(b0, a1).latencyNs).toBe(1e6) // the one-way rule does not apply backwards
    expect(p.link(a0, a1).latencyNs).toBe(1e5) // default between replicas of a
    expect(p.link(a0, b0).bandwidthBitsPerSec).toBe(1e10) // unset fields come from the default
  })
  it('takes the lookahead from the smallest latency any pair of distinct hosts uses', () => {
    expect(base(`[{ from: a, to: b, latency: 1ms }]`).lookaheadNs).toBe(1e5)
    // Every ordered pair of groups covered by rules: the default is never used.
    expect(base(`[{ from: a, to: b, latency: 1ms }, { from: a, to: a, latency: 3ms }]`, '{ latency: 10us }').lookaheadNs).toBe(1e6)
    // A single replica of a has no pair within its group.
    expect(base(`[{ from: a, to: b, latency: 1ms }]`, '{ latency: 10us }', 1).lookaheadNs).toBe(1e6)
  })
  it('resolves many rules over large groups without expanding every pair', () => {
    const links = `[${Array.from({ length: 100 }, (_, i) => `{ from: a, to: b, latency: ${i + 1}ms }`).join(', ')}]`
    const p = base(links, undefined, 500)
    expect(p.link(p.hostIndex.get('a-499')!, p.hostIndex.get('b-0')!).latencyNs).toBe(100e6)
    expect(p.lookaheadNs).toBe(1e5)
  })
})

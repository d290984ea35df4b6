// PHOLD as ROSS defines it: an event causes one more at now + lookahead + Exp(mean − lookahead), at
// a random LP with probability `remote` (itself included), else at itself.
import { describe, expect, it } from 'vitest'
import { ValidationError } from '../../sim-runtime/api/validate.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { manifest } from '../helpers.ts'

function phold(lps: number, phold: string, opts: { endTime?: string; latency?: string; target?: string } = {}) {
  return manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: phold }
spec:
  endTime: ${opts.endTime ?? '200ms'}
  seed: 3
  network: { default: { latency: ${opts.latency ?? '100us'}, bandwidth: 10Gbps } }
  hosts:
    - name: lp
      replicas: ${lps}
      components:
        - name: phold
          model: { kind: Phold, target: ${opts.target ?? 'lp/phold'}, phold: ${phold} }
    - name: s
      components: [{ name: svc, model: { kind: Server, service: { distribution: Constant, mean: 1us } } }]
`).plan
}

interface Counts {
  events: number
  remoteSent: number
}

/** The LPs' counters, summed over the group. */
function counts(r: ReturnType<typeof simulateInProcess>): Counts & { engineEvents: number } {
  const lp = r.groups.lp!
  return { ...(lp.components.phold as unknown as Counts), engineEvents: lp.events }
}

describe('Phold', () => {
  it('processes endTime / mean events per LP and start event, a remote share of them, each remote one after a timer', () => {
    const r = simulateInProcess(phold(50, '{ remote: 0.5, mean: 1ms, lookahead: 100us, startEvents: 4 }', { endTime: '400ms' }))
    const c = counts(r)
    // 50 LPs × 4 start events × 400 ms / 1 ms: 80,000 in expectation (sd ≈ 0.5 %).
    expect(c.events).toBeGreaterThan(78_000)
    expect(c.events).toBeLessThan(82_000)
    // Remote: 0.5, less the draws of the LP itself (1 in 50).
    expect(c.remoteSent / c.events).toBeGreaterThan(0.48)
    expect(c.remoteSent / c.events).toBeLessThan(0.5)
    // The engine's events: PHOLD's, and the timer before each remote send (those sent near the end
    // have not arrived).
    expect(c.engineEvents - c.events - c.remoteSent).toBeLessThanOrEqual(0)
    expect(c.engineEvents - c.events - c.remoteSent).toBeGreaterThan(-50 * 4)
    expect(r.sync.causalityViolations).toBe(0)
  })

  it('never causes an event sooner than the lookahead: links of the lookahead carry remote ones, windows of it are safe', () => {
    // With mean = lookahead every increment is exactly the lookahead: 1 ms / 100 µs = 10 events per start event.
    const r = simulateInProcess(phold(20, '{ remote: 1, mean: 100us, lookahead: 100us }', { endTime: '1050us' }))
    expect(counts(r).events).toBe(20 * 10)
    expect(r.sync.causalityViolations).toBe(0)
  })

  it('is refused with a target that is not Phold, or a lookahead longer than the mean', () => {
    expect(() => phold(2, '{}', { target: 's/svc' })).toThrow(ValidationError)
    expect(() => phold(2, '{}', { target: 's/svc' })).toThrow(/spec.hosts\[0\].components\[0\].model.target: s\/svc is Server; a Phold sends its events to the Phold components/)
    expect(() => phold(2, '{ mean: 1ms, lookahead: 2ms }')).toThrow(/model.phold.lookahead: 2000000ns is longer than the mean \(1000000ns\)/)
    expect(() => phold(2, '{ remote: 2 }')).toThrow(/phold.remote: must be <= 1/)
  })
})

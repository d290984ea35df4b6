import { describe, expect, it } from 'vitest'
import { conditionsFor, onlyProgressDiffers, setCondition, type ClusterStatus } from '../../../operator/simcluster/status.ts'

const t0 = new Date('2026-01-01T00:00:00Z')
const t1 = new Date('2026-01-01T00:01:00Z')

describe('conditions', () => {
  it('keep lastTransitionTime when the status does not change', () => {
    const a = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: '' }, t0)
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'B', message: 'x' }, t1)
    expect(b[0]!.lastTransitionTime).toBe('2026-01-01T00:00:00Z')
    expect(b[0]!.reason).toBe('B')
    const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'C', message: '' }, t1)
    expect(c[0]!.lastTransitionTime).toBe('2026-01-01T00:01:00Z')
  })

  it('follow the phase the way kstatus and kubectl wait expect', () => {
    const byType = (s: ClusterStatus, hostsReady = false) => Object.fromEntries(conditionsFor(s, 3, 'R', 'm', hostsReady, t0).map((c) => [c.type, c.status]))
    expect(byType({ phase: 'Running' }, true)).toEqual({ Ready: 'False', Reconciling: 'True', Stalled: 'False', HostsReady: 'True', Complete: 'False', Failed: 'False' })
    expect(byType({ phase: 'Succeeded' }, true)).toEqual({ Ready: 'True', Reconciling: 'False', Stalled: 'False', HostsReady: 'True', Complete: 'True', Failed: 'False' })
    expect(byType({ phase: 'Failed' })).toEqual({ Ready: 'False', Reconciling: 'False', Stalled: 'True', HostsReady: 'False', Complete: 'False', Failed: 'True' })
    expect(conditionsFor({ phase: 'Scheduling' }, 3, 'R', 'm', false, t0).every((c) => c.observedGeneration === 3)).toBe(true)
  })

  it('tell progress-only changes (rate-limited) from real ones (written at once)', () => {
    const base: ClusterStatus = { phase: 'Running', virtualTime: '1s', progress: '10%', hosts: { ready: 2, total: 2 } }
    expect(onlyProgressDiffers(base, { ...base, virtualTime: '2s', progress: '20%' })).toBe(true)
    expect(onlyProgressDiffers(base, { ...base, phase: 'Succeeded' })).toBe(false)
    // The stragglers move with every barrier: written with progress, at most every progressWriteMs.
    const straggler = { runtime: 'web-0-a1', hosts: 'web-0', lastToReport: 3, reportSeconds: 0.1, waitSeconds: 0, reportP50Seconds: 0.001, reportP99Seconds: 0.002 }
    expect(onlyProgressDiffers(base, { ...base, stragglers: [straggler] })).toBe(true)
  })
})

// Skip-ahead and Slack mode, measured on counts (never on timing).
import { describe, expect, it } from 'vitest'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { example, runProcesses } from '../helpers.ts'

describe('skip-ahead', () => {
  it('needs at most 1/10 of the barriers of fixed-quantum stepping on the sparse example, with the same digest', async () => {
    const m = example('sparse.yaml')
    const adaptive = await runProcesses(m, { partition: 2 })
    const fixed = await runProcesses(m, { partition: 2, stepping: 'fixed' })
    // Fixed stepping takes exactly endTime / lookahead windows.
    expect(fixed.sync.barriers).toBe(m.plan.endTimeNs / m.plan.lookaheadNs)
    expect(adaptive.sync.barriers).toBeLessThanOrEqual(fixed.sync.barriers / 10)
    expect(adaptive.digest).toBe(fixed.digest)
    expect(adaptive.sync.causalityViolations).toBe(0)
    expect(fixed.sync.causalityViolations).toBe(0)
    // The sparse example does real work: requests completed, some lost on the lossy link.
    const sensor = adaptive.hosts['sensor-0']!.components.report as { completed: number; timeouts: number }
    expect(sensor.completed).toBeGreaterThan(10)
    expect(Object.values(adaptive.links).reduce((n, l) => n + l.drops, 0)).toBeGreaterThan(0)
  }, 60_000)
})

describe('conservative mode', () => {
  it('reports zero causality violations and never lets a window pass the end time', () => {
    for (const f of ['quickstart.yaml', 'sparse.yaml']) {
      const r = simulateInProcess(example(f).plan)
      expect(r.sync.causalityViolations).toBe(0)
      expect(r.sync.latenessTotalNs).toBe(0)
      expect(r.virtualTimeNs).toBe(r.endTimeNs)
    }
  })
})

describe('slack mode', () => {
  it('takes fewer barriers than Conservative and reports the violations and lateness it causes', async () => {
    const slack = example('slack.yaml')
    const conservative = example('quickstart.yaml')
    const s = await runProcesses(slack)
    const c = simulateInProcess(conservative.plan)
    expect(s.sync.mode).toBe('Slack')
    expect(s.sync.barriers).toBeLessThan(c.sync.barriers / 4)
    expect(s.sync.causalityViolations).toBeGreaterThan(0)
    expect(s.sync.latenessTotalNs).toBeGreaterThan(0)
    // No message can be later than the slack plus one lookahead window.
    expect(s.sync.latenessMaxNs).toBeLessThanOrEqual(slack.plan.slackNs + slack.plan.lookaheadNs)
    expect(s.sync.latenessMaxNs).toBeGreaterThan(0)
  }, 60_000)
})

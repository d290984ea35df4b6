// Statistics of a sweep against values computed by hand: the mean, the sample standard deviation,
// the 95 % Student t interval, the best point and the points apart from it.
import { describe, expect, it } from 'vitest'
import { loadSimSweep } from '../../sim-runtime/sweep/validate.ts'
import { trials } from '../../sim-runtime/sweep/grid.ts'
import { bestIndex, distinctFrom, summarize } from '../../sim-runtime/sweep/stats.ts'
import { pointRows, resultsCsv, type TrialRecord } from '../../sim-runtime/sweep/summary.ts'

describe('summarize: mean and 95 % confidence interval (Student t)', () => {
  it('of 10, 12, 14, 16: mean 13, s = √(20/3), t(0.975, 3) = 3.182446, half-width 4.108521', () => {
    // s = √((9 + 1 + 1 + 9) / 3) = 2.581989; s/√4 = 1.290994; × 3.182446305 = 4.108521.
    const s = summarize([10, 12, 14, 16])
    expect(s.n).toBe(4)
    expect(s.mean).toBe(13)
    expect(s.sd).toBeCloseTo(2.581989, 6)
    expect(s.ciLow).toBeCloseTo(13 - 4.108521, 5)
    expect(s.ciHigh).toBeCloseTo(13 + 4.108521, 5)
  })

  it('of 1, 2, 3: t(0.975, 2) = 4.302653, half-width 2.484138', () => {
    const s = summarize([1, 2, 3])
    expect(s.sd).toBe(1)
    expect(s.ciLow).toBeCloseTo(2 - 2.484138, 6)
    expect(s.ciHigh).toBeCloseTo(2 + 2.484138, 6)
  })

  it('of two values 100 and 104: t(0.975, 1) = 12.706205, half-width 25.41241', () => {
    const s = summarize([100, 104])
    expect(s.ciHigh! - s.mean!).toBeCloseTo(12.706205 * (Math.sqrt(8) / Math.sqrt(2)), 4)
  })

  it('one value has a mean and no interval; none has neither', () => {
    expect(summarize([5])).toEqual({ n: 1, mean: 5, sd: null, ciLow: null, ciHigh: null })
    expect(summarize([])).toEqual({ n: 0, mean: null, sd: null, ciLow: null, ciHigh: null })
  })

  it('equal values give an interval of width zero', () => {
    expect(summarize([7, 7, 7])).toMatchObject({ mean: 7, sd: 0, ciLow: 7, ciHigh: 7 })
  })
})

describe('best point and distinct points', () => {
  it('the best mean by the goal, the first of equals, skipping points without a value', () => {
    expect(bestIndex([3, null, 1, 1, 2], 'Minimize')).toBe(2)
    expect(bestIndex([3, null, 1, 4, 4], 'Maximize')).toBe(3)
    expect(bestIndex([null, null], 'Minimize')).toBeUndefined()
  })

  it('distinct when the intervals do not overlap; unknown without intervals', () => {
    const best = summarize([10, 11, 12]) // 11 ± 2.48
    expect(distinctFrom(summarize([20, 21, 22]), best)).toBe(true)
    expect(distinctFrom(summarize([12, 13, 14]), best)).toBe(false)
    expect(distinctFrom(summarize([20]), best)).toBeUndefined()
  })
})

const SWEEP = `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata: { name: table }
spec:
  template:
    endTime: 10ms
    hosts:
      - name: a
        components:
          - { name: c, model: { kind: Client, target: s, closedLoop: { users: 1 } } }
          - { name: s, model: { kind: Server, service: { distribution: Constant, mean: 1ms } } }
  parameters:
    - { name: users, path: hosts.a.components.c.model.closedLoop.users, values: [1, 2, 3] }
  seeds: 3
  metrics:
    - { name: p99, component: a/c, field: latency.p99Ns }
    - { name: tput, component: a/c, field: throughputPerSec }
  objective: { metric: p99, goal: Minimize }
`

describe('point rows of a small table', () => {
  const grid = loadSimSweep(SWEEP)
  // p99 by point: [10, 12, 14] → 12 ± 4.968; [30, 31, 32] → 31 ± 2.484; [11, 12, 13] → 12 ± 2.484.
  const p99 = [
    [10, 12, 14],
    [30, 31, 32],
    [11, 12, 13],
  ]
  const records: TrialRecord[] = trials(grid).map((t) => ({
    ...t,
    status: 'Succeeded',
    reused: false,
    specHash: 'sha256:x',
    digest: `sha256:${t.name}`,
    metrics: [p99[t.point]![t.seedIndex]!, t.point === 2 && t.seedIndex === 2 ? null : 100 * (t.point + 1)],
  }))

  it('each metric: n, mean and interval; the best point; points apart from it marked', () => {
    const { rows, best } = pointRows(grid, records)
    expect(best).toBe(0) // 12 and 12: the first of equals
    expect(rows[0]!.metrics[0]).toMatchObject({ name: 'p99', n: 3, mean: 12, distinctFromBest: false })
    expect(rows[0]!.metrics[0]!.ciHigh).toBeCloseTo(12 + 2 * 4.302653 / Math.sqrt(3), 5)
    expect(rows[1]!.metrics[0]).toMatchObject({ mean: 31, distinctFromBest: true })
    expect(rows[2]!.metrics[0]).toMatchObject({ mean: 12, distinctFromBest: false })
    // A trial that did not report a metric is left out of that metric only.
    expect(rows[2]!.metrics[1]).toMatchObject({ n: 2, mean: 300, ciLow: 300, ciHigh: 300 })
    expect(rows.map((r) => [r.point, r.values, r.trialsDone])).toEqual([
      [0, [1], 3],
      [1, [2], 3],
      [2, [3], 3],
    ])
  })

  it('failed trials count in trialsFailed, not in the statistics', () => {
    const failed = records.map((r) => (r.point === 1 && r.seedIndex === 0 ? { ...r, status: 'Failed' as const, metrics: [null, null] } : r))
    const row = pointRows(grid, failed).rows[1]!
    expect(row).toMatchObject({ trialsDone: 2, trialsFailed: 1 })
    expect(row.metrics[0]).toMatchObject({ n: 2, mean: 31.5 })
  })

  it('results.csv: one row per trial, the seed value, parameters, metrics, status and digest', () => {
    const lines = resultsCsv(grid, records).trim().split('\n')
    expect(lines[0]).toBe('trial,point,seed,users,p99,tput,status,digest')
    expect(lines[1]).toBe('table-p0-s0,0,1,1,10,100,Succeeded,sha256:table-p0-s0')
    expect(lines[9]).toBe('table-p2-s2,2,3,3,13,,Succeeded,sha256:table-p2-s2')
    expect(lines).toHaveLength(10)
  })
})

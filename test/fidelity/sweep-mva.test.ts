// Fidelity of a sweep against exact Mean Value Analysis. A closed loop of N users (exponential
// think time Z) against one FCFS server (exponential service time S) is a product-form network of
// a delay station and a queue, whose exact MVA recursion gives the mean response time R(n) and the
// throughput X(n) for every n. A sweep over N = 1…8, each point over several seeds, must hold the
// exact values inside its 95 % confidence intervals at every point. Seeds are fixed (1…6, the
// default seed on): repeatable. A 95 % interval misses the truth one time in twenty, so another set
// of seeds can miss at one point by chance: seeds 100…105 miss at N = 1, where the six runs' service
// times average 1.0064 ms and happen to agree closely. A wrong model misses at many points, by far.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSweep } from '../../sim-runtime/sweep/run.ts'
import { sweepResults } from '../../sim-runtime/sweep/summary.ts'
import { loadSimSweep } from '../../sim-runtime/sweep/validate.ts'
import { root } from '../helpers.ts'

const S_MS = 1
const Z_MS = 4
const USERS = [1, 2, 3, 4, 5, 6, 7, 8]

/** Exact MVA for a delay station (Z) and one FCFS exponential server (S): R(n), X(n) for n = 1…N. */
function mva(n: number, s: number, z: number): { r: number; x: number }[] {
  const out: { r: number; x: number }[] = []
  let q = 0
  for (let k = 1; k <= n; k++) {
    const r = s * (1 + q)
    const x = k / (z + r)
    q = x * r
    out.push({ r, x })
  }
  return out
}

const SWEEP = `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata: { name: mva }
spec:
  template:
    endTime: 20s
    seed: 1
    hosts:
      - name: box
        components:
          - { name: users, model: { kind: Client, target: srv, closedLoop: { users: 1, thinkTime: ${Z_MS}ms } } }
          - { name: srv, model: { kind: Server, workers: 1, service: { distribution: Exponential, mean: ${S_MS}ms } } }
  parameters:
    - { name: users, path: hosts.box.components.users.model.closedLoop.users, values: [${USERS.join(', ')}] }
  seeds: 6
  metrics:
    - { name: responseNs, component: box/users, field: latency.meanNs }
    - { name: throughput, component: box/users, field: throughputPerSec }
  objective: { metric: throughput, goal: Maximize }
`

describe('a sweep of a closed loop reproduces exact MVA', () => {
  it('response time and throughput at N = 1…8 users, each inside its 95 % confidence interval', async () => {
    const grid = loadSimSweep(SWEEP)
    const run = await runSweep({ grid, outDir: mkdtempSync(path.join(tmpdir(), 'livesim-mva-')), baseDir: root, parallel: 2, logLevel: 'silent' })
    expect(run.records.every((r) => r.status === 'Succeeded')).toBe(true)
    const results = sweepResults(grid, run.records, { phase: 'Succeeded' })
    const exact = mva(USERS.length, S_MS / 1000, Z_MS / 1000)
    const seen: string[] = []
    results.points.forEach((row, i) => {
      const [response, throughput] = row.metrics as [(typeof row.metrics)[0], (typeof row.metrics)[0]]
      const rNs = exact[i]!.r * 1e9
      const x = exact[i]!.x
      seen.push(`N=${USERS[i]}: R ${(rNs / 1e6).toFixed(4)} ms in [${(response.ciLow! / 1e6).toFixed(4)}, ${(response.ciHigh! / 1e6).toFixed(4)}], X ${x.toFixed(2)} in [${throughput.ciLow!.toFixed(2)}, ${throughput.ciHigh!.toFixed(2)}]`)
      expect(response.n).toBe(6)
      expect(rNs, seen.at(-1)).toBeGreaterThanOrEqual(response.ciLow!)
      expect(rNs, seen.at(-1)).toBeLessThanOrEqual(response.ciHigh!)
      expect(x, seen.at(-1)).toBeGreaterThanOrEqual(throughput.ciLow!)
      expect(x, seen.at(-1)).toBeLessThanOrEqual(throughput.ciHigh!)
      // The intervals are narrow: a model off by a few percent could not hide in them.
      expect((response.ciHigh! - response.ciLow!) / rNs).toBeLessThan(0.08)
      expect((throughput.ciHigh! - throughput.ciLow!) / x).toBeLessThan(0.04)
    })
    // The best point by throughput is the largest N, and N = 1 is far from it.
    expect(results.best?.point).toBe(USERS.length - 1)
    expect(results.points[0]!.metrics[1]!.distinctFromBest).toBe(true)
  }, 300_000)
})

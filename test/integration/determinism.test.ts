// A modelled-only SimCluster gives the same results digest however its hosts are split into
// runtime processes, run after run, embedded in the leader's process (`livesim run`'s default) as
// over HTTP/2, and in the in-process driver.
import { describe, expect, it } from 'vitest'
import { loadCustomComponents } from '../../sim-runtime/components/custom.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { digestOf } from '../../sim-runtime/sync/results.ts'
import { example, runProcesses } from '../helpers.ts'

describe.each(['quickstart.yaml', 'sparse.yaml', 'slack.yaml', 'custom/cache.yaml'])('determinism of %s', (file) => {
  it('gives one digest embedded, with --partition 1, 3 and one process per host, and again on a second run', async () => {
    const m = example(file)
    const embedded = await runProcesses(m)
    const one = await runProcesses(m, { partition: 1 })
    const three = await runProcesses(m, { partition: 3 })
    const perHost = await runProcesses(m, { partition: m.plan.hosts.length })
    const again = await runProcesses(m)
    expect(embedded.wall.runtimes).toBe(0)
    expect(one.wall.runtimes).toBe(1)
    expect(three.wall.runtimes).toBe(3)
    expect(perHost.wall.runtimes).toBe(m.plan.hosts.length)
    for (const r of [one, three, perHost, again]) expect(r.digest).toBe(embedded.digest)
    // Every field but wall and sync.barriers, which the digest leaves out: topology-aware windows
    // take as many barriers as the placement allows.
    const { wall: _w1, sync: { barriers: _b1, ...embeddedSync }, ...embeddedRest } = embedded
    const { wall: _w2, sync: { barriers: _b2, ...threeSync }, ...threeRest } = three
    expect(embeddedRest).toEqual(threeRest)
    expect(embeddedSync).toEqual(threeSync)
    // And the same as the in-process driver that shares the window logic.
    const factories = await loadCustomComponents(m.plan, m.baseDir, m.plan.hosts.map((h) => h.index))
    expect(simulateInProcess(m.plan, { factories }).digest).toBe(one.digest)
    // The digest really covers the results: change one number and it changes.
    const tampered = structuredClone(one)
    const firstHost = Object.values(tampered.hosts)[0]!
    firstHost.events += 1
    expect(digestOf(tampered)).not.toBe(one.digest)
    if (one.sync.mode === 'Conservative') expect(one.sync.causalityViolations).toBe(0)
  }, 120_000)
})

describe('seeds', () => {
  it('a different seed gives different results', () => {
    const m = example('quickstart.yaml')
    const a = simulateInProcess(m.plan)
    const b = simulateInProcess({ ...m.plan, seed: m.plan.seed + 1 })
    expect(b.digest).not.toBe(a.digest)
  })
})

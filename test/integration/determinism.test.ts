// A modelled-only SimCluster gives the same results digest however its hosts are split into
// runtime processes, run after run, embedded in the leader's process (`livesim run`'s default) as
// over HTTP/2, and in the in-process driver: in each form of the results (every host, or per group).
import { describe, expect, it } from 'vitest'
import { validateSimCluster } from '../../sim-runtime/api/validate.ts'
import { loadCustomComponents } from '../../sim-runtime/components/custom.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { digestOf, type SimResults } from '../../sim-runtime/sync/results.ts'
import { example, runProcesses } from '../helpers.ts'

/** The example with spec.results.detail set. */
function withDetail(m: ReturnType<typeof example>, detail: 'Groups' | 'Hosts') {
  const cluster = { ...m.cluster, spec: { ...m.cluster.spec, results: { detail } } }
  return { ...validateSimCluster(cluster, { baseDir: m.baseDir }), baseDir: m.baseDir }
}

/**
 * Everything but the wall-clock measurements (wall, profile), which differ at every run, and
 * sync.barriers, which the digest leaves out: topology-aware windows take as many barriers as the
 * placement allows.
 */
const simulated = ({ wall: _w, profile: _p, sync: { barriers: _b, ...sync }, ...rest }: SimResults) => ({ ...rest, sync })

const cases: [string, 'Groups' | 'Hosts'][] = [
  ['quickstart.yaml', 'Hosts'],
  ['sparse.yaml', 'Hosts'],
  ['slack.yaml', 'Hosts'],
  ['custom/cache.yaml', 'Hosts'],
  ['quickstart.yaml', 'Groups'],
  ['custom/cache.yaml', 'Groups'],
]

describe.each(cases)('determinism of %s, detail %s', (file, detail) => {
  it('gives one digest embedded, with --partition 1, 3 and one process per host, and again on a second run', async () => {
    const m = withDetail(example(file), detail)
    const embedded = await runProcesses(m)
    const one = await runProcesses(m, { partition: 1 })
    const three = await runProcesses(m, { partition: 3 })
    const perHost = await runProcesses(m, { partition: m.plan.hosts.length })
    const again = await runProcesses(m)
    expect(embedded.wall.runtimes).toBe(0)
    expect(one.wall.runtimes).toBe(1)
    expect(three.wall.runtimes).toBe(3)
    expect(perHost.wall.runtimes).toBe(m.plan.hosts.length)
    expect(embedded.detail).toBe(detail)
    for (const r of [one, three, perHost, again]) expect(r.digest).toBe(embedded.digest)
    expect(simulated(embedded)).toEqual(simulated(three))
    expect(simulated(embedded)).toEqual(simulated(perHost))
    // And the same as the in-process driver that shares the window logic.
    const factories = await loadCustomComponents(m.plan, m.baseDir, m.plan.hosts.map((h) => h.index))
    expect(simulateInProcess(m.plan, { factories }).digest).toBe(one.digest)
    // The digest covers what the results hold, and nothing of the profile: change one number and it changes.
    const tampered = structuredClone(one)
    Object.values(tampered.groups)[0]!.events += 1
    expect(digestOf(tampered)).not.toBe(one.digest)
    if (detail === 'Hosts') {
      const host = structuredClone(one)
      Object.values(host.hosts)[0]!.events += 1
      expect(digestOf(host)).not.toBe(one.digest)
    } else {
      expect(one.hosts).toEqual({})
      expect(one.links).toEqual({})
    }
    expect(digestOf({ ...structuredClone(one), profile: undefined })).toBe(one.digest)
    if (one.sync.mode === 'Conservative') expect(one.sync.causalityViolations).toBe(0)
  }, 240_000)
})

/** An example with another end time and, per group, another number of replicas. */
function resized(file: string, endTime: string, replicas: Record<string, number> = {}) {
  const m = example(file)
  const hosts = m.cluster.spec.hosts.map((h) => (replicas[h.name] ? { ...h, replicas: replicas[h.name] } : h))
  const cluster = { ...m.cluster, spec: { ...m.cluster.spec, endTime, hosts } }
  return { ...validateSimCluster(cluster, { baseDir: m.baseDir }), baseDir: m.baseDir }
}

describe.each([
  ['quickstart.yaml', '400ms', {}],
  ['fanout.yaml', '20ms', {}],
  ['phold.yaml', '40ms', { lp: 96 }],
] as const)('topology-aware windows on %s', (file, endTime, replicas) => {
  it('give the digest of global windows embedded and over 1, 3 and 8 runtime processes, with no causality violation', async () => {
    const m = resized(file, endTime, replicas)
    const runs: Record<string, SimResults> = {}
    for (const windows of ['topology', 'global'] as const) {
      runs[`${windows} embedded`] = await runProcesses(m, { windows })
      for (const partition of [1, 3, 8]) runs[`${windows} ${partition}`] = await runProcesses(m, { windows, partition })
    }
    const first = runs['global embedded']!
    for (const [name, r] of Object.entries(runs)) {
      expect({ name, digest: r.digest }).toEqual({ name, digest: first.digest })
      // Conservative: no host ever received a message stamped before its own time.
      expect({ name, mode: r.sync.mode, violations: r.sync.causalityViolations }).toEqual({ name, mode: 'Conservative', violations: 0 })
    }
    expect(runs['topology 8']!.wall.runtimes).toBe(8)
    // Global windows depend on the global state alone, whatever the placement.
    for (const p of ['1', '3', '8']) expect(runs[`global ${p}`]!.sync.barriers).toBe(first.sync.barriers)
    // Topology-aware ones are never shorter.
    for (const p of ['embedded', '1', '3', '8']) expect(runs[`topology ${p}`]!.sync.barriers).toBeLessThanOrEqual(runs[`global ${p}`]!.sync.barriers)
    expect(simulateInProcess(m.plan, { windows: 'topology' }).digest).toBe(first.digest)
    expect(simulateInProcess(m.plan, { windows: 'global' }).digest).toBe(first.digest)
  }, 600_000)
})

describe('spec.placement', () => {
  it('gives the digest of the embedded run on the runtimes the partitioner makes, as `livesim run` runs them', async () => {
    const m = resized('fanout.yaml', '20ms')
    const embedded = await runProcesses(m)
    for (const placement of [{ runtimes: 3 }, { runtimes: 8 }, { hostsPerRuntime: 64 }]) {
      const placed = { ...validateSimCluster({ ...m.cluster, spec: { ...m.cluster.spec, placement } }, { baseDir: m.baseDir }), baseDir: m.baseDir }
      // No --partition: spec.placement decides the runtime processes.
      const r = await runProcesses(placed)
      expect({ placement, runtimes: r.wall.runtimes }).toEqual({ placement, runtimes: placement.runtimes ?? 4 })
      expect({ placement, digest: r.digest }).toEqual({ placement, digest: embedded.digest })
      expect(r.sync.causalityViolations).toBe(0)
    }
  }, 600_000)
})

describe('seeds', () => {
  it('a different seed gives different results', () => {
    const m = example('quickstart.yaml')
    const a = simulateInProcess(m.plan)
    const b = simulateInProcess({ ...m.plan, seed: m.plan.seed + 1 })
    expect(b.digest).not.toBe(a.digest)
  })
})

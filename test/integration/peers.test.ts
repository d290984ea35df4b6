// Peer batches and the aggregation tree (sync/peers.ts) give the digest of the embedded run over 1,
// 3 and 8 runtime processes, with topology-aware windows and global ones, and the leader relays no
// message; the star (LIVESIM_SYNC=star) still gives the same digest, relaying them.
import { describe, expect, it } from 'vitest'
import { validateSimCluster } from '../../sim-runtime/api/validate.ts'
import type { LeaderStatus } from '../../sim-runtime/sync/leader.ts'
import type { SyncOptions } from '../../sim-runtime/sync/peers.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'
import type { Windows } from '../../sim-runtime/sync/windows.ts'
import { example, runProcesses } from '../helpers.ts'

function resized(file: string, endTime: string, replicas: Record<string, number> = {}) {
  const m = example(file)
  const hosts = m.cluster.spec.hosts.map((h) => (replicas[h.name] ? { ...h, replicas: replicas[h.name] } : h))
  const cluster = { ...m.cluster, spec: { ...m.cluster.spec, endTime, hosts } }
  return { ...validateSimCluster(cluster, { baseDir: m.baseDir }), baseDir: m.baseDir }
}

/** A run over `partition` processes, and what passed through the leader. */
async function run(m: ReturnType<typeof resized>, partition: number, sync: SyncOptions, windows: Windows): Promise<{ r: SimResults; traffic: LeaderStatus['traffic'] }> {
  let last: LeaderStatus | undefined
  const r = await runProcesses(m, { partition, sync, windows, onStatus: (s) => (last = s), statusIntervalMs: 60_000 })
  return { r, traffic: last!.traffic }
}

/** Every runtime's TALLY goes up a binary tree, from one runtime on. */
const TREE: SyncOptions = { mode: 'peers', treeMin: 1, fanIn: 2 }
const FLAT: SyncOptions = { mode: 'peers', treeMin: 1_000_000, fanIn: 16 }
const STAR: SyncOptions = { mode: 'star', treeMin: 1_000_000, fanIn: 16 }

describe.each([
  ['quickstart.yaml', '400ms', {}],
  ['fanout.yaml', '20ms', {}],
  ['phold.yaml', '40ms', { lp: 96 }],
] as const)('peer batches on %s', (file, endTime, replicas) => {
  it('give one digest with the tree forced on, flat and through the star, over 1, 3 and 8 runtimes, topology-aware windows on and off', async () => {
    const m = resized(file, endTime, replicas)
    const embedded = await runProcesses(m)
    const runs: [string, SimResults, LeaderStatus['traffic']][] = []
    for (const windows of ['topology', 'global'] as const) {
      for (const partition of [1, 3, 8]) {
        const tree = await run(m, partition, TREE, windows)
        runs.push([`tree ${windows} ${partition}`, tree.r, tree.traffic])
      }
    }
    const flat = await run(m, 8, FLAT, 'topology')
    runs.push(['flat topology 8', flat.r, flat.traffic])
    const star = await run(m, 3, STAR, 'topology')
    for (const [name, r, traffic] of runs) {
      expect({ name, digest: r.digest }).toEqual({ name, digest: embedded.digest })
      expect({ name, violations: r.sync.causalityViolations }).toEqual({ name, violations: 0 })
      expect({ name, relayed: traffic.relayedMessages }).toEqual({ name, relayed: 0 })
    }
    expect(star.r.digest).toBe(embedded.digest)
    // The star relays every message between runtimes; these runs have some.
    expect(star.traffic.relayedMessages).toBeGreaterThan(0)
    // The tree and the flat tally give the leader the same windows.
    expect(runs.find(([n]) => n === 'tree topology 8')![1].sync.barriers).toBe(flat.r.sync.barriers)
  }, 600_000)
})

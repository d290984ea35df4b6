// runPolicy on the real control plane: a deadline ends a run Failed (and removes its pods); a TTL
// deletes a finished SimCluster and everything it owns.
import { beforeAll, describe, expect, it } from 'vitest'
import { exampleAs, getJson, kubectlIn, namespace, run, until } from './kube.ts'

const NS = 'e2e-runpolicy'

beforeAll(() => {
  namespace(NS)
})

describe('runPolicy', () => {
  it('activeDeadlineSeconds: a run that takes longer ends Failed with DeadlineExceeded, and its pods go', async () => {
    const m = exampleAs('quickstart.yaml', 'deadline', '1h').replace('  seed: 42\n', '  seed: 42\n  runPolicy: { activeDeadlineSeconds: 15 }\n')
    expect(kubectlIn(m, 'apply', '-n', NS, '-f', '-').status).toBe(0)
    const failed = await until('the deadline to pass', () => {
      const s = getJson<{ status?: { phase?: string; conditions?: { type: string; status: string; reason: string }[] } }>('get', 'simcluster', '-n', NS, 'deadline').status
      return s?.phase === 'Failed' ? s : undefined
    }, 120_000, 1000)
    expect(failed.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'DeadlineExceeded' })
    expect(failed.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True')
    await until('its pods to be gone', () => getJson<{ items: unknown[] }>('get', 'pods', '-n', NS, '-l', 'livesim.dev/cluster=deadline').items.length === 0, 60_000)
  })

  it('ttlSecondsAfterFinished: a finished run is deleted with everything it owns', async () => {
    const m = exampleAs('sparse.yaml', 'ttl', '5s').replace('  seed: 7\n', '  seed: 7\n  runPolicy: { ttlSecondsAfterFinished: 5 }\n')
    expect(kubectlIn(m, 'apply', '-n', NS, '-f', '-').status).toBe(0)
    const done = run('kubectl', ['wait', '-n', NS, '--for=condition=Complete', 'simcluster/ttl', '--timeout=180s'], undefined, 200_000)
    expect(done.status, done.stderr).toBe(0)
    await until('the SimCluster to be deleted', () => run('kubectl', ['get', 'simcluster', '-n', NS, 'ttl']).status !== 0, 60_000, 1000)
    await until('everything it owned to be gone', () =>
      ['pods', 'simhosts', 'configmaps', 'secrets'].every((k) => getJson<{ items: unknown[] }>('get', k, '-n', NS, '-l', 'livesim.dev/cluster=ttl').items.length === 0), 60_000)
  })
})

// spec.placement on a real control plane: the 200 hosts of examples/fanout.yaml run on 8 runtime
// pods (one SimHost each, not one per host), the run completes, its results are stored, and their
// digest equals `livesim run` of the same file, which runs the same 8 runtimes as processes; 1,000
// hosts on 8 pods store their (per group, bounded) results without an API error.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { exampleAs, getJson, kubectl, kubectlIn, namespace, root, run, until } from './kube.ts'

const NS = 'e2e-placement'
const NAME = 'fanout-placed'

beforeAll(() => {
  namespace(NS)
})

interface Listed<T> {
  items: T[]
}

describe('SimCluster with spec.placement', () => {
  it('runs 200 hosts on 8 runtime pods to Complete, its digest that of `livesim run`, its results stored', async () => {
    // 5 ms of virtual time: enough for every tier to take requests, short enough for the node.
    const text = exampleAs('fanout.yaml', NAME, '5ms').replace(/^ {2}seed: 11$/m, '  seed: 11\n  placement: { runtimes: 8 }')
    expect(text).toContain('placement: { runtimes: 8 }')
    const file = path.join(inject('e2eDir'), `${NAME}.yaml`)
    writeFileSync(file, text)
    const applied = kubectlIn(text, 'apply', '-n', NS, '-f', '-')
    expect(applied.status, applied.stderr).toBe(0)
    const wait = run('kubectl', ['wait', '-n', NS, '--for=condition=Complete', `simcluster/${NAME}`, '--timeout=600s'], undefined, 620_000)
    expect(wait.status, wait.stderr + kubectl('get', 'simcluster', '-n', NS, NAME, '-o', 'yaml')).toBe(0)

    const sc = getJson<{ status: { phase: string; hosts: { ready: number; total: number }; placement: { runtimes: number; hostsPerRuntimeMax: number }; results: { digest: string; configMap: string; causalityViolations: number } } }>('get', '-n', NS, 'simcluster', NAME)
    expect(sc.status.phase).toBe('Succeeded')
    expect(sc.status.hosts).toEqual({ ready: 200, total: 200 })
    expect(sc.status.placement).toMatchObject({ runtimes: 8, hostsPerRuntimeMax: 25 })

    // API objects grow with the runtimes: 8 SimHosts, 8 runtime pods (the last attempt's stay), one leader.
    const selector = `livesim.dev/cluster=${NAME}`
    type SimHosts = Listed<{ spec: { hostCount: number; hosts?: string }; status?: { phase?: string; pod?: string } }>
    // A SimHost's phase follows its pod's, which a real kubelet reports after the run's end.
    const simHosts = await until(
      'every SimHost Succeeded with its pod',
      () => {
        const l = getJson<SimHosts>('get', 'simhosts', '-n', NS, '-l', selector)
        return l.items.length === 8 && l.items.every((h) => h.status?.phase === 'Succeeded' && h.status.pod) ? l : undefined
      },
      60_000,
    )
    expect(simHosts.items.reduce((n, h) => n + h.spec.hostCount, 0)).toBe(200)
    const pods = getJson<Listed<{ metadata: { labels: Record<string, string> } }>>('get', 'pods', '-n', NS, '-l', selector)
    expect(pods.items.filter((p) => p.metadata.labels['livesim.dev/role'] === 'host').length).toBe(8)
    expect(pods.items.length).toBeLessThanOrEqual(9)

    // The printer columns: HOSTS of each SimHost (-o wide of the SimCluster: RUNTIMES).
    const simHostTable = kubectl('get', 'simhosts', '-n', NS, '-l', selector)
    expect(simHostTable.split('\n')[0]).toMatch(/HOSTS/)
    const wideTable = kubectl('get', 'simclusters', '-n', NS, NAME, '-o', 'wide')
    // What a user sees, in the test's log.
    process.stdout.write(`${wideTable}\n${simHostTable}\n`)
    const wide = wideTable.trim().split('\n')
    const cols = wide[0]!.split(/\s{2,}/)
    const vals = wide[1]!.split(/\s{2,}/)
    expect(vals[cols.indexOf('RUNTIMES')]).toBe('8')
    expect(vals[cols.indexOf('HOSTS')]).toBe('200/200')

    // The results: stored, with the digest of status and of `livesim run` of the same file.
    const cm = getJson<{ data: Record<string, string> }>('get', '-n', NS, 'configmap', sc.status.results.configMap)
    const results = JSON.parse(cm.data['results.json']!) as { digest: string; sync: { causalityViolations: number }; wall: { runtimes: number } }
    expect(results.digest).toBe(sc.status.results.digest)
    expect(results.sync.causalityViolations).toBe(0)
    expect(results.wall.runtimes).toBe(8)
    const local = spawnSync(process.execPath, [path.join(root, 'sim-runtime', 'cli', 'main.ts'), 'run', file, '--json', '--quiet', '--out', path.join(inject('e2eDir'), `${NAME}.json`)], { cwd: root, encoding: 'utf8', timeout: 600_000 })
    expect(local.status, local.stderr).toBe(0)
    const localResults = JSON.parse(local.stdout) as { digest: string; wall: { runtimes: number } }
    expect(localResults.wall.runtimes).toBe(8)
    expect(localResults.digest).toBe(results.digest)
  }, 1_300_000)

  it('runs 1,000 hosts on 8 runtime pods and stores their bounded results without an API error', () => {
    const name = 'fanout-1000'
    const text = exampleAs('fanout.yaml', name, '2ms')
      .replace(/^ {2}seed: 11$/m, '  seed: 11\n  placement: { runtimes: 8 }')
      .replace(/^ {6}replicas: 180$/m, '      replicas: 980')
    expect(text).toContain('replicas: 980')
    const applied = kubectlIn(text, 'apply', '-n', NS, '-f', '-')
    expect(applied.status, applied.stderr).toBe(0)
    const wait = run('kubectl', ['wait', '-n', NS, '--for=condition=Complete', `simcluster/${name}`, '--timeout=600s'], undefined, 620_000)
    expect(wait.status, wait.stderr + kubectl('get', 'simcluster', '-n', NS, name, '-o', 'yaml')).toBe(0)
    const sc = getJson<{ status: { hosts: { ready: number; total: number }; placement: { runtimes: number; hostsPerRuntimeMax: number }; results: { digest: string; configMap: string } } }>('get', '-n', NS, 'simcluster', name)
    expect(sc.status.hosts).toEqual({ ready: 1000, total: 1000 })
    expect(sc.status.placement).toMatchObject({ runtimes: 8, hostsPerRuntimeMax: 125 })
    expect(getJson<Listed<unknown>>('get', 'simhosts', '-n', NS, '-l', `livesim.dev/cluster=${name}`).items.length).toBe(8)
    // Per group by default above 64 hosts: one ConfigMap, far under its 1 MiB limit, and no Warning.
    const cm = getJson<{ data: Record<string, string> }>('get', '-n', NS, 'configmap', sc.status.results.configMap)
    const json = cm.data['results.json']!
    expect(Buffer.byteLength(json)).toBeLessThan(256 * 1024)
    expect((JSON.parse(json) as { digest: string; detail: string }).digest).toBe(sc.status.results.digest)
    const warnings = kubectl('get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name},type=Warning`, '-o', 'jsonpath={.items[*].reason}')
    expect(warnings.trim()).toBe('')
  }, 700_000)
})

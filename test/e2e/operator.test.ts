// The operator on a real control plane: a SimCluster applied with kubectl runs in pods, reports
// progress in its printer columns and status, and leaves its results in a ConfigMap whose digest
// equals the local `livesim run` of the same file.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { exampleAs, existingCluster, getJson, kubectl, kubectlIn, localOnly, namespace, root, run, until } from './kube.ts'

const NS = 'e2e-operator'

beforeAll(() => {
  namespace(NS)
})

interface SimClusterJson {
  metadata: { generation: number }
  status?: {
    phase?: string
    observedGeneration?: number
    results?: { digest: string; configMap: string; causalityViolations: number }
    conditions?: { type: string; status: string; reason: string }[]
  }
}

describe('SimCluster on Kubernetes', () => {
  it('runs the quickstart to Complete; the results digest equals `livesim run` of the same file', async () => {
    kubectl('apply', '-n', NS, '-f', 'examples/quickstart.yaml')
    const wait = run('kubectl', ['wait', '-n', NS, '--for=condition=Complete', 'simcluster/quickstart', '--timeout=300s'], undefined, 320_000)
    expect(wait.status, wait.stderr).toBe(0)
    const sc = getJson<SimClusterJson>('get', '-n', NS, 'simcluster', 'quickstart')
    expect(sc.status?.phase).toBe('Succeeded')
    expect(sc.status?.observedGeneration).toBe(sc.metadata.generation)
    const cond = Object.fromEntries((sc.status?.conditions ?? []).map((c) => [c.type, c.status]))
    expect(cond).toMatchObject({ Ready: 'True', Complete: 'True', Reconciling: 'False', Stalled: 'False', Failed: 'False', HostsReady: 'True' })

    const cm = getJson<{ data: Record<string, string> }>('get', '-n', NS, 'configmap', 'quickstart-results')
    const results = JSON.parse(cm.data['results.json']!) as { digest: string; sync: { causalityViolations: number } }
    expect(results.sync.causalityViolations).toBe(0)
    expect(sc.status?.results?.digest).toBe(results.digest)

    const local = spawnSync(process.execPath, [path.join(root, 'sim-runtime', 'cli', 'main.ts'), 'run', 'examples/quickstart.yaml', '--json', '--out', path.join(inject('e2eDir'), 'local.json')], {
      cwd: root,
      encoding: 'utf8',
    })
    expect(local.status, local.stderr).toBe(0)
    expect(results.digest).toBe((JSON.parse(local.stdout) as { digest: string }).digest)

    // One SimHost per host replica, each showing its pod and phase.
    const hosts = getJson<{ items: { spec: { host: string }; status?: { pod?: string; phase?: string } }[] }>('get', '-n', NS, 'simhosts', '-l', 'livesim.dev/cluster=quickstart')
    expect(hosts.items.map((h) => h.spec.host).sort()).toEqual(['client-0', 'client-1', 'client-2', 'client-3', 'db-0', 'web-0', 'web-1', 'web-2'])
    await until('every SimHost to show a Succeeded pod', () => {
      const hs = getJson<{ items: { status?: { pod?: string; phase?: string } }[] }>('get', '-n', NS, 'simhosts', '-l', 'livesim.dev/cluster=quickstart')
      return hs.items.every((h) => h.status?.phase === 'Succeeded' && h.status.pod)
    }, 60_000)
    // Events on the transitions.
    const events = kubectl('get', 'events', '-n', NS, '--field-selector', 'involvedObject.kind=SimCluster,involvedObject.name=quickstart', '-o', 'jsonpath={.items[*].reason}')
    expect(events.split(' ')).toEqual(expect.arrayContaining(['Started', 'Running', 'Succeeded']))
  })

  it('shows virtual time rising in the printer columns while a run goes', async () => {
    kubectlIn(exampleAs('quickstart.yaml', 'columns', '60s'), 'apply', '-n', NS, '-f', '-')
    const read = () => {
      const out = kubectl('get', 'simclusters', '-n', NS, 'columns')
      const [header, row] = out.trim().split('\n')
      const cols = header!.split(/\s{2,}/)
      const vals = row!.split(/\s{2,}/)
      return Object.fromEntries(cols.map((c, i) => [c, vals[i] ?? '']))
    }
    const first = await until('the run to be Running with some virtual time', () => {
      const r = read()
      return r.PHASE === 'Running' && r.VIRTUALTIME && r.VIRTUALTIME !== '0ns' ? r : undefined
    }, 180_000)
    expect(Object.keys(first)).toEqual(['NAME', 'PHASE', 'HOSTS', 'VIRTUALTIME', 'PROGRESS', 'SLOWDOWN', 'AGE'])
    expect(first.HOSTS).toBe('8/8')
    const toNs = (s: string) => Number.parseFloat(s) * ({ ns: 1, us: 1e3, ms: 1e6, s: 1e9 }[s.replace(/[0-9.]/g, '')] ?? NaN)
    const second = await until('virtual time to move on', () => {
      const r = read()
      return toNs(r.VIRTUALTIME!) > toNs(first.VIRTUALTIME!) ? r : undefined
    }, 30_000, 1000)
    expect(toNs(second.VIRTUALTIME!)).toBeGreaterThan(toNs(first.VIRTUALTIME!))
    expect(Number.parseInt(second.PROGRESS!)).toBeGreaterThanOrEqual(Number.parseInt(first.PROGRESS!))
    const wide = kubectl('get', 'simclusters', '-n', NS, 'columns', '-o', 'wide')
    expect(wide.split('\n')[0]).toContain('MESSAGE')
    kubectl('delete', 'simcluster', '-n', NS, 'columns', '--wait=true')
  })

  const replicas = () => {
    const ns = inject('operatorNamespace')
    // The chart names the Lease after the release (fullname "livesim" here).
    const lease = getJson<{ spec: { holderIdentity: string } }>('get', 'lease', '-n', ns, 'livesim')
    const pods = getJson<{ items: { metadata: { name: string }; status: { podIP: string; phase: string } }[] }>('get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/name=livesim')
    return { holder: lease.spec.holderIdentity, running: pods.items.filter((p) => p.status.phase === 'Running') }
  }

  it('runs two operator replicas, one of which holds the lease', () => {
    const { holder, running } = replicas()
    expect(running.length).toBe(2)
    expect(running.map((p) => p.metadata.name)).toContain(holder)
  })

  const metricsTitle = localOnly('exactly one operator replica reports itself leader in its metrics', "curls the pods' IPs from this machine, where the process-backed node's pods listen")
  it.skipIf(existingCluster())(metricsTitle, () => {
    const { running } = replicas()
    expect(running.length).toBe(2)
    const leading = running.map((p) => {
      const r = spawnSync('curl', ['-s', `http://${p.status.podIP}:8080/metrics`], { encoding: 'utf8' })
      return /leader_election_master_status\{name="livesim"\} (\d)/.exec(r.stdout)?.[1]
    })
    expect(leading.sort()).toEqual(['0', '1'])
  })
})

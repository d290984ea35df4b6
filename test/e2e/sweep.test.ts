// A SimSweep on a real control plane: applied with kubectl, its trials run as SimClusters with never
// more than `parallelism` unfinished (checked while they run), its status fills with the points and
// the best point, it ends Complete, its results ConfigMap's results.csv equals `livesim sweep` of the
// same file on this machine (digests included), a change of its grid is refused (a change of
// parallelism is taken), deleting it leaves nothing behind, and a sweep's TTL deletes its trials and
// keeps its results.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { getJson, kubectl, kubectlIn, namespace, root, run, until } from './kube.ts'

const NS = 'e2e-sweep'
const NAME = 'e2e-sweep'
const PARALLELISM = 2
const TTL_NAME = 'e2e-sweep-ttl'

const SWEEP = `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata: { name: ${NAME} }
spec:
  template:
    endTime: 100ms
    seed: 11
    network: { default: { latency: 100us } }
    hosts:
      - name: a
        replicas: 2
        components:
          - { name: c, model: { kind: Client, target: b/s, closedLoop: { users: 4, thinkTime: 1ms } } }
      - name: b
        components:
          - { name: s, model: { kind: Server, workers: 1, service: { distribution: Exponential, mean: 500us } } }
  parameters:
    - { name: workers, path: hosts.b.components.s.model.workers, values: [1, 2] }
  seeds: 2
  parallelism: ${PARALLELISM}
  maxFailedTrials: 0
  metrics:
    - { name: p99, component: a/c, field: latency.p99Ns, aggregate: Max }
    - { name: tput, component: a/c, field: throughputPerSec, aggregate: Sum }
  objective: { metric: p99, goal: Minimize }
`

interface Condition {
  type: string
  status: string
  reason: string
  observedGeneration?: number
}
interface SweepJson {
  metadata: { generation: number; uid: string }
  status?: {
    phase?: string
    observedGeneration?: number
    trials?: { total: number; succeeded: number; failed: number; running: number }
    trialsSummary?: string
    points?: { point: number; values: unknown[]; trialsDone: number; metrics: { name: string; n: number; mean?: number; ciLow?: number; ciHigh?: number }[] }[]
    best?: { point: number }
    bestSummary?: string
    results?: { configMap: string }
    conditions?: Condition[]
  }
}
interface TrialJson {
  metadata: { name: string; labels: Record<string, string>; ownerReferences?: { kind: string; name: string; uid: string }[] }
  status?: { phase?: string }
}

let file = ''

beforeAll(() => {
  namespace(NS)
  const dir = path.join(inject('e2eDir'), 'sweep')
  mkdirSync(dir, { recursive: true })
  file = path.join(dir, `${NAME}.yaml`)
  writeFileSync(file, SWEEP)
})

const trialsNow = () => getJson<{ items: TrialJson[] }>('get', 'simclusters', '-n', NS, '-l', `livesim.dev/sweep=${NAME}`).items
const sweepNow = () => getJson<SweepJson>('get', 'simsweep', '-n', NS, NAME)

describe('SimSweep on Kubernetes', () => {
  it('runs its trials at most parallelism at once to Complete; results.csv equals `livesim sweep` of the same file', async () => {
    expect(run('kubectl', ['apply', '-n', NS, '-f', file]).status).toBe(0)

    // While it runs: count the unfinished trials at every look.
    let maxUnfinished = 0
    let looks = 0
    const names = new Set<string>()
    await until('the sweep to end', () => {
      const ts = trialsNow()
      for (const t of ts) names.add(t.metadata.name)
      const unfinished = ts.filter((t) => t.status?.phase !== 'Succeeded' && t.status?.phase !== 'Failed').length
      maxUnfinished = Math.max(maxUnfinished, unfinished)
      looks++
      const phase = sweepNow().status?.phase
      return phase === 'Succeeded' || phase === 'Failed'
    }, 300_000, 250)
    expect(looks).toBeGreaterThan(1)
    expect(maxUnfinished).toBeGreaterThan(0)
    expect(maxUnfinished).toBeLessThanOrEqual(PARALLELISM)
    expect([...names].sort()).toEqual([`${NAME}-p0-s0`, `${NAME}-p0-s1`, `${NAME}-p1-s0`, `${NAME}-p1-s1`])

    const wait = run('kubectl', ['wait', '-n', NS, '--for=condition=Complete', `simsweep/${NAME}`, '--timeout=60s'], undefined, 80_000)
    expect(wait.status, wait.stderr).toBe(0)
    const sw = sweepNow()
    const st = sw.status!
    expect(st.phase).toBe('Succeeded')
    expect(st.observedGeneration).toBe(sw.metadata.generation)
    const cond = Object.fromEntries((st.conditions ?? []).map((c) => [c.type, c.status]))
    expect(cond).toMatchObject({ Ready: 'True', Complete: 'True', Reconciling: 'False', Progressing: 'False', Stalled: 'False', Failed: 'False' })
    for (const c of st.conditions ?? []) expect(c.observedGeneration, c.type).toBe(sw.metadata.generation)
    expect(st.trials).toEqual({ total: 4, succeeded: 4, failed: 0, running: 0 })
    expect(st.trialsSummary).toBe('4/4')
    expect(st.points?.map((p) => [p.point, p.values, p.trialsDone])).toEqual([
      [0, [1], 2],
      [1, [2], 2],
    ])
    for (const p of st.points!) {
      for (const m of p.metrics) {
        expect(m.n, `point ${p.point} ${m.name}`).toBe(2)
        expect(m.ciLow! <= m.mean! && m.mean! <= m.ciHigh!, `point ${p.point} ${m.name}: ${JSON.stringify(m)}`).toBe(true)
      }
    }
    expect(st.best?.point).toBeDefined()
    expect(st.bestSummary).toMatch(new RegExp(`^p${st.best!.point} \\(workers=${st.best!.point + 1}\\): p99 `))

    // The printer columns.
    const table = kubectl('get', 'simsweeps', '-n', NS, NAME).trim().split('\n')
    expect(table[0]!.split(/\s{2,}/)).toEqual(['NAME', 'PHASE', 'TRIALS', 'BEST', 'AGE'])
    expect(table[1]).toMatch(new RegExp(`^${NAME}\\s+Succeeded\\s+4/4\\s+p\\d`))

    // Every trial: owned by the sweep, labelled with its point.
    for (const t of trialsNow()) {
      expect(t.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid]), t.metadata.name).toEqual([['SimSweep', NAME, sw.metadata.uid]])
      expect(t.metadata.labels['livesim.dev/point']).toBe(/-p(\d+)-/.exec(t.metadata.name)![1])
    }

    // The same sweep on this machine: the same CSV, digest for digest.
    const out = path.join(path.dirname(file), 'local')
    const local = spawnSync(process.execPath, [path.join(root, 'sim-runtime', 'cli', 'main.ts'), 'sweep', file, '--out', out, '--quiet'], { cwd: root, encoding: 'utf8', timeout: 300_000 })
    expect(local.status, local.stderr).toBe(0)
    const localCsv = readFileSync(path.join(out, 'results.csv'), 'utf8')
    const cm = getJson<{ data: Record<string, string> }>('get', 'configmap', '-n', NS, `${NAME}-results`)
    expect(st.results?.configMap).toBe(`${NAME}-results`)
    const digests = (csv: string) => csv.trim().split('\n').slice(1).map((l) => l.split(',').at(-1))
    expect(digests(cm.data['results.csv']!)).toEqual(digests(localCsv))
    expect(digests(localCsv).every((d) => /^sha256:[0-9a-f]{64}$/.test(d!))).toBe(true)
    expect(cm.data['results.csv']).toBe(localCsv)
    const json = JSON.parse(cm.data['results.json']!) as { phase: string; trials: { name: string; status: string; digest: string }[]; best?: { point: number } }
    expect(json.phase).toBe('Succeeded')
    expect(json.trials.map((t) => t.status)).toEqual(['Succeeded', 'Succeeded', 'Succeeded', 'Succeeded'])
    expect(json.best?.point).toBe(st.best!.point)

    const events = kubectl('get', 'events', '-n', NS, '--field-selector', `involvedObject.kind=SimSweep,involvedObject.name=${NAME}`, '-o', 'jsonpath={.items[*].reason}')
    expect(events.split(' ')).toEqual(expect.arrayContaining(['Started', 'Succeeded']))
  })

  it('refuses a change of the grid, parameter values included; takes a change of parallelism', async () => {
    const seeds = run('kubectl', ['patch', 'simsweep', '-n', NS, NAME, '--type', 'merge', '-p', '{"spec":{"seeds":3}}'])
    expect(seeds.status).not.toBe(0)
    expect(seeds.stderr).toMatch(/grid-defining fields of spec .* are immutable/)
    const values = run('kubectl', ['patch', 'simsweep', '-n', NS, NAME, '--type', 'json', '-p', '[{"op":"replace","path":"/spec/parameters/0/values","value":[1,3]}]'])
    expect(values.status).not.toBe(0)
    expect(values.stderr).toMatch(/grid-defining fields of spec .* are immutable/)
    // A mutable field: the finished sweep acknowledges it (observedGeneration) and changes nothing else.
    const before = sweepNow()
    expect(run('kubectl', ['patch', 'simsweep', '-n', NS, NAME, '--type', 'merge', '-p', '{"spec":{"parallelism":1}}']).status).toBe(0)
    const after = await until('the operator to observe the new generation', () => {
      const sw = sweepNow()
      return sw.metadata.generation > before.metadata.generation && sw.status?.observedGeneration === sw.metadata.generation ? sw : undefined
    }, 60_000)
    expect(after.status?.phase).toBe('Succeeded')
    expect(after.status?.points).toEqual(before.status?.points)
    expect(after.status?.conditions?.every((c) => c.observedGeneration === after.metadata.generation)).toBe(true)
  })

  it('deleting the sweep leaves nothing behind', async () => {
    // Its trials are there, with their pods, SimHosts and ConfigMaps.
    expect(trialsNow()).toHaveLength(4)
    kubectl('delete', 'simsweep', '-n', NS, NAME, '--wait=true', '--timeout=60s')
    const left = () => {
      const kinds = ['simclusters', 'simhosts', 'pods', 'configmaps', 'secrets', 'services', 'serviceaccounts']
      const items = getJson<{ items: { kind: string; metadata: { name: string } }[] }>('get', kinds.join(','), '-n', NS).items
      // What every namespace has of its own.
      return items.filter((o) => !(o.kind === 'ConfigMap' && o.metadata.name === 'kube-root-ca.crt') && !(o.kind === 'ServiceAccount' && o.metadata.name === 'default')).map((o) => `${o.kind}/${o.metadata.name}`)
    }
    await until('nothing to be left', () => left().length === 0, 120_000, 1000).catch((err: Error) => {
      throw new Error(`${err.message}; left: ${left().join(', ')}`)
    })
  })

  it('ttlSecondsAfterFinished deletes the trials and keeps the sweep and its results', async () => {
    const one = SWEEP.replaceAll(NAME, TTL_NAME).replace('values: [1, 2]', 'values: [1]').replace('seeds: 2', 'seeds: 1').replace('maxFailedTrials: 0', 'maxFailedTrials: 0\n  ttlSecondsAfterFinished: 0')
    expect(kubectlIn(one, 'apply', '-n', NS, '-f', '-').status).toBe(0)
    const wait = run('kubectl', ['wait', '-n', NS, '--for=condition=Complete', `simsweep/${TTL_NAME}`, '--timeout=180s'], undefined, 200_000)
    expect(wait.status, wait.stderr).toBe(0)
    await until('the trial to be deleted', () => getJson<{ items: unknown[] }>('get', 'simclusters', '-n', NS, '-l', `livesim.dev/sweep=${TTL_NAME}`).items.length === 0, 60_000, 1000)
    expect(getJson<SweepJson>('get', 'simsweep', '-n', NS, TTL_NAME).status?.phase).toBe('Succeeded')
    const cm = getJson<{ data: Record<string, string> }>('get', 'configmap', '-n', NS, `${TTL_NAME}-results`)
    expect(cm.data['results.csv']).toMatch(new RegExp(`^${TTL_NAME}-p0-s0,0,11,1,.*,Succeeded,sha256:[0-9a-f]{64}$`, 'm'))
    const events = kubectl('get', 'events', '-n', NS, '--field-selector', `involvedObject.kind=SimSweep,involvedObject.name=${TTL_NAME}`, '-o', 'jsonpath={.items[*].reason}')
    expect(events.split(' ')).toContain('TrialsDeleted')
    kubectl('delete', 'simsweep', '-n', NS, TTL_NAME, '--wait=true', '--timeout=60s')
  })
})

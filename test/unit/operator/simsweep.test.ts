// The SimSweep reconciler's pure parts (trial names and objects, what to create next, status rows,
// the results ConfigMap's bound) and whole sweeps reconciled against in-memory caches and a
// recording client, with trials finished by hand: no API server, no runs.
import { gzipSync } from 'node:zlib'
import { load as parseYaml } from 'js-yaml'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { ApiError, type KubeClient, type KubeObject } from '../../../operator/kube/rest.ts'
import { CONFIGMAP_PAYLOAD_MAX, payloadBytes } from '../../../operator/simcluster/results-configmaps.ts'
import type { SimClusterObject } from '../../../operator/simcluster/objects.ts'
import { parseTrialName, trialIndex, trialObject, type SimSweepObject } from '../../../operator/simsweep/objects.ts'
import { createdMark, nextStep, type TrialState } from '../../../operator/simsweep/plan.ts'
import { SimSweepReconciler, type Cache } from '../../../operator/simsweep/reconciler.ts'
import {
  emptyRecords,
  failedRecord,
  keptRecords,
  readResultsCsv,
  readResultsDoc,
  resultsConfigMap,
  resultsPayload,
  SpecChangedError,
  trialResults,
  type ConfigMap,
} from '../../../operator/simsweep/results.ts'
import { STATUS_POINTS_BYTES_MAX, statusRows, sweepConditions, type SweepStatus } from '../../../operator/simsweep/status.ts'
import { SWEEP_LIMITS } from '../../../sim-runtime/api/schema.ts'
import { specHash, trial, trialManifest, trialName, trials, type Grid } from '../../../sim-runtime/sweep/grid.ts'
import { pointRows, resultsCsv, type TrialRecord } from '../../../sim-runtime/sweep/summary.ts'
import { loadSimSweep } from '../../../sim-runtime/sweep/validate.ts'

const sweepYaml = (opts: { name?: string; workers?: string; seeds?: number; parallelism?: number; maxFailedTrials?: number; metrics?: string } = {}) => `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata: { name: ${opts.name ?? 'sw'} }
spec:
  template:
    endTime: 50ms
    seed: 5
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
    - { name: workers, path: hosts.b.components.s.model.workers, values: ${opts.workers ?? '[1, 2]'} }
  seeds: ${opts.seeds ?? 2}
  parallelism: ${opts.parallelism ?? 2}
  maxFailedTrials: ${opts.maxFailedTrials ?? 0}
  metrics:
${opts.metrics ?? `    - { name: p99, component: a/c, field: latency.p99Ns, aggregate: Max }
    - { name: tput, component: a/c, field: throughputPerSec, aggregate: Sum }`}
  objective: { metric: p99, goal: Minimize }
`

describe('trial names and objects', () => {
  const grid = loadSimSweep(sweepYaml({ workers: '[1, 2, 3]', seeds: 3 }))

  it('every trial name parses back to its point and seed; other names do not', () => {
    for (const t of trials(grid)) expect(parseTrialName('sw', t.name)).toEqual({ point: t.point, seedIndex: t.seedIndex })
    for (const bad of ['sw-p01-s0', 'sw-p1-s', 'sw-p1', 'other-p1-s0', 'sw-p1-s0-x', 'sw-px-s0', 'sw-results']) expect(parseTrialName('sw', bad), bad).toBeUndefined()
    // A sweep whose name looks like another's trial prefix reads only its own.
    expect(parseTrialName('sw-p1', 'sw-p1-s0')).toBeUndefined()
    expect(parseTrialName('sw-p1', 'sw-p1-p0-s2')).toEqual({ point: 0, seedIndex: 2 })
  })

  it('indices run point by point, seeds within a point', () => {
    expect(trials(grid).map((t) => trialIndex(grid, t))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
  })

  it("a trial object is livesim sweep's manifest, namespaced, owned by the sweep, with its spec hash", () => {
    const sw = sweepObject(grid)
    const t = trial(grid, 2, 1)
    const o = trialObject(sw, grid, t)
    const m = trialManifest(grid, t)
    expect(o.metadata.name).toBe('sw-p2-s1')
    expect(o.spec).toEqual(m.spec)
    expect(o.spec.seed).toBe(6)
    expect(o.metadata.namespace).toBe('ns1')
    expect(o.metadata.labels).toMatchObject({ 'livesim.dev/sweep': 'sw', 'livesim.dev/point': '2' })
    expect(o.metadata.annotations?.['livesim.dev/spec-hash']).toBe(specHash(m))
    expect(o.metadata.ownerReferences).toEqual([{ apiVersion: 'livesim.dev/v1alpha1', kind: 'SimSweep', name: 'sw', uid: 'uid-sw', controller: true, blockOwnerDeletion: true }])
  })
})

describe('what to create next', () => {
  const states = (s: string) => [...s].map((c) => ({ S: 'Succeeded', F: 'Failed', '.': 'NotRun' })[c] as TrialState)

  it('a fresh sweep creates the first `parallelism` trials', () => {
    expect(nextStep({ total: 6, created: 0, states: states('......'), parallelism: 2, maxFailedTrials: 0 })).toMatchObject({ create: [0, 1], unfinished: 0 })
    expect(nextStep({ total: 2, created: 0, states: states('..'), parallelism: 5, maxFailedTrials: 0 }).create).toEqual([0, 1])
  })

  it('a finished trial frees one slot, filled by the next index', () => {
    expect(nextStep({ total: 6, created: 2, states: states('S.....'), parallelism: 2, maxFailedTrials: 0 })).toMatchObject({ create: [2], unfinished: 1, succeeded: 1 })
    expect(nextStep({ total: 6, created: 3, states: states('S.....'), parallelism: 2, maxFailedTrials: 0 })).toMatchObject({ create: [], unfinished: 2 })
  })

  it('a lowered parallelism creates nothing until the unfinished ones are fewer', () => {
    expect(nextStep({ total: 6, created: 4, states: states('......'), parallelism: 2, maxFailedTrials: 0 })).toMatchObject({ create: [], unfinished: 4 })
  })

  it('more failures than maxFailedTrials: nothing new starts; Failed once the running ones are done', () => {
    const going = nextStep({ total: 6, created: 3, states: states('SF....'), parallelism: 2, maxFailedTrials: 0 })
    expect(going).toMatchObject({ create: [], unfinished: 1, failed: 1 })
    expect(going.stopping).toMatch(/1 trial failed, more than maxFailedTrials \(0\)/)
    expect(going.finished).toBeUndefined()
    expect(nextStep({ total: 6, created: 3, states: states('SFF...'), parallelism: 2, maxFailedTrials: 1 })).toMatchObject({ create: [], finished: 'Failed' })
    // Within the bound, failures are counted and the sweep goes on.
    const within = nextStep({ total: 6, created: 3, states: states('SF....'), parallelism: 2, maxFailedTrials: 1 })
    expect(within.create).toEqual([3])
    expect(within.stopping).toBeUndefined()
  })

  it('every trial finished within the bound: Succeeded', () => {
    expect(nextStep({ total: 3, created: 3, states: states('SFS'), parallelism: 2, maxFailedTrials: 1 })).toMatchObject({ create: [], finished: 'Succeeded', succeeded: 2, failed: 1 })
  })

  it('the created mark is the largest of status, the trials present and the finished ones', () => {
    expect(createdMark(0, [], states('....'))).toBe(0)
    expect(createdMark(2, [0], states('....'))).toBe(2)
    expect(createdMark(0, [3], states('S...'))).toBe(4)
    expect(createdMark(1, [], states('.S..'))).toBe(2)
  })

  it('over a whole sweep with random finishes, never more than parallelism unfinished', () => {
    let seed = 7
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    for (const parallelism of [1, 2, 3, 5]) {
      const st: TrialState[] = Array.from({ length: 17 }, () => 'NotRun')
      let created = 0
      let maxUnfinished = 0
      for (let round = 0; round < 1000; round++) {
        const next = nextStep({ total: st.length, created, states: st, parallelism, maxFailedTrials: 100 })
        if (next.finished) break
        created += next.create.length
        const unfinished = st.map((s, i) => i < created && s === 'NotRun').filter(Boolean).length
        maxUnfinished = Math.max(maxUnfinished, unfinished)
        const running = st.flatMap((s, i) => (i < created && s === 'NotRun' ? [i] : []))
        const done = running[Math.floor(random() * running.length)]
        if (done !== undefined) st[done] = random() < 0.2 ? 'Failed' : 'Succeeded'
      }
      expect(st.every((s) => s !== 'NotRun'), `parallelism ${parallelism}: every trial ran`).toBe(true)
      expect(maxUnfinished, `parallelism ${parallelism}`).toBe(parallelism)
    }
  })
})

/** A trial's results document with the fields the test sweeps' metrics read. */
function fakeResults(name: string, p99Ns: number, tput: number): Record<string, unknown> {
  const client = (x: number) => ({ kind: 'Client', latency: { count: 10, meanNs: x / 2, p50Ns: x / 3, p90Ns: x / 2, p99Ns: x, p999Ns: x, maxNs: x }, throughputPerSec: tput / 2 })
  return {
    apiVersion: 'livesim.dev/v1alpha1',
    kind: 'SimResults',
    cluster: name,
    detail: 'Hosts',
    groups: {},
    hosts: { 'a-0': { events: 1, components: { c: client(p99Ns) } }, 'a-1': { events: 1, components: { c: client(p99Ns - 1) } }, 'b-0': { events: 1, components: { s: { kind: 'Server' } } } },
    links: {},
    wall: { seconds: 0.5, slowdown: 10, runtimes: 3 },
    digest: `sha256:${name}`,
  }
}

function records(grid: Grid, metric: (point: number, seedIndex: number) => number[]): TrialRecord[] {
  return emptyRecords(grid).map((r) => ({ ...r, status: 'Succeeded', digest: `sha256:${'0'.repeat(64)}`, metrics: metric(r.point, r.seedIndex), wallSeconds: 1.5 }))
}

describe('status rows', () => {
  it('status.points has the rows of pointRows without failure counts and latency; best and conditions agree', () => {
    const grid = loadSimSweep(sweepYaml({ workers: '[1, 2, 3]', seeds: 2 }))
    const rs = records(grid, (p, s) => [1000 * (3 - p) + s, 10 * p])
    const { rows, best } = pointRows(grid, rs)
    const shown = statusRows(rows)
    expect(shown.map((r) => r.point)).toEqual([0, 1, 2])
    expect(shown[2]).toEqual({ point: 2, values: [3], trialsDone: 2, metrics: rows[2]!.metrics })
    expect(Object.keys(shown[0]!)).toEqual(['point', 'values', 'trialsDone', 'metrics'])
    expect(shown[2]!.metrics[0]).toMatchObject({ name: 'p99', n: 2, mean: 1000.5 })
    expect(best).toBe(2)
    const st: SweepStatus = { phase: 'Succeeded' }
    const conds = Object.fromEntries(sweepConditions(st, 4, 'Succeeded', 'done', new Date(0)).map((c) => [c.type, c]))
    expect(Object.fromEntries(Object.entries(conds).map(([k, c]) => [k, c.status]))).toEqual({ Ready: 'True', Reconciling: 'False', Progressing: 'False', Stalled: 'False', Complete: 'True', Failed: 'False' })
    for (const c of Object.values(conds)) expect(c.observedGeneration).toBe(4)
  })

  it(`at most ${SWEEP_LIMITS.statusPointsMax} rows and ${STATUS_POINTS_BYTES_MAX} bytes`, () => {
    const values = `[${Array.from({ length: 100 }, (_, i) => i + 1).join(', ')}]`
    const sixteen = Array.from({ length: 16 }, (_, i) => `    - { name: m${i}, component: a/c, field: latency.p99Ns }`).join('\n')
    const big = loadSimSweep(
      sweepYaml({ seeds: 1, metrics: sixteen, workers: values }).replace('objective: { metric: p99', 'objective: { metric: m0').replace(
        '  seeds: 1',
        `  seeds: 1\n  # ${'x'}`,
      ).replace('parameters:\n', `parameters:\n    - { name: lat, path: network.default.latency, values: [100us, 200us, 300us, 400us, 500us] }\n`),
    )
    expect(big.points).toBe(500)
    const rs = records(big, (p) => Array.from({ length: 16 }, (_, m) => 1e6 + p * 1000 + m + 0.123456789))
    const shown = statusRows(pointRows(big, rs).rows)
    expect(shown.length).toBeGreaterThan(0)
    expect(shown.length).toBeLessThanOrEqual(SWEEP_LIMITS.statusPointsMax)
    expect(Buffer.byteLength(JSON.stringify(shown))).toBeLessThanOrEqual(STATUS_POINTS_BYTES_MAX)
    // The rows kept are the first ones, in order.
    expect(shown.map((r) => r.point)).toEqual(shown.map((_, i) => i))
  })
})

describe('the results ConfigMap', () => {
  it('small: results.csv as resultsCsv writes it, results.json with every trial; the records read back equal', () => {
    const grid = loadSimSweep(sweepYaml())
    const rs = records(grid, (p, s) => [100 + p + s / 10, 5])
    rs[3] = failedRecord(grid, trial(grid, 1, 1), 'pod sw-p1-s1-leader-a1 failed')
    const p = resultsPayload(grid, rs, { phase: 'Running', latency: undefined })
    expect(Object.keys(p.data ?? {})).toEqual(['results.csv', 'results.json'])
    expect(p.omitted).toBeUndefined()
    const cm = resultsConfigMap(sweepObject(grid), p)
    expect(readResultsCsv(cm)).toBe(resultsCsv(grid, rs))
    const doc = readResultsDoc(cm)!
    expect(doc.phase).toBe('Running')
    expect(keptRecords(grid, doc)).toEqual(rs)
  })

  it('a grid of 1000 trials and 16 metrics stays within one ConfigMap, and every record reads back', () => {
    const values = `[${Array.from({ length: 100 }, (_, i) => i + 1).join(', ')}]`
    const sixteen = Array.from({ length: 16 }, (_, i) => `    - { name: m${i}, component: a/c, field: latency.p99Ns }`).join('\n')
    const grid = loadSimSweep(
      sweepYaml({ seeds: 1, metrics: sixteen, workers: values })
        .replace('objective: { metric: p99', 'objective: { metric: m0')
        .replace('parameters:\n', `parameters:\n    - { name: lat, path: network.default.latency, values: [100us, 200us, 300us, 400us, 500us, 600us, 700us, 800us, 900us, 1ms] }\n`),
    )
    expect(grid.points * grid.seeds).toBe(SWEEP_LIMITS.trialsMax)
    const rs = records(grid, (p) => Array.from({ length: 16 }, (_, m) => 1e6 + p * 1000 + m + 0.123456789))
    for (const r of rs) r.latency = { p50Ns: 1.5e5, p90Ns: 2.5e5, p99Ns: 1e6 + r.point, p999Ns: 2e6, maxNs: 3e6 }
    const p = resultsPayload(grid, rs, { phase: 'Succeeded', latency: { component: 'a/c', field: 'latency' } })
    const cm = resultsConfigMap(sweepObject(grid), p)
    expect(payloadBytes(cm)).toBeLessThanOrEqual(CONFIGMAP_PAYLOAD_MAX)
    // Text does not fit: the JSON went to gzip at least.
    expect(cm.data?.['results.json']).toBeUndefined()
    expect(readResultsCsv(cm)).toBe(resultsCsv(grid, rs))
    expect(keptRecords(grid, readResultsDoc(cm)).map((r) => r.metrics)).toEqual(rs.map((r) => r.metrics))
  })

  it('values too large even gzipped: results.csv.gz alone, and the ConfigMap says what it left out', () => {
    // Random letters, different at each point, gzip to about 0.6: 50 values of 10 KB make a CSV.gz
    // of ~400 KB in base64; results.json holds each value twice more (parameters, trials).
    let x = 1
    const noise = (n: number) => Array.from({ length: n }, () => 'abcdefghijklmnopqrstuvwxyz'[(x = (x * 48271) % 2147483647) % 26]).join('')
    const grid = loadSimSweep(sweepYaml({ seeds: 1 }))
    const withValues = (values: string[]): Grid => ({ ...grid, points: values.length, parameters: [{ ...grid.parameters[0]!, values }] })
    const big = withValues(Array.from({ length: 50 }, () => noise(10_000)))
    const rs = emptyRecords(big).map((r) => ({ ...r, status: 'Succeeded' as const, metrics: [1, 2] }))
    const p = resultsPayload(big, rs, { phase: 'Succeeded', latency: undefined })
    expect(p.omitted).toMatch(/^results.json: /)
    expect(Object.keys(p.binaryData ?? {})).toEqual(['results.csv.gz'])
    const cm = resultsConfigMap(sweepObject(grid), p)
    expect(payloadBytes(cm)).toBeLessThanOrEqual(CONFIGMAP_PAYLOAD_MAX)
    expect(cm.metadata.annotations?.['livesim.dev/omitted']).toBe(p.omitted)
    expect(readResultsCsv(cm)).toBe(resultsCsv(big, rs))
    // Larger still: nothing but what was left out.
    const bigger = withValues(Array.from({ length: 100 }, () => noise(20_000)))
    const none = resultsPayload(bigger, emptyRecords(bigger), { phase: 'Succeeded', latency: undefined })
    expect(none.data ?? none.binaryData).toBeUndefined()
    expect(none.omitted).toMatch(/^results.csv and results.json: /)
  })

  it("a trial's results read from each form its ConfigMaps take: text, gzip, gzip in parts; 'missing' until all are there", () => {
    const results = fakeResults('sw-p0-s0', 1000, 50)
    const json = JSON.stringify(results)
    const gz = gzipSync(json)
    const cm = (name: string, body: Partial<ConfigMap>, annotations: Record<string, string> = {}): ConfigMap => ({ metadata: { name, annotations }, ...body })
    const from = (cms: ConfigMap[]) => trialResults('sw-p0-s0', (n) => cms.find((c) => c.metadata.name === n))
    expect(from([])).toBe('missing')
    expect(from([cm('sw-p0-s0-results', { data: { 'results.json': json } })])).toEqual(results)
    expect(from([cm('sw-p0-s0-results', { binaryData: { 'results.json.gz': gz.toString('base64') } })])).toEqual(results)
    const half = Math.ceil(gz.length / 2)
    const parts = [
      cm('sw-p0-s0-results', { data: { 'summary.json': '{}' } }, { 'livesim.dev/parts': '2' }),
      cm('sw-p0-s0-results-part-1', { binaryData: { 'results.json.gz': gz.subarray(0, half).toString('base64') } }),
      cm('sw-p0-s0-results-part-2', { binaryData: { 'results.json.gz': gz.subarray(half).toString('base64') } }),
    ]
    expect(from(parts)).toEqual(results)
    expect(from(parts.slice(0, 2))).toBe('missing')
  })

  it('a kept record of another spec is SpecChangedError, naming the trial', () => {
    const grid = loadSimSweep(sweepYaml())
    const rs = records(grid, () => [1, 2])
    const other = loadSimSweep(sweepYaml({ workers: '[1, 3]' }))
    const doc = readResultsDoc(resultsConfigMap(sweepObject(grid), resultsPayload(grid, rs, { phase: 'Running', latency: undefined })))
    expect(() => keptRecords(other, doc)).toThrow(SpecChangedError)
    expect(() => keptRecords(other, doc)).toThrow(/trial sw-p1-s0 ran with spec sha256:/)
  })
})

// ---------------------------------------------------------------------------------------------
// Whole sweeps against in-memory caches.

function sweepObject(grid: Grid, yaml = sweepYaml({ name: grid.sweep })): SimSweepObject {
  const doc = parseYaml(yaml) as SimSweepObject
  return { ...doc, metadata: { ...doc.metadata, namespace: 'ns1', uid: 'uid-sw', generation: 1, resourceVersion: '1' } }
}

function cache<T extends KubeObject>(): Cache<T> & { byKey: Map<string, T> } {
  const byKey = new Map<string, T>()
  return {
    byKey,
    get: (k) => byKey.get(k),
    list: (f) => [...byKey.values()].filter((o) => !f || f(o)),
    upsert: (o) => byKey.set(`${o.metadata.namespace}/${o.metadata.name}`, o),
  }
}

class World {
  readonly sweeps = cache<SimSweepObject>()
  readonly clusters = cache<SimClusterObject>()
  readonly configMaps = cache<ConfigMap>()
  readonly events: { reason: string; message: string }[] = []
  readonly created: string[] = []
  rv = 10
  readonly r: SimSweepReconciler

  constructor(sw: SimSweepObject) {
    this.sweeps.upsert(sw)
    const client = {
      create: async (path: string, obj: KubeObject) => {
        const o = structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv), uid: `uid-${obj.metadata.name}` } })
        if (path.endsWith('/events')) {
          this.events.push({ reason: String(obj.reason), message: String(obj.message) })
          return o
        }
        const store = path.endsWith('/simclusters') ? this.clusters : this.configMaps
        if (store.get(`ns1/${obj.metadata.name}`)) throw new ApiError(409, 'AlreadyExists', 'exists', undefined)
        if (path.endsWith('/simclusters')) this.created.push(obj.metadata.name)
        return o
      },
      request: async (_m: string, _p: string, body: KubeObject) => structuredClone({ ...body, metadata: { ...body.metadata, resourceVersion: String(++this.rv) } }),
      patch: async (path: string, body: { status: Record<string, unknown> }) => {
        const sw = this.sweeps.get('ns1/sw')!
        const status = Object.fromEntries(Object.entries({ ...(sw.status ?? {}), ...body.status }).filter(([, v]) => v !== null))
        expect(path).toContain('/simsweeps/sw/status')
        return structuredClone({ ...sw, metadata: { ...sw.metadata, resourceVersion: String(++this.rv) }, status })
      },
      get: async (path: string) => {
        const name = decodeURIComponent(path.split('/').at(-1)!)
        const o = this.clusters.get(`ns1/${name}`)
        if (!o) throw new ApiError(404, 'NotFound', 'not found', undefined)
        return o
      },
      delete: async (path: string) => {
        this.clusters.byKey.delete(`ns1/${decodeURIComponent(path.split('/').at(-1)!)}`)
      },
    } as unknown as KubeClient
    this.r = new SimSweepReconciler({ client, caches: { simSweeps: this.sweeps, simClusters: this.clusters, configMaps: this.configMaps }, log: pino({ level: 'silent' }) })
  }

  status(): SweepStatus {
    return (this.sweeps.get('ns1/sw')!.status ?? {}) as SweepStatus
  }

  unfinished(): string[] {
    return this.clusters.list((o) => !['Succeeded', 'Failed'].includes(String(o.status?.phase)) && !o.metadata.deletionTimestamp).map((o) => o.metadata.name)
  }

  /** A trial ends as its SimCluster reconciler ends it: results ConfigMap first, then status. */
  finish(name: string, outcome: 'Succeeded' | 'Failed', p99 = 1000): void {
    const o = this.clusters.get(`ns1/${name}`)!
    if (outcome === 'Succeeded') {
      const results = fakeResults(name, p99, 50)
      this.configMaps.upsert({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-results`, namespace: 'ns1', labels: { 'livesim.dev/cluster': name } }, data: { 'results.json': JSON.stringify(results) } })
      o.status = { phase: 'Succeeded', results: { digest: results.digest } }
    } else {
      o.status = { phase: 'Failed', message: `attempt 1 failed: pod ${name}-leader-a1 failed` }
    }
  }

  csv(): string {
    return readResultsCsv(this.configMaps.get('ns1/sw-results')!)!
  }
}

describe('SimSweep reconciler', () => {
  it('runs a sweep to Complete: at most parallelism unfinished, rows, best, results, events', async () => {
    const grid = loadSimSweep(sweepYaml({ workers: '[1, 2, 3]', seeds: 2, parallelism: 2 }))
    const w = new World(sweepObject(grid, sweepYaml({ workers: '[1, 2, 3]', seeds: 2, parallelism: 2 })))
    let maxUnfinished = 0
    for (let round = 0; round < 20 && !['Succeeded', 'Failed'].includes(w.status().phase ?? ''); round++) {
      await w.r.reconcile('ns1/sw')
      await w.r.reconcile('ns1/sw') // idempotent: a second pass creates nothing more
      maxUnfinished = Math.max(maxUnfinished, w.unfinished().length)
      const next = w.unfinished().sort()[0]
      if (next) w.finish(next, 'Succeeded', 2000 - 100 * Number(/-p(\d+)/.exec(next)![1]))
    }
    expect(maxUnfinished).toBe(2)
    expect(w.created).toEqual(trials(grid).map((t) => t.name))
    const st = w.status()
    expect(st.phase).toBe('Succeeded')
    expect(st.trials).toEqual({ total: 6, succeeded: 6, failed: 0, running: 0 })
    expect(st.trialsSummary).toBe('6/6')
    expect(st.points?.map((p) => p.trialsDone)).toEqual([2, 2, 2])
    expect(st.best?.point).toBe(2)
    expect(st.bestSummary).toBe('p2 (workers=3): p99 1800')
    expect(st.observedGeneration).toBe(1)
    expect(st.conditions?.find((c) => c.type === 'Complete')?.status).toBe('True')
    expect(w.events.map((e) => e.reason)).toEqual(['Started', 'Succeeded'])
    const csv = w.csv().trim().split('\n')
    expect(csv[0]).toBe('trial,point,seed,workers,p99,tput,status,digest')
    expect(csv[1]).toBe('sw-p0-s0,0,5,1,2000,50,Succeeded,sha256:sw-p0-s0')
    expect(csv).toHaveLength(7)
  })

  it('counts failures against maxFailedTrials: the running trials finish, no new one starts, then Failed', async () => {
    const yaml = sweepYaml({ workers: '[1, 2, 3]', seeds: 2, parallelism: 2, maxFailedTrials: 0 })
    const w = new World(sweepObject(loadSimSweep(yaml), yaml))
    await w.r.reconcile('ns1/sw')
    expect(w.created).toEqual(['sw-p0-s0', 'sw-p0-s1'])
    w.finish('sw-p0-s0', 'Failed')
    await w.r.reconcile('ns1/sw')
    expect(w.created).toHaveLength(2)
    expect(w.status().phase).toBe('Running')
    expect(w.status().message).toMatch(/no further trials are started; waiting for 1 running trial/)
    w.finish('sw-p0-s1', 'Succeeded')
    await w.r.reconcile('ns1/sw')
    const st = w.status()
    expect(st.phase).toBe('Failed')
    expect(st.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'MaxFailedTrialsExceeded' })
    expect(st.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True')
    expect(w.events.map((e) => e.reason)).toEqual(['Started', 'TrialFailed', 'MaxFailedTrialsExceeded'])
    expect(w.csv()).toMatch(/sw-p0-s0,0,5,1,,,Failed,\n/)
    expect(w.csv()).toMatch(/sw-p2-s1,2,6,3,,,NotRun,\n/)
    // Nothing retried, whatever reconciles follow.
    await w.r.reconcile('ns1/sw')
    expect(w.created).toHaveLength(2)
  })

  it('a Succeeded trial whose results ConfigMap the cache has not seen yet is looked at again soon', async () => {
    const yaml = sweepYaml({ seeds: 1, parallelism: 1 })
    const w = new World(sweepObject(loadSimSweep(yaml), yaml))
    await w.r.reconcile('ns1/sw')
    w.finish('sw-p0-s0', 'Succeeded', 10)
    const cm = w.configMaps.get('ns1/sw-p0-s0-results')!
    w.configMaps.byKey.delete('ns1/sw-p0-s0-results')
    expect(await w.r.reconcile('ns1/sw')).toEqual({ requeueAfterMs: 1000 })
    expect(w.status().trials).toMatchObject({ succeeded: 0, running: 1 })
    expect(w.created).toEqual(['sw-p0-s0'])
    w.configMaps.upsert(cm)
    expect(await w.r.reconcile('ns1/sw')).toEqual({})
    expect(w.status().trials).toMatchObject({ succeeded: 1, running: 1 })
    expect(w.created).toEqual(['sw-p0-s0', 'sw-p1-s0'])
  })

  it('a trial deleted before its results were read is Failed, not created again', async () => {
    const yaml = sweepYaml({ seeds: 1, parallelism: 1, maxFailedTrials: 1 })
    const w = new World(sweepObject(loadSimSweep(yaml), yaml))
    await w.r.reconcile('ns1/sw')
    expect(w.created).toEqual(['sw-p0-s0'])
    w.clusters.byKey.delete('ns1/sw-p0-s0')
    await w.r.reconcile('ns1/sw')
    expect(w.created).toEqual(['sw-p0-s0', 'sw-p1-s0'])
    expect(w.csv()).toMatch(/sw-p0-s0,0,5,1,,,Failed,/)
    expect(readResultsDoc(w.configMaps.get('ns1/sw-results')!)!.trials[0]!.message).toMatch(/deleted before its results were read/)
  })

  it('a finished trial is kept in the results when it is gone later; the sweep TTL deletes the trials, not the results', async () => {
    const yaml = sweepYaml({ seeds: 1, parallelism: 2 }).replace('  maxFailedTrials: 0\n', '  maxFailedTrials: 0\n  ttlSecondsAfterFinished: 0\n')
    const w = new World(sweepObject(loadSimSweep(yaml), yaml))
    await w.r.reconcile('ns1/sw')
    w.finish('sw-p0-s0', 'Succeeded', 10)
    await w.r.reconcile('ns1/sw')
    w.clusters.byKey.delete('ns1/sw-p0-s0') // its own TTL
    w.finish('sw-p1-s0', 'Succeeded', 20)
    await w.r.reconcile('ns1/sw')
    expect(w.status().phase).toBe('Succeeded')
    expect(w.csv()).toMatch(/sw-p0-s0,0,5,1,10,50,Succeeded,sha256:sw-p0-s0/)
    expect(w.clusters.list()).toEqual([])
    expect(w.configMaps.get('ns1/sw-results')).toBeDefined()
    expect(w.events.map((e) => e.reason)).toContain('TrialsDeleted')
  })

  it('a change after the end is acknowledged (observedGeneration) and changes nothing else', async () => {
    const yaml = sweepYaml({ seeds: 1, workers: '[1]' })
    const w = new World(sweepObject(loadSimSweep(yaml), yaml))
    await w.r.reconcile('ns1/sw')
    w.finish('sw-p0-s0', 'Succeeded', 10)
    await w.r.reconcile('ns1/sw')
    const done = w.status()
    expect(done.phase).toBe('Succeeded')
    const sw = w.sweeps.get('ns1/sw')!
    w.sweeps.upsert({ ...sw, spec: { ...sw.spec, parallelism: 3 }, metadata: { ...sw.metadata, generation: 2 } })
    await w.r.reconcile('ns1/sw')
    const after = w.status()
    expect(after.observedGeneration).toBe(2)
    for (const c of after.conditions ?? []) expect(c.observedGeneration, c.type).toBe(2)
    expect({ ...after, observedGeneration: 1, conditions: undefined }).toEqual({ ...done, conditions: undefined })
    expect(after.conditions?.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime])).toEqual(done.conditions?.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime]))
    expect(w.created).toEqual(['sw-p0-s0'])
  })

  it('parameter values changed after trials ran: Failed with SpecChanged, naming the trial', async () => {
    const yaml = sweepYaml()
    const w = new World(sweepObject(loadSimSweep(yaml), yaml))
    await w.r.reconcile('ns1/sw')
    const changed = sweepObject(loadSimSweep(yaml), sweepYaml({ workers: '[3, 4]' }))
    w.sweeps.upsert({ ...changed, metadata: { ...changed.metadata, generation: 2 }, status: w.status() as Record<string, unknown> })
    await w.r.reconcile('ns1/sw')
    const st = w.status()
    expect(st.phase).toBe('Failed')
    expect(st.observedGeneration).toBe(2)
    expect(st.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ reason: 'SpecChanged' })
    expect(st.message).toMatch(/trial sw-p0-s0 was created with spec sha256:\w+, but spec now makes it sha256:/)
  })

  it('an invalid sweep is Stalled with the field path, and starts once corrected', async () => {
    const bad = sweepYaml().replace('hosts.b.components.s.model.workers', 'hosts.dbx.components.s.model.workers')
    const w = new World(sweepObject(loadSimSweep(sweepYaml()), bad))
    await w.r.reconcile('ns1/sw')
    const st = w.status()
    expect(st.phase).toBe('Failed')
    expect(st.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSpec' })
    expect(st.message).toMatch(/^spec.parameters\[0\].path: no host group "dbx" in template.hosts/)
    expect(w.created).toEqual([])
    const good = sweepObject(loadSimSweep(sweepYaml()))
    w.sweeps.upsert({ ...good, metadata: { ...good.metadata, generation: 2 }, status: st as Record<string, unknown> })
    await w.r.reconcile('ns1/sw')
    expect(w.status().phase).toBe('Running')
    expect(w.status().completionTime).toBeUndefined()
    expect(w.created).toEqual(['sw-p0-s0', 'sw-p0-s1'])
  })

  it("a trial of an earlier sweep of the same name, not yet collected, is waited for, not taken or counted", async () => {
    const yaml = sweepYaml({ seeds: 1, parallelism: 2 })
    const grid = loadSimSweep(yaml)
    const w = new World(sweepObject(grid, yaml))
    const old = trialObject({ ...sweepObject(grid, yaml), metadata: { ...sweepObject(grid, yaml).metadata, uid: 'uid-earlier' } }, grid, trial(grid, 0, 0))
    w.clusters.upsert({ ...old, status: { phase: 'Succeeded' } })
    await w.r.reconcile('ns1/sw')
    expect(w.created).toEqual([])
    expect(w.status().trials).toMatchObject({ running: 0, failed: 0 })
    expect(w.status().message).toMatch(/waiting for SimCluster sw-p0-s0, not this sweep's/)
    w.clusters.byKey.delete('ns1/sw-p0-s0')
    await w.r.reconcile('ns1/sw')
    expect(w.created).toEqual(['sw-p0-s0', 'sw-p1-s0'])
    expect(w.status().trials).toMatchObject({ running: 2, failed: 0 })
  })

  it('trial names are from trialName', () => {
    expect(trialName('sw', 3, 1)).toBe('sw-p3-s1')
  })
})

// Results that fit: a 1,000-host cluster's default results are per group, well under the 1 MiB a
// ConfigMap holds (as the operator stores them: JSON, or gzip in base64), the same however the hosts
// are placed; with every host and link asked for, the operator splits them into ConfigMaps that are
// each within the limit, and whose parts give back the very document `livesim run` writes.
import { randomBytes } from 'node:crypto'
import { gunzipSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { Histogram } from '../../sim-runtime/engine/histogram.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import type { MergedHistogram, ReplicaSpread } from '../../sim-runtime/sync/group-results.ts'
import { digestOf, resultsJson, type SimResults } from '../../sim-runtime/sync/results.ts'
import { CONFIGMAP_PAYLOAD_MAX, payloadBytes, RESULTS_PARTS_MAX, resultsConfigMaps } from '../../operator/simcluster/results-configmaps.ts'
import type { SimClusterObject } from '../../operator/simcluster/objects.ts'
import { manifest, runProcesses } from '../helpers.ts'

const MiB = 1024 * 1024

/** The quickstart at 1,000 hosts: 800 clients, 160 web servers, 40 databases. */
function thousand(rate: number, endTime: string, detail?: 'Groups' | 'Hosts') {
  return manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: thousand }
spec:
  endTime: ${endTime}
  seed: 42
${detail ? `  results: { detail: ${detail} }\n` : ''}  network:
    default: { latency: 100us, bandwidth: 10Gbps }
    links: [{ from: client, to: web, latency: 250us, bandwidth: 1Gbps }]
  hosts:
    - name: client
      replicas: 800
      components:
        - name: load
          model: { kind: Client, target: web/http, openLoop: { rate: ${rate} }, requestSize: 800B, responseSize: 16KiB, timeout: 100ms }
    - name: web
      replicas: 160
      components:
        - name: http
          model:
            kind: Server
            workers: 8
            queueLimit: 256
            service: { distribution: LogNormal, mean: 300us, sigma: 0.6 }
            calls: [{ target: db/sql, requestSize: 300B, responseSize: 4KiB, timeout: 50ms }]
    - name: db
      replicas: 40
      components:
        - name: sql
          model: { kind: Server, workers: 4, service: { distribution: Exponential, mean: 120us } }
`)
}

const owner = { apiVersion: 'livesim.dev/v1alpha1', kind: 'SimCluster', metadata: { name: 'thousand', namespace: 'ns', uid: 'u-1' } } as unknown as SimClusterObject
type CM = { metadata: { name: string; annotations: Record<string, string> }; data?: Record<string, string>; binaryData?: Record<string, string> }

describe('the results of a 1,000-host cluster', () => {
  it('are per group by default, under 1 MiB as JSON and as gzip in base64, in one ConfigMap', () => {
    const m = thousand(100, '200ms')
    const r = simulateInProcess(m.plan)
    expect(r.detail).toBe('Groups')
    expect([r.hosts, r.links]).toEqual([{}, {}])
    expect(Object.keys(r.groups)).toEqual(['client', 'web', 'db'])
    expect(Object.keys(r.groupLinks).sort()).toEqual(['client->web', 'db->web', 'web->client', 'web->db'])
    expect(r.groupLinks['client->web']!.links).toBeGreaterThan(800)
    const json = resultsJson(r)
    const bytes = Buffer.byteLength(json)
    const base64 = gzipSync(json).toString('base64').length
    expect(bytes).toBeLessThan(MiB)
    expect(base64).toBeLessThan(MiB)
    const cms = resultsConfigMaps(owner, r) as CM[]
    expect(cms.map((c) => c.metadata.name)).toEqual(['thousand-results'])
    expect(cms[0]!.data!['results.json']).toBe(json)
    expect(payloadBytes(cms[0]!)).toBeLessThanOrEqual(CONFIGMAP_PAYLOAD_MAX)
    // Outliers: the 5 slowest replicas of each group with more than one, by p99.
    for (const key of ['client/load', 'web/http', 'db/sql']) {
      const o = r.outliers.p99[key]!
      expect(o.hosts).toHaveLength(5)
      for (let i = 1; i < o.hosts.length; i++) expect(o.hosts[i - 1]!.p99Ns).toBeGreaterThanOrEqual(o.hosts[i]!.p99Ns)
    }
  }, 120_000)

  it('merge the replicas exactly: counts add up, the histogram in the results gives its percentiles', () => {
    const r = simulateInProcess(thousand(100, '200ms').plan)
    const load = r.groups.client!.components.load as { completed: number; latency: MergedHistogram; perReplica: Record<string, ReplicaSpread> }
    expect(load.latency.count).toBe(load.completed)
    expect(load.perReplica['latency.count']).toMatchObject({ n: 800, sum: load.completed })
    const h = Histogram.fromBuckets(load.latency.histogram)
    const { histogram: _h, ...summary } = load.latency
    expect(h.summary()).toEqual(summary)
    // The group's p99 lies within its replicas' p99s, and its slowest replica is their maximum.
    const p99 = load.perReplica['latency.p99Ns']!
    expect(load.latency.p99Ns).toBeGreaterThanOrEqual(p99.min)
    expect(load.latency.p99Ns).toBeLessThanOrEqual(p99.max)
    expect(r.outliers.p99['client/load']!.hosts[0]!.p99Ns).toBe(p99.max)
  }, 120_000)

  it('give one digest embedded and split into runtime processes, in both forms', async () => {
    for (const detail of ['Groups', 'Hosts'] as const) {
      const m = thousand(20, '100ms', detail)
      const embedded = await runProcesses(m)
      const three = await runProcesses(m, { partition: 3 })
      expect(three.digest, detail).toBe(embedded.digest)
      expect(embedded.detail).toBe(detail)
      expect(Object.keys(embedded.hosts)).toHaveLength(detail === 'Hosts' ? 1000 : 0)
      expect(simulateInProcess(m.plan).digest).toBe(embedded.digest)
    }
  }, 600_000)

  it('with every host and link, go into ConfigMaps of at most 900 KiB whose parts give the document back', () => {
    // 1000 requests/s per client over 200 ms: every client reaches every web server (268,767 links).
    const r = simulateInProcess(thousand(1000, '200ms', 'Hosts').plan)
    expect(Object.keys(r.hosts)).toHaveLength(1000)
    expect(Object.keys(r.links).length).toBeGreaterThan(250_000)
    const json = resultsJson(r)
    expect(gzipSync(json).toString('base64').length).toBeGreaterThan(CONFIGMAP_PAYLOAD_MAX)
    const cms = resultsConfigMaps(owner, r) as CM[]
    for (const cm of cms) expect(payloadBytes(cm), cm.metadata.name).toBeLessThanOrEqual(CONFIGMAP_PAYLOAD_MAX)
    const [first, ...parts] = cms
    expect(first!.metadata.name).toBe('thousand-results')
    expect(first!.metadata.annotations['livesim.dev/parts']).toBe(String(parts.length))
    expect(parts.length).toBeGreaterThan(0)
    expect(parts.length).toBeLessThanOrEqual(RESULTS_PARTS_MAX)
    const summary = JSON.parse(first!.data!['summary.json']!) as SimResults
    expect(summary.digest).toBe(r.digest)
    expect([summary.hosts, summary.links]).toEqual([{}, {}])
    const whole = gunzipSync(Buffer.concat(parts.map((p) => Buffer.from(p.binaryData!['results.json.gz']!, 'base64')))).toString('utf8')
    expect(whole).toBe(json)
    expect(digestOf(JSON.parse(whole) as SimResults)).toBe(r.digest)
  }, 300_000)

  it('too large even in 16 parts: only the summary is stored, and the ConfigMap says what is left out', () => {
    const r = simulateInProcess(thousand(20, '50ms').plan)
    // 12 MiB of incompressible host detail: more than 16 parts of gzip.
    const noise = (n: number) => randomBytes(n).toString('base64')
    const hosts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`h-${i}`, { events: 0, components: { x: { blob: noise(MiB) } } }]))
    const cms = resultsConfigMaps(owner, { ...r, hosts }) as CM[]
    expect(cms).toHaveLength(1)
    expect(Object.keys(cms[0]!.data!)).toEqual(['summary.json'])
    expect(cms[0]!.metadata.annotations['livesim.dev/omitted']).toMatch(/^hosts and links: the results are \d+ bytes of gzip, more than 16 ConfigMaps/)
    expect(payloadBytes(cms[0]!)).toBeLessThanOrEqual(CONFIGMAP_PAYLOAD_MAX)
  }, 120_000)
})

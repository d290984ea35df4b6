// The table of what each component kind reports (sweep/fields.ts) against what Client and Server
// really report, and how a metric is read out of a results document and aggregated over replicas.
import { describe, expect, it } from 'vitest'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'
import { fieldProblem, metricHosts, metricValue, REPORTS, type FieldNode } from '../../sim-runtime/sweep/fields.ts'
import { manifest } from '../helpers.ts'

const m = manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: fields }
spec:
  endTime: 20ms
  hosts:
    - name: client
      replicas: 2
      components:
        - { name: load, model: { kind: Client, target: srv/s, closedLoop: { users: 2 } } }
    - name: srv
      components:
        - { name: s, model: { kind: Server, service: { distribution: Exponential, mean: 1ms } } }
`)

/** Dotted paths of the numeric leaves of a results object. */
function leaves(x: unknown, at = ''): string[] {
  if (typeof x === 'number') return [at]
  if (x === null || typeof x !== 'object') return []
  return Object.entries(x).flatMap(([k, v]) => leaves(v, at ? `${at}.${k}` : k))
}

/** Dotted paths of the table's leaves, maps left out (their keys are known only at run time). */
function tableLeaves(n: FieldNode, at = ''): string[] {
  if ('leaf' in n) return [at]
  if ('key' in n) return []
  return Object.entries(n.fields).flatMap(([k, v]) => tableLeaves(v, at ? `${at}.${k}` : k))
}

describe('the fields each kind reports', () => {
  const results = simulateInProcess(m.plan)
  const spec = (group: number) => m.cluster.spec.hosts[group]!.components[0]!

  it.each([
    ['Client', 0, 'client-0', 'load'],
    ['Server', 1, 'srv-0', 's'],
  ] as const)('%s: every number it reports is in the table, and every field of the table is reported', (kind, group, host, name) => {
    const reported = leaves(results.hosts[host]!.components[name])
    for (const f of reported) expect(fieldProblem(spec(group), f), f).toBeUndefined()
    expect(reported.sort()).toEqual(tableLeaves(REPORTS[kind]).sort())
  })

  it('refuses what is not reported, naming what is', () => {
    expect(fieldProblem(spec(0), 'latency.p95Ns')).toBe('latency reports no field "p95Ns"; its fields are: count, meanNs, p50Ns, p90Ns, p99Ns, p999Ns, maxNs')
    expect(fieldProblem(spec(1), 'callStatus.200')).toBe('callStatus is reported only by a Server whose calls speak http:')
    expect(fieldProblem(spec(0), 'sent.count')).toBe('sent is a number; the path cannot go further')
    expect(fieldProblem({ name: 'x', model: { kind: 'Custom', module: './x.mjs' } }, 'anything.at.all')).toBeUndefined()
  })
})

describe('metric values', () => {
  const doc = (a: object, b: object) => ({ hosts: { 'client-0': { components: { load: a } }, 'client-1': { components: { load: b } } } }) as unknown as SimResults
  const r = doc({ kind: 'Client', latency: { p99Ns: 100 }, status: { 200: 5 } }, { kind: 'Client', latency: { p99Ns: 300 } })

  it('aggregates a group over its replicas: Mean, Max, Min, Sum', () => {
    const hosts = metricHosts(m.plan, 'client/load')
    expect(hosts).toEqual({ hosts: ['client-0', 'client-1'], component: 'load' })
    expect(metricValue(r, hosts.hosts, 'load', 'latency.p99Ns', 'Mean')).toBe(200)
    expect(metricValue(r, hosts.hosts, 'load', 'latency.p99Ns', 'Max')).toBe(300)
    expect(metricValue(r, hosts.hosts, 'load', 'latency.p99Ns', 'Min')).toBe(100)
    expect(metricValue(r, hosts.hosts, 'load', 'latency.p99Ns', 'Sum')).toBe(400)
  })

  it('one replica by its host name; an absent status code counts 0; an absent field is null', () => {
    expect(metricHosts(m.plan, 'client-1/load').hosts).toEqual(['client-1'])
    expect(metricValue(r, ['client-0', 'client-1'], 'load', 'status.200', 'Sum')).toBe(5)
    expect(metricValue(r, ['client-1'], 'load', 'status.200', 'Sum')).toBe(0)
    expect(metricValue(r, ['client-0', 'client-1'], 'load', 'latency.p50Ns', 'Mean')).toBeNull()
    expect(metricValue(r, ['client-9'], 'load', 'latency.p99Ns', 'Mean')).toBeNull()
  })
})

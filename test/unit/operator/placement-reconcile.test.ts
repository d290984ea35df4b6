// spec.placement on Kubernetes: the SimCluster reconciler makes one SimHost per runtime of the
// placement (sync/placement.ts), not one per host, and the SimHost reconciler one pod for each,
// carrying its hosts. A reconcile against in-memory caches and a recording client: no API server.
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { parseHostList } from '../../../sim-runtime/api/hostlist.ts'
import type { KubeClient, KubeObject } from '../../../operator/kube/rest.ts'
import type { LeaderClient } from '../../../operator/simcluster/leaderclient.ts'
import type { OperatorSettings, SimClusterObject, SimHostObject } from '../../../operator/simcluster/objects.ts'
import { domainMetrics, SimClusterReconciler, SimHostReconciler, type Caches } from '../../../operator/simcluster/reconciler.ts'
import type { ClusterStatus } from '../../../operator/simcluster/status.ts'
import type { LeaderStatus } from '../../../sim-runtime/sync/leader.ts'
import { example } from '../../helpers.ts'
import { mixedCluster } from './fixtures.ts'

function cache<T extends KubeObject>(objs: T[] = []) {
  const byKey = new Map(objs.map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]))
  return {
    get: (k: string) => byKey.get(k),
    list: (f?: (o: T) => boolean) => [...byKey.values()].filter((o) => !f || f(o)),
    upsert: (o: T) => byKey.set(`${o.metadata.namespace}/${o.metadata.name}`, o),
  }
}

const settings: OperatorSettings = { image: 'livesim:test', imagePullPolicy: 'IfNotPresent', leaderLingerSec: 60, registerTimeoutSec: 30 }

/**
 * Reconcile `cluster` (its leader pod running at 10.0.0.9, the leader Pending with `registered`
 * hosts), then every SimHost it made. The objects created by kind, and the status written.
 */
async function reconcile(cluster: { metadata: { name: string }; spec: unknown; apiVersion: string; kind: string }, registered = 0) {
  const sc = { ...cluster, metadata: { ...cluster.metadata, namespace: 'ns1', uid: 'uid-1', generation: 1, resourceVersion: '1' }, status: { phase: 'Scheduling', attempt: 1 } } as unknown as SimClusterObject
  const leaderPod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${sc.metadata.name}-leader-a1`, namespace: 'ns1', labels: {} }, status: { phase: 'Running', podIP: '10.0.0.9' } }
  const created: KubeObject[] = []
  let status: ClusterStatus | undefined
  const caches = {
    simClusters: cache([sc]),
    simHosts: cache<SimHostObject>(),
    pods: cache([leaderPod as KubeObject]),
    secrets: cache(),
    configMaps: cache(),
    services: cache(),
    serviceAccounts: cache(),
  }
  const client = {
    create: async (_path: string, obj: KubeObject) => {
      const withUid = { ...obj, metadata: { ...obj.metadata, uid: `uid-${obj.metadata.name}` } }
      created.push(withUid)
      if (obj.kind === 'SimHost') caches.simHosts.upsert(withUid as SimHostObject)
      return withUid
    },
    patch: async (path: string, body: { status: ClusterStatus }) => {
      if (path.includes('/simclusters/')) status = body.status
      return { ...sc, status: body.status }
    },
  } as unknown as KubeClient
  const total = (sc.spec as { hosts: { replicas?: number }[] }).hosts.reduce((n, h) => n + (h.replicas ?? 1), 0)
  const leader: LeaderClient = {
    status: async () => ({ phase: 'Pending', hosts: { total, registered, ready: registered }, virtualTimeNs: 0, progress: 0, slowdown: 0 }) as unknown as LeaderStatus,
    results: async () => undefined,
    ack: async () => true,
  }
  const deps = { client, caches: caches as unknown as Caches, leader, settings, log: pino({ level: 'silent' }), metrics: domainMetrics(new Registry()) }
  await new SimClusterReconciler(deps).reconcile('ns1/' + sc.metadata.name)
  // The SimHost reconciler reads the cluster's attempt from its cached status.
  caches.simClusters.upsert({ ...sc, status: { phase: 'Scheduling', attempt: 1 } })
  const hosts = caches.simHosts.list()
  const r = new SimHostReconciler(deps)
  for (const h of hosts) await r.reconcile(`ns1/${h.metadata.name}`)
  const pods = created.filter((o) => o.kind === 'Pod') as unknown as { metadata: { name: string; labels: Record<string, string> }; spec: { containers: { args: string[]; env: { name: string; value?: string }[] }[] } }[]
  return { hosts, pods, status: status!, configMap: created.find((o) => o.metadata.name === `${sc.metadata.name}-config`) as unknown as { data: Record<string, string> } }
}

const argOf = (args: string[], flag: string) => args[args.indexOf(flag) + 1]!

describe('SimCluster reconciler with spec.placement', () => {
  it('makes one SimHost and one pod per runtime, which together carry every host once', async () => {
    const m = example('fanout.yaml')
    const { hosts, pods, status, configMap } = await reconcile({ ...m.cluster, spec: { ...m.cluster.spec, placement: { runtimes: 8 } } }, 150)
    expect(hosts.map((h) => h.metadata.name).sort()).toEqual(['fanout-rt0', 'fanout-rt1', 'fanout-rt2', 'fanout-rt3', 'fanout-rt4', 'fanout-rt5', 'fanout-rt6', 'fanout-rt7'])
    expect(pods.length).toBe(8)
    const carried = pods.flatMap((p) => parseHostList(argOf(p.spec.containers[0]!.args, '--hosts')))
    expect(carried.sort()).toEqual(m.plan.hosts.map((h) => h.name).sort())
    expect(hosts.reduce((n, h) => n + h.spec.hostCount!, 0)).toBe(200)
    for (const h of hosts) expect(h.spec.host).toBeUndefined()
    const rt1 = pods.find((p) => p.metadata.name === 'fanout-rt1-a1')!
    expect(argOf(rt1.spec.containers[0]!.args, '--hosts')).toBe('be-0..24')
    expect(rt1.metadata.labels).toMatchObject({ 'livesim.dev/runtime': 'rt1', 'livesim.dev/role': 'host', 'livesim.dev/attempt': '1' })
    // Per-host progress stays in status (hosts registered with the leader), beside the placement.
    expect(status.hosts).toEqual({ ready: 150, total: 200 })
    expect(status.hostsSummary).toBe('150/200')
    expect(status.placement).toEqual({ runtimes: 8, hostsPerRuntimeMax: 25, cutLatency: '20us' })
    // Which runtime carries which hosts, a line each.
    expect(configMap.data.runtimes!.split('\n')).toContain('fanout-rt1: be-0..24')
  })

  it('without placement keeps a SimHost and a pod per host, named after it', async () => {
    const m = example('quickstart.yaml')
    const { hosts, pods, status } = await reconcile(m.cluster)
    expect(hosts.map((h) => h.spec.host).sort()).toEqual(['client-0', 'client-1', 'client-2', 'client-3', 'db-0', 'web-0', 'web-1', 'web-2'])
    expect(pods.map((p) => p.metadata.name)).toContain('quickstart-client-0-a1')
    expect(status.placement).toEqual({ runtimes: 8, hostsPerRuntimeMax: 1, cutLatency: '100us' })
  })

  it('gives a live host a pod of its own with its cell set-up; the modelled hosts share one', async () => {
    const m = mixedCluster(2)
    const { hosts, pods } = await reconcile({ ...m.cluster, spec: { ...m.cluster.spec, placement: { runtimes: 1 } } })
    expect(hosts.map((h) => h.metadata.name).sort()).toEqual(['mixed-db-0', 'mixed-db-1', 'mixed-rt0'])
    const byName = Object.fromEntries(pods.map((p) => [p.metadata.name, p]))
    expect(argOf(byName['mixed-rt0-a1']!.spec.containers[0]!.args, '--hosts')).toBe('client-0,api-0')
    expect(byName['mixed-rt0-a1']!.spec.containers[0]!.env.some((e) => e.name === 'LIVESIM_CELL_MODE')).toBe(false)
    expect(byName['mixed-db-1-a1']!.spec.containers[0]!.env.find((e) => e.name === 'LIVESIM_CELL_MODE')?.value).toBe('signals')
    expect(argOf(byName['mixed-db-1-a1']!.spec.containers[0]!.args, '--hosts')).toBe('db-1')
  })
})

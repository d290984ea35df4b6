// The SimHost reconciler creates each host's runtime pod with the cell set-up of its host group:
// live hosts get the one of the operator's livePodSecurity, modelled hosts the plain restricted pod.
// A reconcile against in-memory caches and a recording client: no API server.
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { ApiError, type KubeClient, type KubeObject } from '../../../operator/kube/rest.ts'
import type { LeaderClient } from '../../../operator/simcluster/leaderclient.ts'
import { simHost, type OperatorSettings, type SimClusterObject, type SimHostObject } from '../../../operator/simcluster/objects.ts'
import { domainMetrics, SimHostReconciler, type Caches } from '../../../operator/simcluster/reconciler.ts'
import { mixedCluster } from './fixtures.ts'

const m = mixedCluster()

/** A stand-in for an Informer: a map by namespace/name. */
function cache<T extends KubeObject>(objs: T[] = []) {
  const byKey = new Map(objs.map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]))
  return {
    get: (k: string) => byKey.get(k),
    list: (f?: (o: T) => boolean) => [...byKey.values()].filter((o) => !f || f(o)),
    upsert: (o: T) => byKey.set(`${o.metadata.namespace}/${o.metadata.name}`, o),
  }
}

/** Of the last podsFor: the status written and the reconcile result, per SimHost. */
const statuses = new Map<string, Record<string, unknown>>()
const results = new Map<string, unknown>()

/** Reconcile every SimHost of `m` once; the pods created, by name. `refuse` makes the API refuse a pod. */
async function podsFor(settings: OperatorSettings, refuse?: (pod: KubeObject) => ApiError | undefined): Promise<Map<string, { spec: { securityContext: Record<string, unknown>; containers: { env: { name: string; value?: string }[]; securityContext: Record<string, unknown> }[]; volumes?: unknown[] } }>> {
  const sc = { ...m.cluster, metadata: { ...m.cluster.metadata, namespace: 'ns1', uid: 'uid-1', generation: 1 }, status: { phase: 'Running', attempt: 1 } } as SimClusterObject
  const hosts = m.plan.hosts.map((h) => {
    const sh = simHost(sc, m.plan, h.index, 'http://10.0.0.9:7070', 1) as SimHostObject
    sh.metadata.uid = `uid-${h.name}`
    return sh
  })
  const created = new Map<string, never>()
  const client = {
    create: async (_path: string, obj: KubeObject) => {
      const err = refuse?.(obj)
      if (err) throw err
      created.set(obj.metadata.name, obj as never)
      return obj
    },
    patch: async (path: string, body: { status: Record<string, unknown> }) => {
      statuses.set(decodeURIComponent(path.split('/').at(-2)!), body.status)
      return { ...hosts[0]!, status: body.status }
    },
  } as unknown as KubeClient
  const caches = { simClusters: cache([sc]), simHosts: cache(hosts), pods: cache() } as unknown as Caches
  const r = new SimHostReconciler({ client, caches, leader: {} as LeaderClient, settings, log: pino({ level: 'silent' }), metrics: domainMetrics(new Registry()) })
  statuses.clear()
  results.clear()
  for (const h of hosts) results.set(h.metadata.name, await r.reconcile(`ns1/${h.metadata.name}`))
  return created
}

const base: OperatorSettings = { image: 'livesim:test', imagePullPolicy: 'IfNotPresent', leaderLingerSec: 60, registerTimeoutSec: 30 }
const cellMode = (p: { spec: { containers: { env: { name: string; value?: string }[] }[] } }) => p.spec.containers[0]!.env.find((e) => e.name === 'LIVESIM_CELL_MODE')?.value

describe('SimHost reconciler: runtime pods of live hosts', () => {
  it('restricted: only the live host gets signals cells and the work dir; every pod stays restricted', async () => {
    const pods = await podsFor(base)
    expect([...pods.keys()].sort()).toEqual(['mixed-api-0-a1', 'mixed-client-0-a1', 'mixed-db-0-a1'])
    expect(cellMode(pods.get('mixed-db-0-a1')!)).toBe('signals')
    expect(pods.get('mixed-db-0-a1')!.spec.volumes).toEqual([{ name: 'work', emptyDir: {} }])
    for (const name of ['mixed-api-0-a1', 'mixed-client-0-a1']) {
      expect(cellMode(pods.get(name)!), name).toBeUndefined()
      expect(pods.get(name)!.spec.volumes, name).toBeUndefined()
    }
    for (const p of pods.values()) expect(p.spec.containers[0]!.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false })
  })

  it('privileged: only the live host pod is privileged', async () => {
    const pods = await podsFor({ ...base, livePodSecurity: 'privileged' })
    expect(cellMode(pods.get('mixed-db-0-a1')!)).toBe('auto')
    expect(pods.get('mixed-db-0-a1')!.spec.containers[0]!.securityContext).toMatchObject({ privileged: true, runAsUser: 0 })
    for (const name of ['mixed-api-0-a1', 'mixed-client-0-a1']) {
      expect(pods.get(name)!.spec.containers[0]!.securityContext, name).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false })
      expect(pods.get(name)!.spec.containers[0]!.securityContext.privileged, name).toBeUndefined()
    }
  })

  it('a pod refused by admission shows in the SimHost status, and is retried', async () => {
    const msg = 'pods "mixed-db-0-a1" is forbidden: violates PodSecurity "baseline:latest": privileged (container "runtime" must not set securityContext.privileged=true)'
    const pods = await podsFor({ ...base, livePodSecurity: 'privileged' }, (p) => (p.metadata.name === 'mixed-db-0-a1' ? new ApiError(403, 'Forbidden', msg, {}) : undefined))
    expect([...pods.keys()].sort()).toEqual(['mixed-api-0-a1', 'mixed-client-0-a1'])
    expect(statuses.get('mixed-db-0')).toMatchObject({ phase: 'Pending', message: `cannot create pod mixed-db-0-a1: ${msg}` })
    expect(results.get('mixed-db-0')).toEqual({ requeueAfterMs: 10_000 })
    expect(statuses.get('mixed-api-0')?.message).toBeUndefined()
    expect(results.get('mixed-api-0')).toBeUndefined()
  })
})

import { describe, expect, it } from 'vitest'
import { hostPod, leaderPod, leaderService, LIVE_WORK_DIR, names, runsLive, simHost, tokenSecret, type OperatorSettings, type SimClusterObject } from '../../../operator/simcluster/objects.ts'
import { example } from '../../helpers.ts'
import { mixedCluster } from './fixtures.ts'

interface PodJson {
  spec: {
    securityContext: Record<string, unknown>
    containers: { env: { name: string; value?: string; valueFrom?: unknown }[]; securityContext: Record<string, unknown>; volumeMounts?: unknown[] }[]
    volumes?: unknown[]
  }
}

const settings: OperatorSettings = { image: 'livesim:test', imagePullPolicy: 'IfNotPresent', leaderLingerSec: 60, registerTimeoutSec: 30 }

function cluster(): { sc: SimClusterObject; plan: ReturnType<typeof example>['plan'] } {
  const m = example('quickstart.yaml')
  const sc = { ...m.cluster, metadata: { ...m.cluster.metadata, namespace: 'ns1', uid: 'uid-1', generation: 1 } } as SimClusterObject
  return { sc, plan: m.plan }
}

describe('owned objects', () => {
  it('are all owned by the SimCluster (so deletion cascades) and labelled with it', () => {
    const { sc, plan } = cluster()
    for (const o of [tokenSecret(sc), leaderService(sc), leaderPod(sc, 1, settings), simHost(sc, plan, 0, 'http://x:7070', 1)]) {
      expect(o.metadata.ownerReferences).toEqual([{ apiVersion: 'livesim.dev/v1alpha1', kind: 'SimCluster', name: 'quickstart', uid: 'uid-1', controller: true, blockOwnerDeletion: true }])
      expect(o.metadata.labels?.['livesim.dev/cluster']).toBe('quickstart')
    }
  })

  it('run the leader with the config, the token and its pod IP, under a restricted security context', () => {
    const { sc } = cluster()
    const p = leaderPod(sc, 2, settings) as unknown as { metadata: { name: string }; spec: { containers: { args: string[]; env: { name: string }[]; securityContext: Record<string, unknown> }[]; restartPolicy: string } }
    expect(p.metadata.name).toBe(names.leaderPod('quickstart', 2))
    expect(p.spec.restartPolicy).toBe('Never')
    const c = p.spec.containers[0]!
    expect(c.args.slice(0, 5)).toEqual(['leader', '--from-env', 'LIVESIM_SIMCLUSTER', '--bind', '$(POD_IP)'])
    expect(c.env.map((e) => e.name)).toEqual(['POD_IP', 'LIVESIM_TOKEN', 'LIVESIM_SIMCLUSTER'])
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true })
  })

  it('give each host pod its SimHost as owner and the cell resources as requests and limits', () => {
    const m = example('quickstart.yaml')
    const { sc } = cluster()
    const withCell = { ...m.plan, hosts: m.plan.hosts.map((h, i) => (i === 0 ? { ...h, spec: { ...h.spec, cell: { cpu: '500m', memory: '256Mi' } } } : h)) }
    const sh = { ...simHost(sc, withCell, 0, 'http://10.0.0.9:7070', 3), apiVersion: 'livesim.dev/v1alpha1', kind: 'SimHost' }
    sh.metadata.uid = 'sh-uid'
    const p = hostPod(sh, settings) as unknown as { metadata: { name: string; ownerReferences: { kind: string }[] }; spec: { containers: { args: string[]; resources: unknown }[] } }
    expect(p.metadata.name).toBe('quickstart-client-0-a3')
    expect(p.metadata.ownerReferences[0]!.kind).toBe('SimHost')
    expect(p.spec.containers[0]!.args).toEqual(['host', '--leader', 'http://10.0.0.9:7070', '--hosts', 'client-0', '--runtime-id', 'quickstart-client-0-a3', '--connect-timeout', '30'])
    expect(p.spec.containers[0]!.resources).toEqual({ requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '500m', memory: '256Mi' } })
  })
})

describe('host pods of live components', () => {
  // Modelled hosts (a client and a server) and a live redis-server on another host group (two replicas).
  const live = mixedCluster(2)
  const sc = { ...live.cluster, metadata: { ...live.cluster.metadata, namespace: 'ns1', uid: 'uid-2', generation: 1 } } as SimClusterObject
  const hostObj = (host: string) => {
    const sh = { ...simHost(sc, live.plan, live.plan.hostIndex.get(host)!, 'http://10.0.0.9:7070', 1), apiVersion: 'livesim.dev/v1alpha1', kind: 'SimHost' }
    sh.metadata.uid = `sh-${host}`
    return sh
  }
  const podOf = (host: string, s: OperatorSettings) => hostPod(hostObj(host), s, runsLive(sc, hostObj(host).spec.group!)) as unknown as PodJson
  const envOf = (p: PodJson) => Object.fromEntries(p.spec.containers[0]!.env.map((e) => [e.name, e.value ?? 'valueFrom']))

  it('are the pods of host groups that run a live component, and only those', () => {
    expect(live.plan.liveComponents).toBe(2)
    expect(runsLive(sc, 'db')).toBe(true)
    expect(runsLive(sc, 'client')).toBe(false)
    expect(runsLive(sc, 'api')).toBe(false)
    expect(runsLive(sc, 'nosuchgroup')).toBe(false)
    const { sc: quickstart } = cluster()
    expect(quickstart.spec.hosts.map((h) => runsLive(quickstart, h.name))).toEqual([false, false, false])
  })

  it('restricted (the default): the restricted security context, signals cells, and an emptyDir /tmp as the work dir', () => {
    for (const s of [settings, { ...settings, livePodSecurity: 'restricted' as const }]) {
      const p = podOf('db-1', s)
      expect(p.spec.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
      const c = p.spec.containers[0]!
      expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })
      expect(envOf(p)).toEqual({ LIVESIM_TOKEN: 'valueFrom', LIVESIM_CELL_MODE: 'signals', POD_NAME: 'valueFrom', LIVESIM_WORK_DIR: `${LIVE_WORK_DIR}/$(POD_NAME)` })
      // POD_NAME comes before LIVESIM_WORK_DIR: Kubernetes expands $(VAR) only from earlier entries.
      expect(c.env.map((e) => e.name)).toEqual(['LIVESIM_TOKEN', 'LIVESIM_CELL_MODE', 'POD_NAME', 'LIVESIM_WORK_DIR'])
      expect(c.env.find((e) => e.name === 'POD_NAME')).toEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } })
      expect(c.volumeMounts).toEqual([{ name: 'work', mountPath: LIVE_WORK_DIR }])
      expect(p.spec.volumes).toEqual([{ name: 'work', emptyDir: {} }])
      expect(LIVE_WORK_DIR).toBe('/tmp')
    }
  })

  it('privileged: a privileged root container (cgroupfs is writable only so), cells in auto mode, the same work dir', () => {
    const p = podOf('db-0', { ...settings, livePodSecurity: 'privileged' })
    // runAsNonRoot at pod level would make the kubelet refuse runAsUser 0.
    expect(p.spec.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } })
    const c = p.spec.containers[0]!
    expect(c.securityContext).toEqual({ privileged: true, allowPrivilegeEscalation: true, runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, readOnlyRootFilesystem: true })
    expect(envOf(p)).toEqual({ LIVESIM_TOKEN: 'valueFrom', LIVESIM_CELL_MODE: 'auto', POD_NAME: 'valueFrom', LIVESIM_WORK_DIR: '/tmp/$(POD_NAME)' })
    expect(c.volumeMounts).toEqual([{ name: 'work', mountPath: '/tmp' }])
    expect(p.spec.volumes).toEqual([{ name: 'work', emptyDir: {} }])
    // Nothing else about the pod changes.
    const r = podOf('db-0', settings)
    expect({ ...p, spec: { ...p.spec, securityContext: undefined, containers: undefined } }).toEqual({ ...r, spec: { ...r.spec, securityContext: undefined, containers: undefined } })
    expect({ ...c, env: undefined, securityContext: undefined }).toEqual({ ...r.spec.containers[0]!, env: undefined, securityContext: undefined })
  })

  it('hosts without live components get the same pod whatever the setting (and the same as before live components existed)', () => {
    const { sc: quickstart, plan } = cluster()
    const sh = { ...simHost(quickstart, plan, 0, 'http://10.0.0.9:7070', 1), apiVersion: 'livesim.dev/v1alpha1', kind: 'SimHost' }
    sh.metadata.uid = 'sh-uid'
    const base = hostPod(sh, settings) as unknown as PodJson
    for (const s of [settings, { ...settings, livePodSecurity: 'restricted' as const }, { ...settings, livePodSecurity: 'privileged' as const }]) {
      expect(hostPod(sh, s, runsLive(quickstart, sh.spec.group!))).toEqual(base)
      // The modelled client of the live cluster too.
      const client = podOf('client-0', s)
      expect(client.spec.volumes).toBeUndefined()
      expect(client.spec.containers[0]!.volumeMounts).toBeUndefined()
      expect(client.spec.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
      expect(client.spec.containers[0]!.securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } })
      expect(envOf(client)).toEqual({ LIVESIM_TOKEN: 'valueFrom' })
    }
    expect(base.spec.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
    expect(base.spec.volumes).toBeUndefined()
    expect(Object.keys(envOf(base))).toEqual(['LIVESIM_TOKEN'])
  })

  it('the leader pod is restricted whatever the setting', () => {
    expect(leaderPod(sc, 1, { ...settings, livePodSecurity: 'privileged' })).toEqual(leaderPod(sc, 1, settings))
  })
})

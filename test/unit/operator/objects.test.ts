import { describe, expect, it } from 'vitest'
import { hostPod, leaderPod, leaderService, names, simHost, tokenSecret, type OperatorSettings, type SimClusterObject } from '../../../operator/simcluster/objects.ts'
import { example } from '../../helpers.ts'

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

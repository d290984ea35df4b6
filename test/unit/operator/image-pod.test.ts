// The runtime pod of a host whose live components name their own images (live.image): the layout
// docs/kubernetes.md ("Live components in their own images") describes, built without a cluster.
import { describe, expect, it } from 'vitest'
import { hostPod, liveSetup, LIVE_KIT_DIR, runsLive, simHost, type OperatorSettings, type SimClusterObject } from '../../../operator/simcluster/objects.ts'
import { loadSimCluster } from '../../../sim-runtime/api/validate.ts'

interface Container {
  name: string
  image: string
  command: string[]
  env?: { name: string; value?: string; valueFrom?: unknown }[]
  resources: unknown
  securityContext: Record<string, unknown>
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[]
}
interface PodJson {
  spec: { securityContext: Record<string, unknown>; shareProcessNamespace?: boolean; initContainers?: Container[]; containers: Container[]; volumes?: unknown[] }
}

const settings: OperatorSettings = { image: 'registry.example/livesim:0.1.0', imagePullPolicy: 'IfNotPresent', leaderLingerSec: 60, registerTimeoutSec: 30 }
const digest = `sha256:${'ab'.repeat(32)}`

const text = `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: imgs, namespace: ns1, uid: uid-1 }
spec:
  endTime: 1s
  hosts:
    - name: load
      components:
        - name: gen
          model: { kind: Client, target: db/redis, closedLoop: { users: 1 }, redis: {} }
    - name: db
      cell: { cpu: 500m, memory: 256Mi }
      components:
        - name: redis
          live: { image: "redis:7.2@${digest}", command: [redis-server, --port, "6379", --bind, $(LIVESIM_BIND_ADDR)], ports: [{ name: redis, port: 6379 }] }
        - name: sidecar
          live: { image: "registry.example:5000/tools/idle:1", command: [sleep, "1000"], securityContext: { runAsUser: 1000, runAsGroup: 2000 } }
        - name: local
          live: { command: [sleep, "1000"] }
    - name: plain
      components:
        - name: only
          live: { command: [sleep, "1000"] }
`

function build() {
  const { cluster, plan } = loadSimCluster(text)
  const sc = { ...cluster, metadata: { ...cluster.metadata, namespace: 'ns1', uid: 'uid-1', generation: 1 } } as SimClusterObject
  const pod = (host: string, s: OperatorSettings = settings) => {
    const sh = { ...simHost(sc, plan, plan.hostIndex.get(host)!, 'http://10.0.0.9:7070', 1), apiVersion: 'livesim.dev/v1alpha1', kind: 'SimHost' }
    sh.metadata.uid = `sh-${host}`
    return { sh, pod: hostPod(sh, s, liveSetup(sc, sh.spec.group!)) as unknown as PodJson }
  }
  return { sc, pod }
}

const restricted = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } }

describe('a live host whose components run in their own images', () => {
  const { sc, pod } = build()

  it('liveSetup lists the image components of a group, with numeric users; false for a group without live components', () => {
    expect(liveSetup(sc, 'db')).toEqual({
      images: [
        { component: 'redis', image: `redis:7.2@${digest}` },
        { component: 'sidecar', image: 'registry.example:5000/tools/idle:1', runAsUser: 1000, runAsGroup: 2000 },
      ],
    })
    expect(liveSetup(sc, 'plain')).toEqual({ images: [] })
    expect(liveSetup(sc, 'load')).toBe(false)
    expect(runsLive(sc, 'load')).toBe(false)
  })

  it('one pod, shared process namespace, the runtime container first and one container per image', () => {
    const p = pod('db-0').pod
    expect(p.spec.shareProcessNamespace).toBe(true)
    expect(p.spec.containers.map((c) => [c.name, c.image])).toEqual([
      ['runtime', settings.image],
      ['live-redis', `redis:7.2@${digest}`],
      ['live-sidecar', 'registry.example:5000/tools/idle:1'],
    ])
    expect(p.spec.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
    expect(p.spec.volumes).toEqual([{ name: 'work', emptyDir: {} }, { name: 'kit', emptyDir: {} }])
  })

  it('an init container from the livesim image copies the shim, libfaketime, vexec and the launcher into the kit volume', () => {
    const [init, ...more] = pod('db-0').pod.spec.initContainers!
    expect(more).toEqual([])
    expect(init!.image).toBe(settings.image)
    expect(init!.command).toEqual(['sh', '-c', 'cp -L "$LIVESIM_FAKETIME_SHIM" "$LIVESIM_LIBFAKETIME" "$LIVESIM_VEXEC" "$LIVESIM_LAUNCHER" /livesim/'])
    expect(init!.volumeMounts).toEqual([{ name: 'kit', mountPath: LIVE_KIT_DIR }])
    expect(init!.securityContext).toEqual(restricted)
  })

  it('each image container runs the launcher from the kit, sees /tmp where the runtime does, runs as the runtime\'s uid unless the component says otherwise, with the cell\'s resources', () => {
    const [, redis, sidecar] = pod('db-0').pod.spec.containers
    expect(redis!.command).toEqual(['/livesim/livesim-launcher', '/tmp/$(POD_NAME)/.launch/redis'])
    expect(sidecar!.command).toEqual(['/livesim/livesim-launcher', '/tmp/$(POD_NAME)/.launch/sidecar'])
    expect(redis!.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }])
    expect(redis!.volumeMounts).toEqual([
      { name: 'work', mountPath: '/tmp' },
      { name: 'kit', mountPath: '/livesim', readOnly: true },
    ])
    expect(redis!.securityContext).toEqual({ ...restricted, runAsUser: 65532, runAsGroup: 65532 })
    expect(sidecar!.securityContext).toEqual({ ...restricted, runAsUser: 1000, runAsGroup: 2000 })
    const cell = { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '500m', memory: '256Mi' } }
    expect(redis!.resources).toEqual(cell)
    expect(sidecar!.resources).toEqual(cell)
  })

  it('the runtime: signals cells, the launch and kit directories, the kit read-only, the default request', () => {
    const runtime = pod('db-0').pod.spec.containers[0]!
    const env = Object.fromEntries(runtime.env!.map((e) => [e.name, e.value ?? 'valueFrom']))
    expect(env).toEqual({
      LIVESIM_TOKEN: 'valueFrom',
      LIVESIM_CELL_MODE: 'signals',
      POD_NAME: 'valueFrom',
      LIVESIM_WORK_DIR: '/tmp/$(POD_NAME)',
      LIVESIM_LAUNCH_DIR: '/tmp/$(POD_NAME)/.launch',
      LIVESIM_KIT_DIR: '/livesim',
    })
    // $(POD_NAME) expands only from earlier entries.
    expect(runtime.env!.map((e) => e.name).indexOf('POD_NAME')).toBeLessThan(runtime.env!.map((e) => e.name).indexOf('LIVESIM_LAUNCH_DIR'))
    expect(runtime.volumeMounts).toEqual([
      { name: 'work', mountPath: '/tmp' },
      { name: 'kit', mountPath: '/livesim', readOnly: true },
    ])
    expect(runtime.resources).toEqual({ requests: { cpu: '100m', memory: '64Mi' } })
    expect(runtime.securityContext).toEqual(restricted)
  })

  it('privileged: the runtime runs as root, but its cells stay signals (the programs\' cgroups are outside its own); the image containers stay restricted', () => {
    const p = pod('db-0', { ...settings, livePodSecurity: 'privileged' }).pod
    const [runtime, redis] = p.spec.containers
    expect(runtime!.securityContext).toMatchObject({ privileged: true, runAsUser: 0 })
    expect(runtime!.env!.find((e) => e.name === 'LIVESIM_CELL_MODE')!.value).toBe('signals')
    expect(redis!.securityContext).toEqual({ ...restricted, runAsUser: 65532, runAsGroup: 65532 })
    expect(p.spec.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } })
  })

  it('a live host without images keeps the pod it had: no init container, no shared process namespace, no kit', () => {
    const { sh, pod: p } = pod('plain-0')
    expect(p.spec.shareProcessNamespace).toBeUndefined()
    expect(p.spec.initContainers).toBeUndefined()
    expect(p.spec.containers).toHaveLength(1)
    expect(p).toEqual(hostPod(sh, settings, true))
    expect(p.spec.volumes).toEqual([{ name: 'work', emptyDir: {} }])
  })
})

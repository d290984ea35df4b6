// Live components on Kubernetes (docs/kubernetes.md): a SimCluster with a live redis-server on one
// host and a modelled Client on another, in a namespace that enforces the restricted Pod Security
// Standard. With the chart's default live.podSecurity=restricted, the live host's runtime pod is
// restricted too, is told to use signals cells and gets an emptyDir work dir; the run completes and
// its results show the program ran, in signals cells. The privileged set-up (not the one the e2e
// operator is installed with) is checked against the API server's validation and Pod Security
// admission with server-side dry runs.
//
// On the real node (kubelet + containerd, the default) redis-server comes from a user image with no
// livesim inside (hack/image/redis-image.sh, imported into the node's containerd), named in the
// component's live.image: its pod has the runtime container and a live-redis container from that
// image, and the run gives the results `livesim run` gives with the same file (counts; a live run's
// timings are not bit-for-bit repeatable). On the process-backed node (LIVESIM_E2E_NODE=process) pods
// are local processes: redis-server and libfaketime come from this machine (hack/live-deps.sh),
// securityContext and volumes are not applied. The livesim image has no redis-server, so on an
// existing cluster (LIVESIM_USE_EXISTING=1) the run itself skips.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { hostPod, runsLive, simHost, type OperatorSettings, type SimClusterObject, type SimHostObject } from '../../operator/simcluster/objects.ts'
import { loadSimCluster } from '../../sim-runtime/api/validate.ts'
import { existingCluster, getJson, kubectl, kubectlIn, localOnly, namespace, root, run, until } from './kube.ts'

const NS = 'e2e-live'
const NS_PRIVILEGED = 'e2e-live-privileged'
const NAME = 'live-redis'
/** On the real node: the user image redis-server comes from; '' on the process-backed node. */
const userImage = inject('userImage')
const realNode = inject('nodeKind') === 'kubelet'

const MANIFEST = `
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata:
  name: ${NAME}
spec:
  endTime: 200ms
  seed: 7
  network:
    default: { latency: 1ms, bandwidth: 1Gbps }
  # One attempt: a failure shows its own reason instead of a retry's.
  runPolicy: { backoffLimit: 0, activeDeadlineSeconds: 300 }
  hosts:
    - name: client
      components:
        - name: load
          model:
            kind: Client
            target: db/redis:redis
            openLoop: { rate: 500 }
            timeout: 100ms
            redis: { keys: 100 }
    - name: db
      components:
        - name: redis
          live:${userImage ? `\n            image: ${userImage}` : ''}
            # --save ' ': no snapshots (arguments may not be empty).
            command: [redis-server, --bind, $(LIVESIM_BIND_ADDR), --port, '6379', --save, ' ', --appendonly, 'no']
            ports: [{ name: redis, port: 6379 }]
    # A modelled pair beside it that never talks to the live host: its results are the same in
    # every run of this file, on the cluster and with livesim run.
    - name: web
      components:
        - name: load
          model: { kind: Client, target: app/http, openLoop: { rate: 2000 }, timeout: 50ms }
    - name: app
      components:
        - name: http
          model: { kind: Server, workers: 2, service: { distribution: Exponential, mean: 300us } }
`

interface EnvVar {
  name: string
  value?: string
  valueFrom?: { fieldRef?: { fieldPath: string } }
}
interface PodJson {
  metadata: { name: string }
  spec: {
    securityContext?: Record<string, unknown>
    containers: { name: string; image: string; env?: EnvVar[]; securityContext?: Record<string, unknown>; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }[]
    volumes?: { name: string; emptyDir?: Record<string, unknown> }[]
  }
}

const dbPod = `${NAME}-db-0-a1`
const clientPod = `${NAME}-client-0-a1`

function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return `(${file}: missing)`
  return `${file}:\n${readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`
}

/** What the process-backed node and the runtime left behind for a pod: for failure messages. */
function podLogs(pod: string): string {
  if (realNode) return run('kubectl', ['logs', '-n', NS, pod, '-c', 'runtime', '--tail=40']).stdout
  const dir = path.join(inject('e2eDir'), 'node', 'pods', `${NS}_${pod}`)
  // LIVESIM_WORK_DIR=/tmp/<pod>: the node mounts no volumes, so that is this machine's /tmp.
  return [tail(path.join(dir, 'runtime.log'), 30), tail(path.join('/tmp', pod, 'db-0', 'redis.log'))].join('\n')
}

beforeAll(() => {
  namespace(NS)
  kubectl('label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest')
  namespace(NS_PRIVILEGED)
  kubectl('label', 'namespace', NS_PRIVILEGED, 'pod-security.kubernetes.io/enforce=privileged')
})

afterAll(() => {
  // Where the run is not waited for (on an existing cluster), it is not left running either.
  run('kubectl', ['delete', 'simcluster', '-n', NS, NAME, '--ignore-not-found', '--wait=true', '--timeout=120s'], undefined, 150_000)
  for (const pod of [dbPod]) rmSync(path.join('/tmp', pod), { recursive: true, force: true })
})

describe('live components on Kubernetes, live.podSecurity=restricted (the default)', () => {
  it('the live host runtime pod is restricted (admitted where restricted is enforced), with signals cells and an emptyDir work dir', async () => {
    const applied = kubectlIn(MANIFEST, 'apply', '-n', NS, '-f', '-')
    expect(applied.status, applied.stderr).toBe(0)
    const db = await until(`pod ${dbPod}`, () => getJson<PodJson>('get', 'pod', '-n', NS, dbPod), 180_000, 1000)
    const c = db.spec.containers[0]!
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]))
    expect(env.LIVESIM_CELL_MODE?.value).toBe('signals')
    expect(env.POD_NAME?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name')
    expect(env.LIVESIM_WORK_DIR?.value).toBe('/tmp/$(POD_NAME)')
    if (userImage) {
      // The program's container, from the user image, beside the runtime's (docs/kubernetes.md).
      expect(c.name).toBe('runtime')
      expect(c.volumeMounts).toEqual([{ name: 'work', mountPath: '/tmp' }, { name: 'kit', mountPath: '/livesim', readOnly: true }])
      const program = db.spec.containers.find((x) => x.name === 'live-redis')
      expect(program?.image).toBe(userImage)
      expect(program?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
    } else expect(c.volumeMounts).toEqual([{ name: 'work', mountPath: '/tmp' }])
    expect(db.spec.volumes?.find((v) => v.name === 'work')?.emptyDir).toEqual({})
    expect(db.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } })
    expect(c.securityContext?.privileged ?? false).toBe(false)

    // The modelled client's pod is what it always was.
    const client = await until(`pod ${clientPod}`, () => getJson<PodJson>('get', 'pod', '-n', NS, clientPod), 60_000, 1000)
    expect(client.spec.containers[0]!.env?.map((e) => e.name)).toEqual(['LIVESIM_TOKEN'])
    expect(client.spec.volumes?.some((v) => v.name === 'work') ?? false).toBe(false)
  })

  const runTitle = localOnly(
    'runs to Succeeded: the live redis-server answered the modelled client, in signals cells',
    "needs redis-server where the pods run: the process-backed node runs this machine's, the livesim image has none",
  )
  it.skipIf(existingCluster())(runTitle, async () => {
    const sc = await until(
      'the run to end',
      () => {
        const s = getJson<{ status?: { phase?: string; message?: string; results?: { liveCellMode?: string } } }>('get', 'simcluster', '-n', NS, NAME)
        return s.status?.phase === 'Succeeded' || s.status?.phase === 'Failed' ? s : undefined
      },
      300_000,
      1000,
    )
    expect(sc.status?.phase, `${sc.status?.message}\n${podLogs(dbPod)}`).toBe('Succeeded')

    const cm = getJson<{ data: Record<string, string> }>('get', 'configmap', '-n', NS, `${NAME}-results`)
    const results = JSON.parse(cm.data['results.json']!) as {
      sync: { causalityViolations: number }
      hosts: Record<string, { components: Record<string, Record<string, unknown>> }>
      live?: { cellMode?: string }
    }
    expect(results.sync.causalityViolations).toBe(0)
    const redis = results.hosts['db-0']?.components.redis as { kind: string; log: string; requests: number; replies: number }
    expect(redis.kind, JSON.stringify(redis)).toBe('Live')
    expect(redis.requests, JSON.stringify(redis)).toBeGreaterThan(0)
    expect(redis.replies, JSON.stringify(redis)).toBe(redis.requests)
    // The program's log went to the pod's work dir (LIVESIM_WORK_DIR=/tmp/$(POD_NAME)).
    expect(redis.log).toBe(`/tmp/${dbPod}/db-0/redis.log`)
    expect(results.live?.cellMode, JSON.stringify(results.live)).toBe('signals')
    // …and the status says so too.
    expect(sc.status?.results?.liveCellMode).toBe('signals')
    const load = results.hosts['client-0']?.components.load as { sent: number; completed: number; errors: number }
    expect(load.sent, JSON.stringify(load)).toBeGreaterThan(0)
    expect(load.completed, JSON.stringify(load)).toBeGreaterThan(0)
    expect(load.errors, JSON.stringify(load)).toBe(0)
    if (!userImage) return

    // The same file with `livesim run` here (this machine's redis-server; the image is not used
    // locally): the same counts. Timings differ between any two live runs, so the digest does too.
    const file = path.join(inject('e2eDir'), `${NAME}.yaml`)
    writeFileSync(file, MANIFEST)
    const local = spawnSync(process.execPath, [path.join(root, 'sim-runtime', 'cli', 'main.ts'), 'run', file, '--json', '--quiet'], { cwd: root, encoding: 'utf8', timeout: 300_000 })
    expect(local.status, local.stderr).toBe(0)
    const lr = JSON.parse(local.stdout) as typeof results
    const lredis = lr.hosts['db-0']?.components.redis as { kind: string; requests: number; replies: number; imageUsed?: boolean }
    const lload = lr.hosts['client-0']?.components.load as { sent: number; completed: number; errors: number }
    expect(lredis.imageUsed).toBe(false)
    expect((redis as { imageUsed?: boolean }).imageUsed, JSON.stringify(redis)).toBe(true)
    const counts = (r: { requests: number; replies: number }, l: { sent: number; completed: number; errors: number }) => ({ requests: r.requests, replies: r.replies, sent: l.sent, completed: l.completed, errors: l.errors })
    const onCluster = counts(redis, load)
    const here = counts(lredis, lload)
    process.stderr.write(`live-redis counts: on the real node from ${userImage} ${JSON.stringify(onCluster)}; livesim run ${JSON.stringify(here)}\n`)
    expect(onCluster).toEqual(here)
    // The modelled pair that does not talk to the live host: the same results, exactly.
    for (const h of ['web-0', 'app-0']) expect(results.hosts[h], h).toEqual(lr.hosts[h])
    expect((results.hosts['web-0']?.components.load as { completed: number }).completed).toBeGreaterThan(0)
  })
})

describe('live.podSecurity=privileged pods, against admission (server-side dry runs)', () => {
  // The pods the operator would create with --live-pod-security=privileged / restricted.
  // The image the e2e operator was installed with (LIVESIM_E2E_IMAGE, LIVESIM_E2E_PULL_POLICY).
  const settings: OperatorSettings = { image: inject('image'), imagePullPolicy: inject('imagePullPolicy'), leaderLingerSec: 60, registerTimeoutSec: 30 }
  const pod = (ns: string, livePodSecurity: 'restricted' | 'privileged') => {
    const { cluster, plan } = loadSimCluster(MANIFEST)
    const sc = { ...cluster, metadata: { ...cluster.metadata, namespace: NS, uid: '00000000-0000-0000-0000-000000000001', generation: 1 } } as SimClusterObject
    const sh = simHost(sc, plan, plan.hostIndex.get('db-0')!, 'http://127.0.0.1:7070', 1) as SimHostObject
    sh.metadata.uid = '00000000-0000-0000-0000-000000000002'
    const p = hostPod(sh, { ...settings, livePodSecurity }, runsLive(sc, 'db')) as unknown as PodJson & { metadata: { namespace?: string; ownerReferences?: unknown }; spec: { serviceAccountName?: string } }
    // Not the name of the run's real pod in NS.
    p.metadata.name = `dry-run-${livePodSecurity}`
    p.metadata.namespace = ns
    delete p.metadata.ownerReferences
    // The ServiceAccount admission plugin wants an existing ServiceAccount.
    p.spec.serviceAccountName = 'default'
    return JSON.stringify(p)
  }
  const dryRun = (ns: string, body: string) => kubectlIn(body, 'create', '--dry-run=server', '-n', ns, '-f', '-')

  beforeAll(async () => {
    for (const ns of [NS, NS_PRIVILEGED]) await until(`ServiceAccount default in ${ns}`, () => run('kubectl', ['get', 'serviceaccount', 'default', '-n', ns]).status === 0, 60_000)
  })

  it('a restricted live pod is admitted where restricted is enforced', () => {
    const r = dryRun(NS, pod(NS, 'restricted'))
    expect(r.status, r.stderr).toBe(0)
  })

  it('a privileged live pod is refused where restricted is enforced, naming what violates it', () => {
    const r = dryRun(NS, pod(NS, 'privileged'))
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/violates PodSecurity "restricted:latest"/)
    expect(r.stderr).toMatch(/privileged/)
    expect(r.stderr).toMatch(/runAsNonRoot|runAsUser=0/)
  })

  it('a privileged live pod passes API validation and is admitted where privileged pods are allowed', () => {
    const r = dryRun(NS_PRIVILEGED, pod(NS_PRIVILEGED, 'privileged'))
    expect(r.status, r.stderr).toBe(0)
  })
})

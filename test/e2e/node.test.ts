// The process-backed node (hack/node) against a real control plane: registration and lease,
// env resolution, phases and restarts, graceful deletion, API access through the pod's
// ServiceAccount, pod-to-pod traffic on pod IPs, and a clean shutdown.
//
// Self-contained: it starts its own control plane (LIVESIM_CP_DIR=/tmp/livesim-cp-node-test) and
// its own node (pod IPs in 127.79.0.0/16, apart from other nodes on this machine). On an existing
// cluster (LIVESIM_USE_EXISTING=1) the node's tests skip: they test hack/node, not the cluster.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { isNotFound, KubeClient, R } from '../../operator/kube/rest.ts'
import { expand, fieldRefValue } from '../../hack/node/env.ts'
import { IpAllocator } from '../../hack/node/ipam.ts'
import type { Node, Pod } from '../../hack/node/types.ts'
import { existingCluster, localOnly } from './kube.ts'

const root = path.join(import.meta.dirname, '..', '..')
const CP_DIR = '/tmp/livesim-cp-node-test'
const NODE_NAME = 'livesim-node-e2e'
const NS = 'default'
const nodeBin = existsSync(path.join(root, 'node_modules', '.bin', 'node')) ? path.join(root, 'node_modules', '.bin', 'node') : process.execPath

describe('$(VAR) expansion and fieldRefs', () => {
  const vars: Record<string, string> = { A: 'x', B: 'y' }
  const lookup = (n: string) => vars[n]

  it('expands defined variables and keeps the rest as written', () => {
    expect(expand('$(A)-$(B)', lookup)).toBe('x-y')
    expect(expand('$(C) $A', lookup)).toBe('$(C) $A')
    expect(expand('$$(A) $$ $', lookup)).toBe('$(A) $ $')
    expect(expand('$(A', lookup)).toBe('$(A')
    expect(expand('$(A $$', lookup)).toBe('$(A $')
    expect(expand('$()', lookup)).toBe('$()')
  })

  it('resolves downward-API fields', () => {
    const pod = { metadata: { name: 'p', namespace: 'n', uid: 'u', labels: { app: 'a' } }, spec: { containers: [], nodeName: 'nd', serviceAccountName: 'sa' } } as Pod
    const where = { podIP: '127.79.0.1', hostIP: '127.0.0.1' }
    expect(fieldRefValue(pod, 'metadata.uid', where)).toBe('u')
    expect(fieldRefValue(pod, "metadata.labels['app']", where)).toBe('a')
    expect(fieldRefValue(pod, 'status.podIP', where)).toBe('127.79.0.1')
    expect(fieldRefValue(pod, 'spec.serviceAccountName', where)).toBe('sa')
    expect(fieldRefValue(pod, 'spec.nope', where)).toBeInstanceOf(Error)
  })

  it('hands out distinct loopback pod IPs', () => {
    const ips = new IpAllocator('127.79')
    const got = Array.from({ length: 300 }, () => ips.next())
    expect(new Set(got).size).toBe(300)
    expect(got[0]).toBe('127.79.0.1')
    expect(got[254]).toBe('127.79.1.1')
    expect(() => new IpAllocator('10.0')).toThrow()
  })
})

describe.skipIf(existingCluster())(localOnly('process node', 'needs the process-backed node and a local control plane of its own'), () => {
  let client: KubeClient
  let kubeconfig: string
  let kubectlBin: string
  let stateDir: string
  let nodeLog: string
  let node: ChildProcess | undefined
  let nodeExit: Promise<number | null> | undefined

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

  async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, everyMs = 250): Promise<T> {
    const end = Date.now() + timeoutMs
    let last: unknown
    while (Date.now() < end) {
      try {
        const v = await fn()
        if (v) return v
      } catch (err) {
        last = err
      }
      await sleep(everyMs)
    }
    throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
  }

  async function getPod(name: string): Promise<Pod | undefined> {
    try {
      return await client.get<Pod>(R.pods.item(NS, name))
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  function createPod(name: string, spec: Partial<Pod['spec']>): Promise<Pod> {
    return client.create<Pod>(R.pods.collection(NS), { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS }, spec: { terminationGracePeriodSeconds: 2, ...spec } })
  }

  const waitPhase = (name: string, ...phases: string[]) =>
    until(`pod ${name} in phase ${phases.join('/')}`, async () => {
      const p = await getPod(name)
      return p && phases.includes(p.status?.phase ?? '') ? p : undefined
    })

  const podLog = (name: string, container = 'main') => {
    const f = path.join(stateDir, 'pods', `${NS}_${name}`, `${container}.log`)
    return existsSync(f) ? readFileSync(f, 'utf8') : ''
  }

  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }

  /** The pid of the pod's first container, from its containerID (process://PID). */
  const containerPid = (p: Pod) => Number(/^process:\/\/(\d+)$/.exec(p.status?.containerStatuses?.[0]?.containerID ?? '')?.[1])

  const deletePod = (name: string, gracePeriodSeconds: number) => client.delete(R.pods.item(NS, name), { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds }).catch(() => undefined)

  beforeAll(async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, LIVESIM_CP_DIR: CP_DIR }
    delete env.LIVESIM_USE_EXISTING
    const up = spawnSync('bash', [path.join(root, 'hack', 'control-plane', 'up.sh')], { env, encoding: 'utf8', timeout: 3_000_000 })
    const found = /export KUBECONFIG=(\S+)/.exec(up.stdout ?? '')
    if (up.status !== 0 || !found) throw new Error(`hack/control-plane/up.sh failed (${up.status}):\n${(up.stderr ?? '').slice(-3000)}`)
    kubeconfig = found[1]!
    const binDir = /^LIVESIM_BIN_DIR=(.*)$/m.exec(readFileSync(path.join(CP_DIR, 'env'), 'utf8'))?.[1]
    kubectlBin = path.join(binDir ?? '', 'kubectl')
    const kc = new KubeConfig()
    kc.loadFromFile(kubeconfig)
    client = new KubeClient(kc)

    stateDir = mkdtempSync(path.join(tmpdir(), 'livesim-node-test-'))
    nodeLog = path.join(stateDir, 'node.log')
    const logFd = openSync(nodeLog, 'w')
    node = spawn(nodeBin, [path.join(root, 'hack', 'node', 'main.ts'), '--name', NODE_NAME, '--state-dir', stateDir, '--kubeconfig', kubeconfig, '--pod-ip-base', '127.79'], {
      cwd: root,
      env: { ...process.env, KUBECONFIG: '' },
      stdio: ['ignore', logFd, logFd],
    })
    const proc = node
    nodeExit = new Promise((r) => proc.once('exit', (code) => r(code)))
  }, 3_600_000)

  afterAll(async () => {
    if (node && node.exitCode === null && node.signalCode === null) {
      node.kill('SIGTERM')
      await Promise.race([nodeExit, sleep(15_000)])
      if (node.exitCode === null && node.signalCode === null) node.kill('SIGKILL')
    }
    spawnSync('bash', [path.join(root, 'hack', 'control-plane', 'down.sh')], { env: { ...process.env, LIVESIM_CP_DIR: CP_DIR }, encoding: 'utf8', timeout: 120_000 })
    if (stateDir && !process.env.LIVESIM_KEEP_STATE) rmSync(stateDir, { recursive: true, force: true })
  }, 180_000)

  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      const text = existsSync(nodeLog) ? readFileSync(nodeLog, 'utf8').trim().split('\n').slice(-40).join('\n') : '(no node log)'
      console.error(`--- last lines of ${nodeLog} ---\n${text}`)
    })
  })

  it('registers a Ready, untainted Node and renews its Lease', async () => {
    const version = await client.get<{ gitVersion: string }>('/version')
    // Ready, and without the not-ready taint the API server puts on new Nodes: schedulable.
    const n = await until('the node to be Ready and untainted', async () => {
      const got = await client.get<Node & { status: { nodeInfo: { kubeletVersion: string }; capacity: Record<string, string>; allocatable: Record<string, string>; addresses: { type: string; address: string }[] } }>(R.nodes.item(undefined, NODE_NAME))
      return got.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !got.spec?.taints?.length ? got : undefined
    })
    expect(n.spec?.unschedulable).toBeFalsy()
    expect(n.metadata.labels).toMatchObject({ 'kubernetes.io/hostname': NODE_NAME, 'kubernetes.io/os': 'linux', 'node.kubernetes.io/instance-type': 'livesim-process' })
    expect(n.status.capacity).toMatchObject({ cpu: '16', memory: '64Gi', pods: '110' })
    expect(n.status.allocatable).toMatchObject({ cpu: '16', memory: '64Gi', pods: '110' })
    expect(n.status.addresses).toEqual(expect.arrayContaining([{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: NODE_NAME }]))
    expect(n.status.nodeInfo.kubeletVersion).toBe(version.gitVersion)

    type Lease = { spec: { holderIdentity: string; renewTime: string } }
    const lease = await until('the node lease', () => client.get<Lease>(R.leases.item('kube-node-lease', NODE_NAME)))
    expect(lease.spec.holderIdentity).toBe(NODE_NAME)
    await until(
      'the lease to be renewed',
      async () => (await client.get<Lease>(R.leases.item('kube-node-lease', NODE_NAME))).spec.renewTime !== lease.spec.renewTime,
      25_000,
      1_000,
    )
  })

  it('runs a pod with fieldRef, Secret and ConfigMap env; $(VAR) is expanded; exit 3 ends Failed', async () => {
    await client.create(R.secrets.collection(NS), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'env-secret' }, stringData: { password: 's3cret' } })
    await client.create(R.configMaps.collection(NS), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'env-config' }, data: { color: 'blue' } })
    await createPod('env-pod', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'example.com/none:1',
          command: ['/bin/sh', '-c', 'echo $(POD_NAME) $MY_IP $PASSWORD $COLOR $GREETING $(POD_NAMESPACE) [$OPTIONAL]; exit 3'],
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'password' } } },
            { name: 'COLOR', valueFrom: { configMapKeyRef: { name: 'env-config', key: 'color' } } },
            { name: 'OPTIONAL', valueFrom: { secretKeyRef: { name: 'no-such-secret', key: 'k', optional: true } } },
            { name: 'GREETING', value: 'hi-$(POD_NAME)' },
          ],
        },
      ],
    })
    const pod = await waitPhase('env-pod', 'Failed', 'Succeeded')
    expect(pod.status?.phase).toBe('Failed')
    expect(pod.spec.nodeName).toBe(NODE_NAME) // placed by kube-scheduler
    const ip = pod.status!.podIP!
    expect(ip).toMatch(/^127\.79\.\d+\.\d+$/)
    expect(podLog('env-pod').trim()).toBe(`env-pod ${ip} s3cret blue hi-env-pod default []`)
    const cs = pod.status!.containerStatuses![0]!
    expect(cs.state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' })
    expect(cs.image).toBe('example.com/none:1')
    expect(cs.restartCount).toBe(0)
  })

  it('a pod whose containers exit 0 ends Succeeded; `livesim` runs the checkout CLI', async () => {
    await createPod('ok-pod', {
      restartPolicy: 'Never',
      containers: [
        { name: 'main', image: 'busybox', command: ['/bin/sh', '-c', 'echo done'] },
        { name: 'cli', image: 'livesim', command: ['livesim'], args: ['--version'] },
      ],
    })
    const pod = await waitPhase('ok-pod', 'Succeeded', 'Failed')
    expect(pod.status?.phase).toBe('Succeeded')
    for (const cs of pod.status!.containerStatuses!) expect(cs.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' })
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' })
    expect(podLog('ok-pod')).toBe('done\n')
    const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version
    expect(podLog('ok-pod', 'cli').trim()).toBe(version)
  })

  it('restarts a restartPolicy Always container that exits', async () => {
    await createPod('crash-pod', { restartPolicy: 'Always', containers: [{ name: 'main', image: 'busybox', command: ['/bin/sh', '-c', 'echo run; exit 1'] }] })
    const pod = await until('a restart', async () => {
      const p = await getPod('crash-pod')
      return (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined
    })
    expect(pod.status?.phase).toBe('Running')
    expect(pod.status!.containerStatuses![0]!.lastState.terminated).toMatchObject({ exitCode: 1, reason: 'Error' })
    expect(podLog('crash-pod').match(/run/g)?.length).toBeGreaterThanOrEqual(2)
    await deletePod('crash-pod', 1)
    await until('crash-pod to be gone', async () => !(await getPod('crash-pod')))
  })

  it('deletion: SIGTERM, SIGKILL after the grace period, then the pod is gone and so is its process', async () => {
    // Ignores SIGTERM (but reports it), so only the SIGKILL after the grace period ends it.
    await createPod('long-pod', { containers: [{ name: 'main', image: 'busybox', command: ['/bin/sh', '-c', 'trap "echo got TERM" TERM; echo started; while true; do sleep 0.1; done'] }] })
    const running = await until('long-pod to run', async () => {
      const p = await getPod('long-pod')
      return p?.status?.phase === 'Running' && podLog('long-pod').includes('started') ? p : undefined
    })
    expect(running.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True')
    const pid = containerPid(running)
    expect(alive(pid)).toBe(true)
    const t0 = Date.now()
    await deletePod('long-pod', 2)
    await until('long-pod to be gone from the API', async () => !(await getPod('long-pod')), 30_000)
    const took = Date.now() - t0
    expect(took).toBeGreaterThanOrEqual(1_500)
    expect(podLog('long-pod')).toContain('got TERM')
    expect(alive(pid)).toBe(false)
  })

  it('a pod with a ServiceAccount reaches the API server with its own identity', async () => {
    await client.create('/api/v1/namespaces/default/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'pod-reader' } })
    await client.create('/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'pod-reader' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
    })
    await client.create('/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'pod-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'pod-reader', namespace: 'default' }],
    })
    const script = [
      'echo "kubeconfig=$KUBECONFIG"',
      `${kubectlBin} auth whoami -o jsonpath='{.status.userInfo.username}{"\\n"}'`,
      `${kubectlBin} get pods -o name`,
      // RBAC applies: secrets are not readable by this ServiceAccount.
      `if ${kubectlBin} get secrets >/dev/null 2>&1; then echo secrets-readable; else echo secrets-forbidden; fi`,
    ].join('; ')
    await createPod('sa-pod', { serviceAccountName: 'pod-reader', restartPolicy: 'Never', containers: [{ name: 'main', image: 'kubectl', command: ['/bin/sh', '-c', script] }] })
    const pod = await waitPhase('sa-pod', 'Succeeded', 'Failed')
    const log = podLog('sa-pod')
    expect(pod.status?.phase, log).toBe('Succeeded')
    expect(log).toContain(`kubeconfig=${path.join(stateDir, 'pods', 'default_sa-pod', 'kubeconfig')}`)
    expect(log).toContain('system:serviceaccount:default:pod-reader')
    expect(log).toContain('pod/sa-pod')
    expect(log).toContain('secrets-forbidden')
  })

  it('pods get distinct IPs; one serves HTTP on its pod IP to another; readiness follows the probe', async () => {
    const server = `require('node:http').createServer((q, s) => s.end('hello from ' + process.env.POD_NAME)).listen(8080, process.env.POD_IP, () => console.log('listening on ' + process.env.POD_IP))`
    await createPod('server-pod', {
      containers: [
        {
          name: 'main',
          image: 'node',
          command: [nodeBin, '-e', server],
          env: [
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
        },
      ],
    })
    const ready = await until('server-pod to be Ready', async () => {
      const p = await getPod('server-pod')
      return p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined
    })
    const serverIP = ready.status!.podIP!
    expect(podLog('server-pod')).toContain(`listening on ${serverIP}`)
    const client_ = `fetch('http://' + process.env.SERVER + ':8080/').then((r) => r.text()).then((t) => console.log(process.env.MY_IP + ' got: ' + t))`
    await createPod('client-pod', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'node',
          command: [nodeBin, '-e', client_],
          env: [
            { name: 'SERVER', value: serverIP },
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          ],
        },
      ],
    })
    const done = await waitPhase('client-pod', 'Succeeded', 'Failed')
    const clientIP = done.status!.podIP!
    expect(clientIP).not.toBe(serverIP)
    expect(podLog('client-pod').trim()).toBe(`${clientIP} got: hello from server-pod`)
    await deletePod('server-pod', 2)
  })

  it('stopping the node stops every pod process', async () => {
    await createPod('last-pod', { containers: [{ name: 'main', image: 'busybox', command: ['/bin/sh', '-c', 'sleep 1000 & wait'] }] })
    const pod = await until('last-pod to run', async () => {
      const p = await getPod('last-pod')
      return p?.status?.phase === 'Running' ? p : undefined
    })
    const pid = containerPid(pod)
    expect(alive(pid)).toBe(true)
    node!.kill('SIGTERM')
    const code = await Promise.race([nodeExit, sleep(20_000).then(() => 'timeout')])
    expect(code).toBe(0)
    expect(alive(pid)).toBe(false)
    // The backgrounded `sleep 1000` of that pod (same process group) is gone too, once reaped.
    await until('the pod process group to be empty', () => spawnSync('pgrep', ['-g', String(pid)], { encoding: 'utf8' }).stdout.trim() === '', 5_000)
  })
})

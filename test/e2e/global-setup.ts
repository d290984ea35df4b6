// End-to-end setup, once for every e2e file: a real control plane (hack/control-plane, built from
// Go modules and cached), a real node (hack/kubelet: kubelet, kube-proxy, containerd and runc) with
// the livesim image of this checkout (`npm run image`) and a user image with no livesim inside
// (hack/image/redis-image.sh) imported into its containerd, and the operator installed with
// `helm install charts/livesim` so that it runs as a pod on that node, from that image.
// LIVESIM_E2E_NODE=process runs the pods on the process-backed stand-in (hack/node, pods as local
// processes, no images) instead: for a machine where the real node cannot run (it needs root). With LIVESIM_USE_EXISTING=1 and a KUBECONFIG whose cluster answers, that cluster and its
// own nodes are used instead: no control plane or node is started here, and the tests that need
// their processes skip (`existingCluster`). The image is LIVESIM_E2E_IMAGE (image.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync } from 'node:fs'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { e2eImage } from './image.ts'

const root = path.join(import.meta.dirname, '..', '..')
const OPERATOR_NS = 'livesim-system'
/** The user image's name in the real node's containerd (imported, never pulled). */
const USER_IMAGE = 'localhost/livesim-e2e/redis:e2e'

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string
    binDir: string
    e2eDir: string
    operatorNamespace: string
    /** The cluster in KUBECONFIG (LIVESIM_USE_EXISTING=1), not the local control plane and node. */
    existingCluster: boolean
    /** The operator's image and pull policy, as installed (LIVESIM_E2E_IMAGE, LIVESIM_E2E_PULL_POLICY). */
    image: string
    imagePullPolicy: string
    /** What runs the pods: the real node (kubelet + containerd), the process-backed stand-in, or the existing cluster's nodes. */
    nodeKind: 'kubelet' | 'process' | 'existing'
    /** On the real node: the user image (redis-server, no livesim inside) imported into containerd; '' elsewhere. */
    userImage: string
  }
}

function sh(cmd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): string {
  const r = spawnSync('bash', ['-c', cmd], { cwd: root, env, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status ?? r.signal}):\n${r.stderr?.slice(-4000)}`)
  return r.stdout
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    try {
      const v = fn()
      if (v) return v
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export default async function setup(project: TestProject) {
  const image = e2eImage()
  const setupStart = Date.now()
  const secs = (t: number) => ((Date.now() - t) / 1000).toFixed(1)
  const e2eDir = process.env.LIVESIM_E2E_DIR ?? '/tmp/livesim-e2e'
  mkdirSync(e2eDir, { recursive: true })
  const cpDir = path.join(e2eDir, 'cp')
  const requestedNode = process.env.LIVESIM_E2E_NODE || 'kubelet'
  if (requestedNode !== 'kubelet' && requestedNode !== 'process') throw new Error(`LIVESIM_E2E_NODE=${requestedNode}: expected kubelet (the default) or process`)
  // Pods on the real node reach the apiserver through the kubernetes Service, whose endpoint is this
  // host's primary IP: the apiserver listens on every address then (hack/kubelet/README.md).
  const cpEnv = { ...process.env, LIVESIM_CP_DIR: cpDir, ...(requestedNode === 'kubelet' ? { LIVESIM_CP_BIND_ADDRESS: '0.0.0.0' } : {}) }
  if (process.env.LIVESIM_USE_EXISTING !== '1') process.stderr.write(`e2e: control plane in ${cpDir} (the first run builds Kubernetes from source: long)\n`)
  // With LIVESIM_USE_EXISTING=1, up.sh only checks the cluster in KUBECONFIG and prints it; when
  // that cluster does not answer, it starts the local control plane in cpDir instead.
  const up = sh('hack/control-plane/up.sh', cpEnv, 3_600_000)
  const cpSecs = secs(setupStart)
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(up)?.[1]
  if (!kubeconfig) throw new Error(`up.sh printed no KUBECONFIG: ${up}`)
  const existingCluster = process.env.LIVESIM_USE_EXISTING === '1' && path.resolve(root, kubeconfig) !== path.resolve(root, cpDir, 'kubeconfig')
  const nodeKind: 'kubelet' | 'process' | 'existing' = existingCluster ? 'existing' : (requestedNode as 'kubelet' | 'process')
  process.stderr.write(
    existingCluster
      ? `e2e: the existing cluster in KUBECONFIG=${kubeconfig} (LIVESIM_USE_EXISTING=1); image ${image.image}, pullPolicy ${image.pullPolicy}\n`
      : `e2e: the local control plane in ${cpDir} and the ${nodeKind === 'kubelet' ? 'real node (kubelet + containerd)' : 'process-backed node'}\n`,
  )
  const binDir = sh('source hack/control-plane/lib.sh && echo "$BIN_DIR"').trim()
  const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH}` }
  const kubectl = (args: string, timeoutMs = 60_000) => sh(`kubectl ${args}`, env, timeoutMs)
  const nodeEnv = { ...cpEnv, LIVESIM_NODE_DIR: path.join(e2eDir, 'kubelet') }

  // The node. An existing cluster has nodes of its own.
  let node: ChildProcess | undefined
  let realNode = false
  let userImage = ''
  const cleanup = async () => {
    if (node) {
      const n = node
      n.kill('SIGTERM')
      await new Promise((r) => (n.exitCode !== null ? r(undefined) : n.once('exit', r)))
    }
    if (realNode) sh('hack/kubelet/down.sh', nodeEnv, 120_000)
    if (!existingCluster) sh('hack/control-plane/down.sh', cpEnv)
  }
  try {
    if (nodeKind === 'kubelet') {
      realNode = true
      const t0 = Date.now()
      sh('bash hack/kubelet/deps.sh', env, 900_000)
      sh('hack/kubelet/up.sh', nodeEnv, 600_000)
      const nodeSecs = secs(t0)
      const t1 = Date.now()
      // The images it runs: imported, never pulled (no registry). The chart's image when it is the
      // default livesim:dev: this checkout's, built (or found in the cache) by `npm run image`.
      if (!process.env.LIVESIM_E2E_IMAGE) {
        const archive = sh(`bash hack/image/deps.sh >&2 && ${JSON.stringify(process.execPath)} hack/image/build.ts`, env, 1_800_000).trim().split('\n').pop()!
        sh(`hack/kubelet/import.sh ${JSON.stringify(archive)} ${image.image}`, nodeEnv, 600_000)
      }
      const redis = sh('bash hack/image/redis-image.sh', env, 1_800_000).trim().split('\n').pop()!
      sh(`hack/kubelet/import.sh ${JSON.stringify(redis)} ${USER_IMAGE}`, nodeEnv, 600_000)
      userImage = USER_IMAGE
      process.stderr.write(`e2e: real node up in ${nodeSecs} s; images built or found and imported in ${secs(t1)} s\n`)
    } else if (nodeKind === 'process') {
      const nodeLog = openSync(path.join(e2eDir, 'node.log'), 'w')
      node = spawn(process.execPath, [path.join(root, 'hack', 'node', 'main.ts'), '--name', 'livesim-node', '--state-dir', path.join(e2eDir, 'node')], {
        cwd: root,
        env: { ...env, LIVESIM_LOG_LEVEL: 'info' },
        stdio: ['ignore', nodeLog, nodeLog],
      })
    }
    if (nodeKind !== 'existing') await until('the node to be Ready', () => kubectl(`get node livesim-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`) === 'True', 60_000)
    else await until('a Ready node in the existing cluster', () => kubectl(`get nodes -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}'`).split(' ').includes('True'), 60_000)

    // The operator, installed the way users install it.
    const t2 = Date.now()
    sh(
      `helm upgrade --install livesim charts/livesim --namespace ${OPERATOR_NS} --create-namespace ` +
        `${image.helmSets.map((s) => `--set '${s}'`).join(' ')} --wait --timeout 5m`,
      env,
      400_000,
    )
    process.stderr.write(`e2e: helm install in ${secs(t2)} s; set-up ${secs(setupStart)} s in all (control plane ${cpSecs} s)\n`)
  } catch (err) {
    // vitest runs no teardown when setup fails: leave nothing running behind.
    await cleanup()
    throw err
  }
  const operatorNamespace = OPERATOR_NS

  project.provide('kubeconfig', kubeconfig)
  project.provide('binDir', binDir)
  project.provide('e2eDir', e2eDir)
  project.provide('operatorNamespace', operatorNamespace)
  project.provide('existingCluster', existingCluster)
  project.provide('image', image.image)
  project.provide('imagePullPolicy', image.pullPolicy)
  project.provide('nodeKind', nodeKind)
  project.provide('userImage', userImage)

  return async () => {
    try {
      sh(`helm uninstall livesim --namespace ${operatorNamespace} --wait --timeout 2m`, env, 180_000)
    } catch (err) {
      process.stderr.write(`e2e teardown: ${(err as Error).message}\n`)
    }
    await cleanup()
  }
}

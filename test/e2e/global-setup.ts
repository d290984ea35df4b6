// End-to-end setup, once for every e2e file: a real control plane (hack/control-plane, built from
// Go modules and cached), the process-backed node (hack/node) that runs pods as local processes,
// and the operator installed with `helm install charts/livesim` so that it runs as a pod on that
// node. With LIVESIM_USE_EXISTING=1 and a KUBECONFIG whose cluster answers, that cluster and its
// own nodes are used instead: no control plane or node is started here, and the tests that need
// their processes skip (`existingCluster`). The image is LIVESIM_E2E_IMAGE (image.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync } from 'node:fs'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { e2eImage } from './image.ts'

const root = path.join(import.meta.dirname, '..', '..')
const OPERATOR_NS = 'livesim-system'

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
  const e2eDir = process.env.LIVESIM_E2E_DIR ?? '/tmp/livesim-e2e'
  mkdirSync(e2eDir, { recursive: true })
  const cpDir = path.join(e2eDir, 'cp')
  const cpEnv = { ...process.env, LIVESIM_CP_DIR: cpDir }
  if (process.env.LIVESIM_USE_EXISTING !== '1') process.stderr.write(`e2e: control plane in ${cpDir} (the first run builds Kubernetes from source: long)\n`)
  // With LIVESIM_USE_EXISTING=1, up.sh only checks the cluster in KUBECONFIG and prints it; when
  // that cluster does not answer, it starts the local control plane in cpDir instead.
  const up = sh('hack/control-plane/up.sh', cpEnv, 3_600_000)
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(up)?.[1]
  if (!kubeconfig) throw new Error(`up.sh printed no KUBECONFIG: ${up}`)
  const existingCluster = process.env.LIVESIM_USE_EXISTING === '1' && path.resolve(root, kubeconfig) !== path.resolve(root, cpDir, 'kubeconfig')
  process.stderr.write(
    existingCluster
      ? `e2e: the existing cluster in KUBECONFIG=${kubeconfig} (LIVESIM_USE_EXISTING=1); image ${image.image}, pullPolicy ${image.pullPolicy}\n`
      : `e2e: the local control plane in ${cpDir} and the process-backed node\n`,
  )
  const binDir = sh('source hack/control-plane/lib.sh && echo "$BIN_DIR"').trim()
  const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH}` }
  const kubectl = (args: string, timeoutMs = 60_000) => sh(`kubectl ${args}`, env, timeoutMs)

  // The node: pods become local processes. An existing cluster has nodes of its own.
  let node: ChildProcess | undefined
  if (!existingCluster) {
    const nodeLog = openSync(path.join(e2eDir, 'node.log'), 'w')
    node = spawn(process.execPath, [path.join(root, 'hack', 'node', 'main.ts'), '--name', 'livesim-node', '--state-dir', path.join(e2eDir, 'node')], {
      cwd: root,
      env: { ...env, LIVESIM_LOG_LEVEL: 'info' },
      stdio: ['ignore', nodeLog, nodeLog],
    })
  }
  const cleanup = async () => {
    if (!node) return
    const n = node
    n.kill('SIGTERM')
    await new Promise((r) => (n.exitCode !== null ? r(undefined) : n.once('exit', r)))
    sh('hack/control-plane/down.sh', cpEnv)
  }
  try {
    if (node) await until('the node to be Ready', () => kubectl(`get node livesim-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`) === 'True', 60_000)
    else await until('a Ready node in the existing cluster', () => kubectl(`get nodes -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}'`).split(' ').includes('True'), 60_000)

    // The operator, installed the way users install it.
    sh(
      `helm upgrade --install livesim charts/livesim --namespace ${OPERATOR_NS} --create-namespace ` +
        `${image.helmSets.map((s) => `--set '${s}'`).join(' ')} --wait --timeout 5m`,
      env,
      400_000,
    )
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

  return async () => {
    try {
      sh(`helm uninstall livesim --namespace ${operatorNamespace} --wait --timeout 2m`, env, 180_000)
    } catch (err) {
      process.stderr.write(`e2e teardown: ${(err as Error).message}\n`)
    }
    await cleanup()
  }
}

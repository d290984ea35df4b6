// operator-scale: 50 SimClusters × 4 hosts applied at once on the local control plane
// (hack/control-plane), with the process-backed node (hack/node) running every pod and the operator
// as a local process (so that its RSS and metrics can be read).
//
// Reports: seconds from `kubectl apply` until every pod exists (value), against the same for one
// SimCluster measured first in the same run (baseline); reconciles and API requests per SimCluster;
// operator RSS (peak); and the operator's API request rate once every run has completed, less the
// Lease renewals counted in the same window. Goal: every run Succeeded, and idle means idle (no
// reconciles, < 0.2 requests/s beyond the renewals: no hot loop). Only runs when named: it needs the
// control plane (built from source on first use).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { note, ROOT, sig, type BenchContext, type BenchResult, type Benchmark } from './common.ts'

const CLUSTERS = Number(process.env.BENCH_SCALE_CLUSTERS ?? 50)
const HOSTS = 4
const DIR = process.env.BENCH_SCALE_DIR ?? '/tmp/livesim-bench-scale'
const METRICS_PORT = 18380

function sh(cmd: string, env: NodeJS.ProcessEnv, timeoutMs = 600_000, input?: string): string {
  const r = spawnSync('bash', ['-c', cmd], { cwd: ROOT, env, encoding: 'utf8', timeout: timeoutMs, input })
  if (r.status !== 0) throw new Error(`${cmd}: ${r.status ?? r.signal}: ${r.stderr.split("\n").filter((l) => !/^[IW]\d{4} /.test(l)).join("\n").slice(-3000)}`)
  return r.stdout
}

function manifest(name: string): string {
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: ${name} }
spec:
  endTime: 1s
  seed: 1
  network: { default: { latency: 1ms, bandwidth: 1Gbps } }
  hosts:
    - name: client
      replicas: ${HOSTS - 1}
      components:
        - name: load
          model: { kind: Client, target: server/api, openLoop: { rate: 50 } }
    - name: server
      components:
        - name: api
          model: { kind: Server, workers: 2, service: { distribution: Exponential, mean: 2ms } }
`
}

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line)
    if (m) out.set(m[1]! + (m[2] ?? ''), Number(m[3]))
  }
  return out
}

const sum = (m: Map<string, number>, prefix: string, filter: (k: string) => boolean = () => true) =>
  [...m].filter(([k]) => k.startsWith(prefix) && filter(k)).reduce((n, [, v]) => n + v, 0)

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function until(what: string, fn: () => boolean, timeoutMs: number, onTick?: () => void): Promise<number> {
  const t0 = performance.now()
  while (performance.now() - t0 < timeoutMs) {
    onTick?.()
    if (fn()) return (performance.now() - t0) / 1000
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export const operatorScale: Benchmark = {
  name: 'operator-scale',
  description: `${CLUSTERS} SimClusters x ${HOSTS} hosts applied at once on the local control plane: time to pods, reconciles and requests per SimCluster, RSS, idle request rate (only when named)`,
  onlyWhenNamed: true,
  async run(_ctx: BenchContext): Promise<BenchResult> {
    mkdirSync(DIR, { recursive: true })
    const cpEnv = { ...process.env, LIVESIM_CP_DIR: path.join(DIR, 'cp') }
    note('operator-scale: starting the control plane (built from source on first use)')
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(sh('hack/control-plane/up.sh', cpEnv, 3_600_000))![1]!
    const binDir = sh('source hack/control-plane/lib.sh && echo "$BIN_DIR"', process.env).trim()
    const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH}`, LIVESIM_LOG_LEVEL: 'warn' }
    const kubectl = (args: string, input?: string) => sh(`kubectl ${args}`, env, 120_000, input)
    const procs: ChildProcess[] = []
    try {
      kubectl('apply --server-side -f crds/')
      kubectl('wait --for condition=established crd/simclusters.livesim.dev crd/simhosts.livesim.dev --timeout=60s')
      const log = openSync(path.join(DIR, 'node.log'), 'w')
      procs.push(spawn(process.execPath, ['hack/node/main.ts', '--name', 'scale-node', '--state-dir', path.join(DIR, 'node'), '--pod-ip-base', '127.88'], { cwd: ROOT, env, stdio: ['ignore', log, log] }))
      await until('the node', () => {
        try {
          return kubectl(`get node scale-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`) === 'True'
        } catch {
          return false
        }
      }, 60_000)
      const oplog = openSync(path.join(DIR, 'operator.log'), 'w')
      const op = spawn(
        process.execPath,
        ['sim-runtime/cli/main.ts', 'operator', '--lease-namespace', 'default', '--bind', '127.0.0.1', '--metrics-port', String(METRICS_PORT), '--health-port', String(METRICS_PORT + 1), '--image', 'livesim:dev'],
        { cwd: ROOT, env, stdio: ['ignore', oplog, oplog] },
      )
      procs.push(op)
      await until('the operator', () => spawnSync('curl', ['-sf', `http://127.0.0.1:${METRICS_PORT + 1}/readyz`]).status === 0, 60_000)

      const podCount = (ns: string) => Number(kubectl(`get pods -n ${ns} --no-headers -o name | wc -l`).trim())
      const phases = (ns: string) => kubectl(`get simclusters -n ${ns} -o jsonpath='{.items[*].status.phase}'`).split(/\s+/).filter(Boolean)

      // Baseline: one SimCluster alone.
      kubectl('create namespace scale-one')
      let t0 = performance.now()
      kubectl('apply -n scale-one -f -', manifest('one'))
      const oneApply = (performance.now() - t0) / 1000
      const onePods = oneApply + (await until('pods of one SimCluster', () => podCount('scale-one') >= HOSTS + 1, 300_000))
      await until('the single run to finish', () => ['Succeeded', 'Failed'].includes(phases('scale-one')[0] ?? ''), 300_000)
      const oneSucceeded = phases('scale-one')[0] === 'Succeeded'
      note(`operator-scale: one SimCluster: pods after ${onePods.toFixed(2)}s`)

      // The fleet.
      kubectl('create namespace scale')
      const before = await metrics()
      let peakRss = rssMiB(op.pid!)
      const sample = () => (peakRss = Math.max(peakRss, rssMiB(op.pid!)))
      const all = Array.from({ length: CLUSTERS }, (_, i) => manifest(`run-${String(i).padStart(2, '0')}`)).join('---\n')
      t0 = performance.now()
      kubectl('apply -n scale -f -', all)
      const applySeconds = (performance.now() - t0) / 1000
      const podsSeconds = applySeconds + (await until('every pod to exist', () => podCount('scale') >= CLUSTERS * (HOSTS + 1), 900_000, sample))
      note(`operator-scale: ${CLUSTERS * (HOSTS + 1)} pods exist after ${podsSeconds.toFixed(1)}s`)
      const doneSeconds = podsSeconds + (await until('every run to finish', () => {
        const p = phases('scale')
        return p.length === CLUSTERS && p.every((x) => x === 'Succeeded' || x === 'Failed')
      }, 1_800_000, sample))
      const final = phases('scale')
      const after = await metrics()
      // Idle: nothing left to do; the request rate should be about zero.
      await new Promise((r) => setTimeout(r, 5000))
      const idle0 = await metrics()
      const idleWindowS = 30
      // The Lease's renewals in the window, counted from its resourceVersion (each renewal is one GET
      // and one PUT: operator/machinery/leaderelection.ts), polled well within the 2 s renew period.
      const leaseVersion = () => kubectl(`get lease livesim-operator -n default -o jsonpath='{.metadata.resourceVersion}'`).trim()
      let renewals = 0
      let version = leaseVersion()
      for (const end = performance.now() + idleWindowS * 1000; performance.now() < end; ) {
        await new Promise((r) => setTimeout(r, 400))
        const v = leaseVersion()
        if (v !== version) renewals++
        version = v
      }
      const idle1 = await metrics()
      const requests = (m: Map<string, number>) => sum(m, 'rest_client_requests_total', (k) => !k.includes('method="WATCH"'))
      const reconciles = (m: Map<string, number>) => sum(m, 'controller_runtime_reconcile_total')
      const r = sig(podsSeconds / onePods, 4)
      // Idle requests by method, for the record.
      const byMethod: Record<string, number> = {}
      for (const m of ['GET', 'PUT', 'PATCH', 'POST', 'DELETE']) {
        byMethod[m] = sig((sum(idle1, 'rest_client_requests_total', (k) => k.includes(`method="${m}"`)) - sum(idle0, 'rest_client_requests_total', (k) => k.includes(`method="${m}"`))) / idleWindowS, 3)
      }
      const leaseRequestsPerSec = (2 * renewals) / idleWindowS
      const idleRate = (requests(idle1) - requests(idle0)) / idleWindowS
      return {
        name: 'operator-scale',
        value: sig(podsSeconds, 4),
        unit: 's until all pods exist',
        baseline: sig(onePods, 4),
        ratio: r,
        clusters: CLUSTERS,
        hostsPerCluster: HOSTS,
        pods: CLUSTERS * (HOSTS + 1),
        secondsUntilAllComplete: sig(doneSeconds, 4),
        succeeded: final.filter((x) => x === 'Succeeded').length,
        reconcilesPerSimCluster: sig((reconciles(after) - reconciles(before)) / CLUSTERS, 4),
        apiRequestsPerSimCluster: sig((requests(after) - requests(before)) / CLUSTERS, 4),
        operatorPeakRssMiB: sig(peakRss, 4),
        idleApiRequestsPerSec: sig(idleRate, 3),
        idleApiRequestsPerSecByMethod: byMethod,
        leaseRenewals: renewals,
        leaseRequestsPerSec: sig(leaseRequestsPerSec, 3),
        idleApiRequestsPerSecBeyondLeaseRenewal: sig(idleRate - leaseRequestsPerSec, 3),
        idleReconcilesPerSec: sig((reconciles(idle1) - reconciles(idle0)) / idleWindowS, 3),
        oneSucceeded,
        goal: 'every run Succeeded; idle: no reconciles and < 0.2 API requests/s beyond the measured Lease renewals',
        met: oneSucceeded && final.length === CLUSTERS && final.every((x) => x === 'Succeeded') && idleRate - leaseRequestsPerSec < 0.2 && reconciles(idle1) === reconciles(idle0),
      }
    } finally {
      for (const p of procs.reverse()) {
        p.kill('SIGTERM')
        await new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r)))
      }
      sh('hack/control-plane/down.sh', cpEnv)
    }
  },
}

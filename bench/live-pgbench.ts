// live-pgbench-fidelity: pgbench's tps and average latency under livesim (examples/postgres-pgbench.yaml
// with the link at this machine's loopback latency) against native PostgreSQL + pgbench, paired, in
// the same invocation. The decision rule is in bench/README.md ("Decision rules"), fixed before runs.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dump, load } from 'js-yaml'
import { resolveRunAs, type RunAs } from '../sim-runtime/live/user.ts'
import { EXAMPLES, machine, meanLowerBound95, median, note, ROOT, sig, type BenchContext, type Benchmark, type BenchResult } from './common.ts'
import { CROSS_CPU, durationString, holdCpuDmaLatency, measureLoopback, oneWayOf, phaseSteady, SAME_CPU, type PingPong } from './live-redis.ts'

const CLI = path.join(ROOT, 'sim-runtime', 'cli', 'main.ts')
const EXAMPLE = path.join(EXAMPLES, 'postgres-pgbench.yaml')
const GOAL = 0.9
const AIM = 0.95

/** The newest Debian PostgreSQL's bin directory (/usr/lib/postgresql/<version>/bin), or undefined. */
export function debianPgBin(root = '/usr/lib/postgresql'): string | undefined {
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(path.join(root, v, 'bin', 'postgres')))
  versions.sort((a, b) => Number(a) - Number(b))
  return versions.length ? path.join(root, versions[versions.length - 1]!, 'bin') : undefined
}

/** What pgbench printed: its summary, and the progress lines (-P). */
export interface PgbenchOutput {
  tps: number
  latencyAvgMs: number
  transactions: number
  failed: number
  progressLines: number
  /** transactions / tps: how long pgbench ran (in its clock's seconds). */
  seconds: number
}

export function parsePgbench(text: string): PgbenchOutput {
  const num = (re: RegExp, what: string) => {
    const m = re.exec(text)
    if (!m) throw new Error(`pgbench output has no ${what}:\n${text.slice(-1500)}`)
    return Number(m[1])
  }
  const tps = num(/^tps = ([\d.]+) \(without initial connection time\)/m, 'tps line')
  const transactions = num(/^number of transactions actually processed: (\d+)/m, 'transaction count')
  return {
    tps,
    latencyAvgMs: num(/^latency average = ([\d.]+) ms/m, 'latency average'),
    transactions,
    failed: /^number of failed transactions: (\d+)/m.test(text) ? num(/^number of failed transactions: (\d+)/m, '') : 0,
    progressLines: text.split('\n').filter((l) => /^progress: [\d.]+ s, /.test(l)).length,
    seconds: tps > 0 ? transactions / tps : 0,
  }
}

function positiveNumber(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined || text === '') return fallback
  const n = Number(text)
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`${what} must be a positive number, got ${JSON.stringify(text)}`)
  return n
}

/** The user PostgreSQL runs as: postgres when we are root (it refuses root), else ourselves. */
function pgUser(): RunAs | undefined {
  const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  return self.uid === 0 ? resolveRunAs({ runAsUser: 'postgres' }, 'live-pgbench', self) : undefined
}

function ensureDeps(): string {
  const have = () => debianPgBin() !== undefined && ['cc', 'taskset'].every((c) => spawnOk('sh', ['-c', `command -v ${c}`]))
  if (!have()) {
    note('live-pgbench: installing postgresql, libfaketime, gcc with hack/live-deps.sh')
    execFileSync(path.join(ROOT, 'hack', 'live-deps.sh'), { stdio: ['ignore', 'ignore', 'inherit'], timeout: 900_000 })
    if (!have()) throw new Error('hack/live-deps.sh ran, but PostgreSQL (/usr/lib/postgresql/<version>/bin), cc or taskset is still missing')
  }
  return debianPgBin()!
}

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Run a command to its end; its output, or an error with the end of it. */
function runTo(cmd: string, args: string[], o: { user?: RunAs; timeoutMs: number; env?: Record<string, string> }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { uid: o.user?.uid, gid: o.user?.gid, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${code ?? signal}):\n${out.slice(-2000)}`))
    })
  })
}

/** One native pair side: a fresh cluster, loaded, then pgbench against it over 127.0.0.1, pinned like the ping-pong. */
async function nativeRun(bin: string, dir: string, o: { seconds: number; clients: number; user?: RunAs }): Promise<{ out: PgbenchOutput; text: string }> {
  const data = path.join(dir, 'pgdata')
  const sock = path.join(dir, 'sock')
  mkdirSync(sock, { recursive: true })
  if (o.user) for (const d of [dir, sock]) chownSync(d, o.user.uid, o.user.gid)
  await runTo(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-N', '--locale=C', '-E', 'UTF8'], { user: o.user, timeoutMs: 120_000 })
  const port = String(20000 + (process.pid % 20000))
  const serverCpu = CROSS_CPU ? CROSS_CPU.serverCpu : SAME_CPU.serverCpu
  const clientCpu = CROSS_CPU ? CROSS_CPU.clientCpu : SAME_CPU.clientCpu
  const server: ChildProcess = spawn('taskset', ['-c', String(serverCpu), path.join(bin, 'postgres'), '-D', data, '-k', sock, '-p', port, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'], {
    uid: o.user?.uid,
    gid: o.user?.gid,
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  const exited = new Promise<void>((res) => server.once('exit', () => res()))
  try {
    for (let i = 0; ; i++) {
      if (spawnOk(path.join(bin, 'pg_isready'), ['-q', '-h', sock, '-p', port, '-U', 'postgres'])) break
      if (i > 600) throw new Error('native PostgreSQL did not start within 60 s')
      await new Promise((r) => setTimeout(r, 100))
    }
    await runTo(path.join(bin, 'pgbench'), ['-i', '-q', '-s', '1', '-h', sock, '-p', port, '-U', 'postgres', 'postgres'], { timeoutMs: 300_000 })
    const text = await runTo('taskset', ['-c', String(clientCpu), path.join(bin, 'pgbench'), '-h', '127.0.0.1', '-p', port, '-U', 'postgres', '-T', String(o.seconds), '-P', '1', '-c', String(o.clients), '-j', '1', 'postgres'], { timeoutMs: (o.seconds + 120) * 1000 })
    return { out: parsePgbench(text), text }
  } finally {
    server.kill('SIGINT')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))])
    server.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * examples/postgres-pgbench.yaml with another link latency, clock and pgbench arguments (`-T 5 -P 1
 * -c 1 -j 1`: the bench; `-t 50`: a fixed number of transactions), ending at endTimeNs; without
 * securityContext when the runtime is not root (it cannot switch users; PostgreSQL runs as it).
 */
export function pgbenchManifest(o: { latencyNs: number; pgbenchArgs: string; endTimeNs: number; clock: string; asRoot: boolean; name?: string }): string {
  const doc = load(readFileSync(EXAMPLE, 'utf8')) as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
  if (o.name) doc.metadata.name = o.name
  doc.spec.endTime = durationString(o.endTimeNs)
  doc.spec.network.default.latency = durationString(o.latencyNs)
  let args = 0
  for (const h of doc.spec.hosts) {
    for (const c of h.components) {
      c.live.clock = o.clock
      if (!o.asRoot) delete c.live.securityContext
      for (const e of c.live.env ?? []) {
        if (e.name !== 'PGBENCH_ARGS') continue
        e.value = o.pgbenchArgs
        args++
      }
    }
  }
  if (args !== 1) throw new Error(`${EXAMPLE}: expected one PGBENCH_ARGS variable, found ${args}`)
  return dump(doc, { lineWidth: 200 })
}

interface SimRun {
  out: PgbenchOutput
  wallSeconds: number
  slowdown: number
  causalityViolations: number
  exitCode: unknown
}

async function simRun(dir: string, manifest: string, seconds: number): Promise<SimRun> {
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o711) // the postgres user must pass it to reach its host's work directory
  const file = path.join(dir, 'cluster.yaml')
  writeFileSync(file, manifest)
  const outFile = path.join(dir, 'results.json')
  await runTo(process.execPath, [CLI, 'run', file, '--out', outFile, '--work-dir', path.join(dir, 'work'), '--quiet'], { timeoutMs: (seconds + 1) * 200_000 + 300_000 })
  const r = JSON.parse(readFileSync(outFile, 'utf8')) as { wall: { seconds: number; slowdown: number }; sync: { causalityViolations: number }; hosts: Record<string, { components: Record<string, Record<string, unknown>> }> }
  const pg = r.hosts['bench-0']!.components.pgbench!
  const text = readFileSync(String(pg.log), 'utf8')
  if (pg.exitCode !== 0) throw new Error(`pgbench under livesim exited ${String(pg.exitCode ?? pg.exitSignal ?? 'not at all (still running at the end)')}:\n${text.slice(-1500)}`)
  return { out: parsePgbench(text), wallSeconds: r.wall.seconds, slowdown: r.wall.slowdown, causalityViolations: r.sync.causalityViolations, exitCode: pg.exitCode }
}

const accuracy = (sim: number, native: number) => 1 - Math.abs(sim - native) / native

async function fidelity(ctx: BenchContext): Promise<BenchResult> {
  const bin = ensureDeps()
  const seconds = positiveNumber(process.env.LIVE_PGBENCH_SECONDS, 5, 'LIVE_PGBENCH_SECONDS')
  const clients = positiveNumber(process.env.LIVE_PGBENCH_CLIENTS, 1, 'LIVE_PGBENCH_CLIENTS')
  const clock = process.env.LIVE_PGBENCH_CLOCK || 'Cooperative'
  if (!['Cooperative', 'CpuTime', 'WallTime'].includes(clock)) throw new Error(`LIVE_PGBENCH_CLOCK: Cooperative, CpuTime or WallTime, got ${JSON.stringify(clock)}`)
  const user = pgUser()
  const work = mkdtempSync(path.join(os.tmpdir(), 'livesim-pgbench-'))
  chmodSync(work, 0o711)
  const hold = holdCpuDmaLatency(0)
  if (!hold) note('live-pgbench: /dev/cpu_dma_latency not held (needs root): cross-CPU wake-ups may be slow and noisy')
  let ok = false
  try {
    const { probe } = await measureLoopback(work, 1, CROSS_CPU ?? SAME_CPU)
    const where = CROSS_CPU ?? SAME_CPU
    const pairs: { link: number; rtts: number[]; native: PgbenchOutput; sim: SimRun }[] = []
    const unsteady: unknown[] = []
    const maxAttempts = ctx.reps * 3
    for (let attempt = 0; pairs.length < ctx.reps && attempt < maxAttempts; attempt++) {
      const p1: PingPong = await probe(where)
      const native = await nativeRun(bin, path.join(work, `native-${attempt}`), { seconds, clients, user })
      const p2 = await probe(where)
      const link = oneWayOf([p1])
      const manifest = pgbenchManifest({ latencyNs: link, pgbenchArgs: `-T ${seconds} -P 1 -c ${clients} -j 1`, endTimeNs: (seconds + 1) * 1e9, clock, asRoot: user !== undefined, name: `pgbench-fidelity-${attempt}` })
      const sim = await simRun(path.join(work, `sim-${attempt}`), manifest, seconds)
      const p3 = await probe(where)
      const rtts = [p1.p50Ns, p2.p50Ns, p3.p50Ns]
      const pair = { link, rtts, native: native.out, sim }
      note(`live-pgbench: pair ${attempt + 1}: link ${link} ns; tps native ${native.out.tps.toFixed(1)} livesim ${sim.out.tps.toFixed(1)}; latency ${native.out.latencyAvgMs} / ${sim.out.latencyAvgMs} ms; livesim ${sim.out.progressLines} progress lines, ${sim.out.seconds.toFixed(2)} virtual s, slowdown ${sim.slowdown.toFixed(2)}`)
      if (phaseSteady(rtts)) pairs.push(pair)
      else {
        unsteady.push(pair)
        note(`live-pgbench: phase changed during pair ${attempt + 1} (round trips ${rtts.join(', ')} ns): repeated`)
      }
    }
    if (pairs.length < 2) throw new Error(`only ${pairs.length} steady pair(s) in ${maxAttempts} attempts: no bound can be computed`)
    if (pairs.length < ctx.reps) note(`live-pgbench: ${pairs.length} steady pairs, not ${ctx.reps}: the bound is wider`)
    const metrics = {
      tps: meanLowerBound95(pairs.map((p) => accuracy(p.sim.out.tps, p.native.tps))),
      latencyAvg: meanLowerBound95(pairs.map((p) => accuracy(p.sim.out.latencyAvgMs, p.native.latencyAvgMs))),
    }
    const decidedBy = metrics.tps.lower95 <= metrics.latencyAvg.lower95 ? 'tps' : 'latencyAvg'
    const lower95 = metrics[decidedBy].lower95
    const value = Math.min(metrics.tps.mean, metrics.latencyAvg.mean)
    ok = true
    return {
      name: 'live-pgbench-fidelity',
      value: sig(value),
      unit: 'mean accuracy (1 = pgbench under livesim agrees with native)',
      baseline: 1,
      ratio: sig(value),
      goal: `lower95 >= ${GOAL} for tps and latency average`,
      met: lower95 >= GOAL,
      lower95: sig(lower95),
      decidedBy,
      aimMet: lower95 >= AIM,
      pairs: pairs.length,
      clockMode: clock,
      seconds,
      clients,
      linkLatencyNs: median(pairs.map((p) => p.link)),
      tpsNative: sig(median(pairs.map((p) => p.native.tps))),
      tpsLivesim: sig(median(pairs.map((p) => p.sim.out.tps))),
      latencyAvgMsNative: sig(median(pairs.map((p) => p.native.latencyAvgMs))),
      latencyAvgMsLivesim: sig(median(pairs.map((p) => p.sim.out.latencyAvgMs))),
      progressLines: pairs.map((p) => p.sim.out.progressLines),
      virtualSeconds: pairs.map((p) => sig(p.sim.out.seconds, 3)),
      detail: {
        accuracy: Object.fromEntries(Object.entries(metrics).map(([k, m]) => [k, { mean: sig(m.mean), lower95: sig(m.lower95), sd: sig(m.sd), n: m.n }])),
        pairs,
        unsteady,
        cpuDmaLatencyHeld: hold !== undefined,
      },
      ...machine(),
    }
  } finally {
    hold?.release()
    if (ok && !process.env.LIVE_PGBENCH_KEEP) rmSync(work, { recursive: true, force: true })
    else note(`live-pgbench: work directory kept: ${work}`)
  }
}

export const livePgbenchFidelity: Benchmark = {
  name: 'live-pgbench-fidelity',
  description: 'pgbench tps and latency under livesim vs native PostgreSQL, paired, 95 % lower bound (only when named)',
  onlyWhenNamed: true,
  defaultReps: 5,
  run: fidelity,
}

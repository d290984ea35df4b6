// `livesim run`: the leader in this process. A cluster without live components runs embedded:
// every host in this process too (Leader.runEmbedded), unless `partition` asks for runtime
// processes or spec.placement places the hosts. Otherwise the sim-runtimes are child processes,
// HTTP/2 over loopback between them: the runtimes of spec.placement as the operator makes them
// (sync/placement.ts), or the hosts split into `partition` of them in plan order (which overrides it).
// A child that dies, a signal, or a failed barrier ends the run; every child is stopped. Each child
// gets a known V8 heap limit, the one validation budgets for; one that runs out of it is reported as
// out of memory, with its hosts.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import type { Logger } from 'pino'
import { partitionHostIndices, type RunPlan } from '../api/plan.ts'
import type { SimCluster } from '../api/schema.ts'
import { formatBytes } from '../api/state-budget.ts'
import { parseDurationNs } from '../api/units.ts'
import { Leader, RunFailed, type LeaderStatus } from '../sync/leader.ts'
import type { SimResults } from '../sync/results.ts'
import { placeHosts } from '../sync/placement.ts'
import type { Stepping, Windows } from '../sync/windows.ts'
import type { SyncOptions } from '../sync/peers.ts'
import { allowedCpus, otherLiveRuntimes, parseRuntimeCpus, pinThisProcess, placeRuntime } from '../live/runtime-cpus.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
/** The CLI entry next to this module: main.ts from source, main.js from dist. */
export const CLI_PATH = path.join(here, '..', 'cli', `main${path.extname(fileURLToPath(import.meta.url))}`)

export interface LocalRunOptions {
  cluster: SimCluster
  plan: RunPlan
  baseDir: string
  logger: Logger
  /**
   * Number of runtime processes over HTTP/2, the hosts in plan order. Default: spec.placement's
   * runtimes when it has one; else none, every host embedded in this process, for a cluster without
   * live components (runsEmbedded); defaultPartition(plan) for one with them.
   */
  partition?: number
  /** The host names of each runtime process, instead of `partition` blocks in plan order (benchmarks, tests). */
  placement?: string[][]
  stepping?: Stepping
  /** Topology-aware windows (the default; LIVESIM_WINDOWS) or global ones (sync/windows.ts). */
  windows?: Windows
  /** Peer batches or the star, and when TALLYs go up a tree (sync/peers.ts); default: LIVESIM_SYNC*. */
  sync?: SyncOptions
  onStatus?: (s: LeaderStatus) => void
  statusIntervalMs?: number
  /** Extra arguments/env per child, for fault-injection tests. */
  childArgs?: (i: number) => string[]
  childEnv?: (i: number) => Record<string, string>
  registerTimeoutMs?: number
  barrierTimeoutMs?: number
  signal?: AbortSignal
  /**
   * V8 heap limit of each runtime process, MiB (--max-heap-size). Default: this process's limit, the
   * figure validation's heap budget uses (api/state-budget.ts localHeapBudget).
   */
  runtimeHeapMiB?: number
}

/**
 * Whether `livesim run` carries every host in its own process, with no runtime process and no
 * HTTP/2 barrier (bench/README.md, quickstart-slowdown): when no partition or placement is asked for
 * and no component is live. Live cells need the runtime process machinery; a partition or a
 * placement asks for processes.
 */
export function runsEmbedded(plan: RunPlan, partition: number | undefined): boolean {
  return partition === undefined && plan.placement === undefined && plan.liveComponents === 0
}

/**
 * Runtime processes of a run that is not embedded. One for all hosts is fastest here: a barrier then
 * costs one round-trip, and a 2-core machine gains nothing from more processes (see `npm run bench`).
 */
export function defaultPartition(_plan: RunPlan): number {
  return 1
}

export function splitHosts(plan: RunPlan, partition: number): string[][] {
  return partitionHostIndices(plan.hosts.length, partition).map((p) => p.map((i) => plan.hosts[i]!.name))
}

/** The host names of each runtime process: `partition` blocks if given, else spec.placement's runtimes, else defaultPartition. */
export function localRuntimes(plan: RunPlan, partition: number | undefined): string[][] {
  if (partition === undefined && plan.placement) return placeHosts(plan, plan.placement).runtimes.map((r) => r.map((i) => plan.hosts[i]!.name))
  return splitHosts(plan, partition ?? defaultPartition(plan))
}

/** V8's report of a heap out of memory on stderr ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"). */
const V8_OOM = /JavaScript heap out of memory/
/** The first line of that report, before the GC trace and the native stack that follow it. */
const V8_REPORT_START = /^(<--- Last few GCs --->|FATAL ERROR: )/

/** A runtime's hosts for a message: all of them, or the first and last few of many. */
function hostNames(hosts: string[]): string {
  return hosts.length <= 8 ? hosts.join(', ') : `${hosts.slice(0, 6).join(', ')}, …, ${hosts.at(-1)} (${hosts.length} hosts)`
}

export async function runLocal(opts: LocalRunOptions): Promise<SimResults> {
  const log = opts.logger
  const token = randomBytes(32).toString('hex')
  const leader = new Leader({
    cluster: opts.cluster,
    plan: opts.plan,
    token,
    baseDir: opts.baseDir,
    logger: log.child({ role: 'leader' }),
    stepping: opts.stepping,
    windows: opts.windows,
    sync: opts.sync,
    registerTimeoutMs: opts.registerTimeoutMs ?? 60_000,
    barrierTimeoutMs: opts.barrierTimeoutMs ?? 120_000,
  })
  const port = await leader.listen(0, '127.0.0.1')
  const parts = opts.placement ?? localRuntimes(opts.plan, opts.partition)
  const heapMiB = opts.runtimeHeapMiB ?? Math.floor(v8.getHeapStatistics().heap_size_limit / 2 ** 20)
  const children: ChildProcess[] = []
  /** Why a runtime ran out of heap, once its stderr said so: it explains the disconnect the leader sees. */
  let outOfMemory: string | undefined
  const onAbort = () => leader.fail('interrupted')
  opts.signal?.addEventListener('abort', onAbort)
  const timer = opts.onStatus ? setInterval(() => opts.onStatus!(leader.status()), opts.statusIntervalMs ?? 200) : undefined
  let failure: RunFailed
  let unpin: (() => void) | undefined
  try {
    if (runsEmbedded(opts.plan, opts.placement ? opts.placement.length : opts.partition)) return await leader.runEmbedded()
    // One runtime on this machine takes a CPU of its own when it drives Cooperative cells (runtime-cpus.ts);
    // several would share it.
    const runtimeCpus = process.env.LIVESIM_RUNTIME_CPUS ?? (parts.length === 1 ? 'auto' : 'none')
    parts.forEach((hosts, i) => {
      const child = spawn(
        process.execPath,
        [`--max-heap-size=${heapMiB}`, CLI_PATH, 'host', '--leader', `http://127.0.0.1:${port}`, '--hosts', hosts.join(','), '--runtime-id', `runtime-${i}`, ...(opts.childArgs?.(i) ?? [])],
        {
          env: { ...process.env, LIVESIM_TOKEN: token, LIVESIM_LOG_LEVEL: process.env.LIVESIM_LOG_LEVEL ?? 'warn', LIVESIM_LOCAL_RUN: '1', LIVESIM_RUNTIME_CPUS: runtimeCpus, ...(opts.childEnv?.(i) ?? {}) },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      )
      children.push(child)
      let stderrTail = ''
      // Whole lines are passed on, except V8's out-of-memory report (a GC trace and a native stack):
      // the run's failure says it in words instead.
      let partial = ''
      let v8Report = false
      const oom = () => {
        outOfMemory ??=
          `runtime-${i} (hosts ${hostNames(hosts)}) is out of memory: its V8 heap reached its limit of ${formatBytes(heapMiB * 2 ** 20)} (--max-heap-size=${heapMiB}); ` +
          'lower the modelled state (closed-loop users, open-loop rates and timeouts) or split hosts across more runtimes (--partition)'
        leader.fail(outOfMemory)
      }
      child.stderr!.setEncoding('utf8')
      child.stderr!.on('data', (d: string) => {
        stderrTail = (stderrTail + d).slice(-4000)
        const lines = (partial + d).split('\n')
        partial = lines.pop()!
        for (const line of lines) {
          v8Report ||= V8_REPORT_START.test(line)
          if (!v8Report) process.stderr.write(line + '\n')
        }
        if (V8_OOM.test(stderrTail)) oom()
      })
      child.on('exit', (code, sig) => {
        if (partial && !v8Report) process.stderr.write(partial + '\n')
        if (code === 0) return
        if (V8_OOM.test(stderrTail)) return oom()
        const last = lastMessage(stderrTail)
        leader.fail(`runtime-${i} (hosts ${hosts.join(', ')}) exited with ${sig ?? `code ${code}`}${last ? `: ${last}` : ''}`)
      })
    })
    if (parts.length === 1) unpin = pinLeaderBeside(opts.childEnv?.(0).LIVESIM_RUNTIME_CPUS ?? runtimeCpus, opts.plan, children[0]!.pid)
    return await leader.run()
  } catch (err) {
    failure = err instanceof RunFailed ? err : new RunFailed((err as Error).message)
  } finally {
    unpin?.()
    if (timer) clearInterval(timer)
    opts.onStatus?.(leader.status())
    opts.signal?.removeEventListener('abort', onAbort)
    await leader.close()
    // After a success the runtimes exit by themselves once their results are sent and their programs
    // have had their terminationGracePeriod: give them that and a moment. After a failure they are
    // told at once (SIGTERM: they kill their programs with the cells, without grace).
    const succeeded = leader.status().phase === 'Succeeded'
    await Promise.all(children.map((c) => stopChild(c, succeeded ? 1000 + longestGraceMs(opts.plan) : 0)))
  }
  // A runtime that ran out of heap drops its connection as it dies; the leader may have seen the
  // disconnect before the runtime's stderr said why. Every child has exited now: say why.
  throw outOfMemory !== undefined ? new RunFailed(outOfMemory) : failure
}

/**
 * The leader of a single runtime goes where that runtime pins itself (runtime-cpus.ts), so that its
 * barriers do not take the cells' CPU either. Called once the runtime was started (it places itself
 * from the CPUs it inherited, this process's); returns what puts this process back.
 */
function pinLeaderBeside(setting: string, plan: RunPlan, runtimePid: number | undefined): (() => void) | undefined {
  const cooperative = plan.hosts.some((h) => h.components.some((c) => c.spec.live?.clock === 'Cooperative'))
  const before = allowedCpus()
  const parsed = parseRuntimeCpus(setting, 'none')
  // Other live runtimes than this run's own (whose directory may exist by now).
  const others = parsed === 'auto' ? otherLiveRuntimes((d) => d.startsWith(`${runtimePid}.`)) : 0
  const p = placeRuntime(parsed, before, cooperative, others)
  if (!p.runtime || pinThisProcess(p.runtime) !== undefined) return undefined
  return () => void pinThisProcess(before)
}

/** The longest terminationGracePeriod of the plan's live programs, ms (0 without any). */
function longestGraceMs(plan: RunPlan): number {
  let ms = 0
  for (const h of plan.hosts) for (const c of h.components) if (c.spec.live?.terminationGracePeriod) ms = Math.max(ms, parseDurationNs(c.spec.live.terminationGracePeriod) / 1e6)
  return ms
}

/** The last error message in a child's pino output, for the failure reason. */
function lastMessage(text: string): string {
  const lines = text.trim().split('\n').reverse()
  for (const l of lines) {
    try {
      const j = JSON.parse(l) as { msg?: string; level?: number; err?: { message?: string } }
      if ((j.level ?? 0) >= 50) return j.err?.message ?? j.msg ?? ''
    } catch {
      if (l.trim()) return l.trim()
    }
  }
  return ''
}

/** Wait `waitMs` for the child to exit by itself, then SIGTERM, then SIGKILL after 2 s. */
async function stopChild(c: ChildProcess, waitMs: number): Promise<void> {
  const exited = () => c.exitCode !== null || c.signalCode !== null
  if (exited()) return
  await new Promise<void>((resolve) => {
    let kill: NodeJS.Timeout | undefined
    const term = setTimeout(() => {
      c.kill('SIGTERM')
      kill = setTimeout(() => c.kill('SIGKILL'), 2000)
    }, waitMs)
    c.once('exit', () => {
      clearTimeout(term)
      clearTimeout(kill)
      resolve()
    })
  })
}

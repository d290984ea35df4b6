// `livesim run`: the leader in this process, the sim-runtimes as child processes, HTTP/2 over
// loopback between them. Hosts are split into `partition` runtime processes in plan order.
// A child that dies, a signal, or a failed barrier ends the run; every child is stopped.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import type { RunPlan } from '../api/plan.ts'
import type { SimCluster } from '../api/schema.ts'
import { Leader, RunFailed, type LeaderStatus } from '../sync/leader.ts'
import type { SimResults } from '../sync/results.ts'
import type { Stepping } from '../sync/windows.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
/** The CLI entry next to this module: main.ts from source, main.js from dist. */
export const CLI_PATH = path.join(here, '..', 'cli', `main${path.extname(fileURLToPath(import.meta.url))}`)

export interface LocalRunOptions {
  cluster: SimCluster
  plan: RunPlan
  baseDir: string
  logger: Logger
  /** Number of runtime processes; default: defaultPartition(plan). */
  partition?: number
  stepping?: Stepping
  onStatus?: (s: LeaderStatus) => void
  statusIntervalMs?: number
  /** Extra arguments/env per child, for fault-injection tests. */
  childArgs?: (i: number) => string[]
  childEnv?: (i: number) => Record<string, string>
  registerTimeoutMs?: number
  barrierTimeoutMs?: number
  signal?: AbortSignal
}

/**
 * One runtime process for all hosts is fastest here: a barrier then costs one round-trip, and a
 * 2-core machine gains nothing from more processes for modelled components (see `npm run bench`).
 */
export function defaultPartition(_plan: RunPlan): number {
  return 1
}

export function splitHosts(plan: RunPlan, partition: number): string[][] {
  const n = Math.max(1, Math.min(partition, plan.hosts.length))
  const parts: string[][] = Array.from({ length: n }, () => [])
  // Contiguous blocks in plan order keep replicas of a group together.
  plan.hosts.forEach((h, i) => parts[Math.floor((i * n) / plan.hosts.length)]!.push(h.name))
  return parts
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
    registerTimeoutMs: opts.registerTimeoutMs ?? 60_000,
    barrierTimeoutMs: opts.barrierTimeoutMs ?? 120_000,
  })
  const port = await leader.listen(0, '127.0.0.1')
  const parts = splitHosts(opts.plan, opts.partition ?? defaultPartition(opts.plan))
  const children: ChildProcess[] = []
  const onAbort = () => leader.fail('interrupted')
  opts.signal?.addEventListener('abort', onAbort)
  const timer = opts.onStatus ? setInterval(() => opts.onStatus!(leader.status()), opts.statusIntervalMs ?? 200) : undefined
  try {
    parts.forEach((hosts, i) => {
      const child = spawn(
        process.execPath,
        [CLI_PATH, 'host', '--leader', `http://127.0.0.1:${port}`, '--hosts', hosts.join(','), '--runtime-id', `runtime-${i}`, ...(opts.childArgs?.(i) ?? [])],
        {
          env: { ...process.env, LIVESIM_TOKEN: token, LIVESIM_LOG_LEVEL: process.env.LIVESIM_LOG_LEVEL ?? 'warn', LIVESIM_LOCAL_RUN: '1', ...(opts.childEnv?.(i) ?? {}) },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      )
      children.push(child)
      let stderrTail = ''
      child.stderr!.setEncoding('utf8')
      child.stderr!.on('data', (d: string) => {
        stderrTail = (stderrTail + d).slice(-4000)
        process.stderr.write(d)
      })
      child.on('exit', (code, sig) => {
        if (code === 0) return
        const last = lastMessage(stderrTail)
        leader.fail(`runtime-${i} (hosts ${hosts.join(', ')}) exited with ${sig ?? `code ${code}`}${last ? `: ${last}` : ''}`)
      })
    })
    return await leader.run()
  } catch (err) {
    if (err instanceof RunFailed) throw err
    throw new RunFailed((err as Error).message)
  } finally {
    if (timer) clearInterval(timer)
    opts.onStatus?.(leader.status())
    opts.signal?.removeEventListener('abort', onAbort)
    await leader.close()
    // After a success the runtimes exit by themselves once their results are sent: give them a moment.
    const succeeded = leader.status().phase === 'Succeeded'
    await Promise.all(children.map((c) => stopChild(c, succeeded ? 1000 : 0)))
  }
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

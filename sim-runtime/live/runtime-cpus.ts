// Where a runtime and its cells run on this machine's CPUs (LIVESIM_RUNTIME_CPUS).
//
// A runtime driving Cooperative cells polls while they run: it is a busy thread of its own. Left to
// the scheduler, it shares both CPUs of a 2-CPU machine with the cells, which then lose their CPU
// (and their caches) to it every few µs, and a Cooperative clock counts that wall time as their work.
// Measured with one pgbench client (docs/live.md, "Where the runtime runs"): 6061-6065 tps with
// every process floating, 6485-6604 with the runtime on a CPU of its own and both cells on the
// other, 6803-7098 natively (three rounds, interleaved).
//
//   none   the runtime and the cells without cell.cpus run anywhere (the default in a runtime pod)
//   auto   with a Cooperative cell, at least two CPUs allowed and no other live runtime of this user
//          running here: the runtime on the last allowed CPU, the cells without cell.cpus on the
//          others (`livesim run`'s default with one runtime). Two runs at once would both take the
//          last CPU: the second leaves everything to the scheduler.
//   LIST   the runtime on these CPUs (a cpuset list), the cells without cell.cpus on the others
import assert from 'node:assert'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cpuList, entries, isStaleRuntime } from './common.ts'
import { userShmDir } from './dirs.ts'
import { which } from './spawn.ts'

export type RuntimeCpus = 'none' | 'auto' | number[]

/** A cpuset list ("1", "0-3", "0,2-3") as CPU numbers, each of which must exist on this machine. */
export function parseCpuList(text: string, field: string): number[] {
  const n = os.cpus().length
  const cpus = cpuRanges(text, field)
  const missing = cpus.find((c) => c >= n)
  if (missing !== undefined) throw new Error(`${field}: CPU ${missing} does not exist on this machine (CPUs 0-${n - 1})`)
  return cpus
}

/** The CPUs of a cpuset list, sorted, without duplicates; a part that is no CPU or range lo-hi fails naming `field`. */
function cpuRanges(text: string, field: string): number[] {
  const out = new Set<number>()
  for (const part of text.split(',')) {
    const [a, b = a] = part.split('-').map(Number) as [number, number?]
    if (!(Number.isInteger(a) && Number.isInteger(b) && a <= b!)) throw new Error(`${field}: ${JSON.stringify(part)} is not a CPU or a range lo-hi`)
    for (let c = a; c <= b!; c++) out.add(c)
  }
  return [...out].sort((x, y) => x - y)
}

/** LIVESIM_RUNTIME_CPUS: none, auto or a cpuset list. */
export function parseRuntimeCpus(text: string | undefined, fallback: RuntimeCpus): RuntimeCpus {
  if (text === undefined || text === '') return fallback
  if (text === 'none' || text === 'auto') return text
  return parseCpuList(text, `LIVESIM_RUNTIME_CPUS=${text} (none, auto or a cpuset list such as 1 or 2-3)`)
}

/**
 * Live runtimes of this user running on this machine besides those `mine` names: the directories of
 * /dev/shm/livesim-<uid>/clock (runner.ts) whose runtime process is alive.
 */
export function otherLiveRuntimes(mine: (dir: string) => boolean): number {
  let top: string
  try {
    top = path.join(userShmDir(), 'clock')
  } catch {
    return 0
  }
  return entries(top).filter((d) => /^\d+\.\d+$/.test(d) && !mine(d) && !isStaleRuntime(d)).length
}

/** The CPUs this process may run on (its affinity), from /proc/self/status. */
export function allowedCpus(status = readFileSync('/proc/self/status', 'utf8')): number[] {
  const line = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)
  if (!line) return [...Array(os.availableParallelism()).keys()]
  return cpuRanges(line[1]!, 'Cpus_allowed_list of /proc/self/status')
}

export interface Placement {
  /** CPUs the runtime pins itself to; undefined: it stays where it is. */
  runtime?: number[]
  /** CPUs of the cells whose spec sets no cell.cpus; undefined: anywhere. */
  cells?: number[]
  why: string
}

/**
 * Where the runtime and the cells without cell.cpus go, given the setting, this process's CPUs,
 * whether a cell is Cooperative and how many other live runtimes run here (otherLiveRuntimes).
 */
export function placeRuntime(setting: RuntimeCpus, allowed: number[], cooperative: boolean, others = 0): Placement {
  assert(allowed.length > 0, 'a process runs on at least one CPU')
  if (setting === 'none') return { why: 'LIVESIM_RUNTIME_CPUS=none' }
  if (setting === 'auto') {
    if (!cooperative) return { why: 'auto: no Cooperative cell (frozen cells do not count the runtime\'s CPU as theirs)' }
    if (allowed.length < 2) return { why: `auto: one CPU allowed (${cpuList(allowed)})` }
    if (others > 0) return { why: `auto: ${others} other live runtime(s) of this user running here (they would share the CPU)` }
    const runtime = [allowed[allowed.length - 1]!]
    return { runtime, cells: allowed.slice(0, -1), why: `auto: a Cooperative cell; the runtime on CPU ${runtime[0]}, cells on ${cpuList(allowed.slice(0, -1))}` }
  }
  const cells = allowed.filter((c) => !setting.includes(c))
  if (cells.length === 0) throw new Error(`LIVESIM_RUNTIME_CPUS=${cpuList(setting)} leaves no CPU for the cells (this process may run on ${cpuList(allowed)}); name fewer CPUs, or none`)
  return { runtime: setting, cells, why: `LIVESIM_RUNTIME_CPUS=${cpuList(setting)}; cells on ${cpuList(cells)}` }
}

/** Pin every thread of this process to `cpus` (taskset -a); the processes it starts afterwards inherit it. Returns why not, or undefined. */
export function pinThisProcess(cpus: number[]): string | undefined {
  const taskset = which('taskset')
  if (!taskset) return 'no taskset (util-linux) on PATH'
  try {
    execFileSync(taskset, ['-a', '-p', '-c', cpuList(cpus), String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
    return undefined
  } catch (err) {
    return `taskset failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}`
  }
}

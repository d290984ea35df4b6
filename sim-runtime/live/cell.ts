// Cells: the isolation and pause/resume unit of live components. One cell per simulated host; every
// live program of the host runs in it, with the children it forks. At each barrier the runtime
// freezes every cell, so no thread of a live program runs while the simulation synchronises, and it
// reads the CPU time each cell consumed. See docs/live.md for what each mode guarantees.
//
// Three backends, strongest first:
//   cgroup2  cgroup.freeze / cgroup.events, cpu.stat, cgroup.kill, cpu.max, cpuset.cpus, memory.max
//   cgroup1  freezer.state, cpuacct.usage, cpu.cfs_quota_us, cpuset.cpus, memory.limit_in_bytes
//   signals  SIGSTOP/SIGCONT to the process groups, CPU time summed from /proc, taskset, RLIMIT_AS
import type { ChildProcess } from 'node:child_process'
import { createCgroup1Cell, probeCgroup1 } from './cgroup1.ts'
import { createCgroup2Cell, probeCgroup2 } from './cgroup2.ts'
import { createSignalsCell, probeSignals } from './signals.ts'
import type { SpawnOptions } from './spawn.ts'

export { cpuList } from './common.ts'
export { probeCgroup1, probeCgroup2, probeSignals }

export type CellMode = 'cgroup2' | 'cgroup1' | 'signals'
export const CELL_MODES: readonly CellMode[] = ['cgroup2', 'cgroup1', 'signals']

export interface CellOptions {
  /** Unique among the live cells of this runtime: [A-Za-z0-9_.-], at most 64 characters. */
  name: string
  /** CPUs the cell may run on (cpuset, or sched_setaffinity in signals mode). */
  cpus?: number[]
  /** CPU bandwidth in cores, e.g. 0.5 (cpu.max / cfs_quota_us; not available in signals mode). */
  cpuQuota?: number
  /** Memory limit (memory.max / memory.limit_in_bytes; RLIMIT_AS, i.e. virtual memory, in signals mode). */
  memoryBytes?: number
  /** Force a mode instead of the detected one (tests, or a user's choice); fails if the machine does not permit it. */
  mode?: CellMode
}

export interface Cell {
  readonly mode: CellMode
  /** The cell's name, for messages and results. */
  readonly name: string
  /**
   * What this cell could not guarantee, in words the runtime can copy
   * into results and status: limits the mode could not apply, processes that left the cell (signals
   * mode: setsid/setpgid). Grows while the cell lives.
   */
  readonly warnings: readonly string[]
  /** The cgroup directories of the cell ([] in signals mode); tests check they are gone after destroy(). */
  readonly paths: readonly string[]
  /** Start a program inside the cell (its own process group; stdout/stderr to the given log file). Children it forks stay in the cell. */
  spawn(command: string[], opts: SpawnOptions): ChildProcess
  /** Signals cells only: take a running process that leads its own session and process group into the cell (a program the image launcher started in another container of the pod). */
  adopt?(pid: number): void
  /** Stop every thread of every process in the cell; resolves when they are really stopped (cgroup: freezer state FROZEN / cgroup.events frozen 1; signals: every task in /proc shows state T, or D while it waits for a stopped vfork child). */
  freeze(): Promise<void>
  thaw(): Promise<void>
  readonly frozen: boolean
  /** CPU time consumed by every process of the cell, ns (cgroup2 cpu.stat usage_usec; cgroup1 cpuacct.usage; signals: sum of /proc/<pid>/task/*\/schedstat field 1 over the cell's processes, including exited threads' last-seen time). */
  cpuTimeNs(): number
  /** PIDs currently in the cell. */
  pids(): number[]
  /** Kill everything in the cell (SIGKILL after thaw), wait until no process is left, remove the cgroup. Idempotent. */
  destroy(): Promise<void>
}

export type { SpawnOptions }

export interface ModeProbe {
  /** The mode works here. */
  usable: boolean
  /** cgroup2 only: cpu and memory controllers can be delegated (otherwise freeze works but limits do not). */
  limits?: boolean
  why: string
}

export interface CellModeProbe extends ModeProbe {
  mode: CellMode
}

let probed: readonly CellModeProbe[] | undefined

/**
 * Every cell mode, strongest first, with whether this machine permits it and why (or why not): what
 * a user can choose from (LIVESIM_CELL_MODE), and what the tests run in. Probed once; cached.
 */
export function availableCellModes(): readonly CellModeProbe[] {
  probed ??= [
    { mode: 'cgroup2', ...probeCgroup2() },
    { mode: 'cgroup1', ...probeCgroup1() },
    { mode: 'signals', ...probeSignals() },
  ]
  return probed
}

let detected: Promise<{ mode: CellMode; why: string }> | undefined

/** Detect the strongest mode this machine permits (cgroup2 with writable cgroup.freeze → cgroup1 with writable freezer+cpuacct → signals). Cached. */
export function detectCellMode(): Promise<{ mode: CellMode; why: string }> {
  detected ??= Promise.resolve().then(() => chooseCellMode(probeCgroup2(), () => probeCgroup1()))
  return detected
}

/**
 * The choice, given what the probes found (exported for tests). cgroup2 wins when it can also apply
 * limits; a cgroup2 hierarchy that freezes but has no controllers to delegate (hybrid hosts, like
 * the machines this was built on: v1 controllers plus /sys/fs/cgroup/unified) loses to a usable
 * cgroup1, and still beats signals: it freezes and counts CPU time exactly.
 */
export function chooseCellMode(v2: ModeProbe, v1: () => ModeProbe): { mode: CellMode; why: string } {
  if (v2.usable && v2.limits) return { mode: 'cgroup2', why: v2.why }
  const p1 = v1()
  if (p1.usable) return { mode: 'cgroup1', why: `not cgroup2: ${v2.why}; ${p1.why}` }
  if (v2.usable) return { mode: 'cgroup2', why: `${v2.why}; cgroup1 unusable: ${p1.why}` }
  return { mode: 'signals', why: `not cgroup2: ${v2.why}; not cgroup1: ${p1.why}; using SIGSTOP/SIGCONT on process groups` }
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/

export async function createCell(opts: CellOptions): Promise<Cell> {
  if (!NAME.test(opts.name)) throw new Error(`cell name ${JSON.stringify(opts.name)}: use 1-64 of [A-Za-z0-9_.-], not starting with . or -`)
  if (opts.cpuQuota !== undefined && !(opts.cpuQuota > 0 && Number.isFinite(opts.cpuQuota))) throw new Error(`cell ${opts.name}: cpuQuota must be > 0 cores`)
  if (opts.memoryBytes !== undefined && !(Number.isSafeInteger(opts.memoryBytes) && opts.memoryBytes > 0)) throw new Error(`cell ${opts.name}: memoryBytes must be a positive integer`)
  if (opts.cpus !== undefined && (opts.cpus.length === 0 || !opts.cpus.every((c) => Number.isInteger(c) && c >= 0))) {
    throw new Error(`cell ${opts.name}: cpus must be a non-empty list of CPU numbers`)
  }
  const mode = opts.mode ?? (await detectCellMode()).mode
  switch (mode) {
    case 'cgroup2':
      return createCgroup2Cell(opts)
    case 'cgroup1':
      return createCgroup1Cell(opts)
    case 'signals':
      return createSignalsCell(opts)
    default:
      throw new Error(`unknown cell mode ${JSON.stringify(mode)}; modes are ${CELL_MODES.join(', ')}`)
  }
}

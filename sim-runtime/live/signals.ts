// Signals cells: no cgroup at all, for restricted pods and machines without writable cgroups.
// Each spawned program leads a new session and process group; the cell is the set of those process
// groups. Freeze = SIGSTOP to each group, then wait until every task of every member shows state T in
// /proc; thaw = SIGCONT. CPU time = sum over the members' threads of /proc/<pid>/task/<tid>/schedstat
// field 1, plus the last value seen of every thread that has exited since.
//
// Limits of this mode (docs/live.md):
// - A process that calls setsid() or setpgid() leaves the group and is neither frozen nor counted.
//   Children of the cell's processes found outside the group are reported in `warnings` (checked at
//   each freeze) and killed by destroy(), but not frozen.
// - CPU time of a thread that exits between two readings is counted up to the last reading only; a
//   process that starts and exits between two readings is not counted at all.
// - cpuQuota cannot be enforced; memoryBytes becomes RLIMIT_AS (virtual memory, not resident memory);
//   cpus becomes the CPU affinity (taskset), which a program may change back.
// - The stop is visible: SIGCONT handlers run, and some blocking calls (epoll_wait, nanosleep with
//   some kernels) may return EINTR after a stop and continue.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Cell, CellOptions, ModeProbe } from './cell.ts'
import { cpuList, isStaleRuntime, runtimeDirName } from './common.ts'
import { privateDir, userStateDir } from './dirs.ts'
import { allPids, childPids, isDead, pollUntil, procStat, readSmall, readStat, sendSignal, taskRuntimeNs, tids } from './proc.ts'
import { spawnPlaced, which, type SpawnOptions } from './spawn.ts'

/**
 * Where signals cells record their process groups, so that a later runtime can kill the groups of a
 * crashed one: `<this user's state directory>/cells/<runtime>` (dirs.ts; `LIVESIM_STATE_DIR/<runtime>`
 * when that is set). Per user: each user's runtimes clean up after their own.
 */
export function signalsStateDir(): string {
  const base = process.env.LIVESIM_STATE_DIR || privateDir(userStateDir(), 'cells')
  return path.join(base, runtimeDirName())
}

/** Signals cells need /proc (members, CPU time, states) and this user's state directory; no privilege. */
export function probeSignals(): ModeProbe {
  if (!existsSync('/proc/self/stat')) return { usable: false, why: 'no /proc here: signals cells find their processes and CPU time there' }
  try {
    return { usable: true, why: `SIGSTOP/SIGCONT to the cells' process groups (no privilege needed); records in ${path.dirname(signalsStateDir())}` }
  } catch (e) {
    return { usable: false, why: (e as Error).message }
  }
}

interface Group {
  pgid: number
  /** Start time of the leader, to tell our group from a later one with the same number. */
  starttime: number
}

interface Record_ {
  groups: Group[]
}

let staleCleaned = false

function cleanStale(): void {
  const base = path.dirname(signalsStateDir())
  let names: string[]
  try {
    names = readdirSync(base)
  } catch {
    return
  }
  for (const rt of names) {
    if (!isStaleRuntime(rt)) continue
    const dir = path.join(base, rt)
    for (const file of readdirSync(dir)) {
      try {
        const rec = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Record_
        const marker = `LIVESIM_CELL=${rt}/${file}`
        for (const g of rec.groups) for (const pid of groupMembers([g])) if (environ(pid).includes(marker)) sendSignal(pid, 'SIGKILL')
      } catch {
        // unreadable record: nothing we can safely kill
      }
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The environment a process was started with, as NUL-separated "NAME=value" entries ('' when unreadable). */
function environ(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')
  } catch {
    return []
  }
}

/**
 * Live members of the given groups: processes whose process group is one of ours and that started
 * no earlier than the group's leader (a group number reused after all our members died is not ours).
 * A full scan of /proc (~20 µs per process); used for stale clean-up only.
 */
function groupMembers(groups: Group[]): number[] {
  if (groups.length === 0) return []
  const byPgid = new Map(groups.map((g) => [g.pgid, g]))
  const out: number[] = []
  for (const pid of allPids()) {
    const st = procStat(pid)
    if (!st || isDead(st.state)) continue
    const g = byPgid.get(st.pgrp)
    if (g && st.starttime >= g.starttime) out.push(pid)
  }
  return out
}

/**
 * The scan of live cells, shared by every signals cell of this runtime.
 *
 * Each program we spawn leads a new session, and a process can join a process group only from inside
 * that group's session. So a process seen in a session that is not one of ours can never become a
 * member: it goes into `foreign` and is not read again. Only new pids and our sessions' processes are
 * read at each scan (~100 µs for a few hundred processes instead of ~20 µs each). A foreign pid could
 * come back as a member only after pid wrap-around; the cache is dropped when a scan sees the pids
 * wrap, and every 1000 scans.
 *
 * One scan serves every cell: it is tagged with `epoch`, which moves at every spawn, SIGSTOP and
 * SIGCONT. A stopped group cannot gain members (fork fails while a stop is pending), so a cell that
 * was stopped at epoch e may use any scan taken at epoch ≥ e; a running cell always scans afresh.
 */
const foreign = new Set<number>()
const ourSessions = new Set<number>()
/** Groups of every live signals cell of this runtime. */
const registry = new Set<Group>()
let epoch = 0
let scans = 0
let lastScan: { epoch: number; byPgid: Map<number, number[]> } | undefined

let lastListing = new Set<number>()
let lastMaxPid = 0

function scan(): Map<number, number[]> {
  const byPgid = new Map<number, number[]>()
  const groups = new Map([...registry].map((g) => [g.pgid, g]))
  const listed = allPids()
  // Pids are handed out in increasing order until they wrap around at pid_max (32768 on some
  // machines). A pid that is new since the last scan and lower than the highest pid of that scan
  // means the numbers wrapped: a cached foreign pid may now be a new member, so forget them all.
  let wrapped = ++scans % 1000 === 0
  let maxPid = 0
  for (const pid of listed) {
    if (pid > maxPid) maxPid = pid
    if (!wrapped && pid < lastMaxPid && !lastListing.has(pid)) wrapped = true
  }
  if (wrapped) foreign.clear()
  lastListing = new Set(listed)
  lastMaxPid = maxPid
  for (const pid of listed) {
    if (foreign.has(pid)) continue
    const st = procStat(pid)
    if (!st || isDead(st.state)) continue
    if (!ourSessions.has(st.session)) {
      foreign.add(pid)
      continue
    }
    const g = groups.get(st.pgrp)
    if (g && st.starttime >= g.starttime) {
      const list = byPgid.get(st.pgrp)
      if (list) list.push(pid)
      else byPgid.set(st.pgrp, [pid])
    }
  }
  if (foreign.size > 2 * listed.length + 64) {
    const now = new Set(listed)
    for (const pid of foreign) if (!now.has(pid)) foreign.delete(pid)
  }
  lastScan = { epoch, byPgid }
  return byPgid
}

/** Members of `groups` by group; `stoppedAt`: the epoch at which they were all stopped, if they are. */
function membersByGroup(stoppedAt: number | undefined): Map<number, number[]> {
  if (stoppedAt !== undefined && lastScan && lastScan.epoch >= stoppedAt) return lastScan.byPgid
  return scan()
}

/**
 * Every task of these processes is stopped: state T (or t, or dead), or D while waiting for a vfork
 * child. The parent of a vfork (dash runs commands with vfork) sleeps uninterruptibly until the child
 * execs or exits; if the child was stopped before exec, the parent stays in D for as long as the
 * child is stopped. It cannot run user code meanwhile, and the stop pending on it takes effect the
 * moment it leaves the kernel, so it counts as stopped.
 */
function allStopped(pids: number[]): { ok: boolean; running: string[] } {
  const running: string[] = []
  for (const pid of pids) {
    for (const tid of tids(pid)) {
      const st = readStat(`/proc/${pid}/task/${tid}/stat`)
      if (!st || st.state === 'T' || st.state === 't' || isDead(st.state)) continue
      if (st.state === 'D' && VFORK_WAIT.has((readSmall(`/proc/${pid}/task/${tid}/wchan`) ?? '').trim())) continue
      running.push(`${pid}/${tid}:${st.state}`)
    }
  }
  return { ok: running.length === 0, running }
}

const VFORK_WAIT = new Set(['kernel_clone', 'wait_for_vfork_done', '_do_fork', 'do_fork'])

/** "pid/tid:state" entries with the wait channel, command line and freezer cgroup, for error messages. */
function describeTasks(tasks: string[]): string {
  return tasks
    .map((t) => {
      const [pid, rest] = t.split('/') as [string, string]
      const tid = rest.split(':')[0]
      const wchan = readSmall(`/proc/${pid}/task/${tid}/wchan`) ?? '?'
      const cmd = (readSmall(`/proc/${pid}/cmdline`) ?? '').replace(/\0/g, ' ').trim()
      const cgroup = (readSmall(`/proc/${pid}/cgroup`) ?? '').split('\n').find((l) => l.includes('freezer')) ?? ''
      return `${t} wchan=${wchan} cmd=${JSON.stringify(cmd)} ${cgroup}`
    })
    .join('; ')
}

export async function createSignalsCell(opts: CellOptions): Promise<Cell> {
  if (!staleCleaned) {
    staleCleaned = true
    cleanStale()
  }
  const stateDir = signalsStateDir()
  const recordFile = path.join(stateDir, opts.name)
  mkdirSync(stateDir, { recursive: true })
  try {
    writeFileSync(recordFile, JSON.stringify({ groups: [] }), { flag: 'wx' })
  } catch {
    throw new Error(`a live cell named ${opts.name} already exists in this runtime (${recordFile})`)
  }
  const { prelude, warnings } = limits(opts)
  return new SignalsCell(opts.name, stateDir, recordFile, prelude, warnings)
}

/** What of the cell's limits the spawn prelude applies (affinity, rlimit), and what signals mode cannot. */
function limits(opts: CellOptions): { prelude: string[]; warnings: string[] } {
  const warnings: string[] = []
  const prelude: string[] = []
  if (opts.cpuQuota !== undefined) warnings.push(`cpuQuota ${opts.cpuQuota} not applied: signals mode cannot limit CPU bandwidth`)
  if (opts.cpus !== undefined) {
    const taskset = which('taskset')
    if (taskset) prelude.push(`${taskset} -pc ${cpuList(opts.cpus)} $$ >/dev/null`)
    else warnings.push(`cpus ${cpuList(opts.cpus)} not applied: no taskset (util-linux) on PATH`)
  }
  if (opts.memoryBytes !== undefined) {
    prelude.push(`ulimit -v ${Math.max(1, Math.floor(opts.memoryBytes / 1024))}`)
    warnings.push(`memoryBytes ${opts.memoryBytes} applied as RLIMIT_AS (virtual address space), not as a resident-memory limit`)
  }
  return { prelude, warnings }
}

class SignalsCell implements Cell {
  readonly mode = 'signals' as const
  readonly name: string
  readonly warnings: string[]
  readonly paths: readonly string[] = []
  private readonly stateDir: string
  private readonly recordFile: string
  private readonly prelude: string[]
  private readonly marker: string
  private groups: Group[] = []
  /** Children of members found outside our groups (setsid/setpgid), with their start time. */
  private readonly escaped = new Map<number, number>()
  /** Thread → last schedstat reading; exited threads' readings move to `exitedNs`. */
  private lastByTid = new Map<number, number>()
  private exitedNs = 0
  private isFrozen = false
  private destroyed: Promise<void> | undefined
  /** Epoch of our last SIGSTOP while frozen, for the shared scan. */
  private stoppedAt: number | undefined

  constructor(name: string, stateDir: string, recordFile: string, prelude: string[], warnings: string[]) {
    this.name = name
    this.stateDir = stateDir
    this.recordFile = recordFile
    this.prelude = prelude
    this.warnings = warnings
    this.marker = `${runtimeDirName()}/${name}`
  }

  get frozen(): boolean {
    return this.isFrozen
  }

  spawn(command: string[], sopts: SpawnOptions): ChildProcess {
    if (this.destroyed) throw new Error(`cell ${this.name} is destroyed`)
    // The marker lets a later runtime's stale clean-up tell our processes from strangers that got
    // the same process group number after pid wrap-around (it reads /proc/<pid>/environ).
    // A new process is not stopped by an earlier SIGSTOP: stop it while it waits at its gate, so
    // that it goes on to its exec only at the thaw.
    const child = spawnPlaced(command, { ...sopts, env: { ...sopts.env, LIVESIM_CELL: this.marker } }, this.prelude, (pid) => {
      epoch++
      if (this.isFrozen) {
        sendSignal(pid, 'SIGSTOP')
        this.stoppedAt = epoch
      }
    })
    if (child.pid === undefined) return child // spawn failed; the 'error' event tells why
    const group = { pgid: child.pid, starttime: procStat(child.pid)?.starttime ?? 0 }
    this.groups.push(group)
    registry.add(group)
    ourSessions.add(child.pid)
    this.saveRecord()
    return child
  }

  /**
   * Take a running process into the cell: one the image launcher started in another container of
   * the pod (launcher.ts), which leads its own session and process group, as spawn()'s children do.
   * Its group is then frozen, thawed, counted and killed with the cell. The cell's limits (CPU
   * affinity, RLIMIT_AS), which spawn() applies before the exec, are not applied to it.
   */
  adopt(pid: number): void {
    if (this.destroyed) throw new Error(`cell ${this.name} is destroyed`)
    const st = procStat(pid)
    if (!st || isDead(st.state)) throw new Error(`cell ${this.name}: process ${pid} is gone`)
    if (st.pgrp !== pid || st.session !== pid) throw new Error(`cell ${this.name}: process ${pid} does not lead its own session and process group (session ${st.session}, group ${st.pgrp})`)
    epoch++
    if (this.isFrozen) {
      sendSignal(-pid, 'SIGSTOP')
      this.stoppedAt = epoch
    }
    const group = { pgid: pid, starttime: st.starttime }
    this.groups.push(group)
    registry.add(group)
    ourSessions.add(pid)
    this.saveRecord()
  }

  async freeze(): Promise<void> {
    if (this.destroyed) return
    this.isFrozen = true
    for (const g of this.groups) sendSignal(-g.pgid, 'SIGSTOP')
    this.stoppedAt = ++epoch
    // Let the other cells of a Promise.all send their SIGSTOPs first: then one scan serves them all.
    await Promise.resolve()
    // One scan after the stop finds every member: none can be added while the stop is pending.
    const pids = this.members()
    await pollUntil(
      () => allStopped(pids).ok,
      10_000,
      () => `cell ${this.name}: tasks not stopped after 10 s: ${describeTasks(allStopped(pids).running.slice(0, 10))}`,
    )
    this.findEscapes(pids)
  }

  async thaw(): Promise<void> {
    if (this.destroyed) return
    epoch++
    for (const g of this.groups) sendSignal(-g.pgid, 'SIGCONT')
    this.isFrozen = false
    this.stoppedAt = undefined
  }

  cpuTimeNs(): number {
    const now = new Map<number, number>()
    let total = 0
    for (const pid of this.destroyed ? [] : this.members()) {
      for (const tid of tids(pid)) {
        const ns = taskRuntimeNs(pid, tid)
        if (ns === undefined) continue
        const before = this.lastByTid.get(tid)
        // A smaller value means the tid was reused by a new thread: bank the old one.
        if (before !== undefined && ns < before) this.exitedNs += before
        now.set(tid, ns)
        total += ns
      }
    }
    for (const [tid, ns] of this.lastByTid) if (!now.has(tid)) this.exitedNs += ns
    this.lastByTid = now
    return this.exitedNs + total
  }

  pids(): number[] {
    return this.members().sort((a, b) => a - b)
  }

  destroy(): Promise<void> {
    this.destroyed ??= this.teardown()
    return this.destroyed
  }

  private async teardown(): Promise<void> {
    this.cpuTimeNs()
    this.killGroups(scan())
    this.killEscaped()
    try {
      await pollUntil(
        () => {
          const byPgid = scan()
          const left = this.groups.flatMap((g) => byPgid.get(g.pgid) ?? [])
          if (left.length > 0) {
            this.killGroups(byPgid)
            return false
          }
          this.killEscaped()
          return this.escaped.size === 0
        },
        10_000,
        () => `cell ${this.name}: processes left after SIGKILL: ${[...this.groups.flatMap((g) => scan().get(g.pgid) ?? []), ...this.escaped.keys()].join(' ')}`,
      )
    } finally {
      this.isFrozen = false
      for (const g of this.groups) forget(g)
      this.groups = []
      rmSync(this.recordFile, { force: true })
      try {
        rmdirSync(this.stateDir)
      } catch {
        // other cells of this runtime still live
      }
    }
  }

  private killEscaped(): void {
    for (const [pid, start] of this.escaped) {
      const st = procStat(pid)
      if (st && st.starttime === start && !isDead(st.state)) sendSignal(pid, 'SIGKILL')
      else this.escaped.delete(pid)
    }
  }

  /** Only groups that still have members: an empty group's number may be taken by strangers. */
  private killGroups(byPgid: Map<number, number[]>): void {
    for (const g of this.groups) {
      if (!byPgid.has(g.pgid)) continue
      sendSignal(-g.pgid, 'SIGKILL')
      sendSignal(-g.pgid, 'SIGCONT')
    }
  }

  private saveRecord(): void {
    const tmp = `${this.recordFile}.tmp`
    writeFileSync(tmp, JSON.stringify({ groups: this.groups } satisfies Record_))
    renameSync(tmp, this.recordFile)
  }

  private members(): number[] {
    const byPgid = membersByGroup(this.isFrozen ? this.stoppedAt : undefined)
    const pids: number[] = []
    for (const g of this.groups) pids.push(...(byPgid.get(g.pgid) ?? []))
    // Forget groups with no live member left: their number may be reused by unrelated processes.
    const dead = this.groups.filter((g) => !byPgid.has(g.pgid))
    if (dead.length > 0) {
      for (const g of dead) forget(g)
      this.groups = this.groups.filter((g) => byPgid.has(g.pgid))
      this.saveRecord()
    }
    return pids
  }

  private findEscapes(pids: number[]): void {
    const pgids = new Set(this.groups.map((g) => g.pgid))
    for (const pid of pids) {
      for (const child of childPids(pid)) {
        const st = procStat(child)
        if (!st || isDead(st.state) || pgids.has(st.pgrp) || this.escaped.has(child)) continue
        this.escaped.set(child, st.starttime)
        this.warnings.push(
          `process ${child} (child of ${pid}) left the cell's process group (setsid/setpgid): signals mode neither freezes nor counts it; destroy() kills it`,
        )
      }
    }
  }
}

/** A group of a cell gone or destroyed: not ours any more (its number may be reused). */
function forget(g: Group): void {
  ourSessions.delete(g.pgid)
  registry.delete(g)
}

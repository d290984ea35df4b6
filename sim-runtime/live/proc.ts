// Small, synchronous readers of /proc and the cgroup file systems, shared by the cell backends.
// Everything here tolerates processes vanishing between two reads (ENOENT/ESRCH → undefined).
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs'

export interface ProcStat {
  pid: number
  /** R, S, D, T (stopped), t (traced), Z (zombie), X (dead), I (idle kernel thread), … */
  state: string
  ppid: number
  pgrp: number
  session: number
  /** Clock ticks after boot at which the process started (identifies it across pid reuse). */
  starttime: number
}

/** Parse /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat). The comm field may hold spaces and parentheses. */
export function readStat(path: string): ProcStat | undefined {
  const text = readSmall(path)
  if (text === undefined) return undefined
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  const pid = Number.parseInt(text, 10)
  const f = text.slice(close + 2).split(' ')
  // f[0] is field 3 of proc(5).
  return {
    pid,
    state: f[0] ?? '?',
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    starttime: Number(f[19]),
  }
}

export function procStat(pid: number): ProcStat | undefined {
  return readStat(`/proc/${pid}/stat`)
}

/** Every pid in /proc (this pid namespace). */
export function allPids(): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0)
    if (c >= 48 && c <= 57) out.push(Number(name))
  }
  return out
}

/** Thread ids of a process, or [] once it is gone. */
export function tids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number)
  } catch {
    return []
  }
}

/** Field 1 of /proc/<pid>/task/<tid>/schedstat: ns this thread spent on a CPU. */
export function taskRuntimeNs(pid: number, tid: number): number | undefined {
  const text = readSmall(`/proc/${pid}/task/${tid}/schedstat`)
  return text === undefined ? undefined : Number(text.slice(0, text.indexOf(' ')))
}

/** /proc/<pid>/task/<tid>/schedstat: ns on a CPU (field 1) and ns runnable but waiting for a CPU (field 2, run_delay). */
export interface TaskSchedstat {
  runNs: number
  delayNs: number
}

/**
 * Both times of /proc/<pid>/task/<tid>/schedstat, or undefined once the thread is gone. The kernel
 * updates them when the thread leaves or gets a CPU, so a thread running or waiting right now shows
 * its earlier slices and waits only; once the thread is frozen or stopped (it had to run to get
 * there), both are complete.
 */
export function taskSchedstat(pid: number, tid: number): TaskSchedstat | undefined {
  return parseSchedstat(readSmall(`/proc/${pid}/task/${tid}/schedstat`))
}

function parseSchedstat(text: string | undefined): TaskSchedstat | undefined {
  if (!text) return undefined
  const a = text.indexOf(' ')
  const b = text.indexOf(' ', a + 1)
  if (a < 0 || b < 0) return undefined
  return { runNs: Number(text.slice(0, a)), delayNs: Number(text.slice(a + 1, b)) }
}

/**
 * taskSchedstat of every thread of a set of processes, each thread's file kept open (KernelFile: one
 * pread per reading, the kernel regenerates the text at offset 0, instead of an open, a read and a
 * close): the quantum driver reads every thread of a CpuTime cell two or more times per slice.
 * Threads that vanish are skipped. A file whose read fails (its thread exited; a tid reused since
 * refers to another task) is opened again once; files of threads not read for `keepReads` readings
 * are closed, and close() closes them all.
 */
export class SchedstatReader {
  private readonly files = new Map<number, { pid: number; file: KernelFile; seen: number }>()
  private readonly keepReads: number
  private reads = 0
  /** Files opened (for tests). */
  opened = 0

  constructor(keepReads = 256) {
    this.keepReads = keepReads
  }

  /** taskSchedstat of every thread of these processes, tid → times, into `out` (cleared first). */
  read(pids: readonly number[], out: Map<number, TaskSchedstat> = new Map()): Map<number, TaskSchedstat> {
    out.clear()
    const now = ++this.reads
    for (const pid of pids) {
      for (const tid of tids(pid)) {
        let e = this.files.get(tid)
        let st = e && e.pid === pid ? parseSchedstat(e.file.read()) : undefined
        if (st === undefined) {
          e?.file.close()
          this.files.delete(tid)
          const file = openQuietly(`/proc/${pid}/task/${tid}/schedstat`)
          if (!file) continue
          this.opened++
          e = { pid, file, seen: now }
          this.files.set(tid, e)
          st = parseSchedstat(file.read())
          if (st === undefined) continue
        }
        e!.seen = now
        out.set(tid, st)
      }
    }
    if (now % 64 === 0) {
      for (const [tid, e] of this.files) {
        if (now - e.seen < this.keepReads) continue
        e.file.close()
        this.files.delete(tid)
      }
    }
    return out
  }

  /** Files open now. */
  get size(): number {
    return this.files.size
  }

  close(): void {
    for (const e of this.files.values()) e.file.close()
    this.files.clear()
  }
}

/** Children of every thread of a process (needs CONFIG_PROC_CHILDREN; [] when absent). */
export function childPids(pid: number): number[] {
  const out: number[] = []
  for (const tid of tids(pid)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim()
      if (text) for (const p of text.split(' ')) out.push(Number(p))
    } catch {
      // gone, or no CONFIG_PROC_CHILDREN
    }
  }
  return out
}

export function isDead(state: string | undefined): boolean {
  return state === undefined || state === 'Z' || state === 'X' || state === 'x'
}

/** True when a process with this pid exists and, if given, started at `starttime` (not a reused pid). */
export function alive(pid: number, starttime?: number): boolean {
  const st = procStat(pid)
  if (!st || isDead(st.state)) return false
  return starttime === undefined || st.starttime === starttime
}

/** Our own start time, so that directories named after our pid survive pid reuse checks. */
export function selfStarttime(): number {
  return procStat(process.pid)?.starttime ?? 0
}

const small = Buffer.alloc(4096)

/** Read a small /proc or cgroup file (< 4 KiB) without the stat and allocation of readFileSync. */
export function readSmall(path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const n = readSync(fd, small, 0, small.length, 0)
    return small.toString('latin1', 0, n)
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/**
 * A cgroup control file kept open: each read is one pread at offset 0 (kernfs regenerates the
 * contents), each write one write(2). Saves the open/close of every barrier. After the cgroup is
 * removed, reads return undefined and writes throw.
 */
export interface KernelFile {
  read(): string | undefined
  write(value: string): void
  close(): void
}

export function openKernelFile(path: string, writable: boolean): KernelFile {
  const fd = openSync(path, writable ? 'r+' : 'r')
  const buf = Buffer.alloc(2048)
  let closed = false
  return {
    read() {
      if (closed) return undefined
      try {
        const n = readSync(fd, buf, 0, buf.length, 0)
        return buf.toString('latin1', 0, n)
      } catch {
        return undefined
      }
    },
    write(value: string) {
      if (closed) throw new Error(`${path} is closed`)
      writeSync(fd, value, 0)
    },
    close() {
      if (!closed) closeSync(fd)
      closed = true
    },
  }
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

export function writeText(path: string, value: string): void {
  writeFileSync(path, value)
}

/** Numbers in a cgroup.procs / tasks file. */
export function readPidList(path: string): number[] {
  const text = readText(path)
  if (!text) return []
  const out: number[] = []
  for (const line of text.split('\n')) if (line) out.push(Number(line))
  return out
}

export function sendSignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

export interface Mount {
  mountPoint: string
  /** Root of the mount inside its hierarchy ("/" unless a bind mount or a cgroup namespace). */
  root: string
  fsType: string
  superOptions: string[]
}

export function mounts(): Mount[] {
  const text = readText('/proc/self/mountinfo') ?? ''
  const out: Mount[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const dash = line.indexOf(' - ')
    if (dash < 0) continue
    const pre = line.slice(0, dash).split(' ')
    const post = line.slice(dash + 3).split(' ')
    out.push({
      root: unescapeMount(pre[3] ?? '/'),
      mountPoint: unescapeMount(pre[4] ?? ''),
      fsType: post[0] ?? '',
      superOptions: (post[2] ?? '').split(','),
    })
  }
  return out
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
}

/** Our cgroup paths from /proc/self/cgroup: key "" for the v2 hierarchy, else each v1 controller name. */
export function selfCgroups(): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of (readText('/proc/self/cgroup') ?? '').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line)
    if (!m) continue
    const controllers = m[2] ?? ''
    const path = m[3] ?? '/'
    if (controllers === '') out.set('', path)
    else for (const c of controllers.split(',')) out.set(c, path)
  }
  return out
}

/** Directory of our own cgroup inside a mounted hierarchy, or undefined when it is not visible there. */
export function cgroupDir(mount: Mount, ownPath: string): string | undefined {
  let rel = ownPath
  if (mount.root !== '/') {
    if (ownPath !== mount.root && !ownPath.startsWith(mount.root + '/')) return undefined
    rel = ownPath.slice(mount.root.length)
  }
  return (mount.mountPoint + rel).replace(/\/+$/, '') || '/'
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))
const napCell = new Int32Array(new SharedArrayBuffer(4))
/** Sleep the thread (not just the event loop) for about `ms`, giving the CPU to the tasks we wait for. */
export const nap = (ms: number): void => void Atomics.wait(napCell, 0, 0, ms)

interface Poll {
  done: () => boolean
  resolve: () => void
  reject: (e: Error) => void
  start: number
  timeoutMs: number
  describe: () => string
}

const polls = new Set<Poll>()
let polling = false

/**
 * Poll `done` until it returns true; rejects with `describe()` after `timeoutMs`.
 *
 * Every pending poll of the process shares one loop, so that freezing 16 cells costs one nap per
 * round, not 16. Freezing a task that waits for a CPU needs that CPU, so the loop must not spin for
 * long: for the first 100 µs it checks at every turn of the event loop (most freezes of a cell that
 * was running end there; a nap first would cost ~100 µs each), up to 2 ms it sleeps the thread ~50 µs
 * per round (yielding to the event loop between rounds), then 1 ms per round. Measured on 2 cores
 * with 3 busy threads in a cell: spinning throughout gave a median freeze of 1.5 ms and a 20 ms worst
 * case, napping a few hundred µs.
 */
export function pollUntil(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  if (done()) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    polls.add({ done, resolve, reject, start: performance.now(), timeoutMs, describe })
    if (!polling) void pollLoop()
  })
}

async function pollLoop(): Promise<void> {
  polling = true
  try {
    while (polls.size > 0) {
      let oldest = Infinity
      for (const p of polls) oldest = Math.min(oldest, p.start)
      const age = performance.now() - oldest
      if (age < 0.1) {
        // The first 100 µs: check at every turn of the event loop (a freeze of a running cell takes tens of µs; a nap would cost a hundred).
        await immediate()
      } else if (age < 2) {
        nap(0.05)
        await immediate()
      } else {
        await sleep(1)
      }
      const now = performance.now()
      for (const p of polls) {
        let ok = false
        try {
          ok = p.done()
        } catch (e) {
          polls.delete(p)
          p.reject(e as Error)
          continue
        }
        if (ok) {
          polls.delete(p)
          p.resolve()
        } else if (now - p.start > p.timeoutMs) {
          polls.delete(p)
          p.reject(new Error(p.describe()))
        }
      }
    }
  } finally {
    polling = false
  }
}

/** A thread ThreadStates looks at: its stat and schedstat files kept open, and what they said last. */
interface WatchedThread {
  stat: KernelFile
  sched: KernelFile | undefined
  /** schedstat's text at the last look that read stat too ('' before the first). */
  lastSched: string
  /** The state letter's char code at that look (0 before the first). */
  state: number
}

const R = 82 // 'R'

/**
 * Whether any thread of a set of processes is runnable (state R), asked many times a millisecond
 * (cooperative cells, coop.ts). Each thread's /proc/<pid>/task/<tid>/stat and schedstat are kept open
 * (KernelFile: one pread per look, the kernel regenerates the text at offset 0). A look reads a
 * thread's schedstat (~1 µs here) and its stat (~3.3 µs, what says R) only when the thread has run
 * since the last look or was runnable then: a thread that was asleep and has not run since is taken
 * as still asleep. That misses one case, a thread woken meanwhile that has not yet had a CPU; an
 * `exact` look (coop.ts asks for one when the runtime has just written into the cell, whose reader
 * may be waiting for a CPU) reads every stat. The thread list is read again when a stat shows another
 * thread count (field 20: a thread that started one has run, so its stat is read), and the process
 * list (`pids`, a cgroup file read) at most every `pidsEveryNs`. A process forked since is seen at the
 * next refresh. For a redis-server (five threads, four asleep) a look went from ~23 µs (every stat,
 * and the process's) to ~7.
 */
export class ThreadStates {
  private readonly pids: () => readonly number[]
  private readonly pidsEveryNs: number
  private pidsAt = -Infinity
  private readonly procs = new Map<number, { threads: number; tids: Map<number, WatchedThread> }>()
  /** stat files read, and looks skipped on an unchanged schedstat (for tests and traces). */
  statReads = 0
  skipped = 0

  constructor(pids: () => readonly number[], pidsEveryNs = 1_000_000) {
    this.pids = pids
    this.pidsEveryNs = pidsEveryNs
  }

  /** Whether a thread is runnable now (`now`: hrtime ns, for the process list's refresh; `exact`: read every thread's state). */
  runnable(now: number, exact = false): boolean {
    if (now - this.pidsAt >= this.pidsEveryNs) {
      this.pidsAt = now
      const live = new Set(this.pids())
      for (const pid of this.procs.keys()) if (!live.has(pid)) this.drop(pid)
      for (const pid of live) {
        if (this.procs.has(pid)) continue
        const p = { threads: -1, tids: new Map<number, WatchedThread>() }
        this.procs.set(pid, p)
        this.relist(pid, p)
      }
    }
    // (Deleting the entry being visited does not disturb a Map's iteration.)
    for (const [pid, p] of this.procs) {
      let relisted = false
      for (let pass = 0; pass < 2; pass++) {
        for (const [tid, t] of p.tids) {
          // The second pass (after a new thread list) looks only at threads not read yet.
          if (pass === 1 && t.state !== 0) continue
          // (An exact look does not read schedstat: the next look then reads stat once more.)
          const sched = exact ? undefined : t.sched?.read()
          if (sched !== undefined && sched === t.lastSched && t.state !== R && t.state !== 0) {
            this.skipped++
            continue
          }
          const text = t.stat.read()
          this.statReads++
          if (!text) {
            this.closeThread(t)
            p.tids.delete(tid)
            p.threads = -1
            continue
          }
          if (sched !== undefined) t.lastSched = sched
          t.state = text.charCodeAt(text.lastIndexOf(')') + 2)
          if (t.state === R) return true
          if (statField(text, 20) !== p.threads) p.threads = -1
        }
        if (p.threads !== -1 || relisted) break
        relisted = true
        this.relist(pid, p)
        if (p.tids.size === 0) {
          this.drop(pid)
          break
        }
      }
    }
    return false
  }

  /** Close every file. The next runnable() opens them again. */
  close(): void {
    for (const pid of this.procs.keys()) this.drop(pid)
    this.pidsAt = -Infinity
  }

  /** Read process pid's thread list again: open files for new threads, close those of threads gone. */
  private relist(pid: number, p: { threads: number; tids: Map<number, WatchedThread> }): void {
    const current = new Set(tids(pid))
    for (const [tid, t] of p.tids) if (!current.has(tid)) {
      this.closeThread(t)
      p.tids.delete(tid)
    }
    for (const tid of current) {
      if (p.tids.has(tid)) continue
      const stat = openQuietly(`/proc/${pid}/task/${tid}/stat`)
      if (stat) p.tids.set(tid, { stat, sched: openQuietly(`/proc/${pid}/task/${tid}/schedstat`), lastSched: '', state: 0 })
    }
    p.threads = current.size
  }

  private closeThread(t: WatchedThread): void {
    t.stat.close()
    t.sched?.close()
  }

  private drop(pid: number): void {
    const p = this.procs.get(pid)
    if (!p) return
    for (const t of p.tids.values()) this.closeThread(t)
    this.procs.delete(pid)
  }
}

/** Field k (1-based, as in proc(5)) of a stat line, as a number; fields after the comm's closing parenthesis only (k ≥ 3). */
function statField(text: string, k: number): number {
  let pos = text.lastIndexOf(')') + 2
  for (let f = 3; f < k && pos > 0; f++) pos = text.indexOf(' ', pos) + 1
  return pos > 0 ? Number.parseInt(text.slice(pos, pos + 20), 10) : NaN
}

function openQuietly(path: string): KernelFile | undefined {
  try {
    return openKernelFile(path, false)
  } catch {
    return undefined
  }
}

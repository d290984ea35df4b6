// The virtual clock of a cell: libfaketime (Debian's libfaketime 0.9.10, the multi-threaded build
// libfaketimeMT.so.1) preloaded into every live program behind our shim (shim.ts), reading a per-cell
// timestamp file at every clock call (FAKETIME_NO_CACHE=1). docs/live.md, "Virtual clock" and
// "Driving scheme", says what the programs see.
//
// What libfaketime 0.9.10 does with our file (src/libfaketime.c, parse_ft_string and
// fake_clock_gettime), and why the file looks the way it does:
// - Rate 1: "+<s>" / "-<s>" is an offset from the real clock; every process reads real + offset
//   (offsetText). We compute the offset for the instant the driver thaws the cell (anchorNs).
// - Other rates: "@<time> x<rate>", start at <time> and advance at <rate>. Whenever a process reads a
//   clock and finds the text changed, it re-parses it and resets its reference to the real time of
//   that read: that read returns <time> (less the re-parse, ~60 µs), later ones <time> + rate × (real
//   time since) (startAtText).
// - Either way, frozen wall time never leaks, but only if the text changes at every set(): libfaketime
//   re-parses only a changed text. A generation counter after the rate ("#17", ignored by its atof)
//   makes every text distinct.
// - FAKETIME_FMT=%s: <time> is seconds since the epoch, parsed by strptime("%s") independently of
//   the program's TZ (the default "%Y-%m-%d %T" goes through mktime in local time).
// - The fraction is parsed with atof and truncated to ns; a trailing 5 (half a nanosecond) makes the
//   truncation land on the intended nanosecond instead of one below.
// - Rate 0 is refused: libfaketime divides sleep durations by the rate.
// - An empty or half-written file makes libfaketime exit the program, so the file is written to a
//   temporary name and renamed into place. A missing file makes it fall back to ~/.faketimerc or the
//   real time, so the file exists from createVirtualClock() on and close() comes after the cell's
//   destroy().
// - CLOCK_REALTIME, CLOCK_MONOTONIC (and _COARSE, _RAW, BOOTTIME), time(), gettimeofday() are faked;
//   CLOCK_MONOTONIC reads the same virtual time as CLOCK_REALTIME (an absolute date, not time since
//   boot). CPU-time clocks are only scaled by the rate.
// - The barrier (untilNs) and the fast clock's state go into a second file that the shim maps
//   (shim/layout.ts, STATE): readings are computed from it and clamped to the barrier. After the
//   state, the shim registers its programs' timed waits there (WAITS; waits() reads them).
import assert from 'node:assert/strict'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import type { ClockWaits } from './deadlines.ts'
import { alive } from './proc.ts'
import { faketimeShim } from './shim.ts'
import { CLOCK_FILE_BYTES, STATE_BYTES, STATE_FLAG_FROZEN, STATE_FLAG_STANDING, STATE_FLAG_WAIT, STATE_RUNTIME_BYTES, stateOffset, STAMPS_BYTES, WAIT_SLOT, WAIT_SLOT_BYTES, WAIT_SLOTS, WAITS_BYTES, WAITS_HEADER, WAITS_HEADER_BYTES, WAITS_OFFSET } from './shim/layout.ts'
import { which } from './spawn.ts'
import { vexecSupport } from './vexec.ts'

export interface VirtualClock {
  /** Env to add to a live program: LD_PRELOAD=<libfaketimeMT.so.1>, FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1, and whatever else is needed. */
  env(): Record<string, string>
  /**
   * Set the clock the programs read to `virtualNs` (since the Unix epoch of the run's start, which is a fixed base date so runs are reproducible), advancing at `rate` (1 = wall speed) from now on. Must be called while the cell is frozen; writes the file atomically (temp + rename).
   *
   * Options (docs/live.md, "Driving scheme"):
   * - `anchorNs`: an instant on the process.hrtime.bigint() time line (CLOCK_MONOTONIC) at which the
   *   clock reads `virtualNs`, instead of "now". Writing the file takes 20–500 µs (tmpfs hot … ext4
   *   after an idle gap); with "now" that time leaks into the programs' clocks at every barrier.
   *   Anchoring at the instant the driver will thaw the cell removes the leak. Rate 1 only; other
   *   rates anchor at each process's first clock read after set() (libfaketime's "@" semantics).
   * - `untilNs`: the barrier. No reading of the cell's clocks passes it (they stand still there if
   *   the cell is frozen late), so they never go back at the next quantum. Needs the shim (shim.ts).
   * - `precise`: a precise slice (docs/live.md, "Precise slices"; fast clock only): the clock reads
   *   `virtualNs` at the first reading of any of the cell's threads after the thaw (not at
   *   `anchorNs`), and a reading that reaches `untilNs` waits there until the next set().
   * - `frozen`: the cell is frozen between quanta, so its clock may jump at `untilNs` (the cell was
   *   frozen before its clock got there): the programs' real waits end at the barrier at the latest
   *   and are planned again after the thaw, instead of counting on the rate across it.
   * - `standing`: the clock stands at `virtualNs` (= `untilNs`) outside the run (start-up,
   *   termination): readings read it, but timed waits last their length on the clock as it would
   *   run from `anchorNs` at `rate` (nothing would move it: they would never end).
   */
  set(virtualNs: number, rate: number, opts?: { anchorNs?: bigint; untilNs?: number; precise?: boolean; frozen?: boolean; standing?: boolean }): void
  /**
   * During or after a slice: the real CLOCK_MONOTONIC instant at which a precise slice's clock
   * started (undefined: no reading yet, or not a precise slice), and how many readings are waiting at
   * the barrier (they go on at the next set()).
   */
  slice(): { startedAt: bigint | undefined; waited: number }
  /**
   * The timed waits the cell's programs are in now (the deadline registry the shim writes after the
   * state: shim/deadlines.c): each one's virtual deadline and the real instant its wait ends. One
   * read of the file; a wait registered or cleared while it reads may be seen half-written, for
   * this look only. The cooperative driver moves an idle cell's clock no further than they allow
   * (deadlines.ts).
   */
  waits(): ClockWaits
  /** The write-stamp ring the shim appends to (stamps.ts), or undefined without the shim. */
  readonly stampsFile: string | undefined
  /** The virtual ns of an epoch-ns reading of this clock (a write stamp). */
  toVirtualNs(epochNs: bigint): number
  close(): void
}


/** The words set() writes inside the seqlock: barrier through flags (the waiting count and the sequence follow). */
const WRITTEN_BYTES = stateOffset('waiting')

/** 2024-01-01T00:00:00Z: the date every run starts at, unless told otherwise. */
export const DEFAULT_BASE_EPOCH_MS = Date.UTC(2024, 0, 1)

const SEARCH = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
  '/usr/local/lib/faketime/libfaketimeMT.so.1',
]

/** Find libfaketimeMT.so.1 (Debian path /usr/lib/x86_64-linux-gnu/faketime/), or undefined. LIVESIM_LIBFAKETIME overrides. */
export function findLibfaketime(): string | undefined {
  const override = process.env.LIVESIM_LIBFAKETIME
  if (override) return existsSync(override) ? override : undefined
  return SEARCH.find((p) => existsSync(p))
}

/**
 * CLOCK_REALTIME − CLOCK_MONOTONIC in ns, to ~0.1 µs. Node has no nanosecond CLOCK_REALTIME; Date.now()
 * has 1 ms steps. So watch Date.now() step (≤ 1 ms per step, once per process), bracket each step
 * between process.hrtime (CLOCK_MONOTONIC) readings taken before the last Date.now() that showed the
 * old millisecond and after the first that showed the new one, and keep the tightest bracket of up to
 * 10 steps (stop at one under 1 µs). An error here is a constant shift of every clock of the run,
 * never a jump between barriers; NTP slewing moves it by parts per million. Measured here against a C
 * program reading both clocks: within 0.1 µs, with or without busy threads on every core.
 */
let calibration: { realMinusMonoNs: bigint; uncertaintyNs: number } | undefined

export function clockCalibration(): { realMinusMonoNs: bigint; uncertaintyNs: number } {
  if (calibration === undefined) {
    let warm = 0n
    for (let i = 0; i < 100; i++) warm += process.hrtime.bigint() + BigInt(Date.now()) // warm up both code paths
    if (warm < 0n) throw new Error('clocks went backwards')
    let best: { width: bigint; value: bigint } | undefined
    let prevMs = Date.now()
    let prevBefore = process.hrtime.bigint()
    for (let edges = 0; edges < 10 && !(best && best.width < 1000n); ) {
      const before = process.hrtime.bigint()
      const ms = Date.now()
      const after = process.hrtime.bigint()
      if (ms !== prevMs) {
        // The step happened after the previous Date.now() (itself after prevBefore) and before this one (before after).
        const width = after - prevBefore
        const value = BigInt(ms) * 1_000_000n - (prevBefore + after) / 2n
        if (!best || width < best.width) best = { width, value }
        edges++
      }
      prevMs = ms
      prevBefore = before
    }
    const b = best as { width: bigint; value: bigint }
    calibration = { realMinusMonoNs: b.value, uncertaintyNs: Number(b.width) / 2 }
  }
  return calibration
}

function realMinusMonoNs(): bigint {
  return clockCalibration().realMinusMonoNs
}

export function createVirtualClock(dir: string, baseEpochMs: number = DEFAULT_BASE_EPOCH_MS): VirtualClock {
  const lib = findLibfaketime()
  if (!lib) throw new Error('libfaketime not found (libfaketimeMT.so.1): run hack/live-deps.sh, or apt-get install libfaketime')
  if (!Number.isSafeInteger(baseEpochMs) || baseEpochMs < 0) throw new Error(`baseEpochMs must be a non-negative integer, got ${baseEpochMs}`)
  const clock = new FaketimeClock(dir, lib, baseEpochMs)
  clock.set(0, 1)
  return clock
}

/** A cell's virtual clock: libfaketime's file, and the state and wait registry the shim maps (the file comment). */
class FaketimeClock implements VirtualClock {
  readonly stampsFile: string | undefined
  private readonly lib: string
  private readonly file: string
  private readonly tmp: string
  private readonly limitFile: string
  private readonly limitFd: number
  private readonly limitBuf = Buffer.alloc(STATE_BYTES)
  /** Epoch ns of virtual time 0. */
  private readonly base: bigint
  private readonly shim: string | undefined
  private readonly readBuf = Buffer.alloc(STATE_BYTES)
  private readonly seqBuf = Buffer.alloc(8)
  private readonly waitsBuf = Buffer.alloc(WAITS_BYTES)
  private seq = 0n
  private generation = 0
  private closed = false

  constructor(dir: string, lib: string, baseEpochMs: number) {
    this.lib = lib
    mkdirSync(dir, { recursive: true })
    this.file = path.join(dir, 'faketime.rc')
    this.tmp = `${this.file}.tmp`
    this.limitFile = path.join(dir, 'faketime.limit')
    writeFileSync(this.limitFile, Buffer.alloc(CLOCK_FILE_BYTES))
    this.limitFd = openSync(this.limitFile, 'r+')
    this.base = BigInt(baseEpochMs) * 1_000_000n
    this.shim = faketimeShim().path
    this.stampsFile = this.shim ? path.join(dir, 'stamps') : undefined
    if (this.stampsFile) writeFileSync(this.stampsFile, Buffer.alloc(STAMPS_BYTES))
  }

  env(): Record<string, string> {
    return {
      // The shim first, so that its functions wrap libfaketime's (shim.ts).
      LD_PRELOAD: this.shim ? `${this.shim} ${this.lib}` : this.lib,
      FAKETIME_TIMESTAMP_FILE: this.file,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_FMT: '%s',
      LIVESIM_CLOCK_LIMIT: this.limitFile,
      ...(this.stampsFile ? { LIVESIM_STAMPS: this.stampsFile } : {}),
    }
  }

  // A property, not a method: the runner hands it to its StampReader as a function.
  readonly toVirtualNs = (epochNs: bigint): number => Number(epochNs - this.base)

  slice(): { startedAt: bigint | undefined; waited: number } {
    const buf = this.readBuf
    readSync(this.limitFd, buf, 0, STATE_RUNTIME_BYTES, 0)
    const a = buf.readBigInt64LE(stateOffset('anchor'))
    const precise = (buf.readBigInt64LE(stateOffset('flags')) & BigInt(STATE_FLAG_WAIT)) !== 0n
    return { startedAt: precise && a !== -1n ? a : undefined, waited: Number(buf.readBigInt64LE(stateOffset('waiting'))) }
  }

  waits(): ClockWaits {
    const buf = this.waitsBuf
    readSync(this.limitFd, buf, 0, WAITS_BYTES, WAITS_OFFSET)
    const deadlineNs: number[] = []
    const wakeNs: number[] = []
    for (let s = 0; s < WAIT_SLOTS; s++) {
      const o = WAITS_HEADER_BYTES + s * WAIT_SLOT_BYTES
      const d = o + WAIT_SLOT.deadline.index * 8
      if (buf.readInt32LE(d) === 0 && buf.readInt32LE(d + 4) === 0) continue // a free slot
      deadlineNs.push(Number(buf.readBigInt64LE(d) - this.base))
      wakeNs.push(Number(buf.readBigInt64LE(o + WAIT_SLOT.wake.index * 8)))
    }
    const header = (w: keyof typeof WAITS_HEADER) => Number(buf.readBigInt64LE(WAITS_HEADER[w].index * 8))
    return { deadlineNs, wakeNs, overflowWakeNs: header('overflowWake'), firedNs: header('fired') }
  }

  set(virtualNs: number, rate: number, opts: { anchorNs?: bigint; untilNs?: number; precise?: boolean; frozen?: boolean; standing?: boolean } = {}): void {
    if (this.closed) throw new Error('virtual clock is closed')
    if (!Number.isSafeInteger(virtualNs) || virtualNs < 0) throw new Error(`virtualNs must be a non-negative safe integer, got ${virtualNs}`)
    if (!(rate > 0) || !Number.isFinite(rate)) throw new Error(`rate must be > 0 (libfaketime divides sleeps by it), got ${rate}`)
    const { anchorNs, untilNs, precise = false, frozen = false, standing = false } = opts
    assert(!standing || (untilNs === virtualNs && !precise), 'a standing clock stands where it is set, anchored now')
    if (untilNs !== undefined && !(Number.isSafeInteger(untilNs) && untilNs >= virtualNs)) throw new Error(`untilNs must be a safe integer ≥ virtualNs, got ${untilNs}`)
    // The barrier first: the shim reads it at every clock reading; the cell is frozen, nobody reads now.
    const target = this.base + BigInt(virtualNs)
    const monoAnchor = anchorNs ?? process.hrtime.bigint()
    this.writeState(untilNs === undefined ? 0n : this.base + BigInt(untilNs), target, monoAnchor, rate, (precise ? STATE_FLAG_WAIT : 0) | (frozen ? STATE_FLAG_FROZEN : 0) | (standing ? STATE_FLAG_STANDING : 0))
    // A precise slice's clock starts at the programs' first reading: libfaketime's file (for what
    // the shim does not read itself) keeps the last offset.
    if (precise && this.generation > 0) return
    const realAnchor = monoAnchor + realMinusMonoNs()
    const text = rate === 1 ? offsetText(target - realAnchor, ++this.generation) : startAtText(target, rate, ++this.generation)
    writeFileSync(this.tmp, text)
    renameSync(this.tmp, this.file)
  }

  /**
   * The shim's state (shim.ts, "fast clock"): barrier, then the clock itself — virtual epoch ns at
   * the anchor, the anchor on CLOCK_MONOTONIC, the rate — from which it computes every reading.
   */
  private writeState(barrierEpochNs: bigint, targetEpochNs: bigint, monoAnchor: bigint, rate: number, flags: number): void {
    const precise = (flags & STATE_FLAG_WAIT) !== 0
    const buf = this.limitBuf
    buf.writeBigInt64LE(barrierEpochNs, stateOffset('barrier'))
    buf.writeBigInt64LE(targetEpochNs, stateOffset('at'))
    buf.writeBigInt64LE(precise ? -1n : monoAnchor, stateOffset('anchor'))
    buf.writeDoubleLE(rate, stateOffset('rate'))
    buf.writeBigInt64LE(monoAnchor, stateOffset('plannedAnchor'))
    buf.writeBigInt64LE(BigInt(flags), stateOffset('flags'))
    // Seqlock: odd, the state, even (the shim reads the state again when the sequence moved).
    this.seqBuf.writeBigInt64LE(++this.seq, 0)
    writeSync(this.limitFd, this.seqBuf, 0, 8, stateOffset('seq'))
    writeSync(this.limitFd, buf, 0, WRITTEN_BYTES, 0)
    this.seqBuf.writeBigInt64LE(++this.seq, 0)
    writeSync(this.limitFd, this.seqBuf, 0, 8, stateOffset('seq'))
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.limitFd)
    rmSync(this.file, { force: true })
    rmSync(this.tmp, { force: true })
    rmSync(this.limitFile, { force: true })
    if (this.stampsFile) rmSync(this.stampsFile, { force: true })
    sweepFaketimeShm()
  }
}

/**
 * libfaketime 0.9.10 gives every process a POSIX semaphore and shared memory segment,
 * /dev/shm/sem.faketime_sem_<pid> and /dev/shm/faketime_shm_<pid>, and removes them only at a normal
 * exit: processes killed at a cell's teardown leave them behind (a few hundred bytes each, but
 * forever). Remove those whose process is gone (by then no process creates or opens them: children
 * that inherited the names and start later treat them as stale and make their own). close() calls
 * this; it is exported for the runtime's own clean-up. Returns how many files it removed.
 */
export function sweepFaketimeShm(dir = '/dev/shm'): number {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return 0
  }
  let removed = 0
  for (const name of names) {
    const m = /^(?:faketime_shm_|sem\.faketime_sem_)(\d+)$/.exec(name)
    if (!m || alive(Number(m[1]))) continue
    try {
      rmSync(path.join(dir, name))
      removed++
    } catch {
      // raced with another sweeper, or not ours to remove
    }
  }
  return removed
}

function nsText(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`
}

/**
 * Rate 1: "+<s>" or "-<s>", an offset from the real clock. Every process of the cell reads real time
 * + offset, so from set() on the clock reads the target and advances with the wall, identically in
 * every process. (Rate 1 only: with another rate libfaketime scales from each process's own start.)
 * The offset goes through atof: ~8 ns of rounding for offsets of a few years. Exported for tests.
 */
export function offsetText(offsetNs: bigint, generation: number): string {
  const sign = offsetNs < 0n ? '-' : '+'
  return `${sign}${nsText(offsetNs < 0n ? -offsetNs : offsetNs)} x1 #${generation}\n`
}

/**
 * Other rates: "@<epoch s>.<9 digits>5 x<rate>", start at a date. Each process resets its reference
 * to the real time of its first clock read after the change: that read returns the target (minus
 * the time the re-parse takes, ~60 µs), later ones target + rate × (real time since). The trailing 5
 * (half a nanosecond) makes libfaketime's truncation land on the intended nanosecond. Exported for tests.
 */
export function startAtText(epochNs: bigint, rate: number, generation: number): string {
  // String(rate) may give "1e-7": atof reads that too.
  return `@${nsText(epochNs)}5 x${String(rate)} #${generation}\n`
}

/**
 * How a program reads the virtual clock, best-effort from its file:
 * - `via: 'preload'`: dynamically linked against glibc: the shim and libfaketime (LD_PRELOAD);
 * - `via: 'supervisor'`: a Go program (static or cgo), a statically linked or a musl program: run
 *   under vexec (vexec.ts), which answers its clock readings and holds what `kind` needs held
 *   (vexecOptions);
 * - not covered (`covered: false`), with the reason: set-ID and 32-bit programs, and Go or static
 *   programs where vexec cannot work (no C compiler to build it, seccomp or ptrace not permitted).
 * `reason` says which, and what the program does that stays on the real clock; `warning`, when set,
 * is what of that a run should warn about (runner.ts logs it; the results keep `reason`).
 */
export interface ClockCoverage {
  covered: boolean
  via?: 'preload' | 'supervisor'
  /** For vexec: a Go program, or a C one (whose sleeps and waits it holds too). */
  kind?: 'go' | 'c'
  warning?: string
  reason: string
}

export function clockCoverage(executable: string): ClockCoverage {
  return coverage(executable, 0)
}

function coverage(executable: string, depth: number): ClockCoverage {
  const file = which(executable)
  if (!file || !existsSync(file)) return { covered: false, reason: `${executable}: not found` }
  let head: Buffer
  try {
    head = readHead(file, 64 * 1024)
  } catch (e) {
    return { covered: false, reason: `${file}: cannot read (${(e as Error).message})` }
  }
  // Scripts: the interpreter is what runs.
  if (head[0] === 0x23 && head[1] === 0x21) {
    if (depth > 3) return { covered: false, reason: `${file}: too many nested #! interpreters` }
    const line = head.toString('latin1', 2, head.indexOf(0x0a) > 0 ? head.indexOf(0x0a) : 256).trim()
    const words = line.split(/\s+/)
    let interp = words[0] ?? ''
    if (path.basename(interp) === 'env') interp = words.slice(1).find((w) => !w.startsWith('-')) ?? ''
    if (!interp) return { covered: false, reason: `${file}: unreadable #! line` }
    const inner = coverage(interp, depth + 1)
    return { ...inner, reason: `${file} is a script run by ${interp}: ${inner.reason}` }
  }
  const elf = parseElf(head, file)
  if (typeof elf === 'string') return { covered: false, reason: `${file}: ${elf}` }
  if (elf.setid) return { covered: false, reason: `${file} is set-user/group-ID: the loader ignores LD_PRELOAD for it, and vexec would run it without its privileges` }
  if (elf.bits32) return { covered: false, reason: `${file} is a 32-bit program: livesim's shim and vexec are built for 64-bit programs` }
  if (elf.go) return supervised(`${file} is a Go program (${elf.interp ? 'cgo, dynamically linked' : 'statically linked'}): Go reads the clock through the vDSO or raw system calls, not glibc`, 'go')
  if (!elf.interp) return supervised(`${file} is statically linked: LD_PRELOAD cannot interpose its clock calls`, 'c')
  if (!/ld-linux/.test(elf.interp)) return supervised(`${file} uses the loader ${elf.interp}${/musl/.test(elf.interp) ? ' (musl)' : ''}: livesim's shim and libfaketime are built for glibc`, 'c')
  return {
    covered: true,
    via: 'preload',
    reason: `${file} is dynamically linked against glibc (${elf.interp}); not detectable here: raw clock_gettime system calls and TSC reads (rdtsc) bypass the virtual clock`,
  }
}

/** What stays on the real clock for a C program under vexec (docs/live.md, "Go and static programs: vexec"). */
const SUPERVISED_C_GAPS = 'timers (alarm, setitimer, timer_create, timerfd), and the timeouts of poll, ppoll, select, pselect, epoll_pwait2 and sockets (SO_RCVTIMEO, SO_SNDTIMEO)'

/** A program for vexec: covered by it when it works here (vexecSupport), else not covered, saying why. */
function supervised(what: string, kind: 'go' | 'c'): ClockCoverage {
  const vexec = vexecSupport()
  if (!vexec.path) return { covered: false, reason: `${what}; the vexec supervisor that would run it on the virtual clock is not available here: ${vexec.why}` }
  const readings = vexec.fast ? 'whose clock readings its vDSO answers from the virtual clock (vexec\'s fast clock)' : `which answers its clock readings (every one a system call: no fast clock here, ${vexec.fastWhy ?? ''})`
  if (kind === 'go') {
    return { covered: true, via: 'supervisor', kind, reason: `${what}; run under the vexec supervisor, ${readings}; Go's sleeps, timers, tickers and deadlines follow its clock (on a clock faster than the wall, vexec also holds its timed waits)` }
  }
  const warning = `on the real clock: ${SUPERVISED_C_GAPS}`
  return {
    covered: true,
    via: 'supervisor',
    kind,
    warning,
    reason: `${what}; run under the vexec supervisor, ${readings}; vexec holds nanosleep, clock_nanosleep, and epoll and futex waits (condition variables, semaphores, timed locks) to their virtual deadline; ${warning}`,
  }
}

function readHead(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r')
  try {
    const buf = Buffer.alloc(bytes)
    const n = readSync(fd, buf, 0, bytes, 0)
    return buf.subarray(0, n)
  } finally {
    closeSync(fd)
  }
}

interface ElfInfo {
  interp: string | undefined
  go: boolean
  setid: boolean
  bits32: boolean
}

/** The parts of an ELF file that decide coverage: PT_INTERP, a Go build-id note or buildinfo, set-ID bits, the class (32 or 64 bits). */
function parseElf(head: Buffer, file: string): ElfInfo | string {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF executable'
  const is64 = head[4] === 2
  const le = head[5] === 1
  const u16 = (o: number) => (le ? head.readUInt16LE(o) : head.readUInt16BE(o))
  const u32 = (o: number) => (le ? head.readUInt32LE(o) : head.readUInt32BE(o))
  const u64 = (o: number) => Number(le ? head.readBigUInt64LE(o) : head.readBigUInt64BE(o))
  const phoff = is64 ? u64(32) : u32(28)
  const phentsize = u16(is64 ? 54 : 42)
  const phnum = u16(is64 ? 56 : 44)
  let interp: string | undefined
  const full = phoff + phentsize * phnum > head.length ? readHead(file, phoff + phentsize * phnum) : head
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize
    const type = le ? full.readUInt32LE(ph) : full.readUInt32BE(ph)
    if (type !== 3) continue // PT_INTERP
    const off = is64 ? Number(le ? full.readBigUInt64LE(ph + 8) : full.readBigUInt64BE(ph + 8)) : le ? full.readUInt32LE(ph + 4) : full.readUInt32BE(ph + 4)
    const size = is64 ? Number(le ? full.readBigUInt64LE(ph + 32) : full.readBigUInt64BE(ph + 32)) : le ? full.readUInt32LE(ph + 16) : full.readUInt32BE(ph + 16)
    const bytes = off + size <= full.length ? full : readHead(file, off + size)
    interp = bytes.toString('latin1', off, off + size).replace(/\0+$/, '')
  }
  // Go: every Go binary carries "\xff Go buildinf:" (Go ≥ 1.13) and a "Go" build-id note; look in the
  // whole file for the first one (it sits in .go.buildinfo, after the text).
  const go = hasGoBuildInfo(file)
  const setid = (statSync(file).mode & 0o6000) !== 0
  return { interp, go, setid, bits32: !is64 }
}

const GO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1')

function hasGoBuildInfo(file: string): boolean {
  // Stream the file in 1 MiB blocks (binaries up to a few hundred MB): stop at the first hit.
  const fd = openSync(file, 'r')
  try {
    const block = Buffer.alloc(1 << 20)
    let pos = 0
    let carry = Buffer.alloc(0)
    while (true) {
      const n = readSync(fd, block, 0, block.length, pos)
      if (n <= 0) return false
      const chunk = Buffer.concat([carry, block.subarray(0, n)])
      if (chunk.indexOf(GO_MAGIC) >= 0) return true
      carry = chunk.subarray(Math.max(0, chunk.length - GO_MAGIC.length))
      pos += n
    }
  } finally {
    closeSync(fd)
  }
}

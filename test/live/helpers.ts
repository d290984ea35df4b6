// Helpers of the live-cell tests: the machine's dependencies, the cell modes it permits, small C
// programs compiled for the test, and /proc checks.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { availableCellModes, CELL_MODES, chooseCellMode, type CellMode, type CellModeProbe } from '../../sim-runtime/live/cell.ts'
import { findLibfaketime, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { procStat, readStat, taskRuntimeNs, tids } from '../../sim-runtime/live/proc.ts'
import { which } from '../../sim-runtime/live/spawn.ts'

export const root = path.join(import.meta.dirname, '..', '..')

/**
 * What the live tests need from the machine: libfaketime, redis-server and redis-cli, a C compiler.
 * When any is missing, hack/live-deps.sh installs them (CI runs these tests, never skips them).
 */
export function ensureLiveDeps(): string {
  const missing = () => !findLibfaketime() || !which('redis-server') || !which('redis-cli') || !which('cc')
  if (missing()) {
    execFileSync(path.join(root, 'hack', 'live-deps.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 })
    if (missing()) throw new Error('hack/live-deps.sh ran, but libfaketime, redis-server, redis-cli or cc is still missing')
  }
  return findLibfaketime() as string
}

/** `title`, or `title (skipped: why)` when the test cannot run here: a skipped test says why in its name. */
export function skipTitle(title: string, why: string | undefined): string {
  return why === undefined ? title : `${title} (skipped: ${why})`
}

/**
 * Every cell mode, strongest first, with `skip`: undefined when this machine permits the mode, else
 * why not (for describe.skipIf and skipTitle). cgroup modes need root or a delegated cgroup; signals
 * cells need no privilege.
 */
export function cellModesHere(): { mode: CellMode; skip: string | undefined; probe: CellModeProbe }[] {
  return availableCellModes().map((probe) => ({ mode: probe.mode, skip: probe.usable ? undefined : probe.why, probe }))
}

/**
 * The mode of tests that need one cell mode, not each: LIVESIM_TEST_CELL_MODE when set, else the
 * strongest this machine permits (the runtime's choice, cell.ts chooseCellMode).
 */
export function strongestCellMode(): CellMode {
  const forced = process.env.LIVESIM_TEST_CELL_MODE
  if (forced) {
    if (!(CELL_MODES as readonly string[]).includes(forced)) throw new Error(`LIVESIM_TEST_CELL_MODE=${forced}: use ${CELL_MODES.join(', ')}`)
    return forced as CellMode
  }
  const probe = (mode: CellMode) => availableCellModes().find((m) => m.mode === mode) as CellModeProbe
  return chooseCellMode(probe('cgroup2'), () => probe('cgroup1')).mode
}

/** A CPU burner: `burn N` spins N threads forever. */
const BURN = String.raw`
#include <pthread.h>
#include <stdlib.h>
static void *spin(void *a) { volatile unsigned long x = 0; for (;;) x++; return a; }
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2;
  pthread_t t;
  for (int i = 1; i < n; i++) pthread_create(&t, NULL, spin, NULL);
  spin(NULL);
  return 0;
}
`

/**
 * `tick N MS`: N times, sleep MS of its own clock (nanosleep), then print
 *   i  raw-monotonic-before  virtual-realtime  virtual-monotonic  raw-monotonic-after
 * The raw readings are system calls that libfaketime does not see: they bracket, on the driver's
 * time line (process.hrtime is CLOCK_MONOTONIC), the instant of the virtual readings.
 */
const TICK = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static long long ns(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10;
  long ms = argc > 2 ? atol(argv[2]) : 10;
  const char *tag = argc > 3 ? argv[3] : "t";
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 0; i < n; i++) {
    struct timespec d = { ms / 1000, (ms % 1000) * 1000000L }, a, r, m, b;
    nanosleep(&d, NULL);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
    printf("%s %d %lld %lld %lld %lld\n", tag, i, ns(a), ns(r), ns(m), ns(b));
  }
  return 0;
}
`

/**
 * `spin MS`: read CLOCK_REALTIME in a tight loop until its own clock has advanced by MS; print
 *   B  previous-virtual  virtual  raw-monotonic-before
 * for every reading smaller than the one before (the clock went back), and at the end
 *   N  readings
 */
const SPIN = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static long long ns(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
  long long span = (argc > 1 ? atoll(argv[1]) : 100) * 1000000LL;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct timespec t, a;
  clock_gettime(CLOCK_REALTIME, &t);
  long long start = ns(t), prev = start, n = 0;
  for (;;) {
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_REALTIME, &t);
    long long v = ns(t);
    n++;
    if (v < prev) printf("B %lld %lld %lld\n", prev, v, ns(a));
    prev = v;
    if (v - start >= span) break;
  }
  printf("N %lld\n", n);
  return 0;
}
`

export interface Programs {
  dir: string
  burn: string
  tick: string
  spin: string
  /** tick linked statically, for clockCoverage. */
  tickStatic: string | undefined
}

let programs: Programs | undefined

export function compilePrograms(): Programs {
  if (programs) return programs
  if (!which('cc')) ensureLiveDeps()
  const dir = mkdtempSync(path.join(tmpdir(), 'livesim-live-test-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  const cc = (name: string, src: string, extra: string[] = []) => {
    const file = path.join(dir, `${name}.c`)
    writeFileSync(file, src)
    execFileSync('cc', ['-O2', '-o', path.join(dir, name), file, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] })
    return path.join(dir, name)
  }
  const burn = cc('burn', BURN, ['-pthread'])
  const tick = cc('tick', TICK)
  const spin = cc('spin', SPIN)
  let tickStatic: string | undefined
  try {
    tickStatic = cc('tick-static', TICK, ['-static'])
  } catch {
    tickStatic = undefined // no static libc on this machine
  }
  programs = { dir, burn, tick, spin, tickStatic }
  return programs
}

/** Live (not zombie) processes among these pids. */
export function stillRunning(pids: number[]): number[] {
  return pids.filter((p) => {
    const st = procStat(p)
    return st !== undefined && st.state !== 'Z' && st.state !== 'X'
  })
}

/** State letter of every thread of every pid. */
export function threadStates(pids: number[]): string[] {
  const out: string[] = []
  for (const pid of pids) for (const tid of tids(pid)) out.push(readStat(`/proc/${pid}/task/${tid}/stat`)?.state ?? '-')
  return out
}

/** CPU ns of one process from its threads' schedstat. */
export function processCpuNs(pid: number): number {
  let total = 0
  for (const tid of tids(pid)) total += taskRuntimeNs(pid, tid) ?? 0
  return total
}

export interface Tick {
  tag: string
  i: number
  /** Raw CLOCK_MONOTONIC just before and just after the virtual readings (process.hrtime's time line). */
  rawBefore: bigint
  rawAfter: bigint
  /** Virtual CLOCK_REALTIME and CLOCK_MONOTONIC, ns since the epoch. */
  realtime: bigint
  monotonic: bigint
}

export function parseTicks(text: string): Tick[] {
  return text
    .trim()
    .split('\n')
    .filter((l) => /^\S+ \d+ \d+ \d+ \d+ \d+$/.test(l))
    .map((l) => {
      const [tag, i, a, r, m, b] = l.split(' ') as [string, string, string, string, string, string]
      return { tag, i: Number(i), rawBefore: BigInt(a), realtime: BigInt(r), monotonic: BigInt(m), rawAfter: BigInt(b) }
    })
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' }
}

/** Poll until `cond` holds (the machine may be loaded by other work: never assume a rate). */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** One set() of a recorded clock: one per slice. */
export interface ClockSet {
  v: number
  rate: number
  anchor: bigint
  until: number
  precise: boolean
}

/** A clock that records every set() the driver makes, passing each on to `clock`. */
export function recordingClock(clock: VirtualClock): { clock: VirtualClock; sets: ClockSet[] } {
  const sets: ClockSet[] = []
  return {
    sets,
    clock: {
      env: () => clock.env(),
      close: () => clock.close(),
      slice: () => clock.slice(),
      waits: () => clock.waits(),
      stampsFile: clock.stampsFile,
      toVirtualNs: (ns) => clock.toVirtualNs(ns),
      set(v, rate, opts) {
        sets.push({ v, rate, anchor: opts?.anchorNs ?? process.hrtime.bigint(), until: opts?.untilNs ?? Number.MAX_SAFE_INTEGER, precise: opts?.precise === true })
        clock.set(v, rate, opts)
      },
    },
  }
}

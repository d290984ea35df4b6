// Write stamps and the barrier wait of precise/cooperative clocks, with a real program under the shim:
// a C program that connects to a test server and writes (write, writev, send, an empty write), printing
// its virtual clock (CLOCK_REALTIME through the shim) just before each write. The records the shim
// appends must carry those times and the stream offsets of the bytes; StampReader must give every byte
// the time of the write that wrote it. Then a program that reads its clock in a loop must stop at the
// barrier of a precise slice by itself, and go on from there when the clock moves (no freeze at all).
// Last, timed waits (condition variables, nanosleep) must end at their virtual deadline, and a sleeper
// woken on the real clock before it must not read its clock (that would start its cell's slice).
import { spawn } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createVirtualClock, DEFAULT_BASE_EPOCH_MS, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { faketimeShim } from '../../sim-runtime/live/shim.ts'
import { StampReader, stampKeyOfPeer } from '../../sim-runtime/live/stamps.ts'
import { baseEnv, ensureLiveDeps, sleep, waitFor } from './helpers.ts'

const WRITER = String.raw`
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
static long long vnow(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static void pause_us(long us) { struct timespec t = { 0, us * 1000 }; nanosleep(&t, NULL); }
int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
  printf("%lld\n", vnow()); fflush(stdout);
  write(s, "abc", 3);
  pause_us(300);
  struct iovec v[2] = { { "de", 2 }, { "fgh", 3 } };
  printf("%lld\n", vnow()); fflush(stdout);
  writev(s, v, 2);
  pause_us(300);
  printf("%lld\n", vnow()); fflush(stdout);
  send(s, "ij", 2, 0);
  pause_us(300);
  write(s, "", 0);
  pause_us(300);
  printf("%lld\n", vnow()); fflush(stdout);
  write(s, "kl", 2);
  close(s);
  return 0;
}
`

/** Reads CLOCK_MONOTONIC (through the shim) in a loop; prints the first reading of each millisecond. */
const LOOPER = String.raw`
#include <stdio.h>
#include <time.h>
int main(void) {
  long long last = -1;
  for (;;) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    long long ms = (t.tv_sec * 1000000000LL + t.tv_nsec) / 1000000;
    if (ms != last) { printf("%lld\n", t.tv_sec * 1000000000LL + t.tv_nsec); fflush(stdout); last = ms; }
  }
}
`

/**
 * Prints its clock, waits 20 ms in each of select (three times, as PostgreSQL's pg_usleep backs off),
 * poll, usleep and nanosleep, then until 20 ms after its clock in pthread_cond_timedwait and
 * sem_timedwait (absolute deadlines), prints its clock again and exits.
 */
const STANDER = String.raw`
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>
static long long vnow(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(void) {
  printf("%lld\n", vnow()); fflush(stdout);
  for (int i = 0; i < 3; i++) { struct timeval tv = { 0, 20000 }; select(0, NULL, NULL, NULL, &tv); }
  poll(NULL, 0, 20);
  usleep(20000);
  struct timespec ts = { 0, 20000000 };
  nanosleep(&ts, NULL);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  sem_t sem;
  sem_init(&sem, 0, 0);
  for (int i = 0; i < 2; i++) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_nsec += 20000000;
    if (at.tv_nsec >= 1000000000L) { at.tv_sec++; at.tv_nsec -= 1000000000L; }
    if (i == 0) { pthread_mutex_lock(&m); pthread_cond_timedwait(&c, &m, &at); pthread_mutex_unlock(&m); }
    else sem_timedwait(&sem, &at);
  }
  printf("%lld\n", vnow()); fflush(stdout);
  return 0;
}
`

/**
 * Reads its clock (printed), computes 3 ms of its CPU time (CLOCK_THREAD_CPUTIME_ID, a raw system
 * call, no reading), then reads it again (printed) or, with argument "poll", first blocks in poll()
 * for 5 s. With "idle": blocks in poll() until an event 5 ms of real time later first, then computes
 * 0.5 ms. With "stopped": stops itself (SIGSTOP) first, then blocks in poll() until an event 50 ms
 * later and computes 0.5 ms. With "cpu": computes 30 ms; "Poll": 30 ms, then poll() for 5 s. (The
 * event: a kernel timerfd made by raw system calls, on the real clock, as data from the runtime
 * would come; a poll() timeout would end on the virtual clock, which stands at the barrier.)
 */
const STEPPER = String.raw`
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
static long long vnow(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static long long cpu(void) { struct timespec t; syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static void poll_real(long ms) {
  int fd = (int)syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 0);
  struct itimerspec at = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000000L } };
  syscall(SYS_timerfd_settime, fd, 0, &at, NULL);
  struct pollfd p = { fd, POLLIN, 0 };
  poll(&p, 1, 5000);
}
int main(int argc, char **argv) {
  char mode = argc > 1 ? argv[1][0] : 0;
  printf("%lld\n", vnow()); fflush(stdout);
  if (mode == 's') raise(SIGSTOP);
  if (mode == 'i' || mode == 's') poll_real(mode == 's' ? 50 : 5);
  long long t0 = cpu();
  while (cpu() - t0 < (mode == 'i' || mode == 's' ? 500000 : mode == 'c' || mode == 'P' ? 30000000 : 3000000)) {}
  if (mode == 'p' || mode == 'P') poll(NULL, 0, 5000);
  printf("%lld\n", vnow()); fflush(stdout);
  pause();
  return 0;
}
`

/**
 * Prints its clock, waits on a condition variable nobody signals until 100 ms (virtual) later with
 * pthread_cond_timedwait (CLOCK_REALTIME deadline), prints its clock, then the same with
 * pthread_cond_clockwait on CLOCK_MONOTONIC. A wait that did not time out prints 0 instead.
 */
const CONDWAIT = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static long long vnow(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static struct timespec at(long long ns) { struct timespec t = { ns / 1000000000LL, ns % 1000000000LL }; return t; }
int main(void) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  long long v0 = vnow(CLOCK_REALTIME);
  printf("%lld\n", v0); fflush(stdout);
  pthread_mutex_lock(&m);
  struct timespec d1 = at(v0 + 100000000LL);
  int r1 = pthread_cond_timedwait(&c, &m, &d1);
  long long v1 = vnow(CLOCK_REALTIME);
  printf("%lld\n", r1 == ETIMEDOUT ? v1 : 0); fflush(stdout);
  struct timespec d2 = at(vnow(CLOCK_MONOTONIC) + 100000000LL);
  int r2 = pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &d2);
  printf("%lld\n", r2 == ETIMEDOUT ? vnow(CLOCK_MONOTONIC) : 0); fflush(stdout);
  pthread_mutex_unlock(&m);
  return 0;
}
`

/**
 * Prints its clock, sleeps 50 ms (nanosleep; with "cond" a pthread_cond_timedwait, with "abs" a
 * clock_nanosleep to an absolute CLOCK_MONOTONIC deadline), prints its clock.
 */
const SLEEPER = String.raw`
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
static long long vnow(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
  long long v0 = vnow();
  printf("%lld\n", v0); fflush(stdout);
  if (argc > 1 && !strcmp(argv[1], "cond")) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    long long d = v0 + 50000000LL;
    struct timespec at = { d / 1000000000LL, d % 1000000000LL };
    pthread_mutex_lock(&m);
    pthread_cond_timedwait(&c, &m, &at);
    pthread_mutex_unlock(&m);
  } else if (argc > 1 && !strcmp(argv[1], "abs")) {
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += 50000000L;
    if (at.tv_nsec >= 1000000000L) { at.tv_sec++; at.tv_nsec -= 1000000000L; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
  } else {
    struct timespec t = { 0, 50000000L };
    nanosleep(&t, NULL);
  }
  printf("%lld\n", vnow()); fflush(stdout);
  return 0;
}
`

const BASE = BigInt(DEFAULT_BASE_EPOCH_MS) * 1_000_000n
let dir: string
let writer: string
let looper: string
let stepper: string
let condwait: string
let sleeper: string
let stander: string

beforeAll(() => {
  ensureLiveDeps()
  dir = mkdtempSync(path.join(tmpdir(), 'livesim-stamps-test-'))
  for (const [name, src] of [['writer', WRITER], ['looper', LOOPER], ['stepper', STEPPER], ['condwait', CONDWAIT], ['sleeper', SLEEPER], ['stander', STANDER]] as const) {
    writeFileSync(path.join(dir, `${name}.c`), src)
    execFileSync('cc', ['-O2', '-o', path.join(dir, name), path.join(dir, `${name}.c`)], { stdio: ['ignore', 'ignore', 'pipe'] })
  }
  writer = path.join(dir, 'writer')
  looper = path.join(dir, 'looper')
  stepper = path.join(dir, 'stepper')
  condwait = path.join(dir, 'condwait')
  sleeper = path.join(dir, 'sleeper')
  stander = path.join(dir, 'stander')
}, 600_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('write stamps', () => {
  it('records every write to a socket with its virtual time and stream offset, and StampReader gives each byte its write', async () => {
    expect(faketimeShim().path, faketimeShim().why).toBeTruthy()
    const clock: VirtualClock = createVirtualClock(path.join(dir, 'clock-w'))
    clock.set(5_000_000, 1, { untilNs: 10_000_000_000 })
    const got: Buffer[] = []
    let key: string | undefined
    const server = net.createServer((sock) => {
      key = stampKeyOfPeer(sock)
      sock.on('data', (d) => got.push(d))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    const child = spawn(writer, [String(port)], { env: { ...baseEnv(), ...clock.env() }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const code = await new Promise<number | null>((r) => child.on('exit', r))
    await waitFor(() => Buffer.concat(got).length === 12, 5000, 'all 12 bytes at the server')
    server.close()
    expect(code).toBe(0)
    expect(Buffer.concat(got).toString()).toBe('abcdefghijkl')
    // The times the program read just before each write (virtual ns since the run's start).
    const before = out.trim().split('\n').map((l) => Number(BigInt(l) - BASE))
    expect(before).toHaveLength(4)
    expect(before[0]).toBeGreaterThanOrEqual(5_000_000)

    const reader = new StampReader(clock.stampsFile!, clock.toVirtualNs)
    reader.poll()
    expect(key).toBeDefined()
    // Byte offsets of the writes: abc 0, de+fgh 3 (writev), ij 8 (send), the empty write and kl 10.
    const at = (pos: number) => reader.stampOf(key!, pos)
    const a = at(0)!
    const b = at(4)!
    const c = at(9)!
    const k = at(10)!
    expect([a.end, b.end, c.end, k.end]).toEqual([3, 8, 10, Infinity])
    const expected = [a.vt, b.vt, c.vt, k.vt]
    expected.forEach((vt, i) => {
      // Stamped after the program's own reading before that write, and before its reading before the next one.
      expect(vt).toBeGreaterThanOrEqual(before[i]!)
      if (i + 1 < before.length) expect(vt).toBeLessThan(before[i + 1]!)
    })
    // The empty write at offset 10 is superseded by the write that put "kl" there (a later time).
    expect(k.vt).toBeGreaterThan(c.vt + 500_000)
    expect(reader.lost).toBe(0)
    reader.close()
    clock.close()
  }, 60_000)
})

/** The state letter of a process (R, S, D, T, …) from /proc/<pid>/stat, or undefined when it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2)[0]
  } catch {
    return undefined
  }
}

/**
 * Spawns a program under the clock; `readings` collects the virtual ns it prints (one epoch-ns reading
 * per line) as they come; `stop` kills it and closes the clock.
 */
function spawnPrinter(program: string, args: string[], clock: VirtualClock) {
  const child = spawn(program, args, { env: { ...baseEnv(), ...clock.env() }, stdio: ['ignore', 'pipe', 'inherit'] })
  const readings: number[] = []
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    const lines = buf.split('\n')
    buf = lines.pop()!
    for (const l of lines) readings.push(Number(BigInt(l) - BASE))
  })
  const stop = async () => {
    child.kill('SIGKILL')
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.on('exit', r))
    clock.close()
  }
  return { readings, stop, pid: child.pid! }
}

describe('a standing clock (start-up, termination)', () => {
  it('timed waits last their length while the clock stands, where nothing would move it: the program ends, its clock unmoved', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-stand'))
    clock.set(20_000_000, 1, { untilNs: 20_000_000, standing: true })
    const child = spawn(stander, [], { env: { ...baseEnv(), ...clock.env() }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      let code: number | null | undefined
      void exited.then((c) => (code = c))
      await waitFor(() => code !== undefined, 20_000, 'the program to end its eight timed waits')
      expect(code).toBe(0)
      const readings = out.trim().split('\n').map((l) => Number(BigInt(l) - BASE))
      expect(readings).toEqual([20_000_000, 20_000_000])
    } finally {
      child.kill('SIGKILL')
      clock.close()
    }
  }, 60_000)
})

describe('precise clock', () => {
  it('a program reading its clock in a loop stops at the barrier by itself, and goes on from there when the clock moves', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-p'))
    clock.set(0, 1, { untilNs: 0 })
    const { readings, stop } = spawnPrinter(looper, [], clock)
    try {
      // A precise slice [20 ms, 25 ms): the clock starts at 20 ms at the first reading and waits at 25 ms.
      clock.set(20_000_000, 1, { untilNs: 25_000_000, precise: true })
      await waitFor(() => clock.slice().waited > 0, 10_000, 'a reading waiting at the barrier')
      const started = clock.slice().startedAt
      expect(started).toBeDefined()
      await sleep(50) // 50 ms of wall: without the wait, the loop would print ~50 more readings
      // A reading that reaches the barrier waits there: none returns 25 ms or more (under load the
      // clock may pass a whole millisecond between two readings, so some milliseconds may be missing).
      const slice1 = readings.filter((v) => v >= 20_000_000)
      expect(slice1.length).toBeGreaterThan(0)
      expect(slice1[0]).toBeLessThan(21_000_000) // the clock started at the first reading: 20 ms
      expect(Math.max(...slice1)).toBeLessThan(25_000_000)
      expect(slice1.length).toBeLessThanOrEqual(5) // 20, 21, … 24 ms at most
      // Move the clock: the waiting reading goes on from 25 ms (its millisecond is new: printed),
      // not from where the wall is, and waits again at 28 ms.
      const n = readings.length
      clock.set(25_000_000, 1, { untilNs: 28_000_000, precise: true })
      await waitFor(() => readings.length > n, 10_000, 'a reading after the move')
      await waitFor(() => clock.slice().waited > 0, 10_000, 'a reading waiting at the next barrier')
      await sleep(20)
      const next = readings.slice(n)
      expect(next[0]).toBeGreaterThanOrEqual(25_000_000)
      expect(next[0]).toBeLessThan(26_000_000)
      expect(Math.max(...next)).toBeLessThan(28_000_000)
      expect(next.length).toBeLessThanOrEqual(3)
    } finally {
      await stop()
    }
  }, 60_000)

  /** Runs the stepper in a precise slice [20 ms, 21 ms). */
  function startStepper(clock: VirtualClock, args: string[]) {
    clock.set(20_000_000, 1, { untilNs: 21_000_000, precise: true })
    return spawnPrinter(stepper, args, clock)
  }

  it('work a program does past the barrier before it reads its clock again counts in the next slice (overshoot)', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-o'))
    const { readings, stop } = startStepper(clock, [])
    try {
      await waitFor(() => readings.length > 0 && clock.slice().waited > 0, 10_000, 'the first reading, and the second waiting at the barrier')
      expect(readings).toHaveLength(1)
      // The reading that started the slice reads its start exactly: the shim's own work after it took
      // the real time (a second pass through its loop, ~100 ns) is not the program's.
      expect(readings[0]).toBe(20_000_000)
      // The second reading came ≥ 3 ms of wall after the first: ≥ 2 ms past the 21 ms barrier. The
      // next slice starts there, and the reading that waited returns 21 ms + that overshoot, not 21 ms.
      clock.set(21_000_000, 1, { untilNs: 40_000_000, precise: true })
      await waitFor(() => readings.length === 2, 10_000, 'the second reading')
      expect(readings[1]).toBeGreaterThanOrEqual(readings[0]! + 2_900_000)
      expect(readings[1]).toBeLessThan(40_000_000)
    } finally {
      await stop()
    }
  }, 60_000)

  it('an overshoot longer than the next slice carries on into the slices after it', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-c'))
    const { readings, stop } = startStepper(clock, [])
    try {
      await waitFor(() => readings.length > 0 && clock.slice().waited > 0, 10_000, 'the first reading, and the second waiting at the barrier')
      // ~2 ms of overshoot, a 0.5 ms slice: the slice starts 0.5 ms early, so the reading that waited
      // finds its barrier at once and waits again; the other ~1.5 ms is that slice's overshoot.
      const n = clock.slice().waited
      clock.set(21_000_000, 1, { untilNs: 21_500_000, precise: true })
      await waitFor(() => clock.slice().startedAt !== undefined && clock.slice().waited >= n, 10_000, 'the reading waiting at 21.5 ms')
      expect(readings).toHaveLength(1)
      clock.set(21_500_000, 1, { untilNs: 40_000_000, precise: true })
      await waitFor(() => readings.length === 2, 10_000, 'the second reading')
      // All 3 ms of work count (cut at the 0.5 ms slice, it read 21.5 ms).
      expect(readings[1]).toBeGreaterThanOrEqual(readings[0]! + 2_900_000)
      expect(readings[1]).toBeLessThan(readings[0]! + 4_000_000)
    } finally {
      await stop()
    }
  }, 60_000)

  it('a reading that waited at the barrier is not overshoot, however late it goes on', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-w2'))
    clock.set(20_000_000, 1, { untilNs: 21_000_000, precise: true })
    const a = spawnPrinter(looper, [], clock)
    const b = spawnPrinter(looper, [], clock)
    try {
      await waitFor(() => clock.slice().waited === 2, 10_000, 'both loopers waiting at 21 ms')
      // A is held in its wait (as a waiter that does not get a CPU is); B starts the next slice and
      // waits at 26 ms. 30 ms of wall later A goes on: its clock reads ~51 ms, far past 26 ms, but all
      // that time it waited, it did no work.
      process.kill(a.pid, 'SIGSTOP')
      clock.set(21_000_000, 1, { untilNs: 26_000_000, precise: true })
      await waitFor(() => clock.slice().startedAt !== undefined && clock.slice().waited === 2, 10_000, 'B waiting at 26 ms')
      await sleep(30)
      process.kill(a.pid, 'SIGCONT')
      await sleep(20)
      // Counted as overshoot (A did not start that slice: at most its 5 ms), it would start the next
      // slice 5 ms early, with no reading before 31 ms.
      // (Not `waited`: right after the set it still counts the two readings waiting at 26 ms.)
      clock.set(26_000_000, 1, { untilNs: 60_000_000, precise: true })
      const next = () => [...a.readings, ...b.readings].filter((v) => v >= 26_000_000)
      await waitFor(() => next().length > 0, 10_000, 'a reading in [26 ms, 60 ms)')
      expect(Math.min(...next())).toBeLessThan(27_000_000)
    } finally {
      await a.stop()
      await b.stop()
    }
  }, 60_000)

  it('a program kept from its CPU past the barrier carries only the CPU time it worked there (steal)', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-st'))
    const { readings, stop, pid } = startStepper(clock, ['cpu'])
    try {
      await waitFor(() => readings.length > 0, 10_000, 'the first reading')
      // 30 ms of CPU, 100 ms stopped in the middle of it (as if others had its CPU), past the 21 ms barrier.
      process.kill(pid, 'SIGSTOP')
      await sleep(100)
      process.kill(pid, 'SIGCONT')
      await waitFor(() => clock.slice().waited > 0, 10_000, 'the second reading waiting at 21 ms')
      clock.set(21_000_000, 1, { untilNs: 200_000_000, precise: true })
      await waitFor(() => readings.length === 2, 10_000, 'the second reading')
      // Its clock counts the 30 ms it computed, not the 100 ms it was stopped (that would be ≥ 120 ms).
      expect(readings[1]).toBeGreaterThanOrEqual(readings[0]! + 29_000_000)
      expect(readings[1]).toBeLessThan(readings[0]! + 40_000_000)
    } finally {
      await stop()
    }
  }, 60_000)

  it('work past barriers no reading found counts too: the clock moved on twice while the program computed', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-lz'))
    const { readings, stop } = startStepper(clock, ['cpu'])
    try {
      await waitFor(() => readings.length > 0, 10_000, 'the first reading')
      // As the cooperative driver does once a slice's clock has had its wall time: the next slices
      // are set while the program computes its 30 ms, before it reads again (nobody waits at 21 ms).
      expect(clock.slice().waited).toBe(0)
      clock.set(21_000_000, 1, { untilNs: 22_000_000, precise: true })
      clock.set(22_000_000, 1, { untilNs: 200_000_000, precise: true })
      await waitFor(() => readings.length === 2, 10_000, 'the second reading')
      // Its CPU time since the reading at 20 ms takes it to ~50 ms; the slice's start (22 ms) is
      // what it read when the work past 21 ms counted for nothing.
      expect(readings[1]).toBeGreaterThanOrEqual(readings[0]! + 29_000_000)
      expect(readings[1]).toBeLessThan(readings[0]! + 40_000_000)
    } finally {
      await stop()
    }
  }, 60_000)

  it('time blocked in poll() is not overshoot: only the work since it returned carries', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-i'))
    const { readings, stop } = startStepper(clock, ['idle'])
    try {
      // First reading at 20 ms, 5 ms blocked in poll() (the clock runs with the wall meanwhile), 0.5 ms
      // of work, then a reading at ~25.5 ms: 4.5 ms past the barrier, of which only 0.5 ms is work.
      await waitFor(() => readings.length > 0 && clock.slice().waited > 0, 10_000, 'the first reading, and the second waiting at the barrier')
      clock.set(21_000_000, 1, { untilNs: 40_000_000, precise: true })
      await waitFor(() => readings.length === 2, 10_000, 'the second reading')
      expect(readings[1]).toBeGreaterThanOrEqual(21_400_000)
      expect(readings[1]).toBeLessThan(23_000_000) // the blocked time carried too: ≥ 25 ms
    } finally {
      await stop()
    }
  }, 60_000)

  it('time a program lost before it blocked is not taken off the work it did after it woke past the barrier', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-w'))
    // A precise slice [20 ms, 150 ms): the first reading at 20 ms, then 100 ms stopped (wall that is
    // neither its CPU nor blocked: steal, within the slice), then 50 ms in poll(), waking at ~170 ms,
    // past the barrier; 0.5 ms of work, and a reading: 0.5 ms of overshoot. Taking the slice's whole
    // steal off it (100 ms) would leave nothing.
    clock.set(20_000_000, 1, { untilNs: 150_000_000, precise: true })
    const { readings, stop, pid } = spawnPrinter(stepper, ['stopped'], clock)
    try {
      await waitFor(() => readings.length > 0 && readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('T'), 10_000, 'the first reading, and the stepper stopped')
      await sleep(100)
      process.kill(pid, 'SIGCONT')
      await waitFor(() => clock.slice().waited > 0, 10_000, 'the second reading waiting at 150 ms')
      clock.set(150_000_000, 1, { untilNs: 300_000_000, precise: true })
      await waitFor(() => readings.length === 2, 10_000, 'the second reading')
      expect(readings[1]).toBeGreaterThanOrEqual(150_400_000)
      expect(readings[1]).toBeLessThan(152_000_000)
    } finally {
      await stop()
    }
  }, 60_000)

  it('a program about to block waits at the barrier first, and its overshoot starts the next slice without a reading', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-b'))
    const { readings, stop } = startStepper(clock, ['Poll'])
    try {
      // Past the barrier after its 30 ms of work, the stepper calls poll(): the shim holds it at the
      // barrier before it blocks (without that, it would be in poll() with nobody waiting).
      // (2 s: the poll() lasts 5, so a reading after it cannot be what waits.)
      await waitFor(() => readings.length > 0 && clock.slice().waited > 0, 2_000, 'the stepper waiting at the barrier before poll()')
      expect(readings).toHaveLength(1)
      const setAt = process.hrtime.bigint()
      clock.set(21_000_000, 1, { untilNs: 100_000_000, precise: true })
      // It goes on into poll() (5 s) without reading its clock, yet the slice's clock has started,
      // before the set that opened the slice: backdated by its overshoot (~29 ms of CPU), less the
      // time it took to see the move. A slice started by the set itself would start after it.
      await waitFor(() => clock.slice().startedAt !== undefined, 10_000, 'the next slice started')
      expect(clock.slice().startedAt!).toBeLessThan(setAt)
      expect(readings).toHaveLength(1)
    } finally {
      await stop()
    }
  }, 60_000)
})

describe('timed waits on a condition variable', () => {
  it('end at their virtual deadline, though libfaketime\'s file (left as it was by precise slices) runs ahead', async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-cw'))
    // libfaketime's file now says: virtual 0 at this instant, on with the wall. Precise slices do not
    // rewrite it, so 300 ms of wall later it is ~280 ms ahead of the program's clock (20 ms).
    clock.set(0, 1, { untilNs: 0 })
    await sleep(300)
    clock.set(20_000_000, 1, { untilNs: 1_000_000_000, precise: true })
    const { readings, stop } = spawnPrinter(condwait, [], clock)
    try {
      await waitFor(() => readings.length === 3, 10_000, 'both timed waits to end')
      const [v0, v1, v2] = readings as [number, number, number]
      expect(v0).toBeGreaterThanOrEqual(20_000_000)
      expect(v0).toBeLessThan(30_000_000)
      // Converted with libfaketime's clock the deadline (v0 + 100 ms) looked past: it timed out at once.
      expect(v1).toBeGreaterThanOrEqual(v0 + 100_000_000)
      // pthread_cond_clockwait (not wrapped by libfaketime) waited on the real clock for a date in the
      // base year, that is forever.
      expect(v2).toBeGreaterThanOrEqual(v1 + 100_000_000)
      expect(v2).toBeLessThan(1_000_000_000)
    } finally {
      await stop()
    }
  }, 60_000)
})

describe('sleeps before their deadline', () => {
  for (const how of ['nanosleep', 'cond', 'abs']) {
    it(`do not read the clock (${how}): a sleeper woken on the real clock before its virtual deadline's barrier leaves the slice unstarted`, async () => {
      const clock = createVirtualClock(path.join(dir, `clock-s-${how}`))
      // 5 ms to the barrier: time for the sleeper to read its deadline (a reading at the barrier would
      // wait there, and start the next slice).
      clock.set(20_000_000, 1, { untilNs: 25_000_000, precise: true })
      const { readings, stop, pid } = spawnPrinter(sleeper, how === 'nanosleep' ? [] : [how], clock)
      try {
        await waitFor(() => readings.length === 1, 10_000, 'the first reading')
        await waitFor(() => procState(pid) === 'S' && clock.slice().waited === 0, 10_000, 'the sleeper asleep, not at the barrier')
        // Its deadline is ~70 ms; the next slice ends at 30 ms. 200 ms of wall: the real 50 ms sleep
        // ends, but the deadline cannot have come before 30 ms, so it sleeps again without a reading.
        clock.set(25_000_000, 1, { untilNs: 30_000_000, precise: true })
        await sleep(200)
        expect(clock.slice().startedAt).toBeUndefined()
        expect(readings).toHaveLength(1)
        clock.set(30_000_000, 1, { untilNs: 200_000_000, precise: true })
        await waitFor(() => readings.length === 2, 10_000, 'the reading after the sleep')
        expect(readings[1]).toBeGreaterThanOrEqual(readings[0]! + 50_000_000)
        expect(readings[1]).toBeLessThan(200_000_000)
      } finally {
        await stop()
      }
    }, 60_000)
  }
})

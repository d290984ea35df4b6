// vexec (sim-runtime/live/vexec.ts): Go programs and statically linked C programs, which LD_PRELOAD
// cannot reach, run on their cell's virtual clock under the vexec supervisor. A Go program (built
// statically and through cgo) and a static C program run in a CpuTime cell driven barrier by barrier
// (freeze, set the clock, thaw, run, freeze) at speed 4 (the clock runs at 1/4 of the wall), frozen for
// a while at every third barrier, and Go also at speed 1/2 (the clock runs twice as fast as the wall);
// each measures, on its own clock, how long its sleeps, timers, tickers, context timeouts, network
// deadlines and timed waits took: never less than asked, and at most one quantum more. Skipped, saying so in the
// test's name, where Go or a static libc is missing (CI images may have no Go) or where vexec cannot
// work (seccomp user notification or ptrace forbidden).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCell, type Cell } from '../../sim-runtime/live/cell.ts'
import { clockCoverage, createVirtualClock, DEFAULT_BASE_EPOCH_MS, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createCoopDriver } from '../../sim-runtime/live/coop.ts'
import { createQuantumDriver } from '../../sim-runtime/live/quantum.ts'
import { which } from '../../sim-runtime/live/spawn.ts'
import { VEXEC_CFLAGS, VEXEC_DIR, vexecCommand, vexecOptions, vexecSupport, type VexecOptions } from '../../sim-runtime/live/vexec.ts'
import { buildGo, cgoMissing, goToolchain } from './gobuild.ts'
import { baseEnv, ensureLiveDeps, skipTitle, sleep, strongestCellMode, waitFor } from './helpers.ts'

if (!which('cc')) ensureLiveDeps() // vexec is built with the C compiler; CI installs it rather than skip
const vexec = vexecSupport()
const go = goToolchain()
const work = mkdtempSync(path.join(tmpdir(), 'livesim-vexec-test-'))
const clockRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-vexec-test-') : work
const BASE = BigInt(DEFAULT_BASE_EPOCH_MS) * 1_000_000n

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
  rmSync(clockRoot, { recursive: true, force: true })
})

/**
 * The Go probe: each line "name asked-ns observed-ns", observed on its own clock (time.Since, which
 * reads Go's monotonic clock); first "now <epoch ns>", last "done".
 */
const GO_PROBE = String.raw`package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

func report(name string, asked time.Duration, start time.Time) {
	fmt.Printf("%s %d %d\n", name, asked.Nanoseconds(), time.Since(start).Nanoseconds())
}

func fail(err error) {
	fmt.Println("error", err)
	os.Exit(1)
}

func main() {
	d := 40 * time.Millisecond
	fmt.Printf("now %d\n", time.Now().UnixNano())
	s := time.Now()
	time.Sleep(d)
	report("sleep", d, s)
	s = time.Now()
	<-time.After(d)
	report("after", d, s)
	s = time.Now()
	tk := time.NewTicker(d / 2)
	for i := 0; i < 5; i++ {
		<-tk.C
	}
	tk.Stop()
	report("ticker5", 5*d/2, s)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	s = time.Now()
	<-ctx.Done()
	cancel()
	report("context", d, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(10 * d)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fail(err)
	}
	s = time.Now()
	c.SetReadDeadline(s.Add(d))
	_, err = c.Read(make([]byte, 1))
	report("deadline", d, s)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		fmt.Println("error read ended without a timeout:", err)
	}
	fmt.Println("done")
}
`

/**
 * The C probe (linked statically): the same lines for nanosleep and clock_nanosleep (relative and
 * absolute), a condition variable's timed wait on CLOCK_MONOTONIC, sem_timedwait on CLOCK_REALTIME
 * (both futex waits with an absolute deadline, a date on the virtual clock), epoll_wait's timeout,
 * and a condition variable signalled by another thread after a 5 ms sleep, long before its timeout.
 */
const C_PROBE = String.raw`
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>
static long long now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static struct timespec at(long long ns) { struct timespec t = { ns / 1000000000LL, ns % 1000000000LL }; return t; }
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int signalled;
static void *signaller(void *a) {
  struct timespec d = { 0, 5000000 };
  nanosleep(&d, NULL);
  pthread_mutex_lock(&mu);
  signalled = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  return a;
}
int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("now %lld\n", now(CLOCK_REALTIME));
  long long d = 15000000LL;
  struct timespec r = { 0, d };
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&cv, &ca);
  sem_t sem;
  sem_init(&sem, 0, 0);
  int ep = epoll_create1(0);
  struct epoll_event ev;
  for (int i = 0; i < 3; i++) {
    long long s = now(CLOCK_MONOTONIC);
    nanosleep(&r, NULL);
    printf("nanosleep %lld %lld\n", d, now(CLOCK_MONOTONIC) - s);
    s = now(CLOCK_REALTIME);
    clock_nanosleep(CLOCK_REALTIME, 0, &r, NULL);
    printf("clock_nanosleep %lld %lld\n", d, now(CLOCK_REALTIME) - s);
    s = now(CLOCK_MONOTONIC);
    struct timespec a = at(s + d);
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &a, NULL);
    printf("clock_nanosleep_abs %lld %lld\n", d, now(CLOCK_MONOTONIC) - s);
    s = now(CLOCK_MONOTONIC);
    a = at(s + d);
    pthread_mutex_lock(&mu);
    while (pthread_cond_timedwait(&cv, &mu, &a) != ETIMEDOUT) {}
    pthread_mutex_unlock(&mu);
    printf("cond_timedwait %lld %lld\n", d, now(CLOCK_MONOTONIC) - s);
    s = now(CLOCK_REALTIME);
    a = at(s + d);
    while (sem_timedwait(&sem, &a) != 0 && errno == EINTR) {}
    printf("sem_timedwait %lld %lld\n", d, now(CLOCK_REALTIME) - s);
    s = now(CLOCK_MONOTONIC);
    while (epoll_wait(ep, &ev, 1, (int)(d / 1000000)) < 0 && errno == EINTR) {}
    printf("epoll_wait %lld %lld\n", d, now(CLOCK_MONOTONIC) - s);
  }
  long long s = now(CLOCK_MONOTONIC);
  struct timespec a = at(s + 1000000000LL);
  pthread_t t;
  pthread_mutex_lock(&mu);
  pthread_create(&t, NULL, signaller, NULL);
  while (!signalled && pthread_cond_timedwait(&cv, &mu, &a) != ETIMEDOUT) {}
  pthread_mutex_unlock(&mu);
  printf("cond_signalled %lld %lld\n", 5000000LL, now(CLOCK_MONOTONIC) - s);
  pthread_join(t, NULL);
  printf("done\n");
  return 0;
}
`

/** `vexec-misc exit N` exits with N; `vexec-misc pause` waits for a signal; `vexec-misc sleep S` sleeps S seconds. */
const C_MISC = String.raw`
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[1], "exit")) return atoi(argv[2]);
  if (argc > 1 && !strcmp(argv[1], "pause")) { pause(); return 0; }
  if (argc > 2 && !strcmp(argv[1], "sleep")) { sleep((unsigned)atoi(argv[2])); return 0; }
  return 2;
}
`

/** Compile C source with cc and flags; the path, or why not (a static link needs libc6-dev's libc.a). */
function cc(name: string, src: string, flags: string[]): { path?: string; why?: string } {
  const file = path.join(work, `${name}.c`)
  writeFileSync(file, src)
  const r = spawnSync('cc', ['-O2', '-o', path.join(work, name), file, ...flags], { encoding: 'utf8' })
  if (r.status === 0) return { path: path.join(work, name) }
  return { why: flags.includes('-static') ? `no static libc (libc6-dev's libc.a): ${r.stderr.trim().split('\n')[0]}` : r.stderr.trim() }
}

interface Measured {
  name: string
  askedNs: number
  observedNs: number
}

/** The probe's lines: its first reading (epoch ns), the measured durations, whether it said done, errors. */
function parseProbe(text: string) {
  const lines = text.split('\n')
  const now = lines.find((l) => l.startsWith('now '))
  const measured: Measured[] = lines
    .map((l) => /^(\w+) (\d+) (\d+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1] as string, askedNs: Number(m[2]), observedNs: Number(m[3]) }))
  return { firstNs: now ? BigInt(now.split(' ')[1] as string) : undefined, measured, done: lines.includes('done'), errors: lines.filter((l) => l.startsWith('error')) }
}

const Q = 10_000_000 // virtual ns per quantum

/**
 * Run `command` under vexec in a fresh CpuTime cell at `speed` (its clock runs at 1 / speed while
 * thawed, less what the cell's threads waited for a CPU: a loaded machine does not make the program
 * late in virtual time), barrier by barrier, until it prints "done" or exits (or 120 s of wall).
 * Frozen 150 ms at every third barrier, 2 ms at the others.
 */
async function runDriven(name: string, command: string[], opts: VexecOptions, speed: number, clockMode: 'CpuTime' | 'Cooperative' = 'CpuTime') {
  const cell: Cell = await createCell({ name: `vexec-${name}`, mode: strongestCellMode() })
  const clock: VirtualClock = createVirtualClock(path.join(clockRoot, name))
  const log = path.join(work, `${name}.log`)
  try {
    await cell.freeze()
    const run = vexecCommand(command, { ...baseEnv(), ...clock.env(), LIVESIM_VEXEC_STATS: '1' }, opts)
    let exited: number | string | null | undefined
    cell.spawn(run.command, { env: run.env, cwd: work, logFile: log }).on('exit', (code, signal) => (exited = code ?? signal))
    // A Cooperative cell is never frozen: its programs wait at each barrier in their clock readings.
    if (clockMode === 'Cooperative') await cell.thaw()
    const driver = clockMode === 'Cooperative' ? createCoopDriver([{ cell, clock, clockMode: 'CpuTime', speed }]) : createQuantumDriver([{ cell, clock, clockMode, speed }])
    let T = 0
    let quanta = 0
    const deadline = Date.now() + 120_000
    while (exited === undefined && !parseProbe(readFileSync(log, 'utf8')).done && Date.now() < deadline) {
      await driver.run(T, Q)
      T += Q
      await sleep(quanta++ % 3 === 2 ? 150 : 2)
    }
    if (exited === undefined) await cell.thaw()
    await waitFor(() => exited !== undefined, 10_000, `${name} to exit`)
    const text = readFileSync(log, 'utf8')
    return { ...parseProbe(text), text, exited, quanta, virtualNs: T, speed, fast: opts.fast && vexec.fast }
  } finally {
    await cell.destroy()
    clock.close()
  }
}

/** Every duration at least what was asked, at most one quantum more; a summary line for the log. */
function checkDurations(label: string, r: Awaited<ReturnType<typeof runDriven>>, names: string[]) {
  expect(r.errors, r.text).toEqual([])
  expect(r.done, r.text).toBe(true)
  expect(r.exited, r.text).toBe(0)
  // The program read the virtual date (2024-01-01 + the time granted), not the real one: its vDSO was hidden.
  expect(r.firstNs, r.text).toBeDefined()
  expect(r.firstNs! >= BASE && r.firstNs! <= BASE + BigInt(r.virtualNs), `first reading ${r.firstNs}: ${r.text}`).toBe(true)
  // Read in the program by the fast clock, or answered by vexec with the vDSO hidden.
  const served = /vexec: (fast clock in the vDSO|vdso hidden); \d+ notifications: (\d+) clock readings/.exec(r.text)
  expect(served?.[1], r.text).toBe(r.fast ? 'fast clock in the vDSO' : 'vdso hidden')
  if (!r.fast) expect(Number(served?.[2])).toBeGreaterThan(0)
  expect([...new Set(r.measured.map((m) => m.name))].sort()).toEqual([...names].sort())
  for (const m of r.measured) {
    expect(m.observedNs, `${m.name}: ended early: ${r.text}`).toBeGreaterThanOrEqual(m.askedNs)
    expect(m.observedNs, `${m.name}: more than a quantum late: ${r.text}`).toBeLessThanOrEqual(m.askedNs + Q)
  }
  const late = r.measured.map((m) => `${m.name} +${((m.observedNs - m.askedNs) / 1e6).toFixed(3)}`)
  console.log(`[vexec ${label}] ${r.quanta} quanta of ${Q / 1e6} ms at speed ${r.speed}; late by (ms virtual): ${late.join(', ')}; ${/vexec: (fast clock|vdso).*/.exec(r.text)?.[0]}`)
}

// Compiled now, not in a hook: whether there is a static libc decides which tests run.
const staticProbe = cc('vexec-probe', C_PROBE, ['-static', '-pthread'])
const dynamicMisc = cc('vexec-misc-dynamic', C_MISC, [])
/** The misc program, static when possible (vexec's own test programs), else dynamically linked. */
const misc = cc('vexec-misc', C_MISC, ['-static']).path ?? dynamicMisc.path

describe.skipIf(vexec.path === undefined)(skipTitle('vexec', vexec.path ? undefined : vexec.why), () => {
  const progs = { probe: staticProbe.path, misc: misc as string, dynamic: dynamicMisc.path as string }

  it('clockCoverage: dynamically linked glibc programs go to the shim', () => {
    expect(clockCoverage(progs.dynamic)).toMatchObject({ covered: true, via: 'preload' })
  })

  it.skipIf(!progs.probe)(skipTitle('clockCoverage: static programs go to the supervisor, with a warning of what stays on the real clock', staticProbe.why), () => {
    expect(clockCoverage(progs.probe as string)).toMatchObject({ covered: true, via: 'supervisor', kind: 'c', warning: expect.stringContaining('timerfd') })
    expect(clockCoverage(progs.probe as string).reason).toContain('statically linked')
  })

  it.skipIf(!progs.probe)(skipTitle('without vexec, static programs are refused, saying why', staticProbe.why), () => {
    // A fresh process: the runtime's answer is cached per process.
    const code = `import { clockCoverage } from ${JSON.stringify(path.resolve('sim-runtime/live/clock.ts'))}; console.log(JSON.stringify(clockCoverage(${JSON.stringify(progs.probe)})))`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, LIVESIM_VEXEC: 'off' } })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ covered: false, reason: expect.stringMatching(/statically linked.*vexec supervisor .* not available here: disabled by LIVESIM_VEXEC/) })
  })

  it.skipIf(!vexec.fast)(skipTitle('the fast clock works here (vexec --check)', vexec.fastWhy), () => {
    expect(vexec.fast).toBe(true)
  })

  // The fast clock is copied into programs: it must reach nothing outside its own section.
  const readelf = which('readelf')
  const noReadelf = process.arch !== 'x64' ? 'the fast clock is built for x86-64 only' : readelf ? undefined : 'no readelf (binutils)'
  it.skipIf(noReadelf !== undefined)(skipTitle('the fast clock refers to nothing outside its section (blob.c)', noReadelf), () => {
    const obj = path.join(work, 'blob.o')
    spawnSync('cc', [...VEXEC_CFLAGS, '-c', '-o', obj, path.join(VEXEC_DIR, 'blob.c')], { encoding: 'utf8' })
    const relocs = spawnSync(readelf as string, ['-rW', obj], { encoding: 'utf8' }).stdout
    const section = /Relocation section '\.rela(vexec_blob)'[^\n]*\n[^\n]*\n((?:[0-9a-f]+ [^\n]*\n)*)/.exec(relocs)
    expect(section, relocs).not.toBeNull()
    const targets = [...(section?.[2] ?? '').matchAll(/R_X86_64_\w+\s+[0-9a-f]+\s+(\S+)/g)].map((m) => m[1])
    expect(targets.length).toBeGreaterThan(0)
    expect(new Set(targets)).toEqual(new Set(['__start_vexec_blob']))
  })

  describe('stands in for its program', () => {
    const clock = () => {
      const c = createVirtualClock(path.join(clockRoot, `misc-${Math.random().toString(36).slice(2)}`))
      c.set(0, 1) // free-running: no cell, no barrier
      return c
    }
    const start = (c: VirtualClock, args: string[]) => {
      const run = vexecCommand([progs.misc, ...args], { ...baseEnv(), ...c.env() }, vexecOptions('c', 1))
      const child = spawn(run.command[0] as string, run.command.slice(1), { env: run.env, stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr.on('data', (b: Buffer) => (err += b.toString()))
      const exit = new Promise<{ code: number | null; signal: string | null; err: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, err })))
      return { child, exit }
    }
    /** The program vexec started (its only child). */
    const programOf = (pid: number) => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim())

    it('exits with its exit code', async () => {
      const c = clock()
      expect((await start(c, ['exit', '3']).exit).code).toBe(3)
      c.close()
    })

    it('passes SIGTERM on and dies of it as its program did', async () => {
      const c = clock()
      const { child, exit } = start(c, ['pause'])
      await waitFor(() => existsSync(`/proc/${child.pid}/task/${child.pid}/children`) && programOf(child.pid as number) > 0, 5000, 'the program')
      await sleep(100) // the program is in pause()
      child.kill('SIGTERM')
      expect(await exit).toMatchObject({ code: null, signal: 'SIGTERM' })
      c.close()
    })

    it('does not outlive a program killed while one of its sleeps is held', async () => {
      const c = clock()
      const { child, exit } = start(c, ['sleep', '3600'])
      await waitFor(() => existsSync(`/proc/${child.pid}/task/${child.pid}/children`) && programOf(child.pid as number) > 0, 5000, 'the program')
      const program = programOf(child.pid as number)
      // Held: the program waits in its (trapped) nanosleep for the supervisor's answer.
      await waitFor(() => readFileSync(`/proc/${program}/stat`, 'utf8').split(') ')[1]?.startsWith('S') === true, 5000, 'the program to sleep')
      process.kill(program, 'SIGKILL')
      expect(await exit).toMatchObject({ code: null, signal: 'SIGKILL' })
      c.close()
    })

    it('says why when it cannot run the program', async () => {
      const c = clock()
      const run = vexecCommand(['/no/such/program'], { ...baseEnv(), ...c.env() }, vexecOptions('c', 1))
      const r = spawnSync(run.command[0] as string, run.command.slice(1), { env: run.env, encoding: 'utf8' })
      expect(r.status).toBe(127)
      expect(r.stderr).toContain('/no/such/program')
      const bare = spawnSync(run.command[0] as string, ['--', progs.misc, 'exit', '0'], { env: baseEnv(), encoding: 'utf8' })
      expect(bare.status).toBe(127)
      expect(bare.stderr).toContain('LIVESIM_CLOCK_LIMIT is not set')
      c.close()
    })
  })

  describe.skipIf(go.go === undefined)(skipTitle('a Go program, driven barrier by barrier', go.go === undefined ? `${go.why}; CI images without Go skip this` : undefined), () => {
    const builds: Record<string, string> = {}
    beforeAll(() => {
      builds.static = buildGo(go.go as string, work, 'goprobe-static', GO_PROBE, { cgo: false })
      if (!cgoMissing()) builds.cgo = buildGo(go.go as string, work, 'goprobe-cgo', GO_PROBE, { cgo: true })
    }, 600_000)
    const names = ['sleep', 'after', 'ticker5', 'context', 'deadline']

    it('statically linked, speed 4: Sleep, After, a Ticker, a context timeout and a read deadline last their virtual time', async () => {
      expect(clockCoverage(builds.static as string)).toMatchObject({ covered: true, via: 'supervisor', kind: 'go', reason: expect.stringContaining('Go program (statically linked)') })
      expect(vexecOptions('go', 1 / 4)).toEqual({ sleeps: false, waits: false, fast: true })
      checkDurations('go static', await runDriven('go-static', [builds.static as string], vexecOptions('go', 1 / 4), 4), names)
    }, 180_000)

    it('statically linked, speed 4, the vDSO hidden (every reading a system call vexec answers): the same', async () => {
      checkDurations('go static trapped', await runDriven('go-static-trapped', [builds.static as string], { ...vexecOptions('go', 1 / 4), fast: false }, 4), names)
    }, 180_000)

    it('statically linked, in a Cooperative cell (never frozen: its readings wait at each barrier): the same', async () => {
      checkDurations('go static coop', await runDriven('go-static-coop', [builds.static as string], vexecOptions('go', 1), 1, 'Cooperative'), names)
    }, 180_000)

    it.skipIf(cgoMissing() !== undefined)(skipTitle('linked through cgo, speed 4: the same', cgoMissing()), async () => {
      expect(clockCoverage(builds.cgo as string)).toMatchObject({ covered: true, via: 'supervisor', kind: 'go', reason: expect.stringContaining('Go program (cgo') })
      checkDurations('go cgo', await runDriven('go-cgo', [builds.cgo as string], vexecOptions('go', 1 / 4), 4), names)
    }, 180_000)

    it('speed 1/2, the clock faster than the wall: the same, with its timed waits held to their virtual deadline', async () => {
      expect(vexecOptions('go', 2)).toEqual({ sleeps: false, waits: true, fast: true })
      const r = await runDriven('go-fast', [builds.static as string], vexecOptions('go', 2), 0.5)
      checkDurations('go static fast', r, names)
      expect(r.text).toMatch(/[1-9]\d* epoll waits/)
    }, 180_000)
  })

  const musl = which('musl-gcc')
  describe.skipIf(!musl)(skipTitle('a musl program, driven barrier by barrier at speed 4', musl ? undefined : 'no musl-gcc (musl-tools)'), () => {
    it('statically and dynamically linked: reads the virtual clock; its sleeps and timed waits last their virtual time', async () => {
      const calls = ['nanosleep', 'clock_nanosleep', 'clock_nanosleep_abs', 'cond_timedwait', 'sem_timedwait', 'epoll_wait', 'cond_signalled']
      for (const [name, flags] of [['musl-static', ['-static']], ['musl-dynamic', []]] as const) {
        const file = path.join(work, `${name}.c`)
        writeFileSync(file, C_PROBE)
        const r = spawnSync(musl as string, ['-O2', '-pthread', ...flags, '-o', path.join(work, name), file], { encoding: 'utf8' })
        expect(r.status, r.stderr).toBe(0)
        expect(clockCoverage(path.join(work, name))).toMatchObject({ covered: true, via: 'supervisor', kind: 'c' })
        checkDurations(name, await runDriven(name, [path.join(work, name)], vexecOptions('c', 1 / 4), 4), calls)
      }
    }, 240_000)
  })

  describe.skipIf(!progs.probe)(skipTitle('a static C program, driven barrier by barrier at speed 4', staticProbe.why), () => {
    it('reads the virtual clock; its sleeps, timed waits on condition variables and semaphores, and epoll timeouts last their virtual time', async () => {
      expect(vexecOptions('c', 1 / 4)).toEqual({ sleeps: true, waits: true, fast: true })
      const r = await runDriven('c-static', [progs.probe as string], vexecOptions('c', 1 / 4), 4)
      checkDurations('static C', r, ['nanosleep', 'clock_nanosleep', 'clock_nanosleep_abs', 'cond_timedwait', 'sem_timedwait', 'epoll_wait', 'cond_signalled'])
      // The condition variable signalled after 5 ms woke its waiter then, not at its 1 s timeout.
      expect(r.text).toMatch(/futex waits \([1-9]\d* woken/)
    }, 180_000)
  })

  it('leaves no process behind', () => {
    const mine = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(work)
      } catch {
        return false
      }
    })
    expect(mine).toEqual([])
  })
})

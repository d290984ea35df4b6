// vexec (sim-runtime/live/vexec.ts): Go programs and statically linked C programs, which LD_PRELOAD
// cannot reach, run on their cell's virtual clock under the vexec supervisor. A Go program (built
// statically and through cgo) and a static C program run in a cell driven barrier by barrier (freeze,
// set the clock, thaw, run, freeze) at rate 1/4, frozen for a while at every third barrier; each
// measures, on its own clock, how long its sleeps, timers, tickers, context timeouts and network
// deadlines took: never less than asked, and at most one quantum more. Skipped, saying so in the
// test's name, where Go or a static libc is missing (CI images may have no Go) or where vexec cannot
// work (seccomp user notification or ptrace forbidden).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCell, type Cell } from '../../sim-runtime/live/cell.ts'
import { clockCoverage, createVirtualClock, DEFAULT_BASE_EPOCH_MS, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createQuantumDriver } from '../../sim-runtime/live/quantum.ts'
import { which } from '../../sim-runtime/live/spawn.ts'
import { vexecCommand, vexecSupport } from '../../sim-runtime/live/vexec.ts'
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
	tk := time.NewTicker(d / 2)
	s = time.Now()
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

/** The C probe (linked statically): the same lines for nanosleep and clock_nanosleep, relative and absolute. */
const C_PROBE = String.raw`
#include <stdio.h>
#include <time.h>
static long long now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("now %lld\n", now(CLOCK_REALTIME));
  long long d = 15000000LL;
  struct timespec r = { 0, d };
  for (int i = 0; i < 4; i++) {
    long long s = now(CLOCK_MONOTONIC);
    nanosleep(&r, NULL);
    printf("nanosleep %lld %lld\n", d, now(CLOCK_MONOTONIC) - s);
    s = now(CLOCK_REALTIME);
    clock_nanosleep(CLOCK_REALTIME, 0, &r, NULL);
    printf("clock_nanosleep %lld %lld\n", d, now(CLOCK_REALTIME) - s);
    s = now(CLOCK_MONOTONIC);
    struct timespec a = { (s + d) / 1000000000LL, (s + d) % 1000000000LL };
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &a, NULL);
    printf("clock_nanosleep_abs %lld %lld\n", d, now(CLOCK_MONOTONIC) - s);
  }
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
const RATE = 0.25 // virtual ns per wall ns while thawed

/**
 * Run `command` under vexec in a fresh cell, barrier by barrier, until it prints "done" or exits
 * (or 120 s of wall: a loaded machine). Frozen 150 ms at every third barrier, 2 ms at the others.
 */
async function runDriven(name: string, command: string[], sleeps: boolean) {
  const cell: Cell = await createCell({ name: `vexec-${name}`, mode: strongestCellMode() })
  const clock: VirtualClock = createVirtualClock(path.join(clockRoot, name))
  const log = path.join(work, `${name}.log`)
  try {
    await cell.freeze()
    const run = vexecCommand(command, { ...baseEnv(), ...clock.env(), LIVESIM_VEXEC_STATS: '1' }, { sleeps })
    let exited: number | string | null | undefined
    cell.spawn(run.command, { env: run.env, cwd: work, logFile: log }).on('exit', (code, signal) => (exited = code ?? signal))
    const driver = createQuantumDriver([cell], [clock])
    let T = 0
    let quanta = 0
    const deadline = Date.now() + 120_000
    while (exited === undefined && !parseProbe(readFileSync(log, 'utf8')).done && Date.now() < deadline) {
      await driver.run(T, Q, RATE)
      T += Q
      await sleep(quanta++ % 3 === 2 ? 150 : 2)
    }
    if (exited === undefined) await cell.thaw()
    await waitFor(() => exited !== undefined, 10_000, `${name} to exit`)
    const text = readFileSync(log, 'utf8')
    return { ...parseProbe(text), text, exited, quanta, virtualNs: T }
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
  expect(r.text).toMatch(/vexec: vdso hidden; \d+ notifications: [1-9]\d* clock readings/)
  expect([...new Set(r.measured.map((m) => m.name))].sort()).toEqual([...names].sort())
  for (const m of r.measured) {
    expect(m.observedNs, `${m.name}: ended early: ${r.text}`).toBeGreaterThanOrEqual(m.askedNs)
    expect(m.observedNs, `${m.name}: more than a quantum late: ${r.text}`).toBeLessThanOrEqual(m.askedNs + Q)
  }
  const late = r.measured.map((m) => `${m.name} +${((m.observedNs - m.askedNs) / 1e6).toFixed(3)}`)
  console.log(`[vexec ${label}] ${r.quanta} quanta of ${Q / 1e6} ms at rate ${RATE}; late by (ms virtual): ${late.join(', ')}; ${/vexec: vdso.*/.exec(r.text)?.[0]}`)
}

// Compiled now, not in a hook: whether there is a static libc decides which tests run.
const staticProbe = cc('vexec-probe', C_PROBE, ['-static'])
const dynamicMisc = cc('vexec-misc-dynamic', C_MISC, [])
/** The misc program, static when possible (vexec's own test programs), else dynamically linked. */
const misc = cc('vexec-misc', C_MISC, ['-static']).path ?? dynamicMisc.path

describe.skipIf(vexec.path === undefined)(skipTitle('vexec', vexec.path ? undefined : vexec.why), () => {
  const progs = { probe: staticProbe.path, misc: misc as string, dynamic: dynamicMisc.path as string }

  it('clockCoverage: dynamically linked glibc programs go to the shim', () => {
    expect(clockCoverage(progs.dynamic)).toMatchObject({ covered: true, via: 'preload' })
  })

  it.skipIf(!progs.probe)(skipTitle('clockCoverage: static programs go to the supervisor, with a warning of what stays on the real clock', staticProbe.why), () => {
    expect(clockCoverage(progs.probe as string)).toMatchObject({ covered: true, via: 'supervisor', sleeps: true, warning: expect.stringContaining('timerfd') })
    expect(clockCoverage(progs.probe as string).reason).toContain('statically linked')
  })

  it.skipIf(!progs.probe)(skipTitle('without vexec, static programs are refused, saying why', staticProbe.why), () => {
    // A fresh process: the runtime's answer is cached per process.
    const code = `import { clockCoverage } from ${JSON.stringify(path.resolve('sim-runtime/live/clock.ts'))}; console.log(JSON.stringify(clockCoverage(${JSON.stringify(progs.probe)})))`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, LIVESIM_VEXEC: 'off' } })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ covered: false, reason: expect.stringMatching(/statically linked.*vexec supervisor .* not available here: disabled by LIVESIM_VEXEC/) })
  })

  describe('stands in for its program', () => {
    const clock = () => {
      const c = createVirtualClock(path.join(clockRoot, `misc-${Math.random().toString(36).slice(2)}`))
      c.set(0, 1) // free-running: no cell, no barrier
      return c
    }
    const start = (c: VirtualClock, args: string[], sleeps = false) => {
      const run = vexecCommand([progs.misc, ...args], { ...baseEnv(), ...c.env() }, { sleeps })
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
      const { child, exit } = start(c, ['sleep', '3600'], true)
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
      const run = vexecCommand(['/no/such/program'], { ...baseEnv(), ...c.env() }, { sleeps: false })
      const r = spawnSync(run.command[0] as string, run.command.slice(1), { env: run.env, encoding: 'utf8' })
      expect(r.status).toBe(127)
      expect(r.stderr).toContain('/no/such/program')
      const bare = spawnSync(run.command[0] as string, ['--', progs.misc, 'exit', '0'], { env: baseEnv(), encoding: 'utf8' })
      expect(bare.status).toBe(127)
      expect(bare.stderr).toContain('LIVESIM_CLOCK_LIMIT is not set')
      c.close()
    })
  })

  describe.skipIf(go.go === undefined)(skipTitle('a Go program, driven barrier by barrier at rate 1/4', go.go === undefined ? `${go.why}; CI images without Go skip this` : undefined), () => {
    const builds: Record<string, string> = {}
    beforeAll(() => {
      builds.static = buildGo(go.go as string, work, 'goprobe-static', GO_PROBE, { cgo: false })
      if (!cgoMissing()) builds.cgo = buildGo(go.go as string, work, 'goprobe-cgo', GO_PROBE, { cgo: true })
    }, 600_000)
    const names = ['sleep', 'after', 'ticker5', 'context', 'deadline']

    it('statically linked: Sleep, After, a Ticker, a context timeout and a read deadline last their virtual time', async () => {
      expect(clockCoverage(builds.static as string)).toMatchObject({ covered: true, via: 'supervisor', sleeps: false, reason: expect.stringContaining('Go program (statically linked)') })
      checkDurations('go static', await runDriven('go-static', [builds.static as string], false), names)
    }, 180_000)

    it.skipIf(cgoMissing() !== undefined)(skipTitle('linked through cgo: the same', cgoMissing()), async () => {
      expect(clockCoverage(builds.cgo as string)).toMatchObject({ covered: true, via: 'supervisor', sleeps: false, reason: expect.stringContaining('Go program (cgo') })
      checkDurations('go cgo', await runDriven('go-cgo', [builds.cgo as string], false), names)
    }, 180_000)
  })

  describe.skipIf(!progs.probe)(skipTitle('a static C program, driven barrier by barrier at rate 1/4', staticProbe.why), () => {
    it('clock_gettime reads the virtual clock; nanosleep and clock_nanosleep (relative and absolute) last their virtual time', async () => {
      checkDurations('static C', await runDriven('c-static', [progs.probe as string], true), ['nanosleep', 'clock_nanosleep', 'clock_nanosleep_abs'])
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

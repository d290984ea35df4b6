// vexec-clock-cost: what a clock reading costs a Go or statically linked program under vexec
// (sim-runtime/live/vexec.ts), trapped (every reading a system call answered by the supervisor) and
// through its fast clock (the vDSO's functions reading the clock state in the program), against the
// same program natively (the vDSO). Wall ns per reading, timed by the program's own
// clock (vexec's clock runs at rate 1, free, no cell: it reads the wall), best run of each side,
// interleaved; CPU per reading under vexec, the program's and the supervisor's. bench/README.md has
// the rule.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createVirtualClock } from '../sim-runtime/live/clock.ts'
import { vexecCommand, vexecOptions, vexecSupport } from '../sim-runtime/live/vexec.ts'
import { buildGo, goToolchain } from '../test/live/gobuild.ts'
import { baseEnv, ensureLiveDeps } from '../test/live/helpers.ts'
import { best, machine, median, note, ratio, sig, type Benchmark, type BenchResult } from './common.ts'

/** `clockcost N`: N readings of time.Now(); prints "P wall-ns-per-call cpu-ns-per-call" (the process's CPU, getrusage). */
const GO_COST = String.raw`package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func cpu() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	var sink int64
	for i := 0; i < 1000; i++ {
		sink += time.Now().UnixNano()
	}
	c0, t0 := cpu(), time.Now()
	for i := 0; i < n; i++ {
		sink += time.Now().UnixNano()
	}
	wall, c1 := time.Since(t0), cpu()
	fmt.Printf("P %.1f %.1f %d\n", float64(wall.Nanoseconds())/float64(n), float64(c1-c0)/float64(n), sink&1)
}
`

/** The same in C: clock_gettime(CLOCK_MONOTONIC). */
const C_COST = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
static long long ns(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static long long cpu(void) { struct rusage r; getrusage(RUSAGE_SELF, &r); return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000000LL + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1000LL; }
int main(int argc, char **argv) {
  long n = atol(argv[1]);
  long long sink = 0;
  for (int i = 0; i < 1000; i++) sink += ns(CLOCK_MONOTONIC);
  long long c0 = cpu(), t0 = ns(CLOCK_MONOTONIC);
  for (long i = 0; i < n; i++) sink += ns(CLOCK_MONOTONIC);
  long long t1 = ns(CLOCK_MONOTONIC), c1 = cpu();
  printf("P %.1f %.1f %lld\n", (double)(t1 - t0) / n, (double)(c1 - c0) / n, sink & 1);
  return 0;
}
`

const NATIVE_CALLS = 2_000_000
const VEXEC_CALLS = 50_000
/** The rule (bench/README.md): a trapped reading costs at most this much wall. */
const GOAL_NS = 20_000
/** The fast clock's rule: a reading through it costs at most this many times the vDSO's. */
const FAST_GOAL_RATIO = 4

interface Sample {
  wallNs: number
  cpuNs: number
}

function parseSample(out: string): Sample {
  const m = /^P (\S+) (\S+)/m.exec(out)
  if (!m) throw new Error(`the cost program printed no result: ${out}`)
  return { wallNs: Number(m[1]), cpuNs: Number(m[2]) }
}

/** Under vexec: the program's numbers, plus the supervisor's CPU per call (its stats line). */
function underVexec(bin: string, kind: 'go' | 'c', env: Record<string, string>, fast: boolean): Sample {
  const calls = fast ? NATIVE_CALLS : VEXEC_CALLS
  const run = vexecCommand([bin, String(calls)], { ...env, LIVESIM_VEXEC_STATS: '1' }, { ...vexecOptions(kind, 1), fast })
  const r = spawnSync(run.command[0] as string, run.command.slice(1), { env: run.env, encoding: 'utf8', timeout: 300_000 })
  if (r.status !== 0) throw new Error(`vexec ${bin} failed (${r.status ?? r.signal}): ${r.stderr}`)
  const s = parseSample(r.stdout)
  const sup = /(fast clock|vdso hidden).*supervisor CPU (\d+) us/.exec(r.stderr)
  if (!sup) throw new Error(`vexec printed no stats: ${r.stderr}`)
  if ((sup[1] === 'fast clock') !== fast) throw new Error(`vexec ${fast ? 'did not use' : 'used'} its fast clock: ${r.stderr}`)
  // The supervisor also served the 1000 warm-up readings and the start-up's: spread over the timed calls (a slight overestimate).
  return { wallNs: s.wallNs, cpuNs: s.cpuNs + (Number(sup[2]) * 1000) / calls }
}

function native(bin: string): Sample {
  return parseSample(execFileSync(bin, [String(NATIVE_CALLS)], { encoding: 'utf8', env: baseEnv() }))
}

export const vexecClockCost: Benchmark = {
  name: 'vexec-clock-cost',
  description: 'ns per clock reading of a Go and a static C program under vexec (trapped, fast clock) against natively (the vDSO)',
  // It needs the Go toolchain, which is more than this checkout.
  onlyWhenNamed: true,
  async run(ctx): Promise<BenchResult> {
    ensureLiveDeps()
    const vexec = vexecSupport()
    if (!vexec.path) throw new Error(`vexec is not available here: ${vexec.why}`)
    if (!vexec.fast) throw new Error(`vexec's fast clock does not work here: ${vexec.fastWhy}`)
    const go = goToolchain()
    if (!go.go) throw new Error(`vexec-clock-cost needs Go: ${go.why}`)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'livesim-bench-vexec-'))
    const clockDir = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-bench-vexec-') : path.join(dir, 'clock')
    const clock = createVirtualClock(clockDir)
    try {
      clock.set(0, 1) // free-running at the wall's rate: the programs time themselves with it
      note('vexec-clock-cost: building the Go and C programs')
      const goBin = buildGo(go.go, dir, 'clockcost', GO_COST, { cgo: false })
      writeFileSync(path.join(dir, 'clockcost.c'), C_COST)
      const cBin = path.join(dir, 'clockcost-c')
      execFileSync('cc', ['-O2', '-static', '-o', cBin, path.join(dir, 'clockcost.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
      const env = { ...baseEnv(), ...clock.env() }
      const s = { go: [] as Sample[], goFast: [] as Sample[], goNative: [] as Sample[], c: [] as Sample[], cFast: [] as Sample[], cNative: [] as Sample[] }
      for (let r = 0; r < ctx.reps; r++) {
        s.goNative.push(native(goBin))
        s.go.push(underVexec(goBin, 'go', env, false))
        s.goFast.push(underVexec(goBin, 'go', env, true))
        s.cNative.push(native(cBin))
        s.c.push(underVexec(cBin, 'c', env, false))
        s.cFast.push(underVexec(cBin, 'c', env, true))
        const last = (xs: Sample[]) => xs.at(-1)!.wallNs
        note(`vexec-clock-cost: rep ${r + 1}/${ctx.reps}: Go ${last(s.go)} ns trapped, ${last(s.goFast)} fast, ${last(s.goNative)} native; C ${last(s.c)}, ${last(s.cFast)}, ${last(s.cNative)}`)
      }
      const wall = (xs: Sample[]) => best(xs.map((x) => x.wallNs), 'min')
      const cpu = (xs: Sample[]) => best(xs.map((x) => x.cpuNs), 'min')
      const value = wall(s.go)
      const cValue = wall(s.c)
      const fastRatio = ratio(wall(s.goFast), wall(s.goNative))
      const cFastRatio = ratio(wall(s.cFast), wall(s.cNative))
      const result: BenchResult = {
        name: 'vexec-clock-cost',
        value: sig(value),
        unit: 'ns per time.Now() under vexec, trapped (wall)',
        baseline: sig(wall(s.goNative)),
        ratio: ratio(value, wall(s.goNative)),
        cValue: sig(cValue),
        cBaseline: sig(wall(s.cNative)),
        cRatio: ratio(cValue, wall(s.cNative)),
        cpuNsPerRead: sig(cpu(s.go)),
        cCpuNsPerRead: sig(cpu(s.c)),
        fastValue: sig(wall(s.goFast)),
        fastRatio,
        cFastValue: sig(wall(s.cFast)),
        cFastRatio,
        fastCpuNsPerRead: sig(cpu(s.goFast)),
        cFastCpuNsPerRead: sig(cpu(s.cFast)),
        goal: `value <= ${GOAL_NS} and cValue <= ${GOAL_NS}`,
        met: value <= GOAL_NS && cValue <= GOAL_NS,
        fastGoal: `fastRatio <= ${FAST_GOAL_RATIO} and cFastRatio <= ${FAST_GOAL_RATIO}`,
        fastMet: fastRatio <= FAST_GOAL_RATIO && cFastRatio <= FAST_GOAL_RATIO,
        detail: {
          statistic: `best of ${ctx.reps} (smallest); medians alongside`,
          calls: { native: NATIVE_CALLS, trapped: VEXEC_CALLS, fast: NATIVE_CALLS },
          medianValue: sig(median(s.go.map((x) => x.wallNs))),
          medianCValue: sig(median(s.c.map((x) => x.wallNs))),
          medianFastValue: sig(median(s.goFast.map((x) => x.wallNs))),
          medianCFastValue: sig(median(s.cFast.map((x) => x.wallNs))),
          samples: s,
        },
        ...machine(),
      }
      return result
    } finally {
      clock.close()
      rmSync(dir, { recursive: true, force: true })
      rmSync(clockDir, { recursive: true, force: true })
    }
  },
}

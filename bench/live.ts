// Live cells: time accounting under CPU contention, and the cost of freezing cells at a barrier.
//
// live-isolation: a CPU-bound live program (bench `work`, a fixed number of iterations of an LCG, its
// own virtual elapsed time read with clock_gettime(CLOCK_MONOTONIC) around them) in one cell, and in
// a neighbour cell pinned to the same core a CPU hog (test/live/helpers.ts `burn 1`), both driven by
// one quantum driver (sim-runtime/live/quantum.ts) quantum after quantum. value = the program's
// virtual run time with the hog, CpuTime mode; baseline = the same program alone (the hog cell stays
// frozen), same invocation; medians over BENCH_REPS; goal |ratio − 1| ≤ 0.05. The same for WallTime mode goes into extra fields (it
// shows the perturbation, ~2×), and, in detail, CpuTime with the hog running outside the simulation
// (thawed all along, not driven: load from elsewhere on the machine). The bench's own process is
// pinned away from that core (taskset) while it runs.
//
// live-freeze-1, -4, -16: µs per barrier (freeze + thaw of every cell, Promise.all) for 1, 4, 16 idle
// cells (a `sleep` each) in the detected cell mode, bench/barrier-cost.ts's measurement; baseline
// = the same in signals mode (SIGSTOP/SIGCONT, no cgroup), same invocation.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createCell, detectCellMode, type Cell, type CellMode } from '../sim-runtime/live/cell.ts'
import { createVirtualClock, type VirtualClock } from '../sim-runtime/live/clock.ts'
import { createQuantumDriver, type ClockMode, type DrivenCell } from '../sim-runtime/live/quantum.ts'
import { which } from '../sim-runtime/live/spawn.ts'
import { baseEnv, compilePrograms, ensureLiveDeps } from '../test/live/helpers.ts'
import { measureBarrierCost } from './barrier-cost.ts'
import { best, compileC, machine, median, note, ratio, sig, stats, withTwoSidedGoal, type Benchmark, type BenchResult } from './common.ts'

/**
 * `work N`: N steps of a 64-bit LCG (one multiply-add each, a dependency chain: pure CPU, no memory
 * traffic, no system call), bracketed by two virtual CLOCK_MONOTONIC readings; prints
 *   W  virtual-elapsed-ns  thread-cpu-ns
 * (the CPU time by raw system calls, which libfaketime does not see).
 */
const WORK = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static long long ns(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
  long long n = argc > 1 ? atoll(argv[1]) : 100000000LL;
  struct timespec a, b, ca, cb;
  volatile unsigned long long sink;
  unsigned long long y = (unsigned long long)argc;
  clock_gettime(CLOCK_MONOTONIC, &a);
  syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ca);
  for (long long i = 0; i < n; i++) y = y * 6364136223846793005ULL + 1442695040888963407ULL;
  sink = y;
  syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &cb);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("W %lld %lld %llu\n", ns(b) - ns(a), ns(cb) - ns(ca), sink & 1);
  return 0;
}
`

/**
 * Pin every thread of this process to `cpus` (taskset -a), and raise the main thread's priority to
 * nice -10 when permitted (root), so that the driver freezes cells on time on a loaded machine (the
 * docs' advice for runtimes). Returns a function that restores both. Pinning is skipped without taskset.
 */
export function pinSelf(cpus: number[]): () => void {
  const undo: (() => void)[] = []
  if (which('taskset') && cpus.length > 0) {
    const pid = String(process.pid)
    const before = /:\s*(\S+)\s*$/.exec(execFileSync('taskset', ['-c', '-p', pid], { encoding: 'utf8' }).trim())?.[1]
    execFileSync('taskset', ['-a', '-c', '-p', cpus.join(','), pid], { stdio: 'ignore' })
    if (before) undo.push(() => execFileSync('taskset', ['-a', '-c', '-p', before, pid], { stdio: 'ignore' }))
  }
  try {
    const prio = os.getPriority()
    os.setPriority(Math.min(prio, -10))
    undo.push(() => os.setPriority(prio))
  } catch {
    // not permitted: run at the usual priority
  }
  return () => {
    for (const u of undo.reverse()) u()
  }
}

export interface IsolationSample {
  clockMode: ClockMode
  /** none: the hog cell stays frozen; driven: the hog cell is a second cell of the same driver (same clock mode); free: it runs all along, outside the simulation. */
  hog: 'none' | 'driven' | 'free'
  speed: number
  /** The program's own virtual elapsed time for its fixed work. */
  virtualNs: number
  /** Its thread's CPU time for that work (raw). */
  cpuNs: number
  /** Wall time of the quanta until it printed. */
  wallNs: number
  quanta: number
  /** Slices the program's cell got, over all quanta. */
  slices: number
  extraSlices: number
  /** Steal counted for the program's cell. */
  stolenNs: number
  /** CPU time the hog cell got meanwhile (driven: from the driver's results; 0 otherwise). */
  hogCpuNs: number
  cappedQuanta: number
  overrunMaxNs: number
  /** Sum over quanta of the overrun (wall ns the cell ran past a barrier; CpuTime carries it into the next quantum). */
  overrunSumNs: number
}

export interface IsolationRigOptions {
  /** Default: the detected mode. */
  cellMode?: CellMode
  /** Virtual ns per quantum (default 5 ms). */
  quantumNs?: number
  /** CPU ms of the program's fixed work on this machine (calibrated at start; default 200). */
  workMs?: number
  /** Prefix of the cells' names (unique per process). */
  name?: string
}

/**
 * Two cells on one CPU (the machine's last): `work` in the first, `burn 1` in the second. The process
 * running the rig is pinned to the other CPUs until close().
 */
export class IsolationRig {
  readonly cellMode: CellMode
  readonly cpu: number
  readonly quantumNs: number
  readonly iterations: number
  readonly calibratedNsPerIteration: number
  private readonly work: string
  private readonly dir: string
  private readonly clockDir: string
  private readonly cell: Cell
  private readonly hog: Cell
  private readonly clock: VirtualClock
  private readonly unpin: () => void
  private runs = 0

  private constructor(f: {
    cellMode: CellMode
    cpu: number
    quantumNs: number
    iterations: number
    nsPerIteration: number
    work: string
    dir: string
    clockDir: string
    cell: Cell
    hog: Cell
    clock: VirtualClock
    unpin: () => void
  }) {
    this.cellMode = f.cellMode
    this.cpu = f.cpu
    this.quantumNs = f.quantumNs
    this.iterations = f.iterations
    this.calibratedNsPerIteration = f.nsPerIteration
    this.work = f.work
    this.dir = f.dir
    this.clockDir = f.clockDir
    this.cell = f.cell
    this.hog = f.hog
    this.clock = f.clock
    this.unpin = f.unpin
  }

  static async create(opts: IsolationRigOptions = {}): Promise<IsolationRig> {
    ensureLiveDeps()
    const progs = compilePrograms()
    const dir = mkdtempSync(path.join(os.tmpdir(), 'livesim-isolation-'))
    const work = compileC(dir, 'work', WORK)
    const ncpu = os.availableParallelism()
    const cpu = ncpu - 1
    const unpin = pinSelf(ncpu > 1 ? Array.from({ length: ncpu - 1 }, (_, i) => i) : [])
    const cells: Cell[] = []
    try {
      // Calibrate: iterations for workMs of CPU on that core (best of 3, nothing else on the core but what the machine runs).
      const probe = 20_000_000
      let nsPer = Infinity
      for (let i = 0; i < 3; i++) {
        const out = execFileSync('taskset', ['-c', String(cpu), work, String(probe)], { encoding: 'utf8' })
        const cpuNs = Number(/^W \d+ (\d+)/m.exec(out)?.[1])
        if (cpuNs > 0) nsPer = Math.min(nsPer, cpuNs / probe)
      }
      if (!Number.isFinite(nsPer)) throw new Error('work: calibration printed nothing')
      const iterations = Math.round(((opts.workMs ?? 200) * 1e6) / nsPer)
      const cellMode = opts.cellMode ?? (await detectCellMode()).mode
      const name = opts.name ?? 'iso'
      const cell = await createCell({ name: `${name}-work`, mode: cellMode, cpus: [cpu] })
      cells.push(cell)
      const hog = await createCell({ name: `${name}-hog`, mode: cellMode, cpus: [cpu] })
      cells.push(hog)
      await cell.freeze()
      await hog.freeze()
      hog.spawn([progs.burn, '1'], { env: baseEnv(), cwd: dir, logFile: path.join(dir, 'hog.log') })
      const shm = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
      const clockDir = path.join(shm, `livesim-isolation-${process.pid}-${name}`)
      mkdirSync(clockDir, { recursive: true })
      const clock = createVirtualClock(clockDir)
      return new IsolationRig({ cellMode, cpu, quantumNs: opts.quantumNs ?? 5_000_000, iterations, nsPerIteration: nsPer, work, dir, clockDir, cell, hog, clock, unpin })
    } catch (e) {
      for (const c of cells) await c.destroy()
      unpin()
      rmSync(dir, { recursive: true, force: true })
      throw e
    }
  }

  /** Run the program once to the end, quantum after quantum, and read what it printed. */
  async measure(clockMode: ClockMode, hog: 'none' | 'driven' | 'free', speed = 1): Promise<IsolationSample> {
    const log = path.join(this.dir, `work-${++this.runs}.log`)
    this.cell.spawn([this.work, String(this.iterations)], { env: { ...baseEnv(), ...this.clock.env() }, cwd: this.dir, logFile: log })
    const driven: DrivenCell[] = [{ cell: this.cell, clock: this.clock, clockMode, speed }]
    if (hog === 'driven') driven.push({ cell: this.hog, clockMode, speed })
    const driver = createQuantumDriver(driven)
    if (hog === 'free') await this.hog.thaw()
    const s: IsolationSample = { clockMode, hog, speed, virtualNs: 0, cpuNs: 0, wallNs: 0, quanta: 0, slices: 0, extraSlices: 0, stolenNs: 0, hogCpuNs: 0, cappedQuanta: 0, overrunMaxNs: 0, overrunSumNs: 0 }
    const started = performance.now()
    try {
      let T = 0
      let line: RegExpExecArray | null = null
      while (!line) {
        if (performance.now() - started > 120_000) throw new Error(`work did not finish within 120 s of wall time (${clockMode}, hog ${hog}, ${s.quanta} quanta)`)
        const r = await driver.run(T, this.quantumNs)
        T += this.quantumNs
        s.quanta++
        s.slices += r.slices[0] ?? 0
        s.extraSlices += r.extraSlices
        s.stolenNs += r.stolenNs[0] ?? 0
        s.hogCpuNs += r.cpuNs[1] ?? 0
        if (r.capped.includes(0)) s.cappedQuanta++
        s.overrunMaxNs = Math.max(s.overrunMaxNs, r.overrunNs)
        s.overrunSumNs += r.overrunNs
        line = /^W (\d+) (\d+)/m.exec(readFileSync(log, 'utf8'))
      }
      s.wallNs = Math.round((performance.now() - started) * 1e6)
      s.virtualNs = Number(line[1])
      s.cpuNs = Number(line[2])
      // Let it exit (a few more quanta at most), so that the next run has the core to itself.
      for (let k = 0; k < 50 && this.cell.pids().length > 0; k++, T += this.quantumNs) await driver.run(T, this.quantumNs)
      return s
    } finally {
      if (hog === 'free') await this.hog.freeze()
    }
  }

  async close(): Promise<void> {
    try {
      await this.cell.destroy()
      await this.hog.destroy()
      this.clock.close()
    } finally {
      this.unpin()
      rmSync(this.dir, { recursive: true, force: true })
      rmSync(this.clockDir, { recursive: true, force: true })
    }
  }
}

const ms = (ns: number) => sig(ns / 1e6, 4)

export const liveIsolation: Benchmark = {
  name: 'live-isolation',
  description: 'virtual run time of a CPU-bound live program with a CPU-hog cell on its core vs alone, CpuTime mode (WallTime in extra fields)',
  async run(ctx) {
    const rig = await IsolationRig.create({ quantumNs: 5_000_000, workMs: 300, name: 'bench-iso' })
    const samples: Record<string, IsolationSample[]> = { cpuSolo: [], cpuHog: [], wallSolo: [], wallHog: [], cpuFree: [] }
    try {
      // Interleaved, so that load from elsewhere hits all alike.
      for (let i = 0; i < ctx.reps; i++) {
        for (const [key, mode, hog] of [
          ['cpuSolo', 'CpuTime', 'none'],
          ['cpuHog', 'CpuTime', 'driven'],
          ['wallSolo', 'WallTime', 'none'],
          ['wallHog', 'WallTime', 'driven'],
          ['cpuFree', 'CpuTime', 'free'],
        ] as const) {
          const s = await rig.measure(mode, hog)
          samples[key]!.push(s)
          note(
            `live-isolation: ${key} virtual ${ms(s.virtualNs)} ms, cpu ${ms(s.cpuNs)} ms, wall ${ms(s.wallNs)} ms, ` +
              `${s.quanta} quanta, ${s.slices} slices, stolen ${ms(s.stolenNs)} ms, capped ${s.cappedQuanta}, worst overrun ${sig(s.overrunMaxNs / 1e3, 3)} us`,
          )
        }
      }
    } finally {
      await rig.close() // before machine(): it counts the CPUs this process may use
    }
    {
      const v = (key: string) => samples[key]!.map((s) => s.virtualNs / 1e6)
      // Medians: the goal is two-sided (a clock that under-counts is as wrong as one that over-counts),
      // and the best of the disturbed runs would favour the one that lost the least.
      const value = median(v('cpuHog'))
      const baseline = median(v('cpuSolo'))
      const wallHog = median(v('wallHog'))
      const wallSolo = median(v('wallSolo'))
      const summary = (key: string) => {
        const xs = samples[key]!
        return {
          virtualMs: xs.map((s) => ms(s.virtualNs)),
          cpuMs: xs.map((s) => ms(s.cpuNs)),
          wallMs: xs.map((s) => ms(s.wallNs)),
          quanta: xs.map((s) => s.quanta),
          slices: xs.map((s) => s.slices),
          stolenMs: xs.map((s) => ms(s.stolenNs)),
          hogCpuMs: xs.map((s) => ms(s.hogCpuNs)),
          cappedQuanta: xs.map((s) => s.cappedQuanta),
          overrunMaxUs: xs.map((s) => sig(s.overrunMaxNs / 1e3, 3)),
          overrunSumMs: xs.map((s) => ms(s.overrunSumNs)),
        }
      }
      const r: BenchResult = {
        name: 'live-isolation',
        value: sig(value, 4),
        unit: 'virtual ms',
        baseline: sig(baseline, 4),
        ratio: ratio(value, baseline),
        wallTimeValue: sig(wallHog, 4),
        wallTimeBaseline: sig(wallSolo, 4),
        wallTimeRatio: ratio(wallHog, wallSolo),
        freeHogRatio: ratio(median(v('cpuFree')), baseline),
        detail: {
          cellMode: rig.cellMode,
          cpu: rig.cpu,
          quantumMs: rig.quantumNs / 1e6,
          iterations: rig.iterations,
          calibratedNsPerIteration: sig(rig.calibratedNsPerIteration, 4),
          value: 'CpuTime, hog cell driven by the same driver on the same core',
          baseline: 'CpuTime, the program alone (hog cell frozen)',
          wallTime: 'the same two runs in WallTime mode',
          freeHog: 'CpuTime with the hog thawed all along, outside the simulation',
          runtime: 'this process pinned to the other CPUs (taskset -a), main thread at nice -10 when permitted',
          ...stats(v('cpuHog'), v('cpuSolo'), 'min'),
          wallTimeBestRatio: sig(best(v('wallHog'), 'min') / best(v('wallSolo'), 'min'), 4),
          runs: Object.fromEntries(Object.keys(samples).map((k) => [k, summary(k)])),
        },
        ...machine(),
      }
      return withTwoSidedGoal(r, 0.05)
    }
  },
}

function freezeBench(cells: number): Benchmark {
  const name = `live-freeze-${cells}`
  return {
    name,
    description: `µs per barrier (freeze + thaw) of ${cells} idle live cell(s) in the detected mode, vs signals mode`,
    async run(ctx) {
      ensureLiveDeps()
      const mode = (await detectCellMode()).mode
      const barriers = 300
      const value: number[] = []
      const base: number[] = []
      const p90: number[] = []
      const baseP90: number[] = []
      for (let i = 0; i < ctx.reps; i++) {
        const a = await measureBarrierCost({ mode, cells, load: 'idle', barriers })
        const b = await measureBarrierCost({ mode: 'signals', cells, load: 'idle', barriers })
        value.push(a.perBarrier.medianUs)
        p90.push(a.perBarrier.p90Us)
        base.push(b.perBarrier.medianUs)
        baseP90.push(b.perBarrier.p90Us)
        note(`${name}: ${mode} ${a.perBarrier.medianUs} us/barrier (freeze ${a.freeze.medianUs}, thaw ${a.thaw.medianUs}), signals ${b.perBarrier.medianUs} us/barrier`)
      }
      const v = best(value, 'min')
      const b = best(base, 'min')
      const r: BenchResult = {
        name,
        value: v,
        unit: 'us/barrier',
        baseline: b,
        ratio: ratio(v, b),
        mode,
        baselineMode: 'signals',
        p90Us: best(p90, 'min'),
        baselineP90Us: best(baseP90, 'min'),
        detail: {
          cells,
          load: 'idle (a sleep per cell)',
          barriers: `${barriers} per measurement (the first 5 dropped), 2 ms thawed between them; value = median per barrier`,
          baseline: `the same cells in signals mode (SIGSTOP/SIGCONT to process groups, no cgroup)${mode === 'signals' ? '; the detected mode is signals here, so both sides are the same' : ''}`,
          ...stats(value, base, 'min'),
        },
        ...machine(),
      }
      return r
    },
  }
}

export const liveBenches: Benchmark[] = [liveIsolation, ...[1, 4, 16].map(freezeBench)]

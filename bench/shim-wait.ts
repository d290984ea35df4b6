// shim-wait-cost: what the shim's wait timeouts (sim-runtime/live/shim/waits.c) cost a live program.
//
// bench/shim-wait-cost.c, on pipes: CPU ns per timed-out poll(fd, 1, 1) (the shim waits for a virtual
// deadline), per poll(fd, 1, 0) and per 1-byte write + read (the shim passes them through), under the
// shim (the shim and libfaketime preloaded, a virtual clock at rate 1, no cell) against natively,
// interleaved, best run of each side. And the timed wait in a cell driven quantum by quantum
// (CpuTime, speed 4, 1 ms quanta), reported, not judged. bench/README.md has the rule.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createCell, detectCellMode } from '../sim-runtime/live/cell.ts'
import { createVirtualClock } from '../sim-runtime/live/clock.ts'
import { createQuantumDriver } from '../sim-runtime/live/quantum.ts'
import { faketimeShim } from '../sim-runtime/live/shim.ts'
import { baseEnv, ensureLiveDeps } from '../test/live/helpers.ts'
import { BENCH_DIR, best, machine, median, note, ratio, sig, type Benchmark, type BenchResult } from './common.ts'

const POLL0_CALLS = 200_000
const TIMED_CALLS = 300
const RW_CALLS = 200_000
const QUANTUM_NS = 1_000_000
const SPEED = 4

/** CPU and wall ns per call of each loop. */
interface Costs {
  poll0: number
  timed: number
  rw: number
  poll0Wall: number
  timedWall: number
  rwWall: number
}

function parse(out: string, what: string): [number, number] {
  const m = new RegExp(`^${what} (\\S+) (\\S+)$`, 'm').exec(out)
  if (!m) throw new Error(`shim-wait-cost printed no ${what} line: ${out}`)
  return [Number(m[1]), Number(m[2])]
}

function runFree(bin: string, env: Record<string, string>): Costs {
  const out = execFileSync(bin, [String(POLL0_CALLS), String(TIMED_CALLS), String(RW_CALLS)], { env, encoding: 'utf8' })
  const [poll0, poll0Wall] = parse(out, 'poll0')
  const [timed, timedWall] = parse(out, 'timed')
  const [rw, rwWall] = parse(out, 'rw')
  return { poll0, timed, rw, poll0Wall, timedWall, rwWall }
}

/** The timed waits alone, in a cell driven quantum by quantum until the program prints. */
async function runDriven(bin: string, dir: string): Promise<{ cpuNsPerWait: number; quanta: number; cellMode: string }> {
  const { mode } = await detectCellMode()
  const cell = await createCell({ name: 'wait-cost', mode })
  const clock = createVirtualClock(path.join(dir, 'clock-driven'))
  try {
    await cell.freeze()
    const log = path.join(dir, 'driven.log')
    cell.spawn([bin, '0', String(TIMED_CALLS), '0'], { env: { ...baseEnv(), ...clock.env() }, cwd: dir, logFile: log })
    const driver = createQuantumDriver([{ cell, clock, clockMode: 'CpuTime', speed: SPEED }])
    const started = Date.now()
    let quanta = 0
    let m: RegExpExecArray | null = null
    for (let T = 0; !m; T += QUANTUM_NS) {
      if (Date.now() - started > 120_000) throw new Error(`shim-wait-cost did not finish in a cell in 120 s (${quanta} quanta)`)
      await driver.run(T, QUANTUM_NS)
      quanta++
      m = /^timed (\S+) (\S+)$/m.exec(readFileSync(log, 'utf8'))
    }
    return { cpuNsPerWait: Number(m[1]), quanta, cellMode: mode }
  } finally {
    await cell.destroy()
    clock.close()
  }
}

export const shimWaitCost: Benchmark = {
  name: 'shim-wait-cost',
  description: 'CPU ns per timed-out poll(1 ms), per poll(0) and per pipe write + read under the clock shim vs natively',
  async run(ctx) {
    ensureLiveDeps()
    const shim = faketimeShim()
    if (!shim.path) throw new Error(`the clock shim is needed: ${shim.why}`)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'livesim-wait-cost-'))
    const clockDir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'livesim-wait-cost-'))
    try {
      const bin = path.join(dir, 'shim-wait-cost')
      execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, path.join(BENCH_DIR, 'shim-wait-cost.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
      const clock = createVirtualClock(path.join(clockDir, 'free'))
      const shimEnv = { ...baseEnv(), ...clock.env() }
      const shimRuns: Costs[] = []
      const nativeRuns: Costs[] = []
      try {
        for (let i = 0; i < ctx.reps; i++) {
          const native = runFree(bin, baseEnv())
          const shimmed = runFree(bin, shimEnv)
          nativeRuns.push(native)
          shimRuns.push(shimmed)
          note(`shim-wait-cost: timed poll ${shimmed.timed} ns CPU under the shim, ${native.timed} natively; poll0 ${shimmed.poll0} / ${native.poll0}; rw ${shimmed.rw} / ${native.rw}`)
        }
      } finally {
        clock.close()
      }
      const driven = await runDriven(bin, clockDir)
      note(`shim-wait-cost: in a driven cell ${JSON.stringify(driven)}`)
      const pick = (runs: Costs[], k: keyof Costs) => best(runs.map((r) => r[k]), 'min')
      const value = pick(shimRuns, 'timed')
      const baseline = pick(nativeRuns, 'timed')
      const r: BenchResult = {
        name: 'shim-wait-cost',
        value: sig(value, 4),
        unit: 'CPU ns/call',
        baseline: sig(baseline, 4),
        ratio: ratio(value, baseline),
        poll0Value: sig(pick(shimRuns, 'poll0'), 4),
        poll0Baseline: sig(pick(nativeRuns, 'poll0'), 4),
        poll0Ratio: ratio(pick(shimRuns, 'poll0'), pick(nativeRuns, 'poll0')),
        rwValue: sig(pick(shimRuns, 'rw'), 4),
        rwBaseline: sig(pick(nativeRuns, 'rw'), 4),
        rwRatio: ratio(pick(shimRuns, 'rw'), pick(nativeRuns, 'rw')),
        drivenValue: sig(driven.cpuNsPerWait, 4),
        driven: { ...driven, quantumMs: QUANTUM_NS / 1e6, speed: SPEED, waits: TIMED_CALLS },
        detail: {
          calls: { poll0: POLL0_CALLS, timed: TIMED_CALLS, rw: RW_CALLS },
          statistic: 'thread CPU ns per call, best run of each side; wall ns per call alongside',
          shim: shimRuns,
          native: nativeRuns,
          medianShimTimedNs: sig(median(shimRuns.map((x) => x.timed)), 4),
          medianNativeTimedNs: sig(median(nativeRuns.map((x) => x.timed)), 4),
        },
        ...machine(),
      }
      r.goal = 'ratio <= 1.5 && poll0Ratio <= 1.1 && rwRatio <= 1.1'
      r.met = r.ratio <= 1.5 && (r.poll0Ratio as number) <= 1.1 && (r.rwRatio as number) <= 1.1
      return r
    } finally {
      rmSync(dir, { recursive: true, force: true })
      rmSync(clockDir, { recursive: true, force: true })
    }
  },
}

// sweep-overhead: wall seconds of `livesim sweep bench/sweep-overhead.yaml` (12 trials, 2 at once, one
// process) against the sum of the same 12 trials run one by one as `livesim run` processes, both as
// whole CLI processes in the same invocation, interleaved. The rule is in bench/README.md.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dump } from 'js-yaml'
import type { SimResults } from '../sim-runtime/sync/results.ts'
import { trialManifest, trials } from '../sim-runtime/sweep/grid.ts'
import { loadSimSweep } from '../sim-runtime/sweep/validate.ts'
import { BENCH_DIR, machine, median, note, ROOT, sig, type Benchmark } from './common.ts'

const CLI = path.join(ROOT, 'sim-runtime', 'cli', 'main.ts')
const SWEEP = path.join(BENCH_DIR, 'sweep-overhead.yaml')
const GOAL = 0.6

/** Wall seconds of `node CLI ...args` as a whole process; throws with the end of its stderr when it fails. */
function cli(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LIVESIM_LOG_LEVEL: 'warn' } })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d: string) => {
      stderr = (stderr + d).slice(-4000)
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const s = (performance.now() - t0) / 1000
      if (code === 0) resolve(s)
      else reject(new Error(`livesim ${args.join(' ')}: exit ${code ?? signal}\n${stderr}`))
    })
  })
}

interface TrialFile {
  name: string
  file: string
}

export const sweepOverhead: Benchmark = {
  name: 'sweep-overhead',
  description: 'wall s of `livesim sweep` of 12 trials (2 at once) vs the sum of the same trials as `livesim run` processes (only when named)',
  onlyWhenNamed: true,
  async run(ctx) {
    const grid = loadSimSweep(readFileSync(SWEEP, 'utf8'), { source: SWEEP })
    const all = trials(grid)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'livesim-sweep-overhead-'))
    const load1Start = sig(os.loadavg()[0] ?? 0, 3)
    try {
      // The trials as `livesim sweep` runs them: the same manifests it writes to trials/<trial>.yaml.
      mkdirSync(path.join(dir, 'trials'))
      const files: TrialFile[] = all.map((t) => {
        const file = path.join(dir, 'trials', `${t.name}.yaml`)
        writeFileSync(file, dump(trialManifest(grid, t)))
        return { name: t.name, file }
      })
      const runDigests = new Map<string, string>()
      const runOne = async (t: TrialFile, rep: number) => {
        const out = path.join(dir, `run-${rep}-${t.name}.json`)
        const s = await cli(['run', t.file, '--out', out, '--quiet'])
        runDigests.set(`${rep}/${t.name}`, (JSON.parse(readFileSync(out, 'utf8')) as SimResults).digest)
        return s
      }
      /** The 12 trials one after another: the sum of their processes' wall seconds, and each. */
      const oneByOne = async (rep: number) => {
        const each: number[] = []
        for (const t of files) each.push(await runOne(t, rep))
        return { total: each.reduce((a, b) => a + b, 0), each }
      }
      const sweepDigests = new Map<string, string>()
      /** The sweep into a fresh --out (an old one would be reused: resume). */
      const sweep = async (rep: number) => {
        const out = path.join(dir, `sweep-${rep}`)
        const s = await cli(['sweep', SWEEP, '--out', out, '--quiet'])
        const r = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { trials: { name: string; digest?: string; status: string; reused?: boolean }[] }
        for (const t of r.trials) {
          if (t.status !== 'Succeeded' || t.reused) throw new Error(`sweep repetition ${rep}: trial ${t.name} is ${t.status}${t.reused ? ' (reused)' : ''}`)
          sweepDigests.set(`${rep}/${t.name}`, t.digest ?? '')
        }
        return s
      }
      // Warm-up, not timed: one `livesim run` (the file cache holds the CLI's modules afterwards).
      await runOne(files[0]!, -1)
      const rows: { sweepS: number; runsS: number; ratio: number; runEachS: number[] }[] = []
      for (let i = 0; i < ctx.reps; i++) {
        // Alternate which side goes first, so that a drift in load hits both alike.
        let sweepS: number
        let runs: { total: number; each: number[] }
        if (i % 2 === 0) {
          sweepS = await sweep(i)
          runs = await oneByOne(i)
        } else {
          runs = await oneByOne(i)
          sweepS = await sweep(i)
        }
        rows.push({ sweepS, runsS: runs.total, ratio: sweepS / runs.total, runEachS: runs.each })
        note(`sweep-overhead: repetition ${i + 1}/${ctx.reps}: sweep ${sig(sweepS)} s, ${files.length} runs ${sig(runs.total)} s (each ${sig(Math.min(...runs.each), 3)}-${sig(Math.max(...runs.each), 3)} s), ratio ${sig(sweepS / runs.total)}, load1 ${sig(os.loadavg()[0] ?? 0, 3)}`)
      }
      // Every trial gives the same digest in the sweep and in `livesim run`, in every repetition.
      const mismatched: string[] = []
      for (let i = 0; i < ctx.reps; i++) {
        for (const t of files) {
          const a = sweepDigests.get(`${i}/${t.name}`)
          const b = runDigests.get(`${i}/${t.name}`)
          if (!a || a !== b) mismatched.push(`${i}/${t.name}`)
        }
      }
      const sameDigests = mismatched.length === 0
      if (!sameDigests) note(`sweep-overhead: DIGESTS DIFFER: ${mismatched.join(', ')}`)
      const ratio = median(rows.map((r) => r.ratio))
      const value = median(rows.map((r) => r.sweepS))
      const baseline = median(rows.map((r) => r.runsS))
      return {
        name: 'sweep-overhead',
        value: sig(value),
        unit: 's',
        baseline: sig(baseline),
        ratio: sig(ratio, 4),
        goal: `median ratio <= ${GOAL} and the same digests`,
        met: ratio <= GOAL && sameDigests,
        trials: files.length,
        parallelism: grid.parallelism,
        sameDigests,
        detail: {
          statistic: `median of ${rows.length} paired repetitions of the ratio (value, baseline: the medians of each side)`,
          ratios: rows.map((r) => sig(r.ratio, 4)),
          sweepSeconds: rows.map((r) => sig(r.sweepS)),
          runsSeconds: rows.map((r) => sig(r.runsS)),
          runEachSeconds: rows.map((r) => r.runEachS.map((s) => sig(s, 3))),
          perfectParallelRatio: sig(1 / (grid.parallelism ?? 1), 3),
          manifest: path.relative(ROOT, SWEEP),
          load1Start,
        },
        ...machine(),
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
}

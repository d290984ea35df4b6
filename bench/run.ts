// `npm run bench [-- NAME…]`: run the benchmark suite (or the named benchmarks) and print one JSON
// line per benchmark on stdout: {"name","value","unit","baseline","ratio",…}, ratio = value/baseline.
// Progress and diagnostics go to stderr. Unknown names: exit 2 with the list of names.
// A benchmark that fails prints {"name","error"} and the suite exits 1 after the others ran.
// BENCH_REPS sets the repetitions of timed measurements (default 3, or a benchmark's own defaultReps;
// the best is reported, medians in detail).
// See bench/README.md for what each benchmark measures and how its baseline is made comparable.
import { barrierBenches } from './barrier.ts'
import { makeBenchLogger, note, type BenchContext, type Benchmark } from './common.ts'
import { engineMm1 } from './engine-mm1.ts'
import { liveRedisBenches } from './live-redis.ts'
import { livePgbenchFidelity } from './live-pgbench.ts'
import { quickstartSlowdown, skipaheadSparse, slackVsConservative } from './examples.ts'
import { liveBenches } from './live.ts'
import { operatorScale } from './operator-scale.ts'
import { phold } from './phold.ts'
import { scaleHosts1000, scaleHosts10000, windowsTopology } from './scale.ts'
import { shimTimerCost } from './shim-timers.ts'
import { shimWaitCost } from './shim-wait.ts'
import { sweepOverhead } from './sweep-overhead.ts'
import { vexecClockCost } from './vexec.ts'

const BENCHMARKS: Benchmark[] = [engineMm1, ...barrierBenches, skipaheadSparse, slackVsConservative, quickstartSlowdown, sweepOverhead, windowsTopology, scaleHosts1000, scaleHosts10000, phold, operatorScale, ...liveRedisBenches, livePgbenchFidelity, ...liveBenches, shimTimerCost, shimWaitCost, vexecClockCost]

function usage(): string {
  const width = Math.max(...BENCHMARKS.map((b) => b.name.length))
  return `usage: npm run bench [-- NAME…]\nbenchmarks:\n${BENCHMARKS.map((b) => `  ${b.name.padEnd(width)}  ${b.description}`).join('\n')}\n`
}

/** BENCH_REPS as a positive integer; undefined when unset (each benchmark's default applies). */
function repsFromEnv(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_REPS must be a positive integer, got ${JSON.stringify(text)}`)
  return n
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stderr.write(usage())
    return 0
  }
  const byName = new Map(BENCHMARKS.map((b) => [b.name, b]))
  const unknown = argv.filter((a) => !byName.has(a))
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}\n${usage()}`)
    return 2
  }
  // Suite order, whatever order the names were given in; each at most once.
  const selected = argv.length ? BENCHMARKS.filter((b) => argv.includes(b.name)) : BENCHMARKS.filter((b) => !b.onlyWhenNamed)
  let reps: number | undefined
  try {
    reps = repsFromEnv(process.env.BENCH_REPS)
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`)
    return 2
  }
  const logger = makeBenchLogger()
  let failed = 0
  const started = performance.now()
  for (const b of selected) {
    note(`${b.name}: running`)
    const t0 = performance.now()
    try {
      const ctx: BenchContext = { logger, reps: reps ?? b.defaultReps ?? 3 }
      const r = await b.run(ctx)
      process.stdout.write(JSON.stringify(r) + '\n')
    } catch (err) {
      failed++
      const message = (err as Error).message
      note(`${b.name}: FAILED: ${(err as Error).stack ?? message}`)
      process.stdout.write(JSON.stringify({ name: b.name, error: message }) + '\n')
    }
    note(`${b.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)}s`)
  }
  note(`${selected.length} benchmark(s) in ${((performance.now() - started) / 1000).toFixed(1)}s${failed ? `, ${failed} failed` : ''}`)
  return failed ? 1 : 0
}

process.exitCode = await main(process.argv.slice(2))

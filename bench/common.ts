// Shared pieces of the benchmark suite: the result line, the benchmark interface, statistics,
// example manifests and the logger. Diagnostics go to stderr; stdout carries only result lines.
import tQuantile from '@stdlib/stats-base-dists-t-quantile'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import type { RunPlan } from '../sim-runtime/api/plan.ts'
import type { SimCluster } from '../sim-runtime/api/schema.ts'
import { loadSimCluster, parseManifest, validateSimCluster } from '../sim-runtime/api/validate.ts'
import { makeLogger } from '../sim-runtime/log.ts'

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.dirname(BENCH_DIR)
export const EXAMPLES = path.join(ROOT, 'examples')

/** One line of `npm run bench` output. ratio = value / baseline. */
export interface BenchResult {
  name: string
  value: number
  unit: string
  baseline: number
  ratio: number
  /** e.g. "ratio >= 10"; absent when the benchmark has no target. */
  goal?: string
  /** Whether the goal is met on this run. */
  met?: boolean
  [extra: string]: unknown
}

export interface Benchmark {
  name: string
  description: string
  /** Heavy benchmarks that need more than this checkout (e.g. a control plane) run only when named. */
  onlyWhenNamed?: boolean
  /** Repetitions when BENCH_REPS is not set (3 if absent): for benchmarks whose verdict is a statistic over repetitions. */
  defaultReps?: number
  run(ctx: BenchContext): Promise<BenchResult>
}

export interface BenchContext {
  logger: Logger
  /** Repetitions of timed measurements (the best is reported, the median too); BENCH_REPS, default 3 (or the benchmark's defaultReps). */
  reps: number
}

export function makeBenchLogger(): Logger {
  return makeLogger('livesim-bench', 'warn')
}

/** Progress and diagnostics: stderr only. */
export function note(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`)
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * The best sample: the smallest time or the largest rate. Other work on the machine only ever adds
 * time, so on a shared box the best of a few runs is the most repeatable estimate of the cost.
 */
export function best(xs: number[], better: 'min' | 'max'): number {
  return better === 'min' ? Math.min(...xs) : Math.max(...xs)
}

/** The statistic fields every benchmark with repetitions adds to its detail. */
export function stats(values: number[], baselines: number[], better: 'min' | 'max', digits = 4): Record<string, unknown> {
  const mv = median(values)
  const mb = median(baselines)
  return {
    statistic: `best of ${values.length} (${better === 'min' ? 'smallest' : 'largest'}); medians alongside`,
    medianValue: sig(mv, digits),
    medianBaseline: sig(mb, digits),
    medianRatio: sig(mv / mb, 4),
    samples: values.map((x) => sig(x, digits)),
    baselineSamples: baselines.map((x) => sig(x, digits)),
  }
}

/** Round for display: `digits` significant digits. */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x
  return Number(x.toPrecision(digits))
}

export function ratio(value: number, baseline: number): number {
  return sig(value / baseline, 4)
}

/**
 * The mean of xs and its one-sided 95 % lower confidence bound, mean − t(0.95, n − 1) × sd / √n
 * (Student's t: the pairs of a paired comparison are few, and their differences roughly normal).
 * With fewer than two samples there is no estimate of the spread: the bound is -Infinity.
 */
export function meanLowerBound95(xs: readonly number[]): { mean: number; lower95: number; sd: number; n: number } {
  const n = xs.length
  if (n === 0) throw new Error('meanLowerBound95: no samples')
  const mean = xs.reduce((a, b) => a + b, 0) / n
  if (n < 2) return { mean, lower95: -Infinity, sd: NaN, n }
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1))
  return { mean, lower95: mean - tQuantile(0.95, n - 1) * (sd / Math.sqrt(n)), sd, n }
}

/** A two-sided goal on the ratio: |ratio − 1| ≤ tolerance (e.g. a clock that must neither gain nor lose). */
export function withTwoSidedGoal(r: BenchResult, tolerance: number): BenchResult {
  r.goal = `|ratio - 1| <= ${tolerance}`
  r.met = Math.abs(r.ratio - 1) <= tolerance
  return r
}

/** A goal like "ratio >= 10" or "ratio <= 1.3", evaluated on r. */
export function withGoal(r: BenchResult, op: '<=' | '>=', target: number): BenchResult {
  r.goal = `ratio ${op} ${target}`
  r.met = op === '<=' ? r.ratio <= target : r.ratio >= target
  return r
}

/** The machine, for the record: load matters on a shared 2-core box. */
export function machine(): { cpus: number; load1: number } {
  return { cpus: os.availableParallelism(), load1: sig(os.loadavg()[0] ?? 0, 3) }
}

export interface Loaded {
  cluster: SimCluster
  plan: RunPlan
  baseDir: string
}

export function loadManifestText(text: string, source: string): Loaded {
  return { ...loadSimCluster(text, { source, baseDir: EXAMPLES }), baseDir: EXAMPLES }
}

export function loadExample(file: string, edit?: (doc: Record<string, unknown>) => void): Loaded {
  const full = path.join(EXAMPLES, file)
  const doc = parseManifest(readFileSync(full, 'utf8'), full) as Record<string, unknown>
  edit?.(doc)
  return { ...validateSimCluster(doc, { source: full, baseDir: EXAMPLES }), baseDir: EXAMPLES }
}

export function totalEvents(hosts: Record<string, { events: number }>): number {
  let n = 0
  for (const h of Object.values(hosts)) n += h.events
  return n
}

/** Write a C program's source to dir/name.c and build dir/name with cc -O2; returns the binary's path (cc's errors in the thrown message). */
export function compileC(dir: string, name: string, source: string): string {
  const src = path.join(dir, `${name}.c`)
  const bin = path.join(dir, name)
  writeFileSync(src, source)
  execFileSync('cc', ['-O2', '-o', bin, src], { stdio: ['ignore', 'ignore', 'pipe'] })
  return bin
}

// `livesim sweep`: every trial of a grid run on this machine through runLocal, the code path of
// `livesim run`, each in a worker thread (pool.ts), a bounded number at once. Each trial's manifest
// goes to DIR/trials/<name>.yaml (with its spec hash) before it runs and its results to
// DIR/trials/<name>.json after it succeeds; a trial whose results are there, intact, from a
// manifest with the same spec hash is not run again (resume). More than maxFailedTrials failures
// stop the launching of trials; an abort (Ctrl-C) stops every running trial.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dump, load } from 'js-yaml'
import type { RunPlan } from '../api/plan.ts'
import type { SimCluster } from '../api/schema.ts'
import { validateSimCluster } from '../api/validate.ts'
import { digestOf, type SimResults } from '../sync/results.ts'
import { metricHosts, metricValue } from './fields.ts'
import { specHash, trialManifest, trials, type Grid, type Trial } from './grid.ts'
import { PERCENTILES, type Percentile, type TrialRecord } from './summary.ts'
import { TrialPool, type TrialRequest } from './pool.ts'

export const SPEC_HASH_ANNOTATION = 'livesim.dev/spec-hash'

/**
 * A running trial keeps a core busy: its worker thread (a run embedded there) or its runtime
 * process (a run with live components, whose programs want CPU too). Half the cores leave room.
 */
export function defaultParallelism(): number {
  return Math.max(1, Math.floor(os.availableParallelism() / 2))
}

export interface SweepProgress {
  total: number
  succeeded: number
  failed: number
  running: number
  reused: number
  /** Seconds left, from the pace so far (each running trial counted by its virtual-time progress). */
  etaSeconds: number | undefined
}

/** Runs one trial; the default runs runLocal, as `livesim run` does, in a worker thread (pool.ts). */
export type TrialRunner = (req: TrialRequest) => Promise<SimResults>

export interface SweepRunOptions {
  grid: Grid
  outDir: string
  /** Directory of the sweep's manifest: Custom modules are relative to it. */
  baseDir: string
  parallel: number
  /** pino level of the trials' logs (their failures are in the sweep's results either way). */
  logLevel: string
  signal?: AbortSignal
  onProgress?: (p: SweepProgress) => void
  /** The latency component the report plots (group/component) and the root of its percentiles. */
  latency?: { component: string; field: string }
  runTrial?: TrialRunner
}

export interface SweepRun {
  records: TrialRecord[]
  interrupted: boolean
  /** Why trials were left unrun, when more than maxFailedTrials failed. */
  stopped?: string
}

export async function runSweep(opts: SweepRunOptions): Promise<SweepRun> {
  if (!Number.isInteger(opts.parallel) || opts.parallel < 1) throw new Error(`parallel must be a positive integer, got ${opts.parallel}`)
  const trialsDir = path.join(opts.outDir, 'trials')
  mkdirSync(trialsDir, { recursive: true })
  const all = trials(opts.grid)
  const records: TrialRecord[] = all.map((t) => notRun(opts.grid, t))
  const pace = new Pace(all.length)
  const pool = opts.runTrial ? undefined : new TrialPool(opts.logLevel)
  const run = opts.runTrial ?? ((req: TrialRequest) => pool!.run(req))
  let next = 0
  let failed = 0
  let stopped: string | undefined
  const report = () => opts.onProgress?.(pace.progress(records))
  const worker = async () => {
    while (next < all.length && !opts.signal?.aborted && stopped === undefined) {
      const i = next++
      const t = all[i]!
      pace.running.set(i, 0)
      records[i] = await runOne(opts, t, trialsDir, run, (fraction) => {
        pace.running.set(i, fraction)
        report()
      })
      pace.finish(i, records[i]!)
      if (records[i]!.status === 'Failed' && ++failed > opts.grid.maxFailedTrials) {
        stopped ??= `${failed} trial${failed === 1 ? '' : 's'} failed, more than maxFailedTrials (${opts.grid.maxFailedTrials}); no further trials were started`
      }
      report()
    }
  }
  report()
  assert(records.length === opts.grid.points * opts.grid.seeds, 'one record per trial')
  try {
    await Promise.all(Array.from({ length: Math.min(opts.parallel, all.length) }, worker))
  } finally {
    await pool?.close()
  }
  const interrupted = opts.signal?.aborted ?? false
  assert(interrupted || stopped !== undefined || records.every((r) => r.status !== 'NotRun'), 'every trial ran unless the sweep was stopped')
  return { records, interrupted, ...(stopped && !interrupted ? { stopped } : {}) }
}

function notRun(grid: Grid, t: Trial): TrialRecord {
  return { ...t, status: 'NotRun', reused: false, specHash: specHash(trialManifest(grid, t)), metrics: grid.metrics.map(() => null) }
}

/** One trial: reused from disk when its spec hash matches, else run. Never throws but on a bug. */
async function runOne(opts: SweepRunOptions, t: Trial, dir: string, run: TrialRunner, onFraction: (f: number) => void): Promise<TrialRecord> {
  const manifest = trialManifest(opts.grid, t)
  const hash = specHash(manifest)
  const files = { yaml: path.join(dir, `${t.name}.yaml`), json: path.join(dir, `${t.name}.json`) }
  const previous = readFinished(files, hash)
  if (previous) return record(opts, t, hash, previous, validateSimCluster(manifest, { baseDir: opts.baseDir }).plan, { reused: true })
  // Results of another spec must never be taken for this one's: gone before the new manifest is written.
  rmSync(files.json, { force: true })
  writeFileSync(files.yaml, trialYaml(manifest, hash))
  const started = performance.now()
  try {
    const { cluster, plan } = validateSimCluster(manifest, { baseDir: opts.baseDir })
    const workDir = plan.liveComponents > 0 ? path.join(opts.outDir, 'work', t.name) : undefined
    const results = await run({ cluster, baseDir: opts.baseDir, signal: opts.signal ?? new AbortController().signal, onProgress: onFraction, workDir })
    writeFileSync(`${files.json}.tmp`, JSON.stringify(results, null, 2) + '\n')
    renameSync(`${files.json}.tmp`, files.json)
    return record(opts, t, hash, results, plan, { reused: false, wallSeconds: (performance.now() - started) / 1000 })
  } catch (err) {
    return { ...notRun(opts.grid, t), status: opts.signal?.aborted ? 'NotRun' : 'Failed', message: (err as Error).message, wallSeconds: (performance.now() - started) / 1000 }
  }
}

/** The results of a finished trial with this spec hash, intact, or undefined. */
function readFinished(files: { yaml: string; json: string }, hash: string): SimResults | undefined {
  if (!existsSync(files.json) || !existsSync(files.yaml)) return undefined
  try {
    const m = load(readFileSync(files.yaml, 'utf8')) as { metadata?: { annotations?: Record<string, string> } }
    if (m.metadata?.annotations?.[SPEC_HASH_ANNOTATION] !== hash) return undefined
    const results = JSON.parse(readFileSync(files.json, 'utf8')) as SimResults
    return digestOf(results) === results.digest ? results : undefined
  } catch {
    return undefined
  }
}

function record(opts: SweepRunOptions, t: Trial, hash: string, results: SimResults, plan: RunPlan, extra: { reused: boolean; wallSeconds?: number }): TrialRecord {
  const metrics = opts.grid.metrics.map((m) => {
    const where = metricHosts(plan, m.component)
    return metricValue(results, where.hosts, where.component, m.field, m.aggregate)
  })
  let latency: Record<Percentile, number | null> | undefined
  if (opts.latency) {
    const where = metricHosts(plan, opts.latency.component)
    latency = Object.fromEntries(PERCENTILES.map((p) => [p, metricValue(results, where.hosts, where.component, `${opts.latency!.field}.${p}`, 'Mean')])) as Record<Percentile, number | null>
  }
  return { ...t, status: 'Succeeded', specHash: hash, digest: results.digest, metrics, ...(latency ? { latency } : {}), ...extra, wallSeconds: extra.wallSeconds ?? results.wall.seconds }
}

function trialYaml(m: SimCluster, hash: string): string {
  const annotated = { ...m, metadata: { ...m.metadata, annotations: { [SPEC_HASH_ANNOTATION]: hash } } }
  return (
    '# A trial of a SimSweep, written by `livesim sweep`: `livesim run` of this file gives the same digest.\n' +
    "# Custom component modules are relative to the sweep's manifest.\n" +
    dump(annotated, { noRefs: true, lineWidth: 120 })
  )
}

/** The sweep's pace: trials run here (not reused) over the wall time they took, for the ETA. */
class Pace {
  readonly running = new Map<number, number>()
  private readonly startMs = performance.now()
  private ranDone = 0
  private readonly total: number

  constructor(total: number) {
    this.total = total
  }

  finish(i: number, r: TrialRecord): void {
    this.running.delete(i)
    if (!r.reused && r.status !== 'NotRun') this.ranDone++
  }

  progress(records: readonly TrialRecord[]): SweepProgress {
    let succeeded = 0
    let failed = 0
    let reused = 0
    for (const r of records) {
      if (r.status === 'Succeeded') succeeded++
      if (r.status === 'Failed') failed++
      if (r.reused) reused++
    }
    const inFlight = [...this.running.values()].reduce((a, b) => a + b, 0)
    const ran = this.ranDone + inFlight
    const left = this.total - succeeded - failed - inFlight
    const elapsed = (performance.now() - this.startMs) / 1000
    const etaSeconds = ran > 0 ? (elapsed / ran) * Math.max(0, left) : undefined
    return { total: this.total, succeeded, failed, running: this.running.size, reused, etaSeconds }
  }
}

// The CLI's sweep commands: `livesim sweep FILE` runs a SimSweep locally and writes DIR/results.csv,
// DIR/results.json, DIR/trials/ and DIR/report.html; `livesim compare A.json B.json` puts two
// results side by side; `livesim validate` takes SimSweep files through validateSweepFile.
// Exit codes as for `livesim run`: 0 success; 1 invalid input or a failed sweep; 130 interrupted.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { SimClusterSpec } from '../api/schema.ts'
import { localHeapBudget } from '../api/state-budget.ts'
import { parseManifest, ValidationError } from '../api/validate.ts'
import { CompareError, compareResults, compareTable, readResults } from './compare.ts'
import { reportKind } from './fields.ts'
import { describePoint, type Grid } from './grid.ts'
import { renderReport } from './report.ts'
import { defaultParallelism, runSweep } from './run.ts'
import { resultsCsv, sweepResults, type SweepResults } from './summary.ts'
import { formatEta, pointsTable, SweepProgressView } from './view.ts'
import { validateSimSweep } from './validate.ts'

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ValidationError([{ path: '', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }], undefined, 'SimSweep')
  }
}

/** A SimSweep file's grid; ValidationError when it is not a valid SimSweep. */
export function readSweep(file: string): Grid {
  return validateSimSweep(parseManifest(readText(file), file, 'SimSweep'), { source: file, baseDir: path.dirname(path.resolve(file)), heap: localHeapBudget(1) })
}

/** For `livesim validate`: the line for a valid SimSweep file, undefined when the file holds another kind. */
export function validateSweepFile(file: string): string | undefined {
  let doc: unknown
  try {
    doc = parseManifest(readText(file), file)
  } catch {
    return undefined // not parseable: the SimCluster validation says why
  }
  if ((doc as { kind?: unknown } | null)?.kind !== 'SimSweep') return undefined
  const grid = validateSimSweep(doc, { source: file, baseDir: path.dirname(path.resolve(file)), heap: localHeapBudget(1) })
  return `${file}: valid SimSweep ${grid.sweep} (${grid.points} points × ${grid.seeds} seeds = ${grid.points * grid.seeds} trials)`
}

/**
 * The component whose latency percentiles the report plots: the objective's if it reports a
 * latency (a Client's latency, a Server's or live program's response), else the template's first Client.
 */
export function latencyComponent(grid: Grid): { component: string; field: string } | undefined {
  const objective = grid.metrics.find((m) => m.name === grid.objective.metric)!
  const [ref, name] = objective.component.split('/') as [string, string]
  const group = findGroup(grid.template, ref)
  const kind = reportKind(group?.components.find((c) => c.name === name) ?? { name })
  if (kind === 'Client') return { component: objective.component, field: 'latency' }
  if (kind === 'Server' || kind === 'Live') return { component: objective.component, field: 'response' }
  for (const h of grid.template.hosts) for (const c of h.components) if (c.model?.kind === 'Client') return { component: `${h.name}/${c.name}`, field: 'latency' }
  return undefined
}

/** The host group that `ref` (a group or one of its replicas) belongs to. */
function findGroup(spec: SimClusterSpec, ref: string) {
  return spec.hosts.find((h) => h.name === ref) ?? spec.hosts.find((h) => ref.startsWith(`${h.name}-`) && /^[0-9]+$/.test(ref.slice(h.name.length + 1)))
}

export interface SweepOptions {
  out?: string
  parallel?: number
  quiet?: boolean
}

/** `livesim sweep FILE` (cli.ts registers it). */
export async function sweepAction(file: string, o: SweepOptions): Promise<void> {
  const grid = readSweep(file)
  const outDir = path.resolve(o.out ?? path.join('sweeps', grid.sweep))
  const parallel = o.parallel ?? grid.parallelism ?? defaultParallelism()
  const total = grid.points * grid.seeds
  try {
    mkdirSync(path.join(outDir, 'trials'), { recursive: true })
  } catch (err) {
    process.stderr.write(`livesim sweep: --out ${outDir}: cannot make the results directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`)
    process.exitCode = 1
    return
  }
  process.stderr.write(`livesim sweep: ${grid.sweep}: ${grid.points} points × ${grid.seeds} seeds = ${total} trials, ${parallel} at a time; results in ${outDir}\n`)
  const view = o.quiet ? undefined : new SweepProgressView(process.stderr)
  const abort = new AbortController()
  const onSignal = () => abort.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const latency = latencyComponent(grid)
  const started = performance.now()
  let run: Awaited<ReturnType<typeof runSweep>>
  try {
    // Each failed trial's reason is in the results; its leader's log would say it again.
    const logLevel = process.env.LIVESIM_LOG_LEVEL ?? 'fatal'
    run = await runSweep({ grid, outDir, baseDir: path.dirname(path.resolve(file)), parallel, logLevel, signal: abort.signal, onProgress: view ? (p) => view.update(p) : undefined, latency })
  } finally {
    view?.stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (run.interrupted) {
    process.stderr.write(`livesim sweep: interrupted; every trial was stopped. Finished trials are in ${path.join(outDir, 'trials')}: run the same command again to resume.\n`)
    process.exitCode = 130
    return
  }
  const results = sweepResults(grid, run.records, { phase: run.stopped ? 'Failed' : 'Succeeded', message: run.stopped, latency })
  writeOutputs(grid, results, outDir)
  printSummary(grid, results, outDir, (performance.now() - started) / 1000)
  if (results.phase === 'Failed') process.exitCode = 1
}

function writeOutputs(grid: Grid, results: SweepResults, outDir: string): void {
  writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n')
  writeFileSync(path.join(outDir, 'results.csv'), resultsCsv(grid, results.trials))
  writeFileSync(path.join(outDir, 'report.html'), renderReport(grid, results))
}

function printSummary(grid: Grid, r: SweepResults, outDir: string, wallSeconds: number): void {
  const failed = r.trials.filter((t) => t.status === 'Failed')
  const reused = r.trials.filter((t) => t.reused).length
  const out: string[] = [pointsTable(grid, r), `each cell: mean over seeds [95 % CI]; *: the interval does not overlap the best point's`]
  if (r.best) out.push(`best by ${grid.objective.goal === 'Minimize' ? 'lowest' : 'highest'} ${grid.objective.metric}: p${r.best.point} (${describePoint(grid.parameters, r.best.values)})`)
  for (const t of failed.slice(0, 5)) out.push(`failed: ${t.name}: ${t.message ?? ''}`)
  if (r.message) out.push(`sweep failed: ${r.message}`)
  out.push(`${r.trials.length} trials (${reused} reused from an earlier run, ${failed.length} failed) in ${formatEta(wallSeconds)}`)
  out.push(`results: ${path.join(outDir, 'results.csv')}, results.json, trials/, report.html`)
  process.stdout.write(out.join('\n') + '\n')
}

/** `livesim compare A B` (cli.ts registers it). */
export function compareAction(a: string, b: string, o: { json?: boolean }): void {
  let ra, rb
  try {
    ra = readResults(a)
    rb = readResults(b)
  } catch (err) {
    if (!(err instanceof CompareError)) throw err
    process.stderr.write(`livesim compare: ${err.message}\n`)
    process.exitCode = 1
    return
  }
  if (o.json) process.stdout.write(JSON.stringify(compareResults(ra, rb), null, 2) + '\n')
  else process.stdout.write(compareTable({ file: a, r: ra }, { file: b, r: rb }))
}

// The grid of a validated SimSweep: points (the cartesian product of the parameters' values, the
// first parameter varying slowest), trials (one per point and seed) and each trial's SimCluster.
// A trial's spec hash covers everything that defines its run, so that a finished trial can be
// recognised on resume.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { API_VERSION, type SimCluster, type SimClusterSpec, type SweepMetric } from '../api/schema.ts'
import { canonicalJson } from '../sync/results.ts'
import { withValue } from './paths.ts'

export interface GridParameter {
  name: string
  path: string
  keys: (string | number)[]
  values: unknown[]
}

/** A SimSweep that passed validation, with its parameter paths resolved. */
export interface Grid {
  sweep: string
  template: SimClusterSpec
  parameters: GridParameter[]
  metrics: SweepMetric[]
  objective: { metric: string; goal: 'Minimize' | 'Maximize' }
  points: number
  seeds: number
  /** Seed of replication 0: template.seed (default 1). */
  baseSeed: number
  parallelism?: number
  maxFailedTrials: number
}

export interface Trial {
  name: string
  point: number
  seedIndex: number
  seed: number
  values: unknown[]
}

/** The number of points of a grid of these sizes, or Infinity past `max` (never multiplies out a huge grid). */
export function gridSize(sizes: number[], max: number): number {
  let n = 1
  for (const s of sizes) {
    n *= s
    if (n > max) return Infinity
  }
  return n
}

/** The parameters' values at point `point` (mixed radix, last parameter fastest). */
export function pointValues(parameters: GridParameter[], point: number): unknown[] {
  assert(Number.isInteger(point) && point >= 0, `point ${point} is not an index`)
  const out = new Array<unknown>(parameters.length)
  let rest = point
  for (let i = parameters.length - 1; i >= 0; i--) {
    const n = parameters[i]!.values.length
    out[i] = parameters[i]!.values[rest % n]
    rest = Math.floor(rest / n)
  }
  assert(rest === 0, `point ${point} is past the grid`)
  return out
}

export function trialName(sweep: string, point: number, seedIndex: number): string {
  return `${sweep}-p${point}-s${seedIndex}`
}

export function trial(grid: Grid, point: number, seedIndex: number): Trial {
  assert(point < grid.points && seedIndex < grid.seeds, `trial p${point}-s${seedIndex} is outside a grid of ${grid.points} points × ${grid.seeds} seeds`)
  return { name: trialName(grid.sweep, point, seedIndex), point, seedIndex, seed: grid.baseSeed + seedIndex, values: pointValues(grid.parameters, point) }
}

/** Every trial, point by point, seeds within a point. */
export function trials(grid: Grid): Trial[] {
  const out: Trial[] = []
  for (let p = 0; p < grid.points; p++) for (let s = 0; s < grid.seeds; s++) out.push(trial(grid, p, s))
  return out
}

/** The template with each parameter's value set; `values[i]` undefined leaves parameter i as the template has it. */
export function specWith(grid: Pick<Grid, 'template' | 'parameters'>, values: (unknown | undefined)[]): SimClusterSpec {
  let spec = grid.template
  grid.parameters.forEach((p, i) => {
    if (values[i] !== undefined) spec = withValue(spec, p.keys, values[i])
  })
  return spec
}

/** The SimCluster a trial runs: the same manifest `livesim run` takes, labelled as the operator labels trials. */
export function trialManifest(grid: Grid, t: Trial): SimCluster {
  const spec = { ...specWith(grid, t.values), seed: t.seed }
  return {
    apiVersion: API_VERSION,
    kind: 'SimCluster',
    metadata: { name: t.name, labels: { 'livesim.dev/sweep': grid.sweep, 'livesim.dev/point': String(t.point) } },
    spec,
  }
}

/** SHA-256 of the canonical JSON of the trial's name and spec: what its results depend on. */
export function specHash(m: SimCluster): string {
  return `sha256:${createHash('sha256').update(canonicalJson({ name: m.metadata.name, spec: m.spec })).digest('hex')}`
}

/** "workers=4, latency=1ms" */
export function describePoint(parameters: { name: string }[], values: unknown[]): string {
  return parameters.map((p, i) => `${p.name}=${formatValue(values[i])}`).join(', ')
}

export function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v)
}

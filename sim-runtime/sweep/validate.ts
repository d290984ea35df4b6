// Validation of SimSweep manifests. After the schema: the template must be a valid SimCluster spec,
// every parameter path must resolve in it, every value must be valid at its path (the template
// with that one value, as a SimCluster), every grid point must be a valid SimCluster, and every
// metric must name a component and a field that the component's kind reports. The grid is bounded
// (SWEEP_LIMITS.trialsMax trials) before any point is built. Every problem is reported with its
// field path; nothing here throws anything but ValidationError.
import { Compile } from 'typebox/compile'
import type { RunPlan } from '../api/plan.ts'
import type { HeapBudget } from '../api/state-budget.ts'
import { API_VERSION, LIMITS, SimSweep, SWEEP_LIMITS, type SimCluster, type SimSweep as SimSweepT } from '../api/schema.ts'
import { describe, parseManifest, schemaIssues, validateSimCluster, ValidationError, type Issue } from '../api/validate.ts'
import { fieldProblem, metricHosts } from './fields.ts'
import { describePoint, gridSize, specWith, trial, trialManifest, trialName, type Grid, type GridParameter } from './grid.ts'
import { clusterPath, overlaps, PathError, resolvePath } from './paths.ts'

const checker = Compile(SimSweep)
const MAX_ISSUES = 25
const SEED_MAX = 4294967295
/** Column names of results.csv that parameters and metrics may not take. */
const RESERVED = ['trial', 'point', 'seed', 'status', 'digest']

export interface SweepValidateOptions {
  /** Directory that Custom component module paths are relative to; when set, modules must exist. */
  baseDir?: string
  source?: string
  /** Refuse grid points whose modelled state cannot fit the heap of the runtime that runs a trial. */
  heap?: HeapBudget
}

function fail(issues: Issue[], source?: string): never {
  throw new ValidationError(issues.slice(0, MAX_ISSUES), source, 'SimSweep')
}

// A trial's name, <sweep>-p<point>-s<seed>, must be a valid SimCluster name: with at most
// trialsMax trials its suffix takes at most 9 characters.
if (SWEEP_LIMITS.sweepNameMax + '-p999-s99'.length > LIMITS.clusterNameMax) throw new Error('SWEEP_LIMITS.sweepNameMax leaves trial names too long')

/** A SimCluster issue's path as a path in the sweep: spec.hosts[0] → spec.template.hosts[0]. */
function inTemplate(p: string): string {
  return p === 'spec' ? 'spec.template' : p.startsWith('spec.') ? `spec.template.${p.slice(5)}` : p
}

/** Validate a parsed document; returns the sweep's grid, or throws ValidationError. */
export function validateSimSweep(doc: unknown, opts: SweepValidateOptions = {}): Grid {
  const source = opts.source
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail([{ path: '', message: `expected a SimSweep object, got ${describe(doc)}` }], source)
  const d = doc as Record<string, unknown>
  if (d.kind !== 'SimSweep') fail([{ path: 'kind', message: `expected SimSweep, got ${describe(d.kind)}` }], source)
  if (d.apiVersion !== API_VERSION) fail([{ path: 'apiVersion', message: `expected ${API_VERSION}, got ${describe(d.apiVersion)}` }], source)
  const schema = schemaIssues(doc, checker, SimSweep)
  if (schema.length) fail(schema, source)
  const sweep = doc as SimSweepT
  const template = templatePlan(sweep, opts)
  if ('issues' in template) fail(template.issues, source)
  const { grid, issues } = structure(sweep, template.plan)
  if (issues.length) fail(issues, source)
  const valueIssues = valuesIssues(grid, opts)
  if (valueIssues.length) fail(valueIssues, source)
  const pointIssues = pointsIssues(grid, opts)
  if (pointIssues.length) fail(pointIssues, source)
  return grid
}

export function loadSimSweep(text: string, opts: SweepValidateOptions = {}): Grid {
  return validateSimSweep(parseManifest(text, opts.source, 'SimSweep'), opts)
}

function clusterDoc(name: string, spec: SimSweepT['spec']['template']): SimCluster {
  return { apiVersion: API_VERSION, kind: 'SimCluster', metadata: { name }, spec }
}

/** The template as a SimCluster: its plan, or its issues at spec.template paths. */
function templatePlan(sweep: SimSweepT, opts: SweepValidateOptions): { plan: RunPlan } | { issues: Issue[] } {
  try {
    return { plan: validateSimCluster(clusterDoc(trialName(sweep.metadata.name, 0, 0), sweep.spec.template), { baseDir: opts.baseDir }).plan }
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err
    return { issues: err.issues.map((i) => ({ path: inTemplate(i.path), message: i.message })) }
  }
}

/** Names, parameter paths, the grid's size, seeds, metrics and the objective: everything but values. */
function structure(sweep: SimSweepT, plan: RunPlan): { grid: Grid; issues: Issue[] } {
  const spec = sweep.spec
  const issues: Issue[] = []
  const add = (path: string, message: string) => issues.push({ path, message })
  const parameters: GridParameter[] = []
  const names = new Map<string, string>()
  const named = (path: string, name: string) => {
    if (RESERVED.includes(name)) add(path, `${JSON.stringify(name)} is a column of results.csv already (${RESERVED.join(', ')}); choose another name`)
    else if (names.has(name)) add(path, `duplicate name ${JSON.stringify(name)} (also ${names.get(name)}); parameter and metric names are the columns of results.csv`)
    names.set(name, path)
  }
  spec.parameters.forEach((p, i) => {
    named(`spec.parameters[${i}].name`, p.name)
    try {
      const r = resolvePath(spec.template, p.path)
      const other = parameters.findIndex((q) => overlaps(q.keys, r.keys))
      if (other >= 0) add(`spec.parameters[${i}].path`, `${p.path} overlaps spec.parameters[${other}].path (${spec.parameters[other]!.path}): one would overwrite the other`)
      parameters.push({ name: p.name, path: p.path, keys: r.keys, values: p.values })
    } catch (err) {
      if (!(err instanceof PathError)) throw err
      add(`spec.parameters[${i}].path`, err.message)
    }
  })
  const seeds = spec.seeds ?? 1
  const baseSeed = spec.template.seed ?? 1
  if (baseSeed + seeds - 1 > SEED_MAX) add('spec.seeds', `seeds ${baseSeed}…${baseSeed + seeds - 1} pass the largest seed, ${SEED_MAX}; lower template.seed or seeds`)
  const points = gridSize(spec.parameters.map((p) => p.values.length), SWEEP_LIMITS.trialsMax)
  if (points * seeds > SWEEP_LIMITS.trialsMax) {
    const sizes = spec.parameters.map((p) => p.values.length).join(' × ')
    const total = Number.isFinite(points) ? `${points * seeds} trials` : `more than ${SWEEP_LIMITS.trialsMax} points`
    add('spec.parameters', `the grid is ${sizes} values × ${seeds} seeds: ${total}; at most ${SWEEP_LIMITS.trialsMax} trials are allowed`)
  }
  spec.metrics.forEach((m, i) => {
    named(`spec.metrics[${i}].name`, m.name)
    const problem = metricProblem(plan, m.component, m.field)
    if (problem) add(`spec.metrics[${i}].${problem.at}`, problem.message)
  })
  if (!spec.metrics.some((m) => m.name === spec.objective.metric)) {
    add('spec.objective.metric', `no metric ${JSON.stringify(spec.objective.metric)}; metrics are: ${spec.metrics.map((m) => m.name).join(', ')}`)
  }
  const grid: Grid = {
    sweep: sweep.metadata.name,
    template: spec.template,
    parameters,
    metrics: spec.metrics,
    objective: spec.objective,
    points,
    seeds,
    baseSeed,
    parallelism: spec.parallelism,
    maxFailedTrials: spec.maxFailedTrials ?? 0,
  }
  return { grid, issues }
}

/** Why a metric's component or field is not in this plan, or undefined. */
function metricProblem(plan: RunPlan, component: string, field: string): { at: 'component' | 'field'; message: string } | undefined {
  const [ref, name] = component.split('/') as [string, string]
  const { hosts } = metricHosts(plan, component)
  if (hosts.length === 0) {
    return { at: 'component', message: `no host group or host ${JSON.stringify(ref)}; groups are: ${[...plan.groups.keys()].join(', ')} (a host is a group's replica, e.g. ${[...plan.groups.keys()][0]}-0)` }
  }
  const host = plan.hosts[plan.hostIndex.get(hosts[0]!)!]!
  const index = host.componentIndex.get(name)
  if (index === undefined) return { at: 'component', message: `no component ${JSON.stringify(name)} on ${ref}; its components are: ${host.components.map((c) => c.name).join(', ')}` }
  const problem = fieldProblem(host.components[index]!.spec, field)
  return problem ? { at: 'field', message: problem } : undefined
}

/** Each value alone in the template, validated as a SimCluster; issues at spec.parameters[i].values[j]. */
function valuesIssues(grid: Grid, opts: SweepValidateOptions): Issue[] {
  const issues: Issue[] = []
  grid.parameters.forEach((p, i) => {
    const where = clusterPath(p.keys)
    p.values.forEach((v, j) => {
      if (issues.length >= MAX_ISSUES) return
      const values = grid.parameters.map((_, k) => (k === i ? v : undefined))
      for (const issue of clusterIssues(clusterDoc(trialName(grid.sweep, 0, 0), specWith(grid, values)), opts)) {
        const inside = issue.path === where || issue.path.startsWith(`${where}.`) || issue.path.startsWith(`${where}[`)
        const at = inTemplate(issue.path)
        issues.push({ path: `spec.parameters[${i}].values[${j}]`, message: inside ? `${issue.message} (at ${at})` : `with this value, ${at}: ${issue.message}` })
      }
    })
  })
  return issues
}

/** Every grid point validated as a SimCluster, and every metric's host and field present at it. */
function pointsIssues(grid: Grid, opts: SweepValidateOptions): Issue[] {
  const issues: Issue[] = []
  const metricSeen = new Set<number>()
  for (let p = 0; p < grid.points && issues.length < MAX_ISSUES; p++) {
    const t = trial(grid, p, 0)
    const here = `grid point ${p} (${describePoint(grid.parameters, t.values)})`
    let plan: RunPlan
    try {
      plan = validateSimCluster(trialManifest(grid, t), { baseDir: opts.baseDir, heap: opts.heap }).plan
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err
      for (const i of err.issues) issues.push({ path: 'spec.parameters', message: `${here}: ${inTemplate(i.path)}: ${i.message}` })
      continue
    }
    grid.metrics.forEach((m, i) => {
      const problem = metricSeen.has(i) ? undefined : metricProblem(plan, m.component, m.field)
      if (!problem) return
      metricSeen.add(i)
      issues.push({ path: `spec.metrics[${i}].${problem.at}`, message: `at ${here}: ${problem.message}` })
    })
  }
  return issues
}

function clusterIssues(doc: SimCluster, opts: SweepValidateOptions): Issue[] {
  try {
    validateSimCluster(doc, { baseDir: opts.baseDir })
    return []
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err
    return err.issues
  }
}

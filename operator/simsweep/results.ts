// A sweep's results on Kubernetes: each finished trial read into the record `livesim sweep` keeps
// of it (the same metrics from the same results, so the same results.csv), and the ConfigMap
// `<sweep>-results` with results.csv and results.json, written as trials finish. That ConfigMap is
// also the sweep's memory: a trial's record stays there after the trial itself is gone (its own
// TTL, the sweep's TTL), and the reconciler reads the records back from it.
//
// Size: a ConfigMap carries at most CONFIGMAP_PAYLOAD_MAX bytes (simcluster/results-configmaps.ts).
// The first form that fits is written: both files as text; results.json gzipped
// (binaryData results.json.gz); both gzipped; both gzipped with results.json's per-point rows and
// latency percentiles left out (they follow from the trials); results.csv.gz alone. The ConfigMap's
// annotation livesim.dev/omitted says what a smaller form left out.
import assert from 'node:assert/strict'
import { gunzipSync, gzipSync } from 'node:zlib'
import type { RunPlan } from '../../sim-runtime/api/plan.ts'
import { metricHosts, metricValue } from '../../sim-runtime/sweep/fields.ts'
import { specHash, trialManifest, trials, type Grid, type Trial } from '../../sim-runtime/sweep/grid.ts'
import { PERCENTILES, resultsCsv, sweepResults, type Percentile, type SweepResults, type TrialRecord } from '../../sim-runtime/sweep/summary.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'
import type { KubeObject } from '../kube/rest.ts'
import { CONFIGMAP_PAYLOAD_MAX, partName, payloadBytes } from '../simcluster/results-configmaps.ts'
import { FIELD_MANAGER, L, names, ownerRef } from '../simcluster/objects.ts'
import { resultsName, SL, trialIndex, type SimSweepObject } from './objects.ts'

export interface ConfigMap extends KubeObject {
  data?: Record<string, string>
  binaryData?: Record<string, string>
}

export type SweepPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed'

/** results.json as the operator writes it: phase Running while trials go. */
export type SweepResultsDoc = Omit<SweepResults, 'phase'> & { phase: SweepPhase }

/** The latency component of the report (command.ts latencyComponent). */
export type LatencyOf = SweepResults['latency']

/** Every trial NotRun: what is known before any trial finished. */
export function emptyRecords(grid: Grid): TrialRecord[] {
  return trials(grid).map((t) => notRun(grid, t))
}

export function notRun(grid: Grid, t: Trial): TrialRecord {
  return { ...t, status: 'NotRun', reused: false, specHash: specHash(trialManifest(grid, t)), metrics: grid.metrics.map(() => null) }
}

/** A failed trial's record, as `livesim sweep` keeps one. */
export function failedRecord(grid: Grid, t: Trial, message: string, wallSeconds?: number): TrialRecord {
  return { ...notRun(grid, t), status: 'Failed', message: message.slice(0, 2000), ...(wallSeconds === undefined ? {} : { wallSeconds }) }
}

/** A succeeded trial's record: each metric read from its results as `livesim sweep` reads it (run.ts). */
export function succeededRecord(grid: Grid, t: Trial, plan: RunPlan, results: SimResults, latency: LatencyOf): TrialRecord {
  const metrics = grid.metrics.map((m) => {
    const where = metricHosts(plan, m.component)
    return metricValue(results, where.hosts, where.component, m.field, m.aggregate)
  })
  let lat: Record<Percentile, number | null> | undefined
  if (latency) {
    const where = metricHosts(plan, latency.component)
    lat = Object.fromEntries(PERCENTILES.map((p) => [p, metricValue(results, where.hosts, where.component, `${latency.field}.${p}`, 'Mean')])) as Record<Percentile, number | null>
  }
  return { ...t, status: 'Succeeded', specHash: specHash(trialManifest(grid, t)), digest: results.digest, metrics, ...(lat ? { latency: lat } : {}), reused: false, wallSeconds: results.wall.seconds }
}

/**
 * A trial's results from its ConfigMaps (simcluster/results-configmaps.ts: results.json, its gzip,
 * or a gzip split into parts): the document, 'missing' while a ConfigMap is not there (yet), or
 * the summary alone when the trial's detail did not fit (its host metrics then read as null).
 */
export function trialResults(trial: string, get: (name: string) => ConfigMap | undefined): SimResults | 'missing' {
  const cm = get(names.results(trial))
  if (!cm) return 'missing'
  if (cm.data?.['results.json']) return JSON.parse(cm.data['results.json']) as SimResults
  if (cm.binaryData?.['results.json.gz']) return JSON.parse(gunzipSync(Buffer.from(cm.binaryData['results.json.gz'], 'base64')).toString('utf8')) as SimResults
  const parts = Number(cm.metadata.annotations?.['livesim.dev/parts'] ?? 0)
  if (parts > 0) {
    const chunks: Buffer[] = []
    for (let i = 1; i <= parts; i++) {
      const part = get(partName(trial, i))?.binaryData?.['results.json.gz']
      if (!part) return 'missing'
      chunks.push(Buffer.from(part, 'base64'))
    }
    return JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as SimResults
  }
  if (cm.data?.['summary.json']) return { hosts: {}, links: {}, ...(JSON.parse(cm.data['summary.json']) as object) } as SimResults
  return 'missing'
}

/** What the ConfigMap `<sweep>-results` holds, before its metadata. */
export interface ResultsPayload {
  data?: Record<string, string>
  binaryData?: Record<string, string>
  /** What a smaller form left out, for the annotation and a Warning event. */
  omitted?: string
}

const gz = (s: string) => gzipSync(s).toString('base64')

/** The first form of results.csv and results.json that fits in CONFIGMAP_PAYLOAD_MAX bytes. */
export function resultsPayload(grid: Grid, records: readonly TrialRecord[], outcome: { phase: SweepPhase; message?: string; latency: LatencyOf }): ResultsPayload {
  assert(records.length === grid.points * grid.seeds, 'one record per trial')
  const csv = resultsCsv(grid, records)
  const doc: SweepResultsDoc = { ...sweepResults(grid, records, { phase: 'Succeeded', message: outcome.message, latency: outcome.latency }), phase: outcome.phase }
  const json = JSON.stringify(doc)
  const fits = (p: ResultsPayload) => payloadBytes({ metadata: { name: '' }, ...p }) <= CONFIGMAP_PAYLOAD_MAX
  const forms: (() => ResultsPayload)[] = [
    () => ({ data: { 'results.csv': csv, 'results.json': json } }),
    () => ({ data: { 'results.csv': csv }, binaryData: { 'results.json.gz': gz(json) } }),
    () => ({ binaryData: { 'results.csv.gz': gz(csv), 'results.json.gz': gz(json) } }),
    () => {
      const slim: SweepResultsDoc = { ...doc, points: [], trials: doc.trials.map(({ latency: _l, ...t }) => t) }
      if (slim.best) slim.best = { ...slim.best, latency: undefined }
      delete slim.latency
      return { binaryData: { 'results.csv.gz': gz(csv), 'results.json.gz': gz(JSON.stringify(slim)) }, omitted: "results.json's points and latency percentiles (they follow from its trials)" }
    },
  ]
  for (const form of forms) {
    const p = form()
    if (fits(p)) return p
  }
  const csvOnly: ResultsPayload = { binaryData: { 'results.csv.gz': gz(csv) }, omitted: `results.json: its trials are more than ${CONFIGMAP_PAYLOAD_MAX} bytes even gzipped` }
  if (fits(csvOnly)) return csvOnly
  return { omitted: `results.csv and results.json: more than ${CONFIGMAP_PAYLOAD_MAX} bytes even gzipped (the parameters' values are large); each trial's results are in its own ConfigMap` }
}

export function resultsConfigMap(sw: SimSweepObject, p: ResultsPayload): ConfigMap {
  const cm: ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: resultsName(sw.metadata.name),
      namespace: sw.metadata.namespace,
      labels: { [SL.sweep]: sw.metadata.name, [L.managedBy]: FIELD_MANAGER },
      annotations: p.omitted ? { 'livesim.dev/omitted': p.omitted } : {},
      ownerReferences: [ownerRef(sw)],
    },
  }
  if (p.data) cm.data = p.data
  if (p.binaryData) cm.binaryData = p.binaryData
  return cm
}

/** results.json of the ConfigMap, whichever form it has; undefined when it holds none. */
export function readResultsDoc(cm: ConfigMap): SweepResultsDoc | undefined {
  if (cm.data?.['results.json']) return JSON.parse(cm.data['results.json']) as SweepResultsDoc
  if (cm.binaryData?.['results.json.gz']) return JSON.parse(gunzipSync(Buffer.from(cm.binaryData['results.json.gz'], 'base64')).toString('utf8')) as SweepResultsDoc
  return undefined
}

/** results.csv of the ConfigMap, whichever form it has. */
export function readResultsCsv(cm: ConfigMap): string | undefined {
  if (cm.data?.['results.csv'] !== undefined) return cm.data['results.csv']
  if (cm.binaryData?.['results.csv.gz']) return gunzipSync(Buffer.from(cm.binaryData['results.csv.gz'], 'base64')).toString('utf8')
  return undefined
}

export class SpecChangedError extends Error {}

/**
 * The finished trials' records kept in results.json, one per trial index (NotRun where none is
 * kept). A kept record made from another spec than this grid's (its spec hash differs) means the
 * sweep's spec changed after trials ran: SpecChangedError, naming the trial.
 */
export function keptRecords(grid: Grid, doc: SweepResultsDoc | undefined): TrialRecord[] {
  const out = emptyRecords(grid)
  for (const r of doc?.trials ?? []) {
    if (r.status === 'NotRun') continue
    if (!(Number.isInteger(r.point) && Number.isInteger(r.seedIndex) && r.point < grid.points && r.seedIndex < grid.seeds)) {
      throw new SpecChangedError(`results.json has trial ${r.name} (point ${r.point}, seed index ${r.seedIndex}), outside a grid of ${grid.points} points × ${grid.seeds} seeds`)
    }
    const i = trialIndex(grid, r)
    const want = out[i]!
    if (r.specHash !== want.specHash || r.name !== want.name || r.metrics.length !== grid.metrics.length) {
      throw new SpecChangedError(`trial ${r.name} ran with spec ${r.specHash}, but spec now makes it ${want.specHash}`)
    }
    out[i] = r
  }
  return out
}

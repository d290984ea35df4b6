// The SimSweep reconciler: a function of (the sweep, its trials and ConfigMaps as the caches show
// them) → API writes, idempotent and safe to re-run at any time.
//
// Each reconcile: validate the sweep (once per generation: sweep/validate.ts, as `livesim sweep`
// does) → read the finished trials' records kept in `<sweep>-results` → read each newly finished
// trial (its status and results ConfigMap) into its record → create the next trials in index order,
// never more than parallelism unfinished → write `<sweep>-results`, then status. Trials are created
// before the status that counts them is written, and the records are written before the status:
// whatever is cut short, the next reconcile finds it (plan.ts).
//
// Spec changes: CEL refuses changes of the grid-defining fields, parameter values included
// (crds.ts). Behind that rule, the trials' spec hashes are checked here: a trial made from another
// spec ends the sweep Failed (SpecChanged). parallelism, maxFailedTrials and ttlSecondsAfterFinished
// apply from the next reconcile on.
import type { Logger } from 'pino'
import { validateSimCluster, ValidationError } from '../../sim-runtime/api/validate.ts'
import { latencyComponent } from '../../sim-runtime/sweep/command.ts'
import { trial, trialManifest, type Grid } from '../../sim-runtime/sweep/grid.ts'
import { pointRows, type TrialRecord } from '../../sim-runtime/sweep/summary.ts'
import { validateSimSweep } from '../../sim-runtime/sweep/validate.ts'
import type { Result } from '../machinery/controller.ts'
import { recordEvent } from '../machinery/events.ts'
import { isConflict, isNotFound, R, type KubeClient, type KubeObject } from '../kube/rest.ts'
import type { SimClusterObject } from '../simcluster/objects.ts'
import { SIM } from '../simcluster/resources.ts'
import { ownedBy, parseTrialName, resultsName, SIM_SWEEPS, SL, SPEC_HASH_ANNOTATION, trialIndex, trialObject, type SimSweepObject } from './objects.ts'
import { createdMark, nextStep, type NextStep } from './plan.ts'
import {
  failedRecord,
  keptRecords,
  readResultsDoc,
  resultsConfigMap,
  resultsPayload,
  SpecChangedError,
  succeededRecord,
  trialResults,
  type ConfigMap,
  type LatencyOf,
  type SweepPhase,
} from './results.ts'
import { bestSummary, statusRows, sweepConditions, type SweepStatus } from './status.ts'

/** Trials running at once when spec.parallelism is not set: on a shared cluster, one. */
export const DEFAULT_PARALLELISM = 1

/** What the reconciler reads of an informer (machinery/informer.ts). */
export interface Cache<T> {
  get(key: string): T | undefined
  list(filter?: (o: T) => boolean): T[]
  upsert(o: T): void
}

export interface SweepCaches {
  simSweeps: Cache<SimSweepObject>
  simClusters: Cache<SimClusterObject>
  configMaps: Cache<ConfigMap>
}

export interface SweepReconcilerDeps {
  client: KubeClient
  caches: SweepCaches
  log: Logger
  now?: () => Date
}

interface Valid {
  uid: string
  generation: number
  grid: Grid
  latency: LatencyOf
}
interface Invalid {
  uid: string
  generation: number
  message: string
}

const key = (ns: string | undefined, name: string) => (ns ? `${ns}/${name}` : name)
const stamp = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z')
const LOST = 'the trial SimCluster was deleted before its results were read'

function isTerminal(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed'
}

export class SimSweepReconciler {
  private readonly d: SweepReconcilerDeps
  /** The validated grid per sweep, for its uid and generation (validation walks every grid point). */
  private readonly grids = new Map<string, Valid | Invalid>()
  /** The records last read from or written to `<sweep>-results`, by the ConfigMap's resourceVersion and the grid they were read for. */
  private readonly kept = new Map<string, { rv: string; grid: Grid; records: TrialRecord[]; phase?: string }>()

  constructor(deps: SweepReconcilerDeps) {
    this.d = deps
  }

  private now(): Date {
    return this.d.now?.() ?? new Date()
  }

  async reconcile(k: string): Promise<Result | void> {
    const sw = this.d.caches.simSweeps.get(k)
    if (!sw || sw.metadata.deletionTimestamp) {
      // Its trials and ConfigMap carry ownerReferences: the garbage collector deletes them.
      this.grids.delete(k)
      this.kept.delete(k)
      return
    }
    const old = (sw.status ?? {}) as SweepStatus
    const st: SweepStatus = structuredClone(old)
    st.observedGeneration = sw.metadata.generation ?? 0
    const started = (old.trials?.succeeded ?? 0) + (old.trials?.failed ?? 0) + (old.trials?.running ?? 0) > 0
    const failedReason = old.conditions?.find((c) => c.type === 'Failed')?.reason
    // A sweep refused before any trial ran may be corrected; any other end is final: a later change
    // (the TTL, say) is acknowledged by observedGeneration and changes nothing else.
    if (isTerminal(old.phase) && (started || failedReason !== 'InvalidSpec')) {
      if (old.observedGeneration !== st.observedGeneration) await this.writeStatus(sw, old, st, failedReason ?? 'Succeeded', old.message ?? '')
      return this.afterFinish(sw, st)
    }

    const g = this.gridOf(sw)
    if ('message' in g) {
      if (started) return this.finish(sw, old, st, 'Failed', 'SpecChanged', `the spec is no longer valid after trials ran: ${g.message}`)
      return this.finish(sw, old, st, 'Failed', 'InvalidSpec', g.message)
    }
    try {
      return await this.step(sw, old, st, g)
    } catch (err) {
      if (!(err instanceof SpecChangedError)) throw err
      return this.finish(sw, old, st, 'Failed', 'SpecChanged', `${err.message}: the grid-defining fields of a SimSweep are immutable (parameter values too); delete and re-create it to change them`)
    }
  }

  private gridOf(sw: SimSweepObject): Valid | Invalid {
    const k = key(sw.metadata.namespace, sw.metadata.name)
    const uid = sw.metadata.uid ?? ''
    const generation = sw.metadata.generation ?? 0
    const have = this.grids.get(k)
    if (have && have.uid === uid && have.generation === generation) return have
    let out: Valid | Invalid
    try {
      const grid = validateSimSweep({ apiVersion: sw.apiVersion, kind: sw.kind, metadata: { name: sw.metadata.name }, spec: sw.spec })
      out = { uid, generation, grid, latency: latencyComponent(grid) }
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err
      out = { uid, generation, message: err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') }
    }
    this.grids.set(k, out)
    return out
  }

  /** One step of a valid sweep that has not ended. */
  private async step(sw: SimSweepObject, old: SweepStatus, st: SweepStatus, v: Valid): Promise<Result> {
    const { grid } = v
    const ns = sw.metadata.namespace!
    const name = sw.metadata.name
    const records = this.keptOf(sw, grid)
    const keptStates = records.map((r) => r.status)
    const present = this.trialsOf(sw, grid, records)
    const waiting = this.harvest(grid, v.latency, ns, present, records)
    const counted = (old.trials?.succeeded ?? 0) + (old.trials?.failed ?? 0) + (old.trials?.running ?? 0)
    if (counted > records.length) throw new SpecChangedError(`status counts ${counted} trials created, more than the grid's ${records.length}`)
    const created = createdMark(counted, present.keys(), records.map((r) => r.status))
    await this.markLost(grid, ns, created, present, records)

    const next = nextStep({
      total: records.length,
      created,
      states: records.map((r) => r.status),
      parallelism: sw.spec.parallelism ?? DEFAULT_PARALLELISM,
      maxFailedTrials: sw.spec.maxFailedTrials ?? 0,
    })
    // Stops at a trial of the same name that another (deleted, not yet collected) SimSweep owns.
    let made = 0
    let blocked: string | undefined
    for (const i of next.create) {
      blocked = await this.createTrial(sw, grid, i)
      if (blocked) break
      made++
    }
    const now = this.now()
    if (created + made > 0 && !old.startTime) {
      st.startTime = stamp(now)
      await this.event(sw, 'Normal', 'Started', `sweep started: ${grid.points} points × ${grid.seeds} seeds = ${records.length} trials, ${sw.spec.parallelism ?? DEFAULT_PARALLELISM} at once`)
    }
    for (const [i, r] of records.entries()) {
      if (keptStates[i] === 'NotRun' && r.status === 'Failed') await this.event(sw, 'Warning', 'TrialFailed', `trial ${r.name} failed: ${r.message ?? ''}`.slice(0, 1000))
    }

    const phase: SweepPhase = next.finished ?? (created + made > 0 ? 'Running' : 'Pending')
    await this.writeResults(sw, grid, v.latency, records, phase, next.stopping)
    this.fill(st, grid, records, next, made)
    if (next.finished) {
      const message = next.finished === 'Failed' ? next.stopping! : `${next.succeeded} trials succeeded${next.failed ? `, ${next.failed} failed` : ''}; results in ConfigMap ${resultsName(name)}`
      return this.finish(sw, old, st, next.finished, next.finished === 'Failed' ? 'MaxFailedTrialsExceeded' : 'Succeeded', message)
    }
    st.phase = phase
    // A sweep refused as invalid and since corrected has not ended.
    delete st.completionTime
    const running = next.unfinished + made
    let message = next.stopping
      ? `${next.stopping}; waiting for ${running} running trial${running === 1 ? '' : 's'}`
      : `${next.succeeded + next.failed}/${records.length} trials done, ${running} running${next.failed ? `, ${next.failed} failed` : ''}`
    if (blocked) message += `; ${blocked}`
    await this.writeStatus(sw, old, st, next.stopping ? 'Stopping' : 'TrialsRunning', message)
    // Trials' changes are watched; a trial whose results ConfigMap is not seen yet is looked at again soon.
    return waiting || blocked ? { requeueAfterMs: blocked ? 2000 : 1000 } : {}
  }

  /** The records kept in `<sweep>-results` (this sweep's own ConfigMap only), read once per resourceVersion. */
  private keptOf(sw: SimSweepObject, grid: Grid): TrialRecord[] {
    const k = key(sw.metadata.namespace, sw.metadata.name)
    const cm = this.d.caches.configMaps.get(key(sw.metadata.namespace, resultsName(sw.metadata.name)))
    if (!cm || !ownedBy(cm, sw)) return keptRecords(grid, undefined)
    const rv = cm.metadata.resourceVersion ?? ''
    const memo = this.kept.get(k)
    if (memo && memo.rv === rv && memo.grid === grid) return memo.records.map((r) => ({ ...r }))
    const doc = readResultsDoc(cm)
    const records = keptRecords(grid, doc)
    this.kept.set(k, { rv, grid, records, phase: doc?.phase })
    return records.map((r) => ({ ...r }))
  }

  /** This sweep's trials in the cache, by index; a trial made from another spec than the grid's is SpecChangedError. */
  private trialsOf(sw: SimSweepObject, grid: Grid, records: readonly TrialRecord[]): Map<number, SimClusterObject> {
    const out = new Map<number, SimClusterObject>()
    const mine = this.d.caches.simClusters.list((o) => o.metadata.namespace === sw.metadata.namespace && o.metadata.labels?.[SL.sweep] === sw.metadata.name && ownedBy(o, sw))
    for (const o of mine) {
      const at = parseTrialName(sw.metadata.name, o.metadata.name)
      if (!at || at.point >= grid.points || at.seedIndex >= grid.seeds) throw new SpecChangedError(`trial ${o.metadata.name} is not a trial of a grid of ${grid.points} points × ${grid.seeds} seeds`)
      const i = trialIndex(grid, at)
      const hash = o.metadata.annotations?.[SPEC_HASH_ANNOTATION]
      if (hash !== records[i]!.specHash) throw new SpecChangedError(`trial ${o.metadata.name} was created with spec ${hash ?? '(none)'}, but spec now makes it ${records[i]!.specHash}`)
      out.set(i, o)
    }
    return out
  }

  /** Read every newly finished trial into its record; whether a succeeded trial's results are not in the cache yet. */
  private harvest(grid: Grid, latency: LatencyOf, ns: string, present: Map<number, SimClusterObject>, records: TrialRecord[]): boolean {
    let waiting = false
    for (const [i, o] of present) {
      if (records[i]!.status !== 'NotRun') continue
      const s = o.status as { phase?: string; message?: string; results?: { digest?: string } } | undefined
      const t = trial(grid, records[i]!.point, records[i]!.seedIndex)
      if (s?.phase === 'Failed') records[i] = failedRecord(grid, t, s.message ?? 'failed')
      if (s?.phase !== 'Succeeded') continue
      const results = trialResults(o.metadata.name, (n) => this.d.caches.configMaps.get(key(ns, n)))
      // A results ConfigMap is written before the status that says Succeeded; the cache may lag.
      if (results === 'missing' || (s.results?.digest && results.digest !== s.results.digest)) {
        waiting = true
        continue
      }
      const plan = validateSimCluster(trialManifest(grid, t)).plan
      records[i] = succeededRecord(grid, t, plan, results, latency)
    }
    return waiting
  }

  /** Trials below the created mark that are neither finished nor present: asked for; gone ones are Failed. */
  private async markLost(grid: Grid, ns: string, created: number, present: Map<number, SimClusterObject>, records: TrialRecord[]): Promise<void> {
    for (let i = 0; i < created; i++) {
      if (records[i]!.status !== 'NotRun' || present.has(i)) continue
      try {
        await this.d.client.get(SIM.clusters.item(ns, records[i]!.name))
        // There: the cache has not seen it yet.
      } catch (err) {
        if (!isNotFound(err)) throw err
        records[i] = failedRecord(grid, trial(grid, records[i]!.point, records[i]!.seedIndex), LOST)
      }
    }
  }

  /** Create trial i; undefined when it exists now, else why it cannot be created yet. */
  private async createTrial(sw: SimSweepObject, grid: Grid, i: number): Promise<string | undefined> {
    const t = trial(grid, Math.floor(i / grid.seeds), i % grid.seeds)
    try {
      const made = await this.d.client.create<SimClusterObject>(SIM.clusters.collection(sw.metadata.namespace), trialObject(sw, grid, t))
      this.d.caches.simClusters.upsert(made)
      return undefined
    } catch (err) {
      if (!isConflict(err)) throw err
    }
    // Created by an earlier reconcile whose status write did not land (the same trial, by its name),
    // or left by an earlier SimSweep of this name that the garbage collector has not deleted yet.
    const there = await this.d.client.get<SimClusterObject>(SIM.clusters.item(sw.metadata.namespace, t.name))
    if (ownedBy(there, sw)) return undefined
    return `waiting for SimCluster ${t.name}, not this sweep's (an earlier SimSweep's?), to be deleted`
  }

  /** `<sweep>-results`, written when what it says changed; a Warning when a smaller form left something out. */
  private async writeResults(sw: SimSweepObject, grid: Grid, latency: LatencyOf, records: TrialRecord[], phase: SweepPhase, message: string | undefined): Promise<void> {
    const k = key(sw.metadata.namespace, sw.metadata.name)
    const memo = this.kept.get(k)
    const cached = this.d.caches.configMaps.get(key(sw.metadata.namespace, resultsName(sw.metadata.name)))
    const same = memo && cached && ownedBy(cached, sw) && memo.rv === cached.metadata.resourceVersion && memo.grid === grid && memo.phase === phase && memo.records.every((r, i) => r.status === records[i]!.status)
    if (same) return
    const payload = resultsPayload(grid, records, { phase, message, latency })
    const body = resultsConfigMap(sw, payload)
    let written: ConfigMap
    try {
      written = await this.d.client.create<ConfigMap>(R.configMaps.collection(sw.metadata.namespace), body)
    } catch (err) {
      if (!isConflict(err)) throw err
      written = await this.d.client.request<ConfigMap>('PUT', R.configMaps.item(sw.metadata.namespace, body.metadata.name), body)
    }
    this.d.caches.configMaps.upsert(written)
    this.kept.set(k, { rv: written.metadata.resourceVersion ?? '', grid, records: records.map((r) => ({ ...r })), phase })
    if (payload.omitted && memo?.phase !== phase) await this.event(sw, 'Warning', 'ResultsTooLarge', `ConfigMap ${body.metadata.name} holds less: ${payload.omitted}`.slice(0, 1000))
  }

  /** Counts, the table of points and the best point, from the records. */
  private fill(st: SweepStatus, grid: Grid, records: readonly TrialRecord[], next: NextStep, made: number): void {
    st.trials = { total: records.length, succeeded: next.succeeded, failed: next.failed, running: next.unfinished + made }
    st.trialsSummary = `${next.succeeded + next.failed}/${records.length}`
    const { rows, best } = pointRows(grid, records)
    st.points = statusRows(rows)
    if (best !== undefined) {
      st.best = statusRows([rows[best]!])[0]
      st.bestSummary = bestSummary(grid, rows[best]!)
    } else {
      delete st.best
      delete st.bestSummary
    }
    st.results = { configMap: resultsName(grid.sweep) }
  }

  private async finish(sw: SimSweepObject, old: SweepStatus, st: SweepStatus, phase: 'Succeeded' | 'Failed', reason: string, message: string): Promise<Result> {
    st.phase = phase
    st.completionTime ??= stamp(this.now())
    if (old.phase !== phase || old.conditions?.find((c) => c.type === (phase === 'Failed' ? 'Failed' : 'Complete'))?.reason !== reason) {
      await this.event(sw, phase === 'Failed' ? 'Warning' : 'Normal', reason, message.slice(0, 1000))
    }
    await this.writeStatus(sw, old, st, reason, message)
    return this.afterFinish(sw, st)
  }

  /** After the end: once spec.ttlSecondsAfterFinished has passed, the trials go; the sweep and its results stay. */
  private async afterFinish(sw: SimSweepObject, st: SweepStatus): Promise<Result> {
    const ttl = (sw.spec as { ttlSecondsAfterFinished?: number }).ttlSecondsAfterFinished
    if (ttl === undefined || !st.completionTime) return {}
    const leftMs = Date.parse(st.completionTime) + ttl * 1000 - this.now().getTime()
    if (leftMs > 0) return { requeueAfterMs: leftMs }
    const ns = sw.metadata.namespace
    const mine = this.d.caches.simClusters.list((o) => o.metadata.namespace === ns && o.metadata.labels?.[SL.sweep] === sw.metadata.name && ownedBy(o, sw) && !o.metadata.deletionTimestamp)
    let deleted = 0
    for (const o of mine) {
      try {
        await this.d.client.delete(SIM.clusters.item(ns, o.metadata.name), { propagationPolicy: 'Background' })
        deleted++
      } catch (err) {
        // Gone already: the cache had not seen it go.
        if (!isNotFound(err)) throw err
      }
    }
    if (deleted > 0) await this.event(sw, 'Normal', 'TrialsDeleted', `${deleted} trial${deleted === 1 ? '' : 's'} deleted ${ttl}s after the sweep finished (ttlSecondsAfterFinished); the results stay in ConfigMap ${resultsName(sw.metadata.name)}`)
    return {}
  }

  private async writeStatus(sw: SimSweepObject, old: SweepStatus, st: SweepStatus, reason: string, message: string): Promise<void> {
    st.message = message.slice(0, 4000)
    st.conditions = sweepConditions(st, sw.metadata.generation ?? 0, reason, st.message, this.now())
    for (const f of Object.keys(st) as (keyof SweepStatus)[]) if (st[f] === undefined) delete st[f]
    if (JSON.stringify(st) === JSON.stringify(old)) return
    const nulls = Object.fromEntries(Object.keys(old).filter((f) => !(f in st)).map((f) => [f, null]))
    // Conditional on the resourceVersion: a status computed from a stale copy is refused (409) and redone.
    const written = await this.d.client.patch<SimSweepObject>(SIM_SWEEPS.item(sw.metadata.namespace, sw.metadata.name, 'status'), {
      metadata: { resourceVersion: sw.metadata.resourceVersion },
      status: { ...nulls, ...st },
    })
    this.d.caches.simSweeps.upsert(written)
    if (old.phase !== st.phase) this.d.log.info({ simsweep: key(sw.metadata.namespace, sw.metadata.name), phase: st.phase, reason }, 'phase changed')
  }

  private event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return recordEvent(this.d, this.now(), obj, type, reason, message)
  }
}

// SimCluster and SimHost reconcilers. Each is a function of (the object, what the caches and the
// leader show now) → API writes; both are idempotent and safe to re-run at any time, which is what
// lets a restarted operator pick a run up where it was.
//
// A run attempt: leader pod → (leader has an IP) → SimHosts (one per runtime of the placement,
// sync/placement.ts) carrying the leader URL and attempt → runtime pods (SimHost reconciler) → gang start in the leader → results → ConfigMap + status.
// A failed pod or a failed leader ends the attempt; within runPolicy.backoffLimit a new attempt
// starts with fresh pods, otherwise the run ends Failed.
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { validateSimCluster, ValidationError } from '../../sim-runtime/api/validate.ts'
import { formatDurationNs } from '../../sim-runtime/api/units.ts'
import type { RunPlan } from '../../sim-runtime/api/plan.ts'
import { placeHosts, type Placement } from '../../sim-runtime/sync/placement.ts'
import type { Informer } from '../machinery/informer.ts'
import type { Result } from '../machinery/controller.ts'
import { recordEvent } from '../machinery/events.ts'
import { ApiError, isConflict, isNotFound, R, type KubeClient, type KubeObject } from '../kube/rest.ts'
import { STRAGGLERS_SHOWN } from '../../sim-runtime/sync/profile.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'
import type { LeaderClient } from './leaderclient.ts'
import { resultsConfigMaps } from './results-configmaps.ts'
import { SIM } from './resources.ts'
import {
  configMap,
  hostPod,
  L,
  LEADER_SYNC_PORT,
  leaderPod,
  leaderService,
  names,
  liveSetup,
  placementStatus,
  simRuntime,
  simServiceAccount,
  tokenSecret,
  type OperatorSettings,
  type SimClusterObject,
  type SimHostObject,
} from './objects.ts'
import { conditionsFor, isTerminal, onlyProgressDiffers, type ClusterStatus } from './status.ts'

interface Pod extends KubeObject {
  status?: {
    phase?: string
    podIP?: string
    reason?: string
    message?: string
    containerStatuses?: { state?: { terminated?: { exitCode?: number; reason?: string; message?: string } } }[]
  }
}

export interface Caches {
  simClusters: Informer<SimClusterObject>
  simHosts: Informer<SimHostObject>
  pods: Informer<Pod>
  secrets: Informer<KubeObject & { data?: Record<string, string> }>
  configMaps: Informer<KubeObject>
  services: Informer<KubeObject>
  serviceAccounts: Informer<KubeObject>
}

export interface DomainMetrics {
  started: Counter
  succeeded: Counter
  failed: Counter
  virtualTime: Gauge
}

export function domainMetrics(registry: Registry): DomainMetrics {
  return {
    started: new Counter({ name: 'livesim_runs_started_total', help: 'Run attempts started.', registers: [registry] }),
    succeeded: new Counter({ name: 'livesim_runs_succeeded_total', help: 'Runs that succeeded.', registers: [registry] }),
    failed: new Counter({ name: 'livesim_runs_failed_total', help: 'Runs that failed for good.', registers: [registry] }),
    virtualTime: new Gauge({ name: 'livesim_virtual_time_seconds', help: 'Virtual time reached by a running SimCluster.', labelNames: ['simcluster'], registers: [registry] }),
  }
}

export interface ReconcilerDeps {
  client: KubeClient
  caches: Caches
  leader: LeaderClient
  settings: OperatorSettings
  log: Logger
  metrics: DomainMetrics
  /** Minimum wall time between two status writes that only move progress. */
  progressWriteMs?: number
  /**
   * Attempts that are over ("ns/cluster/attempt"), shared by both reconcilers: a pod for one of them
   * must never be created again, even by a reconcile that reads a stale cached SimHost.
   */
  finishedAttempts?: Set<string>
  now?: () => Date
}

/** Placements the SimCluster reconciler keeps: more than the runs in progress at once, in practice. */
const PLACEMENTS_CACHED_MAX = 256

const key = (ns: string | undefined, name: string) => (ns ? `${ns}/${name}` : name)

function podFailure(p: Pod): string | undefined {
  if (p.status?.phase !== 'Failed') return undefined
  const t = p.status.containerStatuses?.[0]?.state?.terminated
  const detail = t ? `exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message}` : ''}` : (p.status.message ?? p.status.reason ?? 'failed')
  return `pod ${p.metadata.name} failed: ${detail}`
}

export class SimClusterReconciler {
  private readonly d: ReconcilerDeps
  private readonly lastWrite = new Map<string, number>()
  private readonly acked = new Set<string>()
  /** The placement of each SimCluster (uid → generation and placement): it is a function of the spec alone. */
  private readonly placements = new Map<string, { generation: number; placement: Placement }>()

  constructor(deps: ReconcilerDeps) {
    this.d = deps
  }

  private now(): Date {
    return this.d.now?.() ?? new Date()
  }

  async reconcile(k: string): Promise<Result | void> {
    const sc = this.d.caches.simClusters.get(k)
    if (!sc || sc.metadata.deletionTimestamp) {
      this.lastWrite.delete(k)
      return
    }
    const ns = sc.metadata.namespace!
    const name = sc.metadata.name
    const old = (sc.status ?? {}) as ClusterStatus
    const st: ClusterStatus = structuredClone(old)
    const now = this.now()
    st.observedGeneration = sc.metadata.generation ?? 0

    let plan: RunPlan
    try {
      plan = validateSimCluster({ apiVersion: sc.apiVersion, kind: sc.kind, metadata: { name }, spec: sc.spec }).plan
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err
      if (old.phase !== 'Failed') await this.event(sc, 'Warning', 'InvalidSpec', err.message.slice(0, 1000))
      return this.finishFailed(sc, st, 'InvalidSpec', err.issues.map((i) => `${i.path}: ${i.message}`).join('; '))
    }
    const policy = sc.spec.runPolicy ?? {}

    if (isTerminal(st.phase)) {
      this.placements.delete(sc.metadata.uid ?? k)
      return this.afterFinish(sc, st, policy.ttlSecondsAfterFinished)
    }
    const placement = this.placementOf(sc, plan)
    st.placement = placementStatus(placement)

    // Objects every attempt shares.
    await this.ensure(R.serviceAccounts, this.d.caches.serviceAccounts, ns, names.serviceAccount(name), () => simServiceAccount(sc))
    await this.ensure(R.secrets, this.d.caches.secrets, ns, names.secret(name), () => tokenSecret(sc))
    await this.ensure(R.configMaps, this.d.caches.configMaps, ns, names.config(name), () => configMap(sc, plan, placement))
    await this.ensure(R.services, this.d.caches.services, ns, names.service(name), () => leaderService(sc))

    const attempt = st.attempt ?? 1
    // Pods of earlier attempts are garbage, whoever (re)created them.
    await this.cleanupAttempts(ns, name, (a) => a < attempt)
    if (!st.attempt) {
      st.attempt = 1
      st.startTime = now.toISOString().replace(/\.\d+Z$/, 'Z')
      this.d.metrics.started.inc()
      await this.event(sc, 'Normal', 'Started', `run started: ${plan.hosts.length} hosts in ${placement.runtimes.length} runtimes, endTime ${sc.spec.endTime}`)
    }
    st.hosts = { ready: st.hosts?.ready ?? 0, total: plan.hosts.length }
    st.hostsSummary = `${st.hosts.ready}/${st.hosts.total}`

    if (policy.activeDeadlineSeconds && st.startTime && now.getTime() - Date.parse(st.startTime) > policy.activeDeadlineSeconds * 1000) {
      await this.cleanupAttempt(ns, name, attempt)
      return this.finishFailed(sc, st, 'DeadlineExceeded', `the run took longer than activeDeadlineSeconds (${policy.activeDeadlineSeconds}s)`)
    }

    // The leader of this attempt.
    const lpName = names.leaderPod(name, attempt)
    const lp = this.d.caches.pods.get(key(ns, lpName))
    if (!lp) {
      // A finished attempt is never started again: our cached status is stale; wait for the fresh one.
      if (this.d.finishedAttempts?.has(`${ns}/${name}/${attempt}`)) return { requeueAfterMs: 500 }
      await this.createIgnoreExists(R.pods, ns, leaderPod(sc, attempt, this.d.settings))
      st.phase = 'Scheduling'
      return this.writeStatus(sc, old, st, 'CreatingLeader', `attempt ${attempt}: creating the leader pod`, false, 2000)
    }
    const failure = podFailure(lp) ?? this.hostPodFailure(ns, name, attempt)
    if (failure) return this.attemptFailed(sc, old, st, attempt, policy.backoffLimit ?? 2, failure)
    const ip = lp.status?.podIP
    if (!ip) {
      st.phase = 'Scheduling'
      return this.writeStatus(sc, old, st, 'SchedulingLeader', `attempt ${attempt}: waiting for the leader pod to start`, false, 2000)
    }
    const leaderUrl = `http://${ip.includes(':') ? `[${ip}]` : ip}:${LEADER_SYNC_PORT}`
    st.leader = leaderUrl

    // One SimHost per runtime, pointing at this attempt's leader.
    for (const [i, hosts] of placement.runtimes.entries()) {
      const want = simRuntime(sc, plan, hosts, i, leaderUrl, attempt)
      const have = this.d.caches.simHosts.get(key(ns, want.metadata.name))
      if (!have) await this.createIgnoreExists(SIM.hosts, ns, want)
      else if (have.spec.leader !== leaderUrl || have.spec.attempt !== attempt) {
        this.d.caches.simHosts.upsert(await this.d.client.patch<SimHostObject>(SIM.hosts.item(ns, want.metadata.name), { spec: { leader: leaderUrl, attempt } }))
      }
    }

    // What the leader says.
    const ls = await this.d.leader.status(ip)
    if (!ls) {
      st.phase = st.phase === 'Running' ? 'Running' : 'Scheduling'
      return this.writeStatus(sc, old, st, 'WaitingForLeader', `attempt ${attempt}: waiting for the leader to answer`, false, 1000)
    }
    st.hosts = { ready: ls.hosts.registered, total: ls.hosts.total }
    st.hostsSummary = `${ls.hosts.registered}/${ls.hosts.total}`
    st.virtualTimeNs = ls.virtualTimeNs
    st.virtualTime = formatDurationNs(ls.virtualTimeNs)
    st.progress = `${Math.floor(ls.progress * 100)}%`
    st.slowdown = ls.slowdown > 0 ? `${ls.slowdown.toFixed(2)}x` : undefined
    if (ls.stragglers?.length) st.stragglers = ls.stragglers.slice(0, STRAGGLERS_SHOWN)
    this.d.metrics.virtualTime.set({ simcluster: k }, ls.virtualTimeNs / 1e9)

    switch (ls.phase) {
      case 'Pending':
        st.phase = 'Scheduling'
        return this.writeStatus(sc, old, st, 'WaitingForHosts', `attempt ${attempt}: ${ls.hosts.registered}/${ls.hosts.total} hosts registered`, false, 1000)
      case 'Running':
        if (old.phase !== 'Running') await this.event(sc, 'Normal', 'Running', `attempt ${attempt}: every host registered; virtual time is running`)
        st.phase = 'Running'
        return this.writeStatus(sc, old, st, 'Running', `attempt ${attempt}: ${st.virtualTime} of ${sc.spec.endTime}`, true, 1000)
      case 'Failed':
        return this.attemptFailed(sc, old, st, attempt, policy.backoffLimit ?? 2, `leader: ${ls.reason ?? 'run failed'}`)
      case 'Succeeded': {
        const results = await this.d.leader.results(ip)
        if (!results) return this.writeStatus(sc, old, st, 'CollectingResults', 'fetching results from the leader', true, 1000)
        await this.storeResults(sc, results)
        st.phase = 'Succeeded'
        st.completionTime = now.toISOString().replace(/\.\d+Z$/, 'Z')
        st.progress = '100%'
        st.results = {
          configMap: names.results(name),
          digest: results.digest,
          barriers: results.sync.barriers,
          causalityViolations: results.sync.causalityViolations,
          wallSeconds: results.wall.seconds,
          ...(results.live ? { liveCellMode: results.live.cellMode } : {}),
        }
        this.d.metrics.succeeded.inc()
        await this.ack(ns, name, ip)
        await this.event(sc, 'Normal', 'Succeeded', `run succeeded: digest ${results.digest}, results in ConfigMap ${names.results(name)}`)
        await this.writeStatus(sc, old, st, 'Succeeded', `simulated ${formatDurationNs(results.virtualTimeNs)} in ${results.wall.seconds}s; results in ConfigMap ${names.results(name)}`, true, undefined, true)
        return this.afterFinish(sc, st, policy.ttlSecondsAfterFinished)
      }
    }
  }

  private placementOf(sc: SimClusterObject, plan: RunPlan): Placement {
    const uid = sc.metadata.uid ?? key(sc.metadata.namespace, sc.metadata.name)
    const generation = sc.metadata.generation ?? 0
    const have = this.placements.get(uid)
    if (have?.generation === generation) return have.placement
    const placement = placeHosts(plan, sc.spec.placement)
    // Finished runs drop theirs; this bounds what runs deleted mid-way leave behind.
    if (this.placements.size >= PLACEMENTS_CACHED_MAX) this.placements.clear()
    this.placements.set(uid, { generation, placement })
    return placement
  }

  private hostPodFailure(ns: string, cluster: string, attempt: number): string | undefined {
    for (const p of this.d.caches.pods.list((p) => p.metadata.namespace === ns && p.metadata.labels?.[L.cluster] === cluster && p.metadata.labels?.[L.role] === 'host' && p.metadata.labels?.[L.attempt] === String(attempt))) {
      const f = podFailure(p)
      if (f) return f
    }
    return undefined
  }

  private async attemptFailed(sc: SimClusterObject, old: ClusterStatus, st: ClusterStatus, attempt: number, backoffLimit: number, reason: string): Promise<Result> {
    const ns = sc.metadata.namespace!
    const name = sc.metadata.name
    const ip = this.d.caches.pods.get(key(ns, names.leaderPod(name, attempt)))?.status?.podIP
    // Record the decision durably first (a 409 here retries with nothing done yet); the pods of
    // the failed attempt go afterwards, and any later reconcile deletes them too.
    let result: Result
    if (attempt <= backoffLimit) {
      st.attempt = attempt + 1
      st.phase = 'Scheduling'
      st.hosts = { ready: 0, total: st.hosts?.total ?? 0 }
      st.hostsSummary = `0/${st.hosts.total}`
      delete st.leader
      result = await this.writeStatus(sc, old, st, 'Retrying', `attempt ${attempt} failed: ${reason}; retrying`, false, 500, true)
      this.d.metrics.started.inc()
      await this.event(sc, 'Warning', 'Retrying', `attempt ${attempt} failed (${reason}); starting attempt ${attempt + 1} of ${backoffLimit + 1}`)
    } else {
      result = await this.finishFailed(sc, st, 'BackoffLimitExceeded', `attempt ${attempt} failed: ${reason}; backoffLimit ${backoffLimit} reached`)
    }
    if (ip) await this.ack(ns, name, ip)
    await this.cleanupAttempt(ns, name, attempt)
    return result
  }

  private async finishFailed(sc: SimClusterObject, st: ClusterStatus, reason: string, message: string): Promise<Result> {
    const old = (sc.status ?? {}) as ClusterStatus
    st.phase = 'Failed'
    st.completionTime ??= this.now().toISOString().replace(/\.\d+Z$/, 'Z')
    if (old.phase !== 'Failed') {
      this.d.metrics.failed.inc()
      await this.event(sc, 'Warning', reason, message.slice(0, 1000))
    }
    await this.writeStatus(sc, old, st, reason, message, false, undefined, true)
    return this.afterFinish(sc, st, sc.spec.runPolicy?.ttlSecondsAfterFinished)
  }

  /** After a run ends: nothing to poll; delete the SimCluster once its TTL has passed. */
  private async afterFinish(sc: SimClusterObject, st: ClusterStatus, ttl: number | undefined): Promise<Result> {
    // A failed run keeps no pod; a successful one keeps the pods of its last attempt (their logs).
    const last = st.attempt ?? 1
    await this.cleanupAttempts(sc.metadata.namespace!, sc.metadata.name, (a) => st.phase === 'Failed' || a < last)
    if (ttl === undefined || !st.completionTime) return {}
    const leftMs = Date.parse(st.completionTime) + ttl * 1000 - this.now().getTime()
    if (leftMs > 0) return { requeueAfterMs: leftMs }
    try {
      await this.d.client.delete(SIM.clusters.item(sc.metadata.namespace, sc.metadata.name), { propagationPolicy: 'Background' })
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    return {}
  }

  /** Delete the pods of an attempt that is over (leader and hosts). Idempotent. */
  private async cleanupAttempt(ns: string, cluster: string, attempt: number): Promise<void> {
    this.d.finishedAttempts?.add(`${ns}/${cluster}/${attempt}`)
    await this.cleanupAttempts(ns, cluster, (a) => a === attempt)
  }

  private async cleanupAttempts(ns: string, cluster: string, over: (attempt: number) => boolean): Promise<void> {
    const pods = this.d.caches.pods.list((p) => {
      if (p.metadata.namespace !== ns || p.metadata.labels?.[L.cluster] !== cluster || p.metadata.deletionTimestamp) return false
      const a = Number(p.metadata.labels?.[L.attempt])
      if (!over(a)) return false
      this.d.finishedAttempts?.add(`${ns}/${cluster}/${a}`)
      return true
    })
    for (const p of pods) {
      try {
        await this.d.client.delete(R.pods.item(ns, p.metadata.name), { gracePeriodSeconds: 5 })
      } catch (err) {
        if (!isNotFound(err)) throw err
      }
    }
  }

  private async ack(ns: string, cluster: string, ip: string): Promise<void> {
    const k = `${ns}/${cluster}@${ip}`
    if (this.acked.has(k)) return
    const secret = this.d.caches.secrets.get(key(ns, names.secret(cluster)))
    const token = secret?.data?.token ? Buffer.from(secret.data.token, 'base64').toString('utf8') : undefined
    if (token && (await this.d.leader.ack(ip, token))) this.acked.add(k)
  }

  /** The results in ConfigMaps within the API server's limits (results-configmaps.ts); a Warning when detail did not fit. */
  private async storeResults(sc: SimClusterObject, results: SimResults): Promise<void> {
    const ns = sc.metadata.namespace!
    for (const body of resultsConfigMaps(sc, results)) {
      try {
        await this.d.client.create(R.configMaps.collection(ns), body)
      } catch (err) {
        if (!isConflict(err)) throw err
        await this.d.client.request('PUT', R.configMaps.item(ns, body.metadata.name), body)
      }
      const omitted = body.metadata.annotations?.['livesim.dev/omitted']
      if (omitted) await this.event(sc, 'Warning', 'ResultsTooLarge', `ConfigMap ${body.metadata.name} holds summary.json only, without ${omitted}`.slice(0, 1000))
    }
  }

  private async ensure(res: typeof R.pods, cache: Informer<KubeObject>, ns: string, name: string, build: () => KubeObject): Promise<void> {
    if (cache.get(key(ns, name))) return
    await this.createIgnoreExists(res, ns, build())
  }

  private async createIgnoreExists(res: typeof R.pods, ns: string, obj: KubeObject): Promise<void> {
    try {
      await this.d.client.create(res.collection(ns), obj)
    } catch (err) {
      if (!isConflict(err)) throw err
    }
  }

  private async writeStatus(
    sc: SimClusterObject,
    old: ClusterStatus,
    st: ClusterStatus,
    reason: string,
    message: string,
    hostsReady: boolean,
    requeueAfterMs: number | undefined,
    force = false,
  ): Promise<Result> {
    const k = key(sc.metadata.namespace, sc.metadata.name)
    st.message = message.slice(0, 4000)
    st.conditions = conditionsFor(st, sc.metadata.generation ?? 0, reason, st.message, hostsReady || st.phase === 'Succeeded', this.now())
    for (const f of Object.keys(st) as (keyof ClusterStatus)[]) if (st[f] === undefined) delete st[f]
    const same = JSON.stringify(st) === JSON.stringify(old)
    const last = this.lastWrite.get(k) ?? 0
    const throttled = !force && onlyProgressDiffers(old, st) && Date.now() - last < (this.d.progressWriteMs ?? 2000)
    if (!same && !throttled) {
      // The resourceVersion makes the write conditional: a status computed from a stale cached copy
      // (e.g. after the run was already marked Succeeded) is refused with 409 and retried on fresh data.
      const written = await this.d.client.patch<SimClusterObject>(SIM.clusters.item(sc.metadata.namespace, sc.metadata.name, 'status'), {
        metadata: { resourceVersion: sc.metadata.resourceVersion },
        status: { ...nullsFor(old, st), ...st },
      })
      this.d.caches.simClusters.upsert(written)
      this.lastWrite.set(k, Date.now())
      if (old.phase !== st.phase) this.d.log.info({ simcluster: k, phase: st.phase, reason }, 'phase changed')
    }
    return requeueAfterMs === undefined ? {} : { requeueAfterMs }
  }

  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return recordEvent(this.d, this.now(), obj, type, reason, message)
  }
}

/** Merge patch: fields present before and absent now must be sent as null to be removed. */
function nullsFor(old: ClusterStatus, st: ClusterStatus): Record<string, null> {
  const out: Record<string, null> = {}
  for (const f of Object.keys(old)) if (!(f in st)) out[f] = null
  return out
}

/** SimHost → its runtime pod for the current attempt; status shows the pod, its phase and virtual time. */
export class SimHostReconciler {
  private readonly d: ReconcilerDeps

  constructor(deps: ReconcilerDeps) {
    this.d = deps
  }

  async reconcile(k: string): Promise<Result | void> {
    const sh = this.d.caches.simHosts.get(k)
    if (!sh || sh.metadata.deletionTimestamp) return
    const ns = sh.metadata.namespace!
    const sc = this.d.caches.simClusters.get(key(ns, sh.spec.cluster))
    const phase = (sc?.status as ClusterStatus | undefined)?.phase
    const attempt = sh.spec.attempt ?? 1
    const podName = names.hostPod(sh.metadata.name, attempt)
    let pod = this.d.caches.pods.get(key(ns, podName))
    const over = this.d.finishedAttempts?.has(`${ns}/${sh.spec.cluster}/${attempt}`) ?? false
    // A refused pod (403: e.g. Pod Security admission refusing the privileged pod of a live host in a
    // namespace that does not admit privileged pods) is shown in the SimHost's status and retried.
    let refused: string | undefined
    if (!pod && !over && sh.spec.leader && sc && !isTerminal(phase) && (sc.status as ClusterStatus | undefined)?.attempt === attempt) {
      try {
        pod = (await this.d.client.create(R.pods.collection(ns), hostPod(sh, this.d.settings, sh.spec.group !== undefined && liveSetup(sc, sh.spec.group)))) as Pod
      } catch (err) {
        if (err instanceof ApiError && err.status === 403) {
          refused = `cannot create pod ${podName}: ${err.message}`
          this.d.log.warn({ simhost: k, err: err.message }, 'runtime pod refused')
        } else if (!isConflict(err)) throw err
      }
    }
    const podPhase = pod?.status?.phase
    const status: Record<string, unknown> = {
      observedGeneration: sh.metadata.generation ?? 0,
      phase: podPhase === 'Running' || podPhase === 'Succeeded' || podPhase === 'Failed' ? podPhase : 'Pending',
      pod: pod ? podName : undefined,
      // Every host stands at the same barrier, so a host's virtual time is the run's; written once the
      // run has ended rather than on every progress poll (status writes are rate-limited).
      virtualTime: isTerminal(phase) ? (sc?.status as ClusterStatus | undefined)?.virtualTime : undefined,
    }
    const f = pod ? podFailure(pod) : undefined
    if (f) status.message = f
    else if (refused) status.message = refused.slice(0, 4000)
    for (const x of Object.keys(status)) if (status[x] === undefined) delete status[x]
    const old = sh.status ?? {}
    if (JSON.stringify({ ...old, conditions: undefined }) !== JSON.stringify({ ...status, conditions: undefined })) {
      const written = await this.d.client.patch<SimHostObject>(SIM.hosts.item(ns, sh.metadata.name, 'status'), {
        metadata: { resourceVersion: sh.metadata.resourceVersion },
        status: { ...Object.fromEntries(Object.keys(old).map((x) => [x, null])), ...status },
      })
      this.d.caches.simHosts.upsert(written)
    }
    return refused ? { requeueAfterMs: 10_000 } : undefined
  }
}


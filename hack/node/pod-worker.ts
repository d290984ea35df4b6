// One pod on the node: its directory and IP, its containers as processes (init containers first,
// restarts with backoff by restartPolicy, probes), its status as a kubelet reports it, and its end:
// graceful termination on deletion, then the final DELETE.
import { existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { ApiError, isNotFound, R, type KubeClient } from '../../operator/kube/rest.ts'
import { ContainerRun, signalGroup, type Exit } from './container.ts'
import { ConfigError, commandLine, containerEnv } from './env.ts'
import type { IpAllocator } from './ipam.ts'
import { Prober, type ProbeTarget } from './probes.ts'
import { PodCredentials, type ApiServerInfo } from './serviceaccount.ts'
import { now, type Pod, type PodCondition } from './types.ts'

/** What every pod worker shares: the node's identity, its API client and its resources. */
export interface NodeContext {
  client: KubeClient
  log: Logger
  nodeName: string
  hostIP: string
  podsDir: string
  api: ApiServerInfo
  /** bin/livesim.js of this checkout: what the command `livesim` runs. */
  livesimCli: string
  ips: IpAllocator
}

type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed'
const TERMINAL = new Set(['Succeeded', 'Failed'])
const OWNED_CONDITIONS = new Set(['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready'])
const BACKOFF_INITIAL_MS = 1_000
const BACKOFF_MAX_MS = 30_000
/** A container that ran this long before exiting starts over at the initial backoff. */
const BACKOFF_RESET_MS = 2 * BACKOFF_MAX_MS

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function gracePeriodSeconds(pod: Pod): number {
  return (pod.metadata.deletionGracePeriodSeconds as number | undefined) ?? pod.spec.terminationGracePeriodSeconds ?? 30
}

export class PodWorker {
  readonly uid: string
  readonly key: string
  readonly dir: string
  private pod: Pod
  private readonly ctx: NodeContext
  private readonly log: Logger
  private readonly inits: ContainerRun[]
  private readonly mains: ContainerRun[]
  private readonly creds: PodCredentials
  private ip = ''
  private startTime: string | undefined
  private phase: Phase = 'Pending'
  /** new → running (containers managed) → done (nothing runs any more). */
  private lifecycle: 'new' | 'running' | 'done' = 'new'
  /** We ran this pod and own its status (not so for a pod that finished before we saw it). */
  private ran = false
  private initDone = false
  private terminating: Promise<void> | undefined
  /** No more API calls: the pod is gone from the API, or the node is shutting down. */
  private offline = false
  private grace: { until: number; timer: NodeJS.Timeout; resolve: () => void } | undefined
  private readonly conditionTimes = new Map<string, { status: string; time: string }>()
  private statusDirty = false
  private statusLoop: Promise<void> | undefined
  private lastSent = ''

  constructor(ctx: NodeContext, pod: Pod) {
    this.ctx = ctx
    this.pod = pod
    this.uid = pod.metadata.uid ?? ''
    this.key = `${pod.metadata.namespace}/${pod.metadata.name}`
    this.dir = path.join(ctx.podsDir, `${pod.metadata.namespace}_${pod.metadata.name}`)
    this.log = ctx.log.child({ pod: this.key })
    this.inits = (pod.spec.initContainers ?? []).map((c) => new ContainerRun(c, this.dir))
    this.mains = pod.spec.containers.map((c) => new ContainerRun(c, this.dir))
    this.creds = new PodCredentials(ctx.client, ctx.api, pod, this.dir, this.log)
  }

  /** Every informer event for the pod (add, update, resync) lands here. */
  update(pod: Pod): void {
    this.pod = pod
    if (pod.metadata.deletionTimestamp) {
      void this.terminate(gracePeriodSeconds(pod), true)
      return
    }
    if (this.lifecycle === 'new') this.begin()
    else this.scheduleStatus() // readiness gates may have changed
  }

  /** The pod disappeared from the API (force-deleted, or deleted while we were not watching). */
  vanished(): Promise<void> {
    this.offline = true
    return this.terminate(gracePeriodSeconds(this.pod), false)
  }

  /** The node shuts down: stop every process within graceMs, without API calls. */
  shutdown(graceMs: number): Promise<void> {
    this.offline = true
    return this.terminate(Math.min(gracePeriodSeconds(this.pod), graceMs / 1000), false)
  }

  /** Synchronous last resort (process exit): SIGKILL every container's process group. */
  killNow(): void {
    for (const c of [...this.inits, ...this.mains]) c.signal('SIGKILL')
  }

  // --- start ---------------------------------------------------------------------------------

  private begin(): void {
    this.lifecycle = 'running'
    const phase = this.pod.status?.phase
    if (phase && TERMINAL.has(phase)) {
      // Finished before this node process saw it: nothing to run.
      this.phase = phase as Phase
      this.lifecycle = 'done'
      return
    }
    this.ran = true
    mkdirSync(path.join(this.dir, 'work'), { recursive: true })
    // Logs of an earlier pod with the same name are replaced; a restarted node keeps appending.
    const uidFile = path.join(this.dir, 'uid')
    if (!existsSync(uidFile) || readFileSync(uidFile, 'utf8') !== this.uid) {
      for (const c of [...this.inits, ...this.mains]) if (existsSync(c.logPath)) truncateSync(c.logPath)
      writeFileSync(uidFile, this.uid)
    }
    const previous = this.pod.status?.podIP
    if (this.pod.spec.hostNetwork) this.ip = this.ctx.hostIP
    else if (previous && this.ctx.ips.reserve(previous)) this.ip = previous
    else this.ip = this.ctx.ips.next()
    this.startTime = this.pod.status?.startTime ?? now()
    this.adoptStatuses()
    this.log.info({ ip: this.ip, dir: this.dir }, 'pod admitted')
    this.scheduleStatus()
    this.runNext()
  }

  /**
   * A pod that an earlier node process ran (it was killed with the node, or the node crashed):
   * its containers start again, counted as restarts, as if they had been killed.
   */
  private adoptStatuses(): void {
    const prev = [...(this.pod.status?.initContainerStatuses ?? []), ...(this.pod.status?.containerStatuses ?? [])]
    for (const c of [...this.inits, ...this.mains]) {
      const p = prev.find((s) => s.name === c.spec.name)
      if (!p || !(p.state.running || p.state.terminated)) continue
      c.restartCount = p.restartCount + 1
      c.lastState = p.state.running
        ? { terminated: { exitCode: 137, signal: 9, reason: 'Error', message: 'killed with an earlier livesim node process', startedAt: p.state.running.startedAt, finishedAt: now() } }
        : p.state
    }
  }

  /** Start whatever may start now: init containers one at a time, then all the others. */
  private runNext(): void {
    if (this.lifecycle !== 'running' || this.terminating) return
    for (const c of this.inits) {
      if (c.isSidecar) {
        if (c.status === 'idle') void this.startContainer(c)
        if (!c.started) return // the next init container waits for the sidecar to have started
        continue
      }
      if (c.state.terminated?.exitCode === 0 && c.status === 'exited') continue
      if (c.status === 'idle') void this.startContainer(c)
      return
    }
    for (const c of this.mains) if (c.status === 'idle') void this.startContainer(c)
  }

  /** All init containers done (sidecars started); stays true once true, as the kubelet's Initialized. */
  private initialized(): boolean {
    this.initDone ||= this.inits.every((c) => (c.isSidecar ? c.started : c.status === 'exited' && c.state.terminated?.exitCode === 0))
    return this.initDone
  }

  private async startContainer(c: ContainerRun): Promise<void> {
    c.status = 'starting'
    let spawnSpec
    try {
      const kubeconfig = await this.creds.kubeconfig()
      const work = path.join(this.dir, 'work')
      const api = this.ctx.api
      // What the image and the kubelet would provide; visible to $(VAR) as service variables are.
      const base: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        HOME: work,
        TMPDIR: work,
        HOSTNAME: this.pod.metadata.name,
        KUBERNETES_SERVICE_HOST: api.host,
        KUBERNETES_SERVICE_PORT: api.port,
        KUBERNETES_SERVICE_PORT_HTTPS: api.port,
        ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
      }
      const own = await containerEnv(this.ctx.client, this.pod, c.spec, { podIP: this.ip, hostIP: this.ctx.hostIP }, base)
      const env = { ...base, ...own }
      const wd = c.spec.workingDir
      const cwd = wd && path.isAbsolute(wd) && existsSync(wd) && statSync(wd).isDirectory() ? wd : work
      spawnSpec = { ...commandLine(c.spec, env, this.ctx.livesimCli), env, cwd }
    } catch (err) {
      if (this.terminating || this.lifecycle !== 'running') return
      const message = (err as Error).message
      const reason = err instanceof ConfigError ? 'CreateContainerConfigError' : 'CreateContainerError'
      c.state = { waiting: { reason, message } }
      this.log.warn({ container: c.spec.name, reason, err: message }, 'container cannot start; retrying')
      this.retry(c, false)
      return
    }
    if (this.terminating || this.lifecycle !== 'running') return
    c.spawn(spawnSpec, (e) => this.exited(c, e))
    if (c.pid === undefined) return // could not start: exited() follows
    this.log.info({ container: c.spec.name, pid: c.pid, command: [spawnSpec.file, ...spawnSpec.args], log: c.logPath, ip: this.ip, restartCount: c.restartCount }, 'container started')
    this.startProbes(c, { podIP: this.ip, container: c.spec, env: spawnSpec.env, cwd: spawnSpec.cwd })
    this.scheduleStatus()
    this.runNext()
  }

  private startProbes(c: ContainerRun, target: ProbeTarget): void {
    const s = c.spec
    const kill = (why: string) => {
      this.log.info({ container: s.name }, `${why}: restarting the container`)
      c.stopProbes()
      c.signal('SIGTERM')
      const pid = c.pid
      const t = setTimeout(() => pid !== undefined && c.pid === pid && signalGroup(pid, 'SIGKILL'), gracePeriodSeconds(this.pod) * 1000)
      void c.exited().then(() => clearTimeout(t))
    }
    const afterStartup = () => {
      c.started = true
      if (s.readinessProbe) {
        const p = new Prober(s.readinessProbe, target, (ok) => {
          c.ready = ok
          this.scheduleStatus()
        })
        c.probers.push(p)
        p.start()
      } else {
        c.ready = true
      }
      if (s.livenessProbe) {
        const p = new Prober(s.livenessProbe, target, (ok) => ok || kill('liveness probe failed'))
        c.probers.push(p)
        p.start()
      }
      this.scheduleStatus()
      this.runNext()
    }
    if (!s.startupProbe) return afterStartup()
    const p = new Prober(s.startupProbe, target, (ok) => {
      p.stop()
      if (ok) afterStartup()
      else kill('startup probe failed')
    })
    c.probers.push(p)
    p.start()
  }

  private exited(c: ContainerRun, e: Exit): void {
    c.stopProbes()
    c.ready = false
    c.started = false
    c.status = 'exited'
    const t = c.state.terminated
    this.log.info({ container: c.spec.name, exitCode: e.exitCode, signal: e.signal, reason: t?.reason }, 'container exited')
    if (this.terminating || this.lifecycle !== 'running') {
      this.scheduleStatus()
      return
    }
    const policy = this.pod.spec.restartPolicy ?? 'Always'
    const isInit = this.inits.includes(c)
    let restart: boolean
    if (c.isSidecar) restart = true
    else if (isInit) restart = e.exitCode !== 0 && policy !== 'Never'
    else restart = policy === 'Always' || (policy === 'OnFailure' && e.exitCode !== 0)
    if (restart) {
      this.retry(c, true)
    } else if (isInit && e.exitCode === 0) {
      this.runNext()
    }
    this.updatePhase()
    this.scheduleStatus()
  }

  /** Start the container again after an exponential backoff. */
  private retry(c: ContainerRun, afterExit: boolean): void {
    const ranLong = afterExit && Date.now() - c.startedAtMs >= BACKOFF_RESET_MS
    c.backoffMs = ranLong || c.backoffMs === 0 ? BACKOFF_INITIAL_MS : Math.min(c.backoffMs * 2, BACKOFF_MAX_MS)
    if (afterExit) {
      c.lastState = c.state
      c.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${c.backoffMs / 1000}s restarting failed container=${c.spec.name} pod=${this.pod.metadata.name}_${this.pod.metadata.namespace}(${this.uid})` } }
    }
    c.status = 'backoff'
    c.timer = setTimeout(() => {
      c.timer = undefined
      if (this.terminating || this.lifecycle !== 'running') return
      if (afterExit) c.restartCount++
      void this.startContainer(c)
    }, c.backoffMs)
    this.scheduleStatus()
  }

  private updatePhase(): void {
    if (TERMINAL.has(this.phase)) return
    const initFailed = this.inits.some((c) => !c.isSidecar && c.status === 'exited' && c.state.terminated?.exitCode !== 0)
    if (initFailed) this.phase = 'Failed'
    else if (!this.initialized() || this.mains.some((c) => c.status === 'idle' || (c.status === 'starting' && c.restartCount === 0) || (c.status === 'backoff' && !c.lastState.terminated))) this.phase = 'Pending'
    else if (this.mains.some((c) => c.status !== 'exited')) this.phase = 'Running'
    else this.phase = this.mains.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed'
    if (TERMINAL.has(this.phase)) {
      this.log.info({ phase: this.phase }, 'pod finished')
      this.finish()
    }
  }

  /** Nothing will run any more: stop sidecars, timers, token refreshes; give the IP back. */
  private finish(): void {
    this.lifecycle = 'done'
    this.creds.stop()
    for (const c of [...this.inits, ...this.mains]) {
      if (c.timer) clearTimeout(c.timer)
      c.stopProbes()
      const pid = c.pid
      if (pid === undefined) continue // the usual case; sidecars may still run
      c.signal('SIGTERM')
      const t = setTimeout(() => c.pid === pid && c.signal('SIGKILL'), gracePeriodSeconds(this.pod) * 1000)
      void c.exited().then(() => clearTimeout(t))
    }
    if (this.ip && this.ip !== this.ctx.hostIP) this.ctx.ips.release(this.ip)
  }

  // --- termination ---------------------------------------------------------------------------

  /**
   * Stop the pod like the kubelet: SIGTERM to every container's process group, SIGKILL after the
   * grace period, final status, then (when `finalize`) DELETE with grace 0 to remove the object.
   * A second call with a shorter grace period brings the SIGKILL forward.
   */
  terminate(graceSec: number, finalize: boolean): Promise<void> {
    if (this.terminating) {
      this.shortenGrace(graceSec * 1000)
      return this.terminating
    }
    this.terminating = (async () => {
      const all = [...this.inits, ...this.mains]
      const running = all.filter((c) => c.pid !== undefined)
      this.log.info({ graceSeconds: graceSec, running: running.map((c) => c.spec.name) }, 'stopping pod')
      for (const c of all) {
        if (c.timer) clearTimeout(c.timer)
        c.stopProbes()
      }
      this.creds.stop()
      for (const c of running) c.signal('SIGTERM')
      const allExited = Promise.all(running.map((c) => c.exited()))
      await Promise.race([allExited, this.waitGrace(graceSec * 1000)])
      for (const c of running) {
        if (c.pid === undefined) continue
        this.log.info({ container: c.spec.name, pid: c.pid }, 'grace period over: SIGKILL')
        c.signal('SIGKILL')
      }
      await Promise.race([allExited, sleep(10_000)])
      if (this.grace) clearTimeout(this.grace.timer)
      if (this.lifecycle === 'running') {
        // Killed before finishing: terminal all the same (the kubelet does this before deletion).
        this.phase = this.mains.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed'
        this.finish()
      }
      this.lifecycle = 'done'
      if (this.offline) return
      if (this.ran) {
        this.scheduleStatus()
        await this.flushStatus()
      }
      if (!finalize || this.offline) return
      try {
        await this.ctx.client.delete(R.pods.item(this.pod.metadata.namespace, this.pod.metadata.name), {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          gracePeriodSeconds: 0,
          preconditions: { uid: this.uid },
        })
        this.log.info('pod deleted')
      } catch (err) {
        // Gone already, or a new pod with the same name (uid precondition): nothing to do.
        if (!isNotFound(err) && !(err instanceof ApiError && err.status === 409)) this.log.warn({ err: (err as Error).message }, 'final pod deletion failed')
      }
    })()
    return this.terminating
  }

  private waitGrace(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.grace = { until: Date.now() + ms, timer: setTimeout(resolve, ms), resolve }
    })
  }

  private shortenGrace(ms: number): void {
    const g = this.grace
    if (!g || Date.now() + ms >= g.until) return
    clearTimeout(g.timer)
    g.until = Date.now() + ms
    g.timer = setTimeout(g.resolve, ms)
  }

  // --- status --------------------------------------------------------------------------------

  private condition(type: string, ok: boolean, reason?: string, message?: string): PodCondition {
    const status = ok ? 'True' : 'False'
    let t = this.conditionTimes.get(type)
    if (!t || t.status !== status) {
      t = { status, time: now() }
      this.conditionTimes.set(type, t)
    }
    return { type, status, ...(ok || !reason ? {} : { reason }), ...(message && !ok ? { message } : {}), lastTransitionTime: t.time }
  }

  private buildStatus(): unknown {
    const terminal = TERMINAL.has(this.phase)
    const initialized = this.initialized() || (terminal && this.inits.every((c) => c.isSidecar || c.state.terminated?.exitCode === 0))
    const notReady = [...this.inits.filter((c) => c.isSidecar), ...this.mains].filter((c) => !c.ready).map((c) => c.spec.name)
    const containersReady = !terminal && notReady.length === 0
    const foreign = (this.pod.status?.conditions ?? []).filter((c) => !OWNED_CONDITIONS.has(c.type))
    const gates = (this.pod.spec.readinessGates ?? []).map((g) => g.conditionType)
    const gatesOk = gates.every((g) => foreign.some((c) => c.type === g && c.status === 'True'))
    const notReadyWhy = terminal ? 'PodCompleted' : !containersReady ? 'ContainersNotReady' : 'ReadinessGatesNotReady'
    const notReadyMsg = terminal ? undefined : !containersReady ? `containers with unready status: [${notReady.join(' ')}]` : 'corresponding condition of pod readiness gate is not True'
    const conditions = [
      ...foreign,
      this.condition('PodReadyToStartContainers', !!this.ip && this.lifecycle !== 'done'),
      this.condition('Initialized', initialized, 'ContainersNotInitialized', 'containers with incomplete status: init containers'),
      this.condition('ContainersReady', containersReady, terminal ? 'PodCompleted' : 'ContainersNotReady', notReadyMsg),
      this.condition('Ready', containersReady && gatesOk, notReadyWhy, notReadyMsg),
    ]
    const ips = this.ip ? { podIP: this.ip, podIPs: [{ ip: this.ip }] } : {}
    return {
      status: {
        phase: this.phase,
        hostIP: this.ctx.hostIP,
        hostIPs: [{ ip: this.ctx.hostIP }],
        ...ips,
        startTime: this.startTime,
        conditions,
        ...(this.inits.length ? { initContainerStatuses: this.inits.map((c) => c.toStatus()) } : {}),
        containerStatuses: this.mains.map((c) => c.toStatus()),
      },
    }
  }

  /** Ask for a status update; updates are coalesced and an unchanged status is not sent. */
  private scheduleStatus(): void {
    if (this.offline || !this.ran) return
    this.statusDirty = true
    this.statusLoop ??= this.sendStatus().finally(() => {
      this.statusLoop = undefined
    })
  }

  private async sendStatus(): Promise<void> {
    await Promise.resolve() // let a burst of changes land first
    while (this.statusDirty && !this.offline) {
      this.statusDirty = false
      this.updatePhase()
      const body = this.buildStatus()
      const text = JSON.stringify(body)
      if (text === this.lastSent) continue
      try {
        await this.ctx.client.patch(R.pods.item(this.pod.metadata.namespace, this.pod.metadata.name, 'status'), body)
        this.lastSent = text
      } catch (err) {
        if (isNotFound(err)) {
          this.offline = true // deleted: the informer's DELETED event follows
          return
        }
        const status = err instanceof ApiError ? err.status : 0
        if (status >= 400 && status < 500 && status !== 409 && status !== 429) {
          // Rejected (invalid): sending it again will not help; the next change sends a new one.
          this.log.error({ err: (err as Error).message }, 'pod status update rejected')
          continue
        }
        this.log.warn({ err: (err as Error).message }, 'pod status update failed; retrying')
        this.statusDirty = true
        await sleep(1_000)
      }
    }
  }

  private async flushStatus(): Promise<void> {
    while (this.statusLoop) await this.statusLoop
  }
}

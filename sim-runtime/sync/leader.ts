// The leader: drives global virtual-time barriers for every runtime over HTTP/2.
//
// Each runtime opens one long-lived POST /v1/sync stream with the cluster's bearer token and sends
// HELLO {protocol, runtime, hosts}. The leader answers WELCOME with the SimCluster, the runtime
// builds its hosts and reports epoch 0. When every host of the plan is claimed and reported (gang
// start) the leader grants windows: GRANT(epoch, windowEnd, messages) → REPORT(epoch, nextEvent,
// messages) from all → next window. The loop is event-driven: no promise or timer per barrier.
// That is the star (LIVESIM_SYNC=star), where the leader relays every cross-runtime message. By
// default runtimes send those to each other (peer batches, peers.ts): at gang start the leader hands
// each runtime PEERS (the others' addresses from their HELLOs, who carries which host), GRANTs carry
// no message, and instead of REPORTs the leader reads TALLYs, the earliest pending time per runtime,
// from every runtime or, above LIVESIM_SYNC_TREE_MIN runtimes, from the top of an aggregation tree.
//
// Anything a runtime does wrong after authenticating (malformed frame, wrong version, duplicate
// host, disconnect, error, silence past the barrier timeout) ends the run as Failed with a reason;
// nothing here throws out of an event handler. Unauthenticated requests get 401 and are counted.
//
// GET /v1/status, /metrics and /healthz are served on the HTTP/2 port and, for probes, curl and
// Prometheus, on a second HTTP/1.1 port.
//
// A leader may instead carry every host itself (runEmbedded: `livesim run` of a cluster without
// live components): the same windows, run back to back in this process, no runtime connects.
import assert from 'node:assert/strict'
import { timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import type { Logger } from 'pino'
import { Counter, Gauge, Registry } from 'prom-client'
import type { RunPlan } from '../api/plan.ts'
import type { SimCluster } from '../api/schema.ts'
import { formatDurationNs } from '../api/units.ts'
import { loadCustomComponents } from '../components/custom.ts'
import type { HostResults } from '../engine/group.ts'
import { SLOT_PAYLOAD, WIRE_SLOTS } from '../engine/message.ts'
import {
  decodeBarrier,
  decodeJson,
  encodeBarrier,
  encodeJson,
  encodeOpen,
  F_ABORT,
  F_ERROR,
  F_FINISH,
  F_GRANT,
  F_HELLO,
  F_PEERS,
  F_REPORT,
  F_RESULTS,
  F_TALLY,
  F_WELCOME,
  TALLY_SLOTS,
  decodeTally,
  FrameDecoder,
  FrameError,
  frameName,
  PROTOCOL_VERSION,
  type Frame,
} from './frames.ts'
import { EmbeddedRuntime } from './embedded.ts'
import { subtreeOf, syncFromEnv, treeChildren, type PeerTable, type SyncOptions } from './peers.ts'
import { BarrierProfiler, STRAGGLERS_SHOWN, type Straggler } from './profile.ts'
import { assembleResults, type SimResults } from './results.ts'
import { WindowClock, windowsFromEnv, type Stepping, type Windows } from './windows.ts'

/**
 * Wall time an embedded run computes before it lets the event loop run (status, /metrics, the
 * watchdog, signals): the longest a Ctrl-C waits, and the finest grain of its progress.
 */
export const EMBEDDED_SLICE_MS = 20
/** The name of the embedded runtime in status and errors, as the first runtime process would have. */
const EMBEDDED_ID = 'runtime-0'

export const H2_SETTINGS: http2.Settings = {
  initialWindowSize: 32 * 1024 * 1024,
  maxFrameSize: 1024 * 1024,
  enablePush: false,
}

export interface LeaderOptions {
  cluster: SimCluster
  plan: RunPlan
  token: string
  /** Directory that Custom module paths are relative to, as the runtimes see it. */
  baseDir: string
  logger: Logger
  stepping?: Stepping
  /** Topology-aware windows (the default; LIVESIM_WINDOWS) or global ones (windows.ts). */
  windows?: Windows
  /** Wall time allowed from listen() until every host is registered and started. */
  registerTimeoutMs?: number
  /** Wall time allowed for one barrier (every runtime's report). */
  barrierTimeoutMs?: number
  /** Peer batches or the star, and the aggregation tree (peers.ts); default: syncFromEnv(). */
  sync?: SyncOptions
}

export type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed'

export class RunFailed extends Error {}

interface Runtime {
  id: string
  stream: http2.ServerHttp2Stream
  decoder: FrameDecoder
  state: 'hello' | 'starting' | 'running' | 'finishing' | 'done'
  hosts: number[]
  /** Where its peers reach it (HELLO), for peer batches. */
  peerUrl?: string
  /** Messages to hand over with the next GRANT, count × WIRE_SLOTS. */
  inbox: Float64Array
  inboxCount: number
  /** Payloads of the inbox messages that carry one, in inbox order. */
  inboxPayloads: Buffer[]
  nextEventNs: number
  reportedEpoch: number
  /** Per host it carries: its share of the windows' wall time, ns (from its RESULTS). */
  hostBusyNs?: Record<string, number>
  /** Its slot in the leader's BarrierProfiler (set at gang start). */
  slot: number
  results?: Record<string, HostResults>
}

export interface LeaderStatus {
  cluster: string
  phase: Phase
  reason?: string
  virtualTimeNs: number
  virtualTime: string
  endTimeNs: number
  progress: number
  epoch: number
  barriers: number
  wallSeconds: number
  slowdown: number
  hosts: { total: number; registered: number; ready: number }
  /** `embedded`: this runtime is the leader's own process, carrying every host (runEmbedded). */
  runtimes: { id: string; hosts: string[]; state: string; embedded?: true }[]
  /** Once running: the runtimes most often last to report a barrier (profile.ts), at most five. */
  stragglers?: Straggler[]
  /**
   * What passed through the leader on the runtimes' sync streams: frames and bytes in and out, and
   * cross-runtime messages it relayed (0 when runtimes send them to each other, peer batches).
   */
  traffic: { framesIn: number; framesOut: number; bytesIn: number; bytesOut: number; relayedMessages: number }
}


export class Leader {
  private readonly opts: LeaderOptions
  private readonly plan: RunPlan
  private readonly log: Logger
  private readonly clock: WindowClock
  private readonly tokenHeader: Buffer
  private readonly runtimes: Runtime[] = []
  /** host index → owning runtime */
  private readonly owner: (Runtime | undefined)[]
  private phase: Phase = 'Pending'
  private reason: string | undefined
  private epoch = 0
  private awaiting = 0
  private startedAtMs = 0
  private finishedAtMs = 0
  private lastProgressMs = Date.now()
  private readonly createdAtMs = Date.now()
  private watchdog: NodeJS.Timeout | undefined
  private listening = false
  private readonly h2: http2.Http2Server
  private readonly h1: http.Server
  private readonly sessions = new Set<http2.ServerHttp2Session>()
  private readonly sockets = new Set<net.Socket>()
  private settle!: { resolve: (r: SimResults) => void; reject: (e: Error) => void }
  private readonly done: Promise<SimResults>
  private lastRejection = ''
  /** The results once the run succeeded (served at GET /v1/results). */
  private results: SimResults | undefined
  /** Called when an authenticated POST /v1/ack arrives after the run ended (the operator has the results). */
  onAck: (() => void) | undefined
  /** Port of the HTTP/1.1 endpoint, when listening on one. */
  httpPort: number | undefined
  private preStart: { msgs: Float64Array; payloads: Buffer[] }[] = []
  readonly metrics = new Registry()
  private readonly mBarriers: Counter
  private readonly mMessages: Counter
  private readonly mRejected: Counter
  private readonly mVirtual: Gauge
  private readonly mBarrierSeconds: Counter
  private readonly mRuntime: RuntimeMetrics
  /** Per-runtime barrier timings, from gang start (or the embedded start) on. */
  private profiler: BarrierProfiler | undefined
  private barrierStartMs = 0
  /** Summed barrier wall time (ms): published on scrape, not observed per barrier (hot path). */
  private barrierMsTotal = 0
  private published = { barriers: 0, ms: 0, messages: 0 }
  private relayed = 0
  private bytesIn = 0
  private bytesOut = 0
  private framesIn = 0
  private framesOut = 0
  private activeRuntimes: Runtime[] | undefined
  /** Per active runtime: its earliest pending time, and its window end (per-runtime windows). */
  private runtimeEarliestNs = new Float64Array(0)
  private runtimeEndNs = new Float64Array(0)
  private readonly sync: SyncOptions
  /** Peer batches: how many TALLYs a barrier takes (every runtime, or the tree's top). */
  private tallies = 0
  /** Peer batches with a tree: the leader's children, and each one's subtree (its OPEN entries). */
  private top: { rt: Runtime; subtree: number[] }[] = []
  private openEntries = new Float64Array(0)
  /** Peer batches: per active runtime, the BATCHes of the open epoch sent to it (TALLYs). */
  private batchesTo = new Float64Array(0)
  /** Set when this leader carries every host itself (runEmbedded). */
  private embedded: { state: Runtime['state'] } | undefined

  constructor(opts: LeaderOptions) {
    this.opts = opts
    this.plan = opts.plan
    this.log = opts.logger
    this.sync = opts.sync ?? syncFromEnv()
    this.clock = new WindowClock(opts.plan, opts.stepping)
    this.tokenHeader = Buffer.from(`Bearer ${opts.token}`)
    this.owner = new Array(opts.plan.hosts.length).fill(undefined)
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }))
    // A failed run must not become an unhandled rejection when nobody awaits it yet.
    this.done.catch(() => {})
    const labels = { simcluster: opts.plan.cluster }
    this.metrics.setDefaultLabels(labels)
    this.mBarriers = new Counter({ name: 'livesim_barriers_total', help: 'Barriers (windows) completed.', registers: [this.metrics] })
    this.mMessages = new Counter({ name: 'livesim_messages_relayed_total', help: 'Cross-host messages relayed by the leader.', registers: [this.metrics] })
    this.mRejected = new Counter({
      name: 'livesim_leader_rejected_requests_total',
      help: 'Sync requests refused before a runtime joined.',
      labelNames: ['reason'],
      registers: [this.metrics],
    })
    this.mVirtual = new Gauge({ name: 'livesim_virtual_time_seconds', help: 'Virtual time reached by every host.', registers: [this.metrics] })
    this.mBarrierSeconds = new Counter({
      name: 'livesim_barrier_seconds_total',
      help: 'Wall time spent in barriers, from a GRANT to the last REPORT of its epoch.',
      registers: [this.metrics],
    })
    this.mRuntime = runtimeMetrics(this.metrics)
    this.h2 = http2.createServer({ settings: H2_SETTINGS })
    this.h2.on('session', (s) => {
      this.sessions.add(s)
      s.on('close', () => this.sessions.delete(s))
      s.on('error', (err) => this.log.debug({ err }, 'http2 session error'))
    })
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers))
    this.h1 = http.createServer((req, res) => {
      const r = this.get(req.method ?? 'GET', req.url ?? '/', req.headers.authorization)
      void r.then(({ status, type, body }) => {
        res.writeHead(status, { 'content-type': type })
        res.end(body)
      })
    })
  }

  /**
   * Listen for runtimes (HTTP/2 cleartext) on host:port and, when httpPort is given, for plain
   * HTTP/1.1 GETs (probes, curl, Prometheus) on host:httpPort; 0 picks a free port. Node's HTTP/2
   * server reads from the socket's native handle, so one port cannot sniff and serve both.
   */
  async listen(port: number, host = '127.0.0.1', httpPort?: number): Promise<number> {
    this.h2.on('connection', (sock: net.Socket) => {
      sock.setNoDelay(true)
      this.sockets.add(sock)
      sock.on('close', () => this.sockets.delete(sock))
    })
    await new Promise<void>((resolve, reject) => {
      this.h2.once('error', reject)
      this.h2.listen(port, host, () => resolve())
    })
    this.listening = true
    if (httpPort !== undefined) {
      this.h1.on('connection', (sock: net.Socket) => {
        this.sockets.add(sock)
        sock.on('close', () => this.sockets.delete(sock))
      })
      await new Promise<void>((resolve, reject) => {
        this.h1.once('error', reject)
        this.h1.listen(httpPort, host, () => resolve())
      })
      this.httpPort = (this.h1.address() as net.AddressInfo).port
    }
    const addr = this.h2.address() as net.AddressInfo
    const registerMs = this.opts.registerTimeoutMs ?? 60_000
    const barrierMs = this.opts.barrierTimeoutMs ?? 60_000
    this.watchdog = setInterval(() => {
      const now = Date.now()
      if (this.phase === 'Pending' && now - this.createdAtMs > registerMs) {
        const missing = this.plan.hosts.filter((h) => !this.owner[h.index]).map((h) => h.name)
        const notStarted = this.runtimes.filter((r) => r.state !== 'running').map((r) => r.id)
        this.fail(
          `gang start timed out after ${registerMs / 1000}s: ` +
            (missing.length ? `hosts not registered: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}` : `runtimes not started: ${notStarted.join(', ')}`) +
            (this.lastRejection ? `; last refused request: ${this.lastRejection}` : ''),
        )
      } else if (this.phase === 'Running' && now - this.lastProgressMs > barrierMs) {
        // With a tree only its top reports here: a late one stands for itself or a runtime under it.
        const tree = this.sync.mode === 'peers' && this.top.length > 0 && this.top.length < this.active().length
        const reporting = tree ? this.top.map((t) => t.rt) : this.runtimes
        const late = reporting.filter((r) => r.reportedEpoch < this.epoch || r.state === 'finishing').map((r) => (tree && r.state !== 'finishing' ? `${r.id} (or a runtime under it in the tree)` : r.id))
        this.fail(`no progress for ${barrierMs / 1000}s at epoch ${this.epoch}; waiting for: ${late.join(', ')}`)
      }
    }, Math.min(1000, Math.max(50, Math.min(registerMs, barrierMs) / 4)))
    this.watchdog.unref()
    this.log.info({ port: addr.port, hosts: this.plan.hosts.length }, 'leader listening')
    return addr.port
  }

  /**
   * Carry every host in this process instead of runtime processes, for a cluster without live
   * components: an EmbeddedRuntime steps through the windows of this leader's clock back to back,
   * with no barrier round trip, in slices of EMBEDDED_SLICE_MS of wall time; between slices,
   * status, /metrics, the watchdog and fail() (Ctrl-C) get their turn. No runtime may connect.
   * Resolves and rejects as run() does.
   */
  async runEmbedded(): Promise<SimResults> {
    assert(this.phase === 'Pending' && this.runtimes.length === 0 && !this.embedded, 'runEmbedded needs a leader that no runtime has joined')
    const embedded: { state: Runtime['state'] } = { state: 'starting' }
    this.embedded = embedded
    try {
      const factories = await loadCustomComponents(this.plan, this.opts.baseDir, this.plan.hosts.map((h) => h.index))
      if (this.phase !== 'Pending') return await this.done // failed while the modules loaded
      this.clock.configure([this.plan.hosts.map((h) => h.index)], this.opts.windows ?? windowsFromEnv(), false)
      const runtime = new EmbeddedRuntime(this.plan, this.clock, factories, EMBEDDED_ID)
      this.profiler = runtime.profiler
      runtime.start()
      embedded.state = 'running'
      this.phase = 'Running'
      this.startedAtMs = this.lastProgressMs = Date.now()
      this.log.info({ hosts: this.plan.hosts.length }, 'embedded start: every host in the leader process')
      await this.stepEmbedded(runtime, embedded)
    } catch (err) {
      this.fail(`runtime ${EMBEDDED_ID} reported an error: ${(err as Error).message}`)
    }
    return this.done
  }

  /** Run the embedded runtime's windows slice after slice until the run is over or has failed. */
  private async stepEmbedded(runtime: EmbeddedRuntime, embedded: { state: Runtime['state'] }): Promise<void> {
    while (this.phase === 'Running') {
      const sliceStartMs = performance.now()
      const over = runtime.runUntilWall(sliceStartMs + EMBEDDED_SLICE_MS)
      this.barrierMsTotal += performance.now() - sliceStartMs
      this.epoch = this.clock.barriers
      this.lastProgressMs = Date.now()
      if (over) {
        this.finishedAtMs = Date.now()
        embedded.state = 'done'
        return this.complete(runtime.results(), runtime.hostBusyNs())
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /** Resolves with the results when the run succeeds; rejects with RunFailed otherwise. */
  run(): Promise<SimResults> {
    return this.done
  }

  status(): LeaderStatus {
    const vt = this.clock.nowNs
    const wall = this.startedAtMs ? ((this.finishedAtMs || Date.now()) - this.startedAtMs) / 1000 : 0
    return {
      cluster: this.plan.cluster,
      phase: this.phase,
      ...(this.reason ? { reason: this.reason } : {}),
      virtualTimeNs: vt,
      virtualTime: formatDurationNs(vt),
      endTimeNs: this.plan.endTimeNs,
      progress: Math.min(1, vt / this.plan.endTimeNs),
      epoch: this.epoch,
      barriers: this.clock.barriers,
      wallSeconds: wall,
      slowdown: vt > 0 ? wall / (vt / 1e9) : 0,
      ...(this.embedded ? this.embeddedStatus(this.embedded.state) : this.runtimesStatus()),
      ...(this.profiler ? { stragglers: this.profiler.stragglers(STRAGGLERS_SHOWN) } : {}),
      traffic: { framesIn: this.framesIn, framesOut: this.framesOut, bytesIn: this.bytesIn, bytesOut: this.bytesOut, relayedMessages: this.relayed },
    }
  }

  private runtimesStatus(): Pick<LeaderStatus, 'hosts' | 'runtimes'> {
    return {
      hosts: {
        total: this.plan.hosts.length,
        registered: this.owner.filter(Boolean).length,
        ready: this.runtimes.filter((r) => r.state === 'running' || r.state === 'finishing' || r.state === 'done').reduce((n, r) => n + r.hosts.length, 0),
      },
      runtimes: this.runtimes.map((r) => ({ id: r.id, hosts: r.hosts.map((h) => this.plan.hosts[h]!.name), state: r.state })),
    }
  }

  private embeddedStatus(state: Runtime['state']): Pick<LeaderStatus, 'hosts' | 'runtimes'> {
    const total = this.plan.hosts.length
    return {
      hosts: { total, registered: total, ready: state === 'starting' ? 0 : total },
      runtimes: [{ id: EMBEDDED_ID, hosts: this.plan.hosts.map((h) => h.name), state, embedded: true }],
    }
  }

  async close(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog)
    if (this.phase === 'Pending' || this.phase === 'Running') this.fail('leader shut down')
    for (const s of this.sessions) s.destroy()
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.listening ? this.h2.close(() => resolve()) : resolve()))
    this.listening = false
    if (this.h1.listening) await new Promise<void>((resolve) => this.h1.close(() => resolve()))
  }

  // ------------------------------------------------------------------------------------------
  // HTTP

  private async get(method: string, url: string, authorization?: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0]
    if (path === '/v1/ack' && method === 'POST') {
      const auth = Buffer.from(authorization ?? '')
      if (auth.length !== this.tokenHeader.length || !timingSafeEqual(auth, this.tokenHeader)) {
        return { status: 401, type: 'application/json', body: JSON.stringify({ error: 'Unauthorized' }) }
      }
      if (this.phase !== 'Succeeded' && this.phase !== 'Failed') return { status: 409, type: 'application/json', body: JSON.stringify({ error: `the run is ${this.phase}` }) }
      setImmediate(() => this.onAck?.())
      return { status: 200, type: 'application/json', body: JSON.stringify({ acknowledged: true }) }
    }
    if (method !== 'GET') return { status: 405, type: 'application/json', body: JSON.stringify({ error: `${method} not allowed` }) }
    if (path === '/v1/results') {
      if (!this.results) return { status: 404, type: 'application/json', body: JSON.stringify({ error: `no results: the run is ${this.phase}` }) }
      return { status: 200, type: 'application/json', body: JSON.stringify(this.results) }
    }
    if (path === '/healthz') return { status: 200, type: 'text/plain', body: 'ok' }
    if (path === '/v1/status') return { status: 200, type: 'application/json', body: JSON.stringify(this.status()) }
    if (path === '/metrics') {
      this.publishMetrics()
      return { status: 200, type: this.metrics.contentType, body: await this.metrics.metrics() }
    }
    return { status: 404, type: 'application/json', body: JSON.stringify({ error: `no such path ${path}` }) }
  }

  private publishMetrics(): void {
    this.mVirtual.set(this.clock.nowNs / 1e9)
    this.mBarriers.inc(this.clock.barriers - this.published.barriers)
    this.mBarrierSeconds.inc((this.barrierMsTotal - this.published.ms) / 1000)
    this.mMessages.inc(this.relayed - this.published.messages)
    this.published = { barriers: this.clock.barriers, ms: this.barrierMsTotal, messages: this.relayed }
    if (this.profiler) publishRuntimeMetrics(this.mRuntime, this.profiler)
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {})
    const method = headers[':method'] ?? 'GET'
    const path = headers[':path'] ?? '/'
    if (path !== '/v1/sync') {
      void this.get(method, path, String(headers.authorization ?? '')).then(({ status, type, body }) => {
        if (stream.destroyed) return
        stream.respond({ ':status': status, 'content-type': type })
        stream.end(body)
      })
      return
    }
    const refuse = (status: number, reason: string, message: string) => {
      this.mRejected.inc({ reason })
      this.lastRejection = message
      this.log.warn({ reason }, message)
      stream.respond({ ':status': status, 'content-type': 'application/json' })
      stream.end(JSON.stringify({ error: reason, message }))
    }
    if (method !== 'POST') return refuse(405, 'MethodNotAllowed', `sync requests must be POST, got ${method}`)
    const auth = Buffer.from(String(headers.authorization ?? ''))
    if (auth.length !== this.tokenHeader.length || !timingSafeEqual(auth, this.tokenHeader)) {
      return refuse(401, 'Unauthorized', 'sync request with a missing or wrong bearer token')
    }
    if (this.phase !== 'Pending') return refuse(409, 'RunStarted', `the run is ${this.phase}; no runtime may join now`)
    if (this.embedded) return refuse(409, 'Embedded', 'this leader carries every host itself; no runtime may join')
    stream.respond({ ':status': 200, 'content-type': 'application/x-livesim-frames' })
    const rt: Runtime = {
      id: `conn-${this.runtimes.length}`,
      stream,
      decoder: new FrameDecoder(),
      state: 'hello',
      hosts: [],
      inbox: new Float64Array(256 * WIRE_SLOTS),
      inboxCount: 0,
      inboxPayloads: [],
      nextEventNs: Infinity,
      reportedEpoch: -1,
      slot: -1,
    }
    this.runtimes.push(rt)
    stream.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length
      if (rt.state === 'done') return
      let frames: Frame[]
      try {
        frames = rt.decoder.push(chunk)
      } catch (err) {
        return this.cutOff(rt, `malformed frame: ${(err as Error).message}`)
      }
      this.framesIn += frames.length
      for (const f of frames) {
        try {
          this.onFrame(rt, f)
        } catch (err) {
          const msg = err instanceof FrameError ? `malformed ${frameName(f.type)} frame: ${err.message}` : `error handling ${frameName(f.type)}: ${(err as Error).message}`
          return this.cutOff(rt, msg)
        }
        if (this.phase === 'Failed') return
      }
    })
    stream.on('close', () => {
      if (rt.state === 'done' || this.phase === 'Failed' || this.phase === 'Succeeded') return
      const hosts = rt.hosts.map((h) => this.plan.hosts[h]!.name).join(', ') || 'no hosts yet'
      this.fail(`runtime ${rt.id} (${hosts}) disconnected at epoch ${this.epoch}, virtual time ${formatDurationNs(this.clock.nowNs)}`)
    })
  }

  // ------------------------------------------------------------------------------------------
  // Protocol

  private send(rt: Runtime, frame: Buffer): void {
    if (rt.stream.destroyed || rt.stream.closed) return
    this.bytesOut += frame.length
    this.framesOut++
    rt.stream.write(frame)
  }

  private cutOff(rt: Runtime, message: string): void {
    this.send(rt, encodeJson(F_ERROR, { message }))
    this.hangUp(rt)
    this.fail(`runtime ${rt.id}: ${message}`)
  }

  /** End our side now; close the stream for good after a grace, so a peer cannot keep it half-open. */
  private hangUp(rt: Runtime): void {
    rt.state = 'done'
    rt.stream.end()
    setTimeout(() => {
      if (!rt.stream.closed) rt.stream.close(http2.constants.NGHTTP2_CANCEL)
    }, 1000).unref()
  }

  private onFrame(rt: Runtime, f: Frame): void {
    if (f.type === F_ERROR) {
      const e = decodeJson<{ message?: unknown }>(f)
      rt.state = 'done'
      return this.fail(`runtime ${rt.id} reported an error: ${String(e.message ?? 'no message')}`)
    }
    switch (rt.state) {
      case 'hello':
        if (f.type !== F_HELLO) throw new FrameError(`expected HELLO, got ${frameName(f.type)}`)
        return this.onHello(rt, decodeJson(f))
      case 'starting':
      case 'running': {
        if (rt.state === 'running' && this.sync.mode === 'peers' && this.phase === 'Running') {
          if (f.type !== F_TALLY) throw new FrameError(`expected TALLY, got ${frameName(f.type)}`)
          return this.onTally(rt, f)
        }
        if (f.type !== F_REPORT) throw new FrameError(`expected REPORT, got ${frameName(f.type)}`)
        return this.onReport(rt, f)
      }
      case 'finishing':
        if (f.type !== F_RESULTS) throw new FrameError(`expected RESULTS, got ${frameName(f.type)}`)
        return this.onResults(rt, decodeJson(f))
      default:
        throw new FrameError(`unexpected ${frameName(f.type)} frame`)
    }
  }

  private onHello(rt: Runtime, hello: unknown): void {
    const h = hello as { protocol?: unknown; runtime?: unknown; hosts?: unknown; peerUrl?: unknown }
    if (typeof h !== 'object' || h === null) throw new FrameError('HELLO must be a JSON object')
    if (h.protocol !== PROTOCOL_VERSION) {
      throw new FrameError(`protocol version ${JSON.stringify(h.protocol)} is not supported; this leader speaks version ${PROTOCOL_VERSION}`)
    }
    if (typeof h.runtime !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(h.runtime)) throw new FrameError('HELLO.runtime must be a name of 1-128 characters [A-Za-z0-9._-]')
    if (!Array.isArray(h.hosts) || h.hosts.length === 0 || h.hosts.length > this.plan.hosts.length || !h.hosts.every((x) => typeof x === 'string')) {
      throw new FrameError('HELLO.hosts must be a non-empty array of host names')
    }
    if (this.runtimes.some((r) => r !== rt && r.id === h.runtime && r.state !== 'done')) throw new FrameError(`duplicate runtime name ${h.runtime}`)
    if (h.peerUrl !== undefined) {
      if (typeof h.peerUrl !== 'string' || !/^http:\/\/[^/\s]+:\d+$/.test(h.peerUrl)) throw new FrameError('HELLO.peerUrl must be http://host:port')
      rt.peerUrl = h.peerUrl
    }
    rt.id = h.runtime
    const claimed: number[] = []
    for (const name of h.hosts as string[]) {
      const idx = this.plan.hostIndex.get(name)
      if (idx === undefined) throw new FrameError(`unknown host ${JSON.stringify(name)}; hosts are: ${this.plan.hosts.slice(0, 20).map((x) => x.name).join(', ')}`)
      const other = this.owner[idx]
      if (other || claimed.includes(idx)) throw new FrameError(`duplicate host ${name}: already registered by runtime ${other?.id ?? rt.id}`)
      claimed.push(idx)
    }
    for (const idx of claimed) this.owner[idx] = rt
    rt.hosts = claimed
    rt.state = 'starting'
    this.log.info({ runtime: rt.id, hosts: h.hosts }, 'runtime registered')
    this.send(rt, encodeJson(F_WELCOME, { protocol: PROTOCOL_VERSION, cluster: this.opts.cluster, baseDir: this.opts.baseDir, sync: this.sync.mode }))
  }

  private onReport(rt: Runtime, f: Frame): void {
    const b = decodeBarrier(f)
    const expected = rt.state === 'starting' ? 0 : this.epoch
    if (b.epoch !== expected) throw new FrameError(`REPORT for epoch ${b.epoch}, expected ${expected}`)
    if (rt.reportedEpoch === b.epoch) throw new FrameError(`second REPORT for epoch ${b.epoch}`)
    rt.reportedEpoch = b.epoch
    rt.nextEventNs = b.timeNs
    if (rt.state === 'starting') {
      if (this.sync.mode === 'peers' && b.count > 0) throw new FrameError('a first REPORT with messages in a run with peer batches')
      // Hosts may send at time 0, before every destination has registered: route at gang start.
      this.validateMessages(b.messages, b.count)
      if (b.count) this.preStart.push({ msgs: b.messages.slice(0, b.count * WIRE_SLOTS), payloads: b.payloads })
      rt.state = 'running'
      this.log.info({ runtime: rt.id }, 'runtime ready')
      this.maybeStart()
      return
    }
    this.route(b.messages, b.count, b.payloads)
    const last = --this.awaiting === 0
    const nowMs = performance.now()
    this.profiler!.report(rt.slot, nowMs, last)
    if (last) {
      this.barrierMsTotal += nowMs - this.barrierStartMs
      this.advance()
    }
  }

  /** Peer batches: a TALLY, the earliest pending time per runtime of a runtime or a subtree. */
  private onTally(rt: Runtime, f: Frame): void {
    const active = this.active()
    const t = decodeTally(f, active.length)
    if (t.epoch !== this.epoch) throw new FrameError(`TALLY for epoch ${t.epoch}, expected ${this.epoch}`)
    if (rt.reportedEpoch === t.epoch) throw new FrameError(`second TALLY for epoch ${t.epoch}`)
    if (this.sync.fanIn > 0 && this.tallies < active.length && rt.slot >= this.tallies) throw new FrameError(`TALLY from runtime slot ${rt.slot}, which reports to a runtime of the tree`)
    rt.reportedEpoch = t.epoch
    const earliest = this.runtimeEarliestNs
    const batches = this.batchesTo
    for (let i = 0; i < t.count; i++) {
      const slot = t.entries[TALLY_SLOTS * i]!
      const at = t.entries[TALLY_SLOTS * i + 1]!
      if (at < earliest[slot]!) earliest[slot] = at
      batches[slot]! += t.entries[TALLY_SLOTS * i + 2]!
    }
    const last = --this.awaiting === 0
    // Epoch 0 (what the hosts sent at start, after PEERS) is part of the gang start, not a barrier.
    if (this.epoch === 0) {
      if (last) this.advance()
      return
    }
    const nowMs = performance.now()
    this.profiler!.report(rt.slot, nowMs, last)
    if (last) {
      this.barrierMsTotal += nowMs - this.barrierStartMs
      this.advance()
    }
  }

  /** A runtime's messages must name real hosts and components and carry a sane delivery time. */
  private validateMessages(msgs: Float64Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const at = i * WIRE_SLOTS
      const t = msgs[at]!
      const src = msgs[at + 2]!
      const dst = msgs[at + 4]!
      const comp = msgs[at + 5]!
      if (!(t >= 0 && t <= Number.MAX_SAFE_INTEGER) || !Number.isInteger(t)) throw new FrameError(`message ${i} has delivery time ${t}`)
      if (!Number.isInteger(src) || !this.plan.hosts[src]) throw new FrameError(`message ${i} is from unknown host index ${src}`)
      const host = Number.isInteger(dst) ? this.plan.hosts[dst] : undefined
      if (!host) throw new FrameError(`message ${i} is for unknown host index ${dst}`)
      if (!Number.isInteger(comp) || comp < 0 || comp >= host.components.length) throw new FrameError(`message ${i} is for unknown component ${comp} of ${host.name}`)
    }
  }

  /** Put each message in the inbox of the runtime that owns its destination host. */
  private route(msgs: Float64Array, count: number, payloads: Buffer[]): void {
    if (count === 0) return
    this.validateMessages(msgs, count)
    this.relayed += count
    let p = 0
    for (let i = 0; i < count; i++) {
      const at = i * WIRE_SLOTS
      const owner = this.owner[msgs[at + 4]!]!
      if (msgs[at + SLOT_PAYLOAD]! > 0) owner.inboxPayloads.push(payloads[p++]!)
      if (owner.inbox.length < (owner.inboxCount + 1) * WIRE_SLOTS) {
        const grown = new Float64Array(owner.inbox.length * 2)
        grown.set(owner.inbox)
        owner.inbox = grown
      }
      const to = owner.inboxCount * WIRE_SLOTS
      for (let k = 0; k < WIRE_SLOTS; k++) owner.inbox[to + k] = msgs[at + k]!
      owner.inboxCount++
    }
  }

  private maybeStart(): void {
    if (this.phase !== 'Pending') return
    if (this.owner.some((o) => !o)) return
    if (this.runtimes.some((r) => r.state !== 'running' && r.hosts.length > 0)) return
    this.phase = 'Running'
    for (const m of this.preStart) this.route(m.msgs, m.msgs.length / WIRE_SLOTS, m.payloads)
    this.preStart = []
    // Windows as long as the links between runtimes allow (windows.ts): live runs' in quanta, modelled ones per runtime.
    this.clock.configure(this.active().map((r) => r.hosts), this.opts.windows ?? windowsFromEnv(), true)
    this.runtimeEarliestNs = new Float64Array(this.active().length)
    this.runtimeEndNs = new Float64Array(this.active().length)
    this.startedAtMs = Date.now()
    this.lastProgressMs = Date.now()
    const active = this.active()
    active.forEach((r, slot) => (r.slot = slot))
    this.profiler = new BarrierProfiler(active.map((r) => ({ id: r.id, hosts: r.hosts.map((h) => this.plan.hosts[h]!.name) })))
    this.log.info({ runtimes: active.length, hosts: this.plan.hosts.length, sync: this.sync.mode }, 'gang start: all hosts registered')
    if (this.sync.mode === 'peers') return this.startPeers(active)
    this.advance()
  }

  /**
   * Peer batches: hand every runtime the peer table; their TALLYs of epoch 0 (what the hosts sent at
   * start, now with the peers) open the first window. With a tree, only the top reports here.
   */
  private startPeers(active: Runtime[]): void {
    const mute = active.find((r) => r.peerUrl === undefined)
    if (mute) return this.fail(`runtime ${mute.id} gave no peer address (HELLO.peerUrl): with peer batches (LIVESIM_SYNC=peers) runtimes send their messages to each other`)
    const tree = active.length >= this.sync.treeMin
    const fanIn = tree ? this.sync.fanIn : 0
    const urls = active.map((r) => r.peerUrl!)
    const owner = this.owner.map((o) => o!.slot)
    this.tallies = tree ? treeChildren(-1, fanIn, active.length).length : active.length
    this.top = tree ? treeChildren(-1, fanIn, active.length).map((s) => ({ rt: active[s]!, subtree: subtreeOf(s, fanIn, active.length) })) : active.map((rt, s) => ({ rt, subtree: [s] }))
    this.openEntries = new Float64Array(active.length * TALLY_SLOTS)
    this.runtimeEarliestNs.fill(Infinity)
    this.batchesTo = new Float64Array(active.length)
    this.awaiting = this.tallies
    for (const r of active) {
      r.reportedEpoch = -1
      const table: PeerTable = { slot: r.slot, urls, owner, fanIn }
      this.send(r, encodeJson(F_PEERS, table))
    }
    if (tree) this.log.info({ fanIn, top: this.tallies }, 'aggregation tree')
  }

  /** Runtimes carrying hosts: fixed from gang start on, so computed once then. */
  private active(): Runtime[] {
    if (this.activeRuntimes) return this.activeRuntimes
    const a = this.runtimes.filter((r) => r.hosts.length > 0)
    if (this.phase !== 'Pending') this.activeRuntimes = a
    return a
  }

  private advance(): void {
    this.lastProgressMs = Date.now()
    const active = this.active()
    const peers = this.sync.mode === 'peers'
    let earliest = Infinity
    active.forEach((r, i) => {
      // Peer batches: the TALLYs set runtimeEarliestNs; the star: the REPORT and the inbox.
      let e = peers ? this.runtimeEarliestNs[i]! : r.nextEventNs
      const inbox = r.inbox
      for (let k = 0; k < r.inboxCount; k++) e = Math.min(e, inbox[k * WIRE_SLOTS]!)
      this.runtimeEarliestNs[i] = e
      if (e < earliest) earliest = e
    })
    const perRuntime = this.clock.perRuntime !== undefined
    const end = perRuntime ? (this.clock.nextPerRuntime(this.runtimeEarliestNs, this.runtimeEndNs) ? 0 : -1) : this.clock.next(earliest)
    if (end < 0) return this.finish()
    this.epoch++
    this.awaiting = peers ? this.tallies : active.length
    if (peers) this.runtimeEarliestNs.fill(Infinity)
    this.barrierStartMs = performance.now()
    this.profiler!.grant(this.barrierStartMs)
    if (peers) {
      // To each of its children (every runtime, without a tree) the entries of its subtree.
      const entries = this.openEntries
      for (const { rt, subtree } of this.top) {
        subtree.forEach((s, k) => {
          entries[k * TALLY_SLOTS] = s
          entries[k * TALLY_SLOTS + 1] = perRuntime ? this.runtimeEndNs[s]! : end
          entries[k * TALLY_SLOTS + 2] = this.batchesTo[s]!
        })
        this.send(rt, encodeOpen(this.epoch, entries, subtree.length))
      }
      this.batchesTo.fill(0)
      return
    }
    for (const [i, r] of active.entries()) {
      this.send(r, encodeBarrier(F_GRANT, this.epoch, perRuntime ? this.runtimeEndNs[i]! : end, r.inbox, r.inboxCount, r.inboxPayloads))
      r.inboxCount = 0
      if (r.inboxPayloads.length) r.inboxPayloads = []
    }
  }

  private finish(): void {
    this.profiler?.grant(performance.now())
    this.finishedAtMs = Date.now()
    this.lastProgressMs = Date.now()
    const active = this.active()
    this.awaiting = active.length
    for (const r of active) {
      r.state = 'finishing'
      this.send(r, encodeJson(F_FINISH, { virtualTimeNs: this.plan.endTimeNs }))
    }
    if (active.length === 0) this.complete()
  }

  private onResults(rt: Runtime, res: unknown): void {
    const r = res as { hosts?: Record<string, HostResults>; busyNs?: unknown; hostBusyNs?: unknown }
    if (typeof r !== 'object' || r === null || typeof r.hosts !== 'object' || r.hosts === null) throw new FrameError('RESULTS must hold a hosts object')
    for (const h of rt.hosts) {
      if (!r.hosts[this.plan.hosts[h]!.name]) throw new FrameError(`RESULTS lack host ${this.plan.hosts[h]!.name}`)
    }
    rt.results = r.hosts
    if (typeof r.busyNs === 'number') this.profiler?.busy(rt.slot, r.busyNs)
    if (typeof r.hostBusyNs === 'object' && r.hostBusyNs !== null) rt.hostBusyNs = r.hostBusyNs as Record<string, number>
    rt.state = 'done'
    rt.stream.end()
    if (--this.awaiting === 0) this.complete()
  }

  /** `perHost`, `hostBusyNs`: the embedded runtime's; by default, those the runtime processes sent. */
  private complete(perHost?: Record<string, HostResults>, hostBusyNs?: Record<string, number>): void {
    if (!perHost) {
      perHost = {}
      hostBusyNs = {}
      for (const r of this.active()) {
        Object.assign(perHost, r.results)
        Object.assign(hostBusyNs, r.hostBusyNs)
      }
    }
    const wall = ((this.finishedAtMs || Date.now()) - this.startedAtMs) / 1000
    let results: SimResults
    try {
      // wall.runtimes counts runtime processes: none when this process carried the hosts.
      results = assembleResults(this.plan, perHost, {
        barriers: this.clock.barriers,
        virtualTimeNs: this.plan.endTimeNs,
        wallSeconds: wall,
        runtimes: this.embedded ? 0 : this.active().length,
        profile: this.profiler?.runtimes(),
        hostBusyNs,
      })
    } catch (err) {
      return this.fail(`could not assemble results: ${(err as Error).message}`)
    }
    this.phase = 'Succeeded'
    this.results = results
    this.clock.nowNs = this.plan.endTimeNs
    if (this.watchdog) clearInterval(this.watchdog)
    this.log.info({ digest: results.digest, barriers: results.sync.barriers, wallSeconds: wall }, 'run succeeded')
    this.settle.resolve(results)
  }

  /** End the run as Failed (idempotent): tell every runtime, settle the run promise. */
  fail(reason: string): void {
    if (this.phase === 'Failed' || this.phase === 'Succeeded') return
    this.phase = 'Failed'
    this.reason = reason
    this.finishedAtMs = Date.now()
    if (this.watchdog) clearInterval(this.watchdog)
    this.log.error({ reason }, 'run failed')
    for (const r of this.runtimes) {
      if (r.state === 'done') continue
      this.send(r, encodeJson(F_ABORT, { reason }))
      this.hangUp(r)
    }
    this.settle.reject(new RunFailed(reason))
  }
}

interface RuntimeMetrics {
  report: Counter
  wait: Counter
  last: Counter
  busy: Counter
  quantile: Gauge
}

function runtimeMetrics(registry: Registry): RuntimeMetrics {
  const labelNames = ['runtime']
  return {
    report: new Counter({ name: 'livesim_runtime_report_seconds_total', help: 'Wall time from each GRANT to this runtime\'s REPORT (its window, and the way there and back).', labelNames, registers: [registry] }),
    wait: new Counter({ name: 'livesim_runtime_wait_seconds_total', help: 'Wall time from this runtime\'s REPORT to the next GRANT: waiting for the others.', labelNames, registers: [registry] }),
    last: new Counter({ name: 'livesim_runtime_last_to_report_total', help: 'Barriers at which this runtime\'s REPORT came last.', labelNames, registers: [registry] }),
    busy: new Counter({ name: 'livesim_runtime_busy_seconds_total', help: 'Wall time inside its windows, as the runtime measured it (runtime processes: once their results are in).', labelNames, registers: [registry] }),
    quantile: new Gauge({ name: 'livesim_runtime_report_seconds', help: 'Quantiles of the wall time from a GRANT to this runtime\'s REPORT.', labelNames: ['runtime', 'quantile'], registers: [registry] }),
  }
}

/** Set the per-runtime metrics to the profiler's totals (on scrape: nothing per barrier). */
function publishRuntimeMetrics(m: RuntimeMetrics, profiler: BarrierProfiler): void {
  for (const c of [m.report, m.wait, m.last, m.busy]) c.reset()
  for (const t of profiler.totals()) {
    const runtime = t.id
    m.report.inc({ runtime }, t.reportSeconds)
    m.wait.inc({ runtime }, t.waitSeconds)
    m.last.inc({ runtime }, t.lastToReport)
    m.busy.inc({ runtime }, t.busySeconds)
    m.quantile.set({ runtime, quantile: '0.5' }, t.p50Seconds)
    m.quantile.set({ runtime, quantile: '0.99' }, t.p99Seconds)
  }
}

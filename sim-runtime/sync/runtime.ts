// The sim-runtime side of the protocol: connect to the leader (retrying while it starts), say
// HELLO for the hosts this process carries, build them from the SimCluster in WELCOME, then run
// each granted window and report. Resolves when the leader collects results; rejects with a clear
// message when the leader refuses, aborts, or goes away.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import net from 'node:net'
import type { Logger } from 'pino'
import { validateSimCluster } from '../api/validate.ts'
import { loadCustomComponents } from '../components/custom.ts'
import os from 'node:os'
import path from 'node:path'
import { HostGroup } from '../engine/group.ts'
import { LiveRunner, liveOptionsFromEnv } from '../live/runner.ts'
import {
  decodeBarrier,
  decodeJson,
  decodeOpen,
  encodeBarrier,
  encodeJson,
  F_ABORT,
  F_ERROR,
  F_FINISH,
  F_GRANT,
  F_HELLO,
  F_OPEN,
  F_PEERS,
  F_REPORT,
  F_RESULTS,
  F_WELCOME,
  FrameDecoder,
  FrameError,
  frameName,
  PROTOCOL_VERSION,
  type Frame,
} from './frames.ts'
import { H2_SETTINGS } from './leader.ts'
import { PeerMesh, tallyFrame, type PeerTable, type SyncMode } from './peers.ts'
import { buildTopology, internalLookaheadNs } from './topology.ts'

export interface RuntimeOptions {
  leaderUrl: string
  token: string
  hosts: string[]
  runtimeId: string
  logger: Logger
  /** Keep retrying the first connection for this long (the leader pod may start later). */
  connectTimeoutMs?: number
  /** Protocol version to announce; only tests set this. */
  protocolVersion?: number
  /**
   * Where this runtime listens for its peers (peer batches, peers.ts): `host` to bind, `port` (0:
   * any free one), `advertise` the host name or IP the other runtimes reach it by. Default: a free
   * port on this end's address of the connection to the leader (a pod's IP on Kubernetes, where
   * pods reach each other by IP; 127.0.0.1 under `livesim run`).
   */
  peers?: { host: string; port: number; advertise: string }
}

export class RuntimeError extends Error {
  /** The leader was told (an ERROR frame): it fails the run with this message itself. */
  readonly toldLeader: boolean

  constructor(message: string, toldLeader = false) {
    super(message)
    this.toldLeader = toldLeader
  }
}

async function connect(url: string, deadline: number, log: Logger): Promise<http2.ClientHttp2Session> {
  let delay = 100
  while (true) {
    try {
      return await new Promise<http2.ClientHttp2Session>((resolve, reject) => {
        const u = new URL(url)
        const s = http2.connect(url, {
          settings: H2_SETTINGS,
          // Our own socket, so that Nagle's algorithm is off: barrier frames are small and latency-bound.
          createConnection: () => net.connect({ host: u.hostname, port: Number(u.port || 80), noDelay: true }),
        })
        s.once('connect', () => {
          s.removeAllListeners('error')
          s.on('error', (err) => log.debug({ err }, 'http2 session error'))
          resolve(s)
        })
        s.once('error', reject)
      })
    } catch (err) {
      if (Date.now() + delay > deadline) throw new RuntimeError(`cannot reach the leader at ${url}: ${(err as Error).message}`)
      log.debug({ err: (err as Error).message, retryMs: delay }, 'leader not reachable yet')
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(delay * 2, 2000)
    }
  }
}

/** What runWindow needs of the live components: LiveRunner.runQuantum. */
export interface QuantumRunner {
  runQuantum(startNs: number, endNs: number): Promise<void>
}

/**
 * Run a group of modelled hosts through [its time, toNs) in sub-windows that start at its earliest
 * pending event and last at most `lookaheadNs`, the shortest link between two of its hosts that can
 * carry a message (topology.ts), handing their messages to each other over between sub-windows:
 * what a message sent in one is due no earlier than the next. What is left in the outboxes is for
 * other runtimes. Conservative runs only: in Slack mode, where to deliver late depends on who runs
 * in which process, messages all wait for the barrier. Returns the sub-windows run.
 */
export function runLocalWindow(group: HostGroup, toNs: number, lookaheadNs: number): number {
  if (!(lookaheadNs > 0) || group.plan.mode !== 'Conservative') assert.fail(`local sub-windows need a Conservative run and a positive lookahead, not ${lookaheadNs}ns`)
  let windows = 0
  while (true) {
    group.routeLocal()
    const next = group.nextEventNs()
    if (next >= toNs) break
    group.runUntil(Math.min(toNs, next + lookaheadNs))
    windows++
  }
  group.runUntil(toNs)
  return windows
}

/**
 * Run this runtime's hosts through a granted window [fromNs, toNs); returns the quanta it took. A
 * run without live components: the modelled hosts in one go, as the in-process driver does, or, given
 * `localLookaheadNs`, in sub-windows with messages between them handed over (runLocalWindow). A run
 * with them (its windows span several quanta, windows.ts): quantum after quantum of the plan's sync
 * quantum, the modelled hosts first, then the live cells (`live`, when this runtime carries some),
 * then the messages between this runtime's own hosts are handed over (HostGroup.routeLocal). The
 * quantum is at most the smallest link latency, so a message sent in a quantum is due in a later
 * one, where its host will have it; messages to other runtimes go to the leader with the window's
 * report.
 */
export async function runWindow(group: HostGroup, live: QuantumRunner | undefined, fromNs: number, toNs: number, localLookaheadNs?: number): Promise<number> {
  if (group.plan.liveComponents === 0) {
    if (localLookaheadNs !== undefined) return Math.max(1, runLocalWindow(group, toNs, localLookaheadNs))
    group.runUntil(toNs)
    return 1
  }
  const q = group.plan.quantumNs
  let quanta = 0
  for (let t = fromNs; t < toNs; quanta++) {
    const end = Math.min(toNs, t + q)
    group.runUntil(end)
    if (live) await live.runQuantum(t, end)
    group.routeLocal()
    t = end
  }
  return quanta
}

export async function runRuntime(opts: RuntimeOptions): Promise<void> {
  const session = await connect(opts.leaderUrl, Date.now() + (opts.connectTimeoutMs ?? 60_000), opts.logger)
  const mesh = new PeerMesh(opts.token, opts.logger)
  let peerUrl: string
  try {
    const local = session.socket.localAddress
    if (!opts.peers && !local) throw new Error('the connection to the leader has no local address')
    const listen = opts.peers ?? { host: local!, port: 0, advertise: local! }
    const port = await mesh.listen(listen.port, listen.host)
    peerUrl = `http://${listen.advertise.includes(':') ? `[${listen.advertise}]` : listen.advertise}:${port}`
  } catch (err) {
    session.close()
    await mesh.close()
    throw new RuntimeError(`cannot listen for peer runtimes: ${(err as Error).message}`)
  }
  const stream = session.request({
    ':method': 'POST',
    ':path': '/v1/sync',
    authorization: `Bearer ${opts.token}`,
    'content-type': 'application/x-livesim-frames',
  })
  const rt = new RuntimeStream(opts, stream, mesh, peerUrl)
  try {
    await rt.run()
  } finally {
    session.close()
    await mesh.close()
    if (rt.live) {
      await rt.live.stop()
      activeRunners.delete(rt.live)
    }
  }
}

/** This runtime's side of the sync stream: HELLO, then the leader's frames, strictly in order, until its results are sent, or the run fails. */
class RuntimeStream {
  /** This runtime's live components, once WELCOME has built them. */
  live: LiveRunner | undefined
  private readonly opts: RuntimeOptions
  private readonly log: Logger
  private readonly stream: http2.ClientHttp2Stream
  private group: HostGroup | undefined
  private epoch = 0
  private windowStartNs = 0
  /** Sub-windows of a modelled window (runLocalWindow): Conservative runs. */
  private localLookaheadNs: number | undefined
  /** Wall time inside granted windows (the straggler profile's busy time), ms. */
  private busyMs = 0
  private finished = false
  private status = 0
  private readonly errorBody: Buffer[] = []
  private readonly decoder = new FrameDecoder()
  private readonly mesh: PeerMesh
  private readonly peerUrl: string
  /** Set by WELCOME: peer batches, or every message through the leader. */
  private sync: SyncMode = 'star'
  /** Peer batches: PEERS has come, epoch 0's batches are sent. */
  private peered = false
  // Frames are handled strictly in order; WELCOME may await module imports.
  private chain = Promise.resolve()
  private resolve: () => void = () => {}
  private reject: (err: RuntimeError) => void = () => {}

  constructor(opts: RuntimeOptions, stream: http2.ClientHttp2Stream, mesh: PeerMesh, peerUrl: string) {
    this.opts = opts
    this.log = opts.logger
    this.stream = stream
    this.mesh = mesh
    this.peerUrl = peerUrl
    mesh.onError = (err) => this.fail(err.message, true)
    mesh.onOpen = (f) => this.enqueue(f)
  }

  /** Resolves once the results are sent; rejects with a RuntimeError when the leader refuses, aborts, or goes away. */
  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
      const stream = this.stream
      stream.on('response', (headers) => {
        this.status = Number(headers[':status'])
      })
      stream.on('data', (chunk: Buffer) => this.onData(chunk))
      stream.on('end', () => this.onEnd())
      stream.on('close', () => {
        // A wait for peers' batches would hold the chain: end it.
        this.mesh.abort(new RuntimeError(`the leader closed the stream at epoch ${this.epoch}`))
        void this.chain.then(() => this.fail(`the leader closed the stream at epoch ${this.epoch}`, false))
      })
      stream.on('error', (err) => this.fail(`stream error: ${err.message}`, false))
      stream.write(encodeJson(F_HELLO, { protocol: this.opts.protocolVersion ?? PROTOCOL_VERSION, runtime: this.opts.runtimeId, hosts: this.opts.hosts, peerUrl: this.peerUrl }))
    })
  }

  private fail(message: string, tellLeader: boolean): void {
    if (this.finished) return
    this.finished = true
    this.mesh.abort(new RuntimeError(message))
    const tell = tellLeader && !this.stream.destroyed
    if (tell) this.stream.end(encodeJson(F_ERROR, { message }))
    this.reject(new RuntimeError(message, tell))
  }

  private onData(chunk: Buffer): void {
    if (this.finished) return
    if (this.status !== 200) {
      this.errorBody.push(chunk)
      return
    }
    let frames: Frame[]
    try {
      frames = this.decoder.push(chunk)
    } catch (err) {
      return this.fail(`malformed frame from the leader: ${(err as Error).message}`, true)
    }
    for (const f of frames) {
      // An ABORT must not wait behind a window that waits for peers that will never send.
      if (f.type === F_ABORT) this.mesh.abort(new RuntimeError('the leader aborted the run'))
      this.enqueue(f)
    }
  }

  /** Handle a frame (from the leader, or an OPEN from the parent runtime) after those before it. */
  private enqueue(f: Frame): void {
    this.chain = this.chain.then(() => (this.finished && f.type !== F_ABORT ? undefined : this.onFrame(f))).catch((err: Error) => this.fail(err.message, true))
  }

  private onEnd(): void {
    if (this.status !== 0 && this.status !== 200) {
      let detail = Buffer.concat(this.errorBody).toString('utf8')
      try {
        detail = (JSON.parse(detail) as { message?: string }).message ?? detail
      } catch {
        // not JSON: keep the text
      }
      return this.fail(`the leader refused the connection (HTTP ${this.status}): ${detail}`, false)
    }
  }

  private async onFrame(f: Frame): Promise<void> {
    switch (f.type) {
      case F_WELCOME:
        return this.welcome(f)
      case F_GRANT:
        return this.grant(f)
      case F_OPEN:
        return this.open(f)
      case F_PEERS:
        return this.peers(f)
      case F_FINISH:
        return this.finish()
      case F_ABORT: {
        const a = decodeJson<{ reason?: string }>(f)
        return this.fail(`the leader aborted the run: ${a.reason ?? 'no reason given'}`, false)
      }
      case F_ERROR: {
        const e = decodeJson<{ message?: string }>(f)
        return this.fail(`the leader refused this runtime: ${e.message ?? 'no message'}`, false)
      }
      default:
        throw new FrameError(`unexpected ${frameName(f.type)} frame`)
    }
  }

  /** Build this runtime's hosts (and live components) from the SimCluster, start them, report time 0. */
  private async welcome(f: Frame): Promise<void> {
    if (this.group) throw new FrameError('second WELCOME')
    const opts = this.opts
    const w = decodeJson<{ protocol: number; cluster: unknown; baseDir: string; sync?: SyncMode }>(f)
    this.sync = w.sync === 'peers' ? 'peers' : 'star'
    const { plan } = validateSimCluster(w.cluster)
    const indices = opts.hosts.map((name) => {
      const i = plan.hostIndex.get(name)
      if (i === undefined) throw new Error(`host ${name} is not in SimCluster ${plan.cluster}`)
      return i
    })
    const factories = await loadCustomComponents(plan, w.baseDir, indices)
    if (indices.some((i) => plan.hosts[i]!.components.some((c) => c.spec.live))) {
      const fallback = path.join(os.tmpdir(), `livesim-${plan.cluster}-${opts.runtimeId}-${process.pid}`)
      this.live = new LiveRunner(plan, indices, liveOptionsFromEnv(process.env, this.log, fallback))
      activeRunners.add(this.live)
    }
    const live = this.live
    const group = new HostGroup(plan, indices, factories, live?.factory)
    this.group = group
    if (plan.mode === 'Conservative') this.localLookaheadNs = internalLookaheadNs(buildTopology(plan), indices)
    await live?.start()
    group.start()
    if (this.sync === 'peers') {
      // Ready: what the hosts sent at start waits in the outboxes for PEERS, then goes to the peers.
      this.stream.write(encodeBarrier(F_REPORT, 0, group.nextEventNs(), out0, 0))
    } else {
      const [out, n, payloads] = group.drainOutbox()
      this.stream.write(encodeBarrier(F_REPORT, 0, group.nextEventNs(), out, n, payloads))
    }
    this.log.info({ hosts: opts.hosts, cluster: plan.cluster, live: live ? { cellMode: live.cellMode, hosts: live.hosts.length } : undefined }, 'hosts started')
  }

  /** Peer batches: connect to the peers, send them what the hosts sent at start, tally epoch 0. */
  private async peers(f: Frame): Promise<void> {
    const group = this.group
    if (!group || this.sync !== 'peers') throw new FrameError('PEERS before WELCOME, or in a run without peer batches')
    if (this.peered) throw new FrameError('second PEERS')
    this.peered = true
    this.mesh.configure(group.plan, buildTopology(group.plan), decodeJson<PeerTable>(f))
    await this.report(group)
  }

  /** Run the granted window and report it. */
  private async grant(f: Frame): Promise<void> {
    const group = this.group
    if (!group) throw new FrameError('GRANT before WELCOME')
    if (this.sync === 'peers') throw new FrameError('a GRANT in a run with peer batches')
    const g = decodeBarrier(f)
    if (g.epoch !== this.epoch + 1) throw new FrameError(`GRANT for epoch ${g.epoch}, expected ${this.epoch + 1}`)
    this.epoch = g.epoch
    group.deliver(g.messages, g.count, g.payloads)
    await this.runWindow(group, g.timeNs)
  }

  /** Peer batches: take the last window's BATCHes the leader counted, then run the window. */
  private async open(f: Frame): Promise<void> {
    const group = this.group
    if (!group || !this.peered) throw new FrameError('OPEN before PEERS')
    const o = decodeOpen(f, this.mesh.runtimes)
    if (o.epoch !== this.epoch + 1) throw new FrameError(`OPEN for epoch ${o.epoch}, expected ${this.epoch + 1}`)
    this.epoch = o.epoch
    // Tree: the children's OPENs go on first, then this runtime waits for its BATCHes.
    const [windowEndNs, batches] = this.mesh.forwardOpen(o.epoch, o.entries, o.count)
    for (const b of await this.mesh.collect(this.epoch - 1, batches)) group.deliver(b.messages, b.count, b.payloads)
    await this.runWindow(group, windowEndNs)
  }

  private async runWindow(group: HostGroup, toNs: number): Promise<void> {
    const startMs = performance.now()
    await runWindow(group, this.live, this.windowStartNs, toNs, this.localLookaheadNs)
    this.busyMs += performance.now() - startMs
    this.windowStartNs = toNs
    await this.report(group)
  }

  /** Report the window just run: its messages to the leader (star), or to the peers and a TALLY up. */
  private async report(group: HostGroup): Promise<void> {
    const [out, n, payloads] = group.drainOutbox()
    if (this.sync !== 'peers') {
      this.stream.write(encodeBarrier(F_REPORT, this.epoch, group.nextEventNs(), out, n, payloads))
      return
    }
    const own = this.mesh.sendWindow(this.epoch, group.nextEventNs(), out, n, payloads)
    const tally = tallyFrame(this.epoch, await this.mesh.combine(this.epoch, own))
    if (this.mesh.hasParent) this.mesh.sendUp(tally)
    else this.stream.write(tally)
  }

  /** Send this runtime's results: the run is done. */
  private finish(): void {
    const group = this.group
    if (!group) throw new FrameError('FINISH before WELCOME')
    this.finished = true
    const results = group.results()
    if (this.live) for (const h of group.hosts) if (results[h.name]) results[h.name]!.live = this.live.hostResults(h.index)
    this.stream.end(encodeJson(F_RESULTS, { hosts: results, busyNs: Math.round(this.busyMs * 1e6), hostBusyNs: group.busyNs() }))
    this.log.info({ epochs: this.epoch }, 'results sent')
    this.resolve()
  }
}

const out0 = new Float64Array(0)

const activeRunners = new Set<LiveRunner>()

/**
 * Tear down the live components of every runtime in this process (signal handlers call this before
 * exiting, with `hurry`: programs still in their terminationGracePeriod are killed with their cells
 * instead of waited for, so that the teardown ends before the handler's forced exit).
 */
export async function stopLiveComponents(opts: { hurry?: boolean } = {}): Promise<void> {
  await Promise.all([...activeRunners].map((r) => r.stop(opts)))
}

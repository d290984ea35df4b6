// Peer batches: runtimes send their cross-runtime messages to each other, not through the leader
// (notes/scale-out.md §2; frames.ts for the wire format; docs/design.md, "Peer batches").
//
// Each runtime listens for its peers on HTTP/2 (POST /v1/peer, the cluster's bearer token) and
// tells the leader where in HELLO. At gang start the leader hands every runtime PEERS: its slot, the
// runtimes' addresses and which runtime carries which host. From the plan's communication graph
// (topology.ts) each runtime works out the same peer graph: who it can send to (out-peers) and who
// can send to it (in-peers). After each window a runtime sends each out-peer it has messages for
// one BATCH of them, and the leader a TALLY: per runtime, the earliest pending time this runtime
// knows of (its own next event, the earliest message it just sent each peer), which is what the
// windows need (windows.ts), and how many BATCHes it sent there (0 or 1). The leader sums those
// into each runtime's OPEN (the GRANT of peer batches): the next window, and how many BATCHes of the
// last one to wait for; a runtime delivers them and only then runs the window. No null messages: a
// window without cross-runtime messages costs no frame between runtimes. The leader's work per
// barrier is then one TALLY in and one OPEN out per runtime, however many messages there are.
//
// Aggregation. From `treeMin` runtimes on (LIVESIM_SYNC_TREE_MIN, default TREE_MIN_DEFAULT), the
// runtimes form a `fanIn`-ary tree (LIVESIM_SYNC_TREE_FANIN, default FAN_IN_DEFAULT) in slot order
// under the leader, as a heap: runtime s reports to runtime ⌊s / fanIn⌋ − 1, the leader for
// s < fanIn. An interior runtime merges its children's TALLYs with its own (per runtime the earliest
// time and the sum of BATCHes: combineTallies) and sends one TALLY up; OPENs come down the same way:
// the leader sends each of its children the entries of that child's subtree (subtreeOf), and each
// interior runtime passes its children theirs before it runs its window. So the leader reads and
// writes `fanIn` frames per barrier, and a report and a grant cross ⌈log_fanIn N⌉ hops each.
import http2 from 'node:http2'
import net from 'node:net'
import { timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'
import type { RunPlan } from '../api/plan.ts'
import { SLOT_PAYLOAD, WIRE_SLOTS } from '../engine/message.ts'
import { decodeBarrier, decodeTally, encodeBarrier, encodeOpen, encodeTally, F_BATCH, F_OPEN, F_TALLY, FrameDecoder, FrameError, frameName, TALLY_SLOTS, type TallyFrame } from './frames.ts'
import type { Topology } from './topology.ts'

/** Children per interior runtime of the aggregation tree, by default. */
export const FAN_IN_DEFAULT = 16
/** Runtimes from which on their TALLYs go up a tree, by default. */
export const TREE_MIN_DEFAULT = 256

/** How runtimes exchange messages: through the leader (the star) or each other (peer batches). */
export type SyncMode = 'peers' | 'star'

export interface SyncOptions {
  mode: SyncMode
  /** Runtimes from which on TALLYs are aggregated in a tree. */
  treeMin: number
  fanIn: number
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number): number {
  const v = env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer of at least ${min}, got ${JSON.stringify(v)}`)
  return n
}

/** LIVESIM_SYNC (peers or star), LIVESIM_SYNC_TREE_MIN, LIVESIM_SYNC_TREE_FANIN. */
export function syncFromEnv(env: NodeJS.ProcessEnv = process.env): SyncOptions {
  const mode = env.LIVESIM_SYNC || 'peers'
  if (mode !== 'peers' && mode !== 'star') throw new Error(`LIVESIM_SYNC must be peers or star, got ${JSON.stringify(mode)}`)
  return { mode, treeMin: positiveInt(env, 'LIVESIM_SYNC_TREE_MIN', TREE_MIN_DEFAULT, 1), fanIn: positiveInt(env, 'LIVESIM_SYNC_TREE_FANIN', FAN_IN_DEFAULT, 2) }
}

/** What the leader hands every runtime at gang start (PEERS). */
export interface PeerTable {
  /** This runtime's slot. */
  slot: number
  /** Each runtime's peer address, by slot. */
  urls: string[]
  /** Host index → slot of the runtime carrying it. */
  owner: number[]
  /** Children per interior runtime of the aggregation tree, 0 without a tree. */
  fanIn: number
}

/** The parent of runtime `slot` in a `fanIn`-ary tree under the leader: -1 for the leader. */
export function treeParent(slot: number, fanIn: number): number {
  return Math.floor(slot / fanIn) - 1
}

/** The children of runtime `slot` (-1: the leader) among `runtimes`. */
export function treeChildren(slot: number, fanIn: number, runtimes: number): number[] {
  const out: number[] = []
  for (let c = (slot + 1) * fanIn; c < Math.min(runtimes, (slot + 2) * fanIn); c++) out.push(c)
  return out
}

/** Runtime `slot` and every runtime under it in the tree, `slot` first, breadth first. */
export function subtreeOf(slot: number, fanIn: number, runtimes: number): number[] {
  const out = [slot]
  for (let i = 0; i < out.length; i++) out.push(...treeChildren(out[i]!, fanIn, runtimes))
  return out
}

/** OPEN entries for the runtimes `slots` (their order), from entries that name each of them once. */
export function openEntriesFor(slots: readonly number[], byslot: ReadonlyMap<number, number>, entries: Float64Array): Float64Array {
  const out = new Float64Array(slots.length * TALLY_SLOTS)
  slots.forEach((s, i) => {
    const at = byslot.get(s)
    if (at === undefined) throw new FrameError(`OPEN lacks runtime ${s}`)
    out.set(entries.subarray(at * TALLY_SLOTS, (at + 1) * TALLY_SLOTS), i * TALLY_SLOTS)
  })
  return out
}

/**
 * Who can send a message to whom (`owner`: host index → runtime slot): runtime s to runtime p ≠ s
 * when an edge of the communication graph goes from a group with a host on s to a group with a host
 * on p. Every runtime computes the same graph from the same plan.
 */
export function peerGraph(topo: Topology, owner: ArrayLike<number>, runtimes: number): { out: number[][]; in: number[][] } {
  const G = topo.groups.length
  const on: Set<number>[] = Array.from({ length: G }, () => new Set())
  for (let h = 0; h < owner.length; h++) on[topo.groupOf[h]!]!.add(owner[h]!)
  const pairs = new Set<number>()
  for (const e of topo.edges) {
    for (const s of on[e.from]!) for (const p of on[e.to]!) if (s !== p) pairs.add(s * runtimes + p)
  }
  const out: number[][] = Array.from({ length: runtimes }, () => [])
  const inn: number[][] = Array.from({ length: runtimes }, () => [])
  for (const k of [...pairs].sort((a, b) => a - b)) {
    const s = Math.floor(k / runtimes)
    const p = k % runtimes
    out[s]!.push(p)
    inn[p]!.push(s)
  }
  return { out, in: inn }
}

/** A runtime's outbox split per destination runtime: one batch per out-peer, empty ones included. */
export interface Split {
  peers: number[]
  messages: Float64Array[]
  counts: number[]
  payloads: Uint8Array[][]
  /** Earliest delivery time per batch, Infinity for an empty one. */
  earliestNs: number[]
}

/**
 * Split `count` messages (WIRE_SLOTS f64 each, with their payloads in order) into one batch per
 * out-peer of this runtime (`peerIndex`: runtime slot → its index in `peers`, -1 if not a peer).
 * A message for a runtime that is no out-peer means the communication graph missed an edge: throws.
 */
export function splitByRuntime(msgs: Float64Array, count: number, payloads: readonly Uint8Array[], owner: ArrayLike<number>, peers: readonly number[], peerIndex: Int32Array): Split {
  const n = peers.length
  const counts = new Array<number>(n).fill(0)
  for (let i = 0; i < count; i++) {
    const dst = msgs[i * WIRE_SLOTS + 4]!
    const slot = owner[dst]
    const k = slot === undefined ? -1 : peerIndex[slot]!
    if (k === undefined || k < 0) throw new Error(`a message for host index ${dst} (runtime ${slot}), which the communication graph says this runtime cannot reach`)
    counts[k]!++
  }
  const messages = counts.map((c) => new Float64Array(c * WIRE_SLOTS))
  const outPayloads: Uint8Array[][] = peers.map(() => [])
  const earliestNs = new Array<number>(n).fill(Infinity)
  const fill = new Array<number>(n).fill(0)
  let p = 0
  for (let i = 0; i < count; i++) {
    const at = i * WIRE_SLOTS
    const k = peerIndex[owner[msgs[at + 4]!]!]!
    messages[k]!.set(msgs.subarray(at, at + WIRE_SLOTS), fill[k]! * WIRE_SLOTS)
    fill[k]!++
    if (msgs[at]! < earliestNs[k]!) earliestNs[k] = msgs[at]!
    if (msgs[at + SLOT_PAYLOAD]! > 0) outPayloads[k]!.push(payloads[p++]!)
  }
  return { peers: [...peers], messages, counts, payloads: outPayloads, earliestNs }
}

/**
 * Merge TALLY entries (runtime slot, earliest ns, BATCHes; several lists, any order) into one list
 * in slot order, per runtime the earliest time and the sum of BATCHes: what an interior runtime of
 * the tree sends up. Merging is associative and commutative: any tree gives the leader the same.
 */
export function combineTallies(lists: readonly { entries: Float64Array; count: number }[]): { entries: Float64Array; count: number } {
  const best = new Map<number, [number, number]>()
  for (const l of lists) {
    for (let i = 0; i < l.count; i++) {
      const slot = l.entries[TALLY_SLOTS * i]!
      const t = l.entries[TALLY_SLOTS * i + 1]!
      const b = l.entries[TALLY_SLOTS * i + 2]!
      const had = best.get(slot)
      if (had === undefined) best.set(slot, [t, b])
      else best.set(slot, [Math.min(had[0], t), had[1] + b])
    }
  }
  const slots = [...best.keys()].sort((a, b) => a - b)
  const entries = new Float64Array(slots.length * TALLY_SLOTS)
  slots.forEach((s, i) => {
    const [t, b] = best.get(s)!
    entries[TALLY_SLOTS * i] = s
    entries[TALLY_SLOTS * i + 1] = t
    entries[TALLY_SLOTS * i + 2] = b
  })
  return { entries, count: slots.length }
}

/** Batches and TALLYs that arrived for one epoch. */
/** Messages for one runtime's hosts, as group.deliver takes them. */
export interface Batch {
  messages: Float64Array
  count: number
  payloads: readonly Uint8Array[]
}

interface Inbound {
  batches: { from: number; frame: Batch }[]
  /** Messages of the epoch between this runtime's own hosts (Slack: every message waits for the barrier). */
  self?: Batch
  from: Set<number>
  /** How many BATCHes the OPEN said to wait for, once it came. */
  expected?: number
  tallies: TallyFrame[]
  waitBatches?: () => void
  waitTallies?: () => void
}

/**
 * One runtime's end of the peer connections: an HTTP/2 server for what its peers send it, a client
 * stream to each runtime it sends to (and to its parent in the tree). Errors (a malformed frame, a
 * BATCH from a runtime that cannot send here, a second one for an epoch) go to onError; a peer that
 * goes away is the leader's to notice (it fails the run and aborts everyone).
 */
export class PeerMesh {
  private readonly token: Buffer
  private readonly log: Logger
  private readonly server: http2.Http2Server
  private readonly sessions = new Set<http2.Http2Session>()
  private readonly sockets = new Set<net.Socket>()
  private readonly clients: http2.ClientHttp2Session[] = []
  private readonly inbound = new Map<number, Inbound>()
  /** By slot: the stream to that runtime, once connected. */
  private readonly outStreams = new Map<number, http2.ClientHttp2Stream>()
  private table: PeerTable | undefined
  private outPeers: number[] = []
  private inPeers = new Set<number>()
  private peerIndex = new Int32Array(0)
  /** The out-peers, then this runtime. */
  private splitTo: number[] = []
  private parent = -1
  private children: number[] = []
  /** Per child: its subtree, itself first (the OPEN entries it gets). */
  private subtrees: number[][] = []
  /** OPENs from the parent runtime (tree): handled in order with the leader's frames. */
  onOpen: (f: { type: number; payload: Buffer }) => void = () => {}
  private aborted: Error | undefined
  /** Frames that came before PEERS did (a peer that got it first): handled once configured. */
  private early: { type: number; payload: Buffer }[] = []
  private rejectWait: ((err: Error) => void) | undefined
  /** The lowest epoch whose batches have not been collected yet. */
  private collected = 0
  /** Messages and bytes sent to peers (logged at the end). */
  sentMessages = 0
  onError: (err: Error) => void = () => {}

  constructor(token: string, log: Logger) {
    this.token = Buffer.from(`Bearer ${token}`)
    this.log = log
    this.server = http2.createServer({ settings: H2_PEER_SETTINGS })
    this.server.on('session', (s) => {
      this.sessions.add(s)
      s.on('close', () => this.sessions.delete(s))
      s.on('error', (err) => this.log.debug({ err }, 'peer session error'))
    })
    this.server.on('connection', (sock: net.Socket) => {
      sock.setNoDelay(true)
      this.sockets.add(sock)
      sock.on('close', () => this.sockets.delete(sock))
    })
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers))
  }

  /** Listen on host:port (0: any free one); returns the port. */
  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => resolve())
    })
    return (this.server.address() as net.AddressInfo).port
  }

  /** The PEERS table: work out the peer graph and the tree, connect to the out-peers and the parent. */
  configure(plan: RunPlan, topo: Topology, table: PeerTable): void {
    const runtimes = table.urls.length
    if (!Number.isInteger(table.slot) || table.slot < 0 || table.slot >= runtimes) throw new FrameError(`PEERS: slot ${table.slot} of ${runtimes} runtimes`)
    if (table.owner.length !== plan.hosts.length || !table.owner.every((o) => Number.isInteger(o) && o >= 0 && o < runtimes)) throw new FrameError('PEERS: owner must name a runtime for every host')
    this.table = table
    const graph = peerGraph(topo, table.owner, runtimes)
    this.outPeers = graph.out[table.slot]!
    this.inPeers = new Set(graph.in[table.slot]!)
    this.peerIndex = new Int32Array(runtimes).fill(-1)
    this.outPeers.forEach((p, i) => (this.peerIndex[p] = i))
    // Its own hosts' messages, when they wait for the barrier too: the last "peer", never sent.
    this.peerIndex[table.slot] = this.outPeers.length
    this.splitTo = [...this.outPeers, table.slot]
    if (table.fanIn > 0) {
      this.parent = treeParent(table.slot, table.fanIn)
      this.children = treeChildren(table.slot, table.fanIn, runtimes)
      this.subtrees = this.children.map((c) => subtreeOf(c, table.fanIn, runtimes))
    }
    const targets = new Set(this.outPeers)
    if (this.parent >= 0) targets.add(this.parent)
    for (const c of this.children) targets.add(c)
    for (const slot of targets) this.connect(slot, table.urls[slot]!)
    const early = this.early
    this.early = []
    for (const f of early) this.onFrame(f.type, f)
    this.log.debug({ slot: table.slot, out: this.outPeers, in: [...this.inPeers], parent: this.parent, children: this.children }, 'peers configured')
  }

  /** Whether this runtime's TALLY goes to a parent runtime rather than the leader. */
  /** Runtimes of the run (PEERS). */
  get runtimes(): number {
    return this.table?.urls.length ?? 0
  }

  get hasParent(): boolean {
    return this.parent >= 0
  }

  private connect(slot: number, url: string): void {
    const u = new URL(url)
    const session = http2.connect(url, {
      settings: H2_PEER_SETTINGS,
      createConnection: () => net.connect({ host: u.hostname, port: Number(u.port || 80), noDelay: true }),
    })
    // A peer that goes away is the leader's to notice (its sync stream closes); so is a peer that
    // never receives what it waits for (the barrier timeout). Only what a peer refuses fails here.
    session.on('error', (err) => this.log.debug({ err: err.message, slot, url }, 'peer connection error'))
    this.clients.push(session)
    const stream = session.request({ ':method': 'POST', ':path': '/v1/peer', authorization: this.token.toString(), 'content-type': 'application/x-livesim-frames' })
    stream.on('error', (err) => this.log.debug({ err: err.message, slot }, 'peer stream error'))
    stream.on('response', (h) => {
      if (Number(h[':status']) !== 200) this.fault(new Error(`runtime ${slot} at ${url} refused the peer stream (HTTP ${h[':status']})`))
    })
    this.outStreams.set(slot, stream)
  }

  private fault(err: Error): void {
    if (this.aborted) return
    this.onError(err)
  }

  /**
   * Send this window's messages (drained from the outbox) to the out-peers, a BATCH to each that
   * has some; returns this runtime's TALLY entries (its own next event; per peer sent to, the
   * earliest message and one BATCH).
   */
  sendWindow(epoch: number, nextEventNs: number, msgs: Float64Array, count: number, payloads: readonly Uint8Array[]): { entries: Float64Array; count: number } {
    const table = this.table!
    const entries = new Float64Array(TALLY_SLOTS * (1 + (count > 0 ? this.outPeers.length : 0)))
    entries[0] = table.slot
    entries[1] = nextEventNs
    entries[2] = 0
    if (count === 0) return { entries, count: 1 }
    const split = splitByRuntime(msgs, count, payloads, table.owner, this.splitTo, this.peerIndex)
    const own = split.peers.length - 1
    if (split.counts[own]! > 0) {
      // Held here for the next window, as the star's leader would hand them back.
      this.box(epoch).self = { messages: split.messages[own]!, count: split.counts[own]!, payloads: split.payloads[own]! }
      entries[1] = Math.min(nextEventNs, split.earliestNs[own]!)
    }
    let n = 1
    for (let i = 0; i < own; i++) {
      if (split.counts[i] === 0) continue
      const slot = split.peers[i]!
      this.outStreams.get(slot)!.write(encodeBarrier(F_BATCH, epoch, table.slot, split.messages[i]!, split.counts[i]!, split.payloads[i]!))
      entries[TALLY_SLOTS * n] = slot
      entries[TALLY_SLOTS * n + 1] = split.earliestNs[i]!
      entries[TALLY_SLOTS * n + 2] = 1
      n++
    }
    this.sentMessages += count
    return { entries, count: n }
  }

  /**
   * Tree: pass each child the entries of an OPEN (`entries`, `count` of them) for its subtree;
   * returns this runtime's own entry: [window end, BATCHes].
   */
  forwardOpen(epoch: number, entries: Float64Array, count: number): [number, number] {
    const table = this.table!
    if (entries[0] !== table.slot) throw new FrameError(`OPEN for runtime ${entries[0]}, not ${table.slot}`)
    if (this.children.length > 0) {
      const byslot = new Map<number, number>()
      for (let i = 0; i < count; i++) byslot.set(entries[i * TALLY_SLOTS]!, i)
      if (byslot.size !== 1 + this.subtrees.reduce((n, t) => n + t.length, 0)) throw new FrameError(`OPEN with ${count} entries for runtime ${table.slot}'s subtree`)
      this.children.forEach((c, i) => {
        const sub = this.subtrees[i]!
        this.outStreams.get(c)!.write(encodeOpen(epoch, openEntriesFor(sub, byslot, entries), sub.length))
      })
    } else if (count !== 1) {
      throw new FrameError(`OPEN with ${count} entries for runtime ${table.slot}, which has no children`)
    }
    return [entries[1]!, entries[2]!]
  }

  /** Send a TALLY to the parent runtime (tree). */
  sendUp(frame: Buffer): void {
    this.outStreams.get(this.parent)!.write(frame)
  }

  /** Wait for the children's TALLYs of `epoch` (none without children) and merge them with `own`. */
  async combine(epoch: number, own: { entries: Float64Array; count: number }): Promise<{ entries: Float64Array; count: number }> {
    if (this.children.length === 0) return own
    const box = this.box(epoch)
    if (box.tallies.length < this.children.length) {
      await this.wait((resolve) => (box.waitTallies = resolve))
    }
    const merged = combineTallies([own, ...box.tallies])
    box.tallies = []
    this.release(epoch)
    return merged
  }

  /**
   * Wait for `batches` BATCHes of `epoch` (the OPEN says how many); returns them and the messages
   * this runtime held for its own hosts, in slot order.
   */
  async collect(epoch: number, batches: number): Promise<Batch[]> {
    const box = this.box(epoch)
    box.expected = batches
    if (box.from.size > batches) throw new FrameError(`${box.from.size} BATCHes of epoch ${epoch} arrived, the leader counted ${batches}`)
    if (box.from.size < batches) {
      await this.wait((resolve) => (box.waitBatches = resolve))
    }
    this.collected = epoch + 1
    if (box.self) box.batches.push({ from: this.table!.slot, frame: box.self })
    box.self = undefined
    const frames = box.batches.sort((a, b) => a.from - b.from).map((b) => b.frame)
    box.batches = []
    box.from = new Set()
    box.waitBatches = undefined
    this.release(epoch)
    return frames
  }

  private wait(arm: (resolve: () => void) => void): Promise<void> {
    if (this.aborted) return Promise.reject(this.aborted)
    return new Promise<void>((resolve, reject) => {
      this.rejectWait = reject
      arm(() => {
        this.rejectWait = undefined
        resolve()
      })
    })
  }

  private box(epoch: number): Inbound {
    let b = this.inbound.get(epoch)
    if (!b) this.inbound.set(epoch, (b = { batches: [], from: new Set(), tallies: [] }))
    return b
  }

  /** Forget an epoch once its batches and TALLYs are both taken. */
  private release(epoch: number): void {
    const b = this.inbound.get(epoch)
    if (b && b.batches.length === 0 && b.tallies.length === 0 && epoch < this.collected) this.inbound.delete(epoch)
  }

  /** The run ended (or failed): pending waits reject with `err`. */
  abort(err: Error): void {
    this.aborted ??= err
    this.rejectWait?.(err)
  }

  /**
   * Tear every peer connection down at once: the run is over (or failed), nothing more is needed
   * from them, and a connection left open would keep the process alive until its peer exits.
   */
  async close(): Promise<void> {
    this.aborted ??= new Error('closed')
    for (const c of this.clients) c.destroy()
    for (const s of this.sessions) s.destroy()
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()))
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {})
    const auth = Buffer.from(String(headers.authorization ?? ''))
    if (headers[':path'] !== '/v1/peer' || headers[':method'] !== 'POST' || auth.length !== this.token.length || !timingSafeEqual(auth, this.token)) {
      stream.respond({ ':status': headers[':path'] === '/v1/peer' ? 401 : 404 })
      stream.end()
      return
    }
    stream.respond({ ':status': 200 })
    const decoder = new FrameDecoder()
    stream.on('data', (chunk: Buffer) => {
      if (this.aborted) return
      try {
        for (const f of decoder.push(chunk)) this.onFrame(f.type, f)
      } catch (err) {
        stream.close(http2.constants.NGHTTP2_CANCEL)
        this.fault(new Error(`from a peer: ${(err as Error).message}`))
      }
    })
  }

  private onFrame(type: number, f: { type: number; payload: Buffer }): void {
    const table = this.table
    if (!table) {
      this.early.push({ type, payload: Buffer.from(f.payload) })
      return
    }
    if (type === F_BATCH) {
      const b = decodeBarrier(f)
      const from = b.timeNs
      if (!this.inPeers.has(from)) throw new FrameError(`BATCH from runtime ${from}, which cannot send to runtime ${table.slot}`)
      if (b.epoch < this.collected) throw new FrameError(`BATCH of epoch ${b.epoch} from runtime ${from} after that epoch was delivered`)
      const box = this.box(b.epoch)
      if (box.from.has(from)) throw new FrameError(`second BATCH of epoch ${b.epoch} from runtime ${from}`)
      box.from.add(from)
      box.batches.push({ from, frame: b })
      if (box.expected !== undefined && box.from.size > box.expected) throw new FrameError(`more BATCHes of epoch ${b.epoch} than the leader counted (${box.expected})`)
      if (box.from.size === box.expected) box.waitBatches?.()
      return
    }
    if (type === F_TALLY) {
      const t = decodeTally(f, table.urls.length)
      if (this.children.length === 0) throw new FrameError(`TALLY to runtime ${table.slot}, which has no children in the tree`)
      const box = this.box(t.epoch)
      box.tallies.push(t)
      if (box.tallies.length > this.children.length) throw new FrameError(`more TALLYs of epoch ${t.epoch} than runtime ${table.slot} has children`)
      if (box.tallies.length === this.children.length) box.waitTallies?.()
      return
    }
    if (type === F_OPEN) {
      if (this.parent < 0) throw new FrameError(`OPEN from a peer to runtime ${table.slot}, whose parent is the leader`)
      this.onOpen(f)
      return
    }
    throw new FrameError(`unexpected ${frameName(type)} frame from a peer`)
  }
}

/** As the leader's H2_SETTINGS (not imported from leader.ts, which imports this module). */
const H2_PEER_SETTINGS: http2.Settings = {
  initialWindowSize: 32 * 1024 * 1024,
  maxFrameSize: 1024 * 1024,
  enablePush: false,
}

/** A TALLY frame of these entries. */
export function tallyFrame(epoch: number, t: { entries: Float64Array; count: number }): Buffer {
  return encodeTally(epoch, t.entries, t.count)
}

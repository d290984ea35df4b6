// Requests of modelled components to the live programs of a host: a Client with `redis:` or `http:`,
// or a Server's call with one of them. The runtime of the program's host writes each request into a
// connection of its own to the program at the request's delivery time, finds where each reply ends
// in what the program writes back (the protocol's parser, protocols/), and answers the request with
// a RESPONSE, or an ERROR (a Redis error reply, an HTTP 5xx, a malformed reply, a lost connection),
// stamped with the virtual time at which the program wrote the reply's last byte (its write stamp,
// stamps.ts; the time the runtime read it when no stamp covers it). An HTTP reply carries its status
// code in `tag`. The live component's `response` histogram is the time from each request's delivery
// to its reply: the server's time, as the requester's latency sees it between the two link crossings.
//
// Connections (protocols/live-tag.ts): a request names either the sender's own connection (a
// closed-loop user's, kept alive like a connection of redis-benchmark -c or wrk -c; a Redis open
// loop pipelines on one) or its pool: an idle connection of the sender's, or a new one (HTTP open
// loops and Server calls: one request at a time per connection). A connection the server closes, or
// whose HTTP response says it closes, takes no further request; the next one opens a new connection.
import net from 'node:net'
import type { Logger } from 'pino'
import { MSG_ERROR, MSG_RESPONSE, newMessage, type Message } from '../engine/message.ts'
import { ResponseParser } from '../protocols/http-response.ts'
import { PROTO_HTTP, PROTO_REDIS, readLiveTag } from '../protocols/live-tag.ts'
import { ReplyScanner } from '../protocols/resp.ts'
import { stampKeyOfPeer, type StampReader } from './stamps.ts'

/** The counters of a live component (net.ts) that its modelled senders add to. */
export interface RequestStats {
  connections: number
  bytesIn: number
  bytesOut: number
  requests: number
  replies: number
  errors: number
  unstampedBytes: number
  /** Delivery to reply of each modelled request answered by the program, virtual ns. */
  response: { record(ns: number): void }
}

/** What this file needs of a live host and its component. */
export interface ModelledHost {
  readonly index: number
  readonly name: string
  bindAddr: string
  readonly stamps?: StampReader | undefined
  virtualNowNs(): number
}
export type ReplyContext = { sendAt(msg: Message, atNs: number): void }

/** A reply found in a connection's stream, waiting for the end of the quantum (when the write stamps are known). */
export interface ReplyOut {
  at: number
  ctx: ReplyContext
  msg: Message
}

/** Where replies end in a reply stream, and what each one is: one protocol's parser behind one face. */
interface ReplyFramer {
  /** Replies this chunk completed: their lengths and chunk end offsets in `lengths`, `ends`. Throws on malformed input. */
  push(chunk: Buffer): number
  /** The program closed the connection: replies that completes (a body delimited by the close). */
  end(): number
  readonly lengths: ArrayLike<number>
  readonly ends: ArrayLike<number>
  /** MSG_RESPONSE or MSG_ERROR for reply i of the last push or end. */
  type(i: number): number
  /** The reply's tag: an HTTP status code, else 0. */
  tag(i: number): number
  /** The connection carries nothing after reply i. */
  closes(i: number): boolean
}

class RedisFramer implements ReplyFramer {
  private readonly s = new ReplyScanner()
  get lengths() {
    return this.s.lengths
  }
  get ends() {
    return this.s.ends
  }
  push(chunk: Buffer): number {
    return this.s.push(chunk)
  }
  end(): number {
    return 0
  }
  type(i: number): number {
    return this.s.errors[i] === 1 ? MSG_ERROR : MSG_RESPONSE
  }
  tag(): number {
    return 0
  }
  closes(): boolean {
    return false
  }
}

class HttpFramer implements ReplyFramer {
  private readonly p = new ResponseParser()
  get lengths() {
    return this.p.lengths
  }
  get ends() {
    return this.p.ends
  }
  push(chunk: Buffer): number {
    return this.p.push(chunk)
  }
  end(): number {
    return this.p.end()
  }
  type(i: number): number {
    return this.p.status[i]! >= 500 ? MSG_ERROR : MSG_RESPONSE
  }
  tag(i: number): number {
    return this.p.status[i]!
  }
  closes(i: number): boolean {
    return this.p.keepAlive[i] === 0
  }
}

const FRAMERS: Record<number, { name: string; make: () => ReplyFramer }> = {
  [PROTO_REDIS]: { name: 'Redis', make: () => new RedisFramer() },
  [PROTO_HTTP]: { name: 'HTTP', make: () => new HttpFramer() },
}

/** Charged to an ERROR reply that carries no bytes of the program's. */
const ERROR_BYTES = 64

interface Requester {
  id: number
  host: number
  comp: number
  /** Virtual time the request was due at the program (written into its socket). */
  dueNs: number
}

interface Found {
  type: number
  tag: number
  bytes: number
  to: Requester
  /** Stream offset just past the reply's last byte; -1: no byte of the program's (a lost connection). */
  endPos: number
  readNs: number
}

/** A connection of the runtime to a live program, carrying modelled requests. */
interface ModelConn {
  readonly sock: net.Socket
  readonly framer: ReplyFramer
  readonly proto: string
  readonly ctx: ReplyContext
  readonly stats: RequestStats
  /** Requests written, not yet answered, in order. */
  readonly waiting: Requester[]
  /** Replies found, not yet sent (flush()). */
  readonly found: Found[]
  /** The idle list it returns to after each reply, when it belongs to a pool. */
  readonly pool: ModelConn[] | undefined
  /** The program's end of the socket, as the shim names it in write stamps. */
  key: string | undefined
  readBytes: number
  /** The stamp of the last reply sent (a connection's replies never go back in time). */
  lastNs: number
  /** Takes no further request: the program closed it, or said it will. */
  done: boolean
}

export class ModelledRequests {
  private readonly log: Logger
  /** Host index → "sender host.sender component.port.connection" → that sender's own connection. */
  private readonly own = new Map<number, Map<string, ModelConn>>()
  /** Host index → "sender host.sender component.port" → its idle pooled connections. */
  private readonly pools = new Map<number, Map<string, ModelConn[]>>()
  /** Host index → connections with replies found and not yet sent. */
  private readonly dirty = new Map<number, Set<ModelConn>>()
  private readonly all = new Set<ModelConn>()
  private warned = false
  private closed = false

  constructor(log: Logger) {
    this.log = log
  }

  /** A modelled request for a live component of host h, due now: write it into a connection to the program. */
  request(h: ModelledHost, ctx: ReplyContext, stats: RequestStats, msg: Message, dueNs: number): void {
    if (this.closed) return
    const { port, proto, connection } = readLiveTag(msg.tag)
    const framer = FRAMERS[proto]
    stats.requests++
    stats.bytesIn += msg.payload?.length ?? 0
    const to = { id: msg.id, host: msg.srcHost, comp: msg.srcComp, dueNs }
    if (!framer || port === 0 || !msg.payload) {
      this.log.warn({ host: h.name, tag: msg.tag }, 'a request for a live program without a protocol, port or payload; answered with an error')
      stats.errors++
      return ctx.sendAt(newMessage(MSG_ERROR, to.host, to.comp, to.id, ERROR_BYTES), h.virtualNowNs())
    }
    const c = connection >= 0 ? this.ownConn(h, ctx, stats, msg, port, connection, framer) : this.pooledConn(h, ctx, stats, msg, port, framer)
    c.waiting.push(to)
    c.sock.write(msg.payload)
  }

  private ownConn(h: ModelledHost, ctx: ReplyContext, stats: RequestStats, msg: Message, port: number, connection: number, framer: (typeof FRAMERS)[number]): ModelConn {
    let conns = this.own.get(h.index)
    if (!conns) this.own.set(h.index, (conns = new Map()))
    const key = `${msg.srcHost}.${msg.srcComp}.${port}.${connection}`
    let c = conns.get(key)
    if (!c || c.done) {
      c = this.connect(h, ctx, stats, port, framer, undefined)
      conns.set(key, c)
      const mine = c
      mine.sock.on('close', () => {
        if (conns.get(key) === mine) conns.delete(key)
      })
    }
    return c
  }

  private pooledConn(h: ModelledHost, ctx: ReplyContext, stats: RequestStats, msg: Message, port: number, framer: (typeof FRAMERS)[number]): ModelConn {
    let pools = this.pools.get(h.index)
    if (!pools) this.pools.set(h.index, (pools = new Map()))
    const key = `${msg.srcHost}.${msg.srcComp}.${port}`
    let idle = pools.get(key)
    if (!idle) pools.set(key, (idle = []))
    for (let c = idle.pop(); c; c = idle.pop()) if (!c.done && c.waiting.length === 0) return c
    return this.connect(h, ctx, stats, port, framer, idle)
  }

  private connect(h: ModelledHost, ctx: ReplyContext, stats: RequestStats, port: number, framer: (typeof FRAMERS)[number], pool: ModelConn[] | undefined): ModelConn {
    const sock = net.connect({ host: h.bindAddr, port, noDelay: true })
    const c: ModelConn = { sock, framer: framer.make(), proto: framer.name, ctx, stats, waiting: [], found: [], pool, key: undefined, readBytes: 0, lastNs: 0, done: false }
    stats.connections++
    this.all.add(c)
    sock.on('data', (chunk: Buffer) => this.read(h, c, chunk))
    sock.on('end', () => this.ended(h, c))
    sock.on('error', (err) => {
      this.log.debug({ host: h.name, port, err: err.message }, 'modelled request connection error')
      this.lost(h, c)
    })
    sock.on('close', () => {
      this.lost(h, c)
      this.all.delete(c)
      // Its stamps are needed until its last replies are sent (collect() releases them then).
      if (c.found.length === 0 && c.key !== undefined) h.stamps?.release(c.key)
    })
    return c
  }

  /** Bytes from the program: the replies they complete are answered at the end of the quantum. */
  private read(h: ModelledHost, c: ModelConn, chunk: Buffer): void {
    c.stats.bytesOut += chunk.length
    c.key ??= stampKeyOfPeer(c.sock)
    const base = c.readBytes
    c.readBytes += chunk.length
    let n: number
    try {
      n = c.framer.push(chunk)
    } catch (err) {
      return this.malformed(h, c, err as Error)
    }
    this.found(h, c, n, base)
  }

  /** The program closed its end: a reply delimited by the close is complete; the rest are lost. */
  private ended(h: ModelledHost, c: ModelConn): void {
    let n: number
    try {
      n = c.framer.end()
    } catch (err) {
      return this.malformed(h, c, err as Error)
    }
    this.found(h, c, n, c.readBytes)
    this.lost(h, c)
  }

  private found(h: ModelledHost, c: ModelConn, n: number, base: number): void {
    if (n === 0) return
    const readNs = h.virtualNowNs()
    const f = c.framer
    for (let i = 0; i < n; i++) {
      const to = c.waiting.shift()
      if (f.closes(i)) c.done = true
      if (!to) continue // a reply to no request of ours (a server speaking first): nothing to answer
      const type = f.type(i)
      c.stats.replies++
      if (type === MSG_ERROR) c.stats.errors++
      c.found.push({ type, tag: f.tag(i), bytes: f.lengths[i]!, to, endPos: base + f.ends[i]!, readNs })
    }
    this.markDirty(h, c)
    if (c.pool && !c.done && c.waiting.length === 0) c.pool.push(c)
  }

  private malformed(h: ModelledHost, c: ModelConn, err: Error): void {
    const fields = { host: h.name, err: err.message }
    if (this.warned) this.log.debug(fields, `malformed ${c.proto} reply stream; dropping the connection`)
    else this.log.warn(fields, `malformed ${c.proto} reply stream; dropping the connection (further ones are logged at debug level)`)
    this.warned = true
    c.sock.destroy()
    this.lost(h, c)
  }

  /** The connection can answer nothing more: every request still waiting on it fails. */
  private lost(h: ModelledHost, c: ModelConn): void {
    c.done = true
    if (c.waiting.length === 0) return
    const readNs = h.virtualNowNs()
    for (const to of c.waiting.splice(0)) {
      c.stats.errors++
      c.found.push({ type: MSG_ERROR, tag: 0, bytes: ERROR_BYTES, to, endPos: -1, readNs })
    }
    this.markDirty(h, c)
  }

  private markDirty(h: ModelledHost, c: ModelConn): void {
    let d = this.dirty.get(h.index)
    if (!d) this.dirty.set(h.index, (d = new Set()))
    d.add(c)
  }

  /** Whether host h has replies to send (collect()). */
  hasReplies(h: ModelledHost): boolean {
    return (this.dirty.get(h.index)?.size ?? 0) > 0
  }

  /**
   * End of a quantum of host h: the replies found, each stamped with the write of its last byte (never
   * before floorNs, the window's start, nor before the connection's previous reply), for net.ts to
   * send in stamp order with the rest of the host's traffic.
   */
  collect(h: ModelledHost, floorNs: number, out: ReplyOut[]): void {
    const conns = this.dirty.get(h.index)
    if (!conns || conns.size === 0) return
    for (const c of conns) {
      const key = h.stamps && c.key !== undefined ? c.key : undefined
      for (const f of c.found) {
        const st = key !== undefined && f.endPos > 0 ? h.stamps!.stampOf(key, f.endPos - 1) : undefined
        if (!st && f.endPos >= 0) c.stats.unstampedBytes += f.bytes
        const at = Math.max(floorNs, c.lastNs, st ? st.vt : f.readNs)
        c.lastNs = at
        if (f.endPos >= 0) c.stats.response.record(at - f.to.dueNs)
        const msg = newMessage(f.type, f.to.host, f.to.comp, f.to.id, f.bytes)
        msg.tag = f.tag
        out.push({ at, ctx: c.ctx, msg })
      }
      c.found.length = 0
      if (c.done && key !== undefined && !this.all.has(c)) h.stamps!.release(key)
    }
    conns.clear()
  }

  close(): void {
    this.closed = true
    for (const c of this.all) c.sock.destroy()
  }
}

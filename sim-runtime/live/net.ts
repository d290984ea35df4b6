// The simulation-aware network path of live programs. Nothing a live program sends goes straight to
// another program: it goes through the runtime, which stamps it with the sender's virtual time and
// hands it to the simulated network (the sending host's egress link: latency, serialisation, FIFO
// queue), and writes it into the receiving program when the receiver's virtual clock reaches the
// delivery time. Connections open and close through the same path.
//
// Addresses (one 127.<octet>.0.0/16 block per runtime process, claimed so that runtimes on one machine
// never collide; see AddressBlock):
//   - every live host H gets a bind address B(H) (env LIVESIM_BIND_ADDR): its programs listen there;
//   - for every live host S (a viewer) and every host T that serves live ports, the runtime of S
//     listens on a view address V(S,T), on each port T serves (env LIVESIM_HOST_<T> in S's programs).
//     A connection to V(S,T):port is, by construction, from S to T: no guessing of sources.
//   - within a host, programs reach each other directly at B(H) (no network between them).
//
// Messages (engine/message.ts): OPEN(port) S→T when a program on S connects; DATA(payload) and FIN
// both ways, `id` naming the connection on S. On T, OPEN makes the runtime connect to B(T):port at
// the OPEN's delivery time. Modelled components send REQUEST messages carrying real requests (Redis
// commands, HTTP requests): T writes them into connections of its own to the program and answers
// them when the replies are complete (modelled.ts).
import net from 'node:net'
import type { Logger } from 'pino'
import type { RunPlan } from '../api/plan.ts'
import { Histogram } from '../engine/histogram.ts'
import { DIR_C2S, DIR_S2C, MSG_LIVE_DATA, MSG_LIVE_FIN, MSG_LIVE_OPEN, MSG_REQUEST, newMessage, type Message } from '../engine/message.ts'
import { ModelledRequests, type ReplyOut } from './modelled.ts'
import { stampKeyOfPeer, type StampReader } from './stamps.ts'

/** What net.ts needs of a live host (runner.ts's LiveHost). */
export interface NetHost {
  readonly index: number
  readonly name: string
  bindAddr: string
  readonly comps: NetComp[]
  /** The write stamps of the host's programs, when the shim records them. */
  readonly stamps?: StampReader | undefined
  enqueue(at: number, fn: () => void): void
  /** The host's virtual time now (its cell's clock during a run, else the last barrier). */
  virtualNowNs(): number
}

/** LIVESIM_HOST_<NAME>: the variable that holds a host's address, e.g. db-0 → LIVESIM_HOST_DB_0. */
export function hostVar(hostName: string): string {
  return `LIVESIM_HOST_${hostName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`
}

const CLAIM_PORT = 47_999
/** Second octets a runtime may claim; 77 is the process-backed test node's pod network (hack/node). */
const OCTETS = [...Array.from({ length: 27 }, (_, i) => 100 + i), ...Array.from({ length: 36 }, (_, i) => 64 + i).filter((o) => o !== 77)]

/**
 * A /16 of loopback addresses owned by this runtime process: 127.<octet>.0.0/16. Ownership is a
 * listening socket on 127.<octet>.255.254:47999: the kernel lets one process hold it, and frees it
 * when the process dies, so concurrent runtimes (livesim run --partition, tests, pods of a
 * process-backed node) pick different blocks without any shared file.
 */
export class AddressBlock {
  private claim: net.Server | undefined
  private octet: number | undefined
  private next = 1
  private readonly preferred: number | undefined

  constructor(preferred?: number) {
    this.preferred = preferred
  }

  get prefix(): string {
    if (this.octet === undefined) throw new Error('address block not acquired')
    return `127.${this.octet}`
  }

  async acquire(): Promise<void> {
    if (this.claim) return
    const candidates = this.preferred !== undefined ? [this.preferred] : rotate(OCTETS, process.pid % OCTETS.length)
    const failures: string[] = []
    for (const o of candidates) {
      const server = net.createServer()
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          failures.push(`127.${o}: ${err.code ?? err.message}`)
          resolve(false)
        })
        server.listen({ host: `127.${o}.255.254`, port: CLAIM_PORT, exclusive: true }, () => resolve(true))
      })
      if (ok) {
        server.unref()
        this.claim = server
        this.octet = o
        return
      }
    }
    throw new Error(`no free loopback block for live components (tried ${failures.slice(0, 5).join('; ')}${failures.length > 5 ? ', …' : ''})`)
  }

  /** The next address of the block. */
  alloc(): string {
    const k = this.next++
    if (k >= 65_000) throw new Error('more than 65000 live addresses in one runtime')
    return `${this.prefix}.${k >> 8}.${k & 255}`
  }

  release(): void {
    this.claim?.close()
    this.claim = undefined
  }
}

function rotate<T>(xs: T[], k: number): T[] {
  return [...xs.slice(k), ...xs.slice(0, k)]
}

interface Stats {
  connections: number
  /** Connections that ended (both directions closed) before the end of the run. */
  closed: number
  bytesIn: number
  bytesOut: number
  requests: number
  replies: number
  errors: number
  /** Bytes relayed with the time the runtime read them, for want of a write stamp (stamps.ts). */
  unstampedBytes: number
  /** Modelled requests: delivery to reply (modelled.ts). */
  response: Histogram
}

const newStats = (): Stats => ({ connections: 0, closed: 0, bytesIn: 0, bytesOut: 0, requests: 0, replies: 0, errors: 0, unstampedBytes: 0, response: new Histogram() })

/** What a program wrote (or its end of the stream: no buf), read by the runtime, not yet sent. */
interface Pending {
  buf: Buffer | undefined
  /** Offset of its first byte in the stream. */
  pos: number
  /** The virtual time the runtime read it: its stamp when no write stamp covers it. */
  readNs: number
}

type Send = (type: number, payload: Buffer | undefined, atNs: number) => void

/** A live connection, on either end. */
interface Conn {
  sock: net.Socket
  /** The program has ended its side (or the socket failed): FIN is queued. */
  finSent: boolean
  /** The counters of the component it is charged to. */
  stats: Stats
  /** Read from the program, waiting for the end of the quantum (flush()). */
  pending: Pending[]
  send: Send
  /** The program's end of the socket, as the shim names it in write stamps. */
  key: string | undefined
  /** Bytes read from the program so far. */
  readBytes: number
  /** The stamp of the last chunk sent (a connection's stamps never go back). */
  lastNs: number
}

/** What net.ts needs of a live component. */
type NetComp = { readonly ctx: { sendAt(msg: Message, atNs: number): void } }

export class LiveNet {
  private readonly plan: RunPlan
  private readonly hosts: Map<number, NetHost>
  private readonly addresses: { alloc(): string }
  private readonly log: Logger
  /** Host index → served port → component index, for every host of the cluster with live ports. */
  private readonly served = new Map<number, Map<number, number>>()
  /** Viewer host → target host → view address. */
  private readonly views = new Map<number, Map<number, string>>()
  private readonly listeners: net.Server[] = []
  /** Client side (S): connection id → the program's socket accepted by the proxy. */
  private readonly clientConns = new Map<number, Map<number, Conn>>()
  private readonly nextConnId = new Map<number, number>()
  /** Server side (T): "clientHost.id" → our socket to the program. */
  private readonly serverConns = new Map<number, Map<string, Conn>>()
  /** Server side (T): the connections that carry modelled components' requests. */
  private readonly modelled: ModelledRequests
  private readonly stats = new Map<object, Stats>()
  /** Host index → connections with bytes (or a FIN) read and not yet sent. */
  private readonly dirty = new Map<number, Set<Conn>>()
  private closed = false
  /** LIVESIM_LOG_LEVEL=trace: every delivery (due vs. actual virtual time) and every read (its stamp). */
  private readonly trace: boolean

  constructor(plan: RunPlan, hosts: Map<number, NetHost>, addresses: { alloc(): string }, log: Logger) {
    this.plan = plan
    this.hosts = hosts
    this.addresses = addresses
    this.log = log
    this.trace = log.isLevelEnabled('trace')
    this.modelled = new ModelledRequests(log)
    for (const h of plan.hosts) {
      const ports = new Map<number, number>()
      for (const c of h.components) for (const p of c.spec.live?.ports ?? []) ports.set(p.port, c.index)
      if (ports.size) this.served.set(h.index, ports)
    }
  }

  private statsOf(comp: object): Stats {
    let s = this.stats.get(comp)
    if (!s) this.stats.set(comp, (s = newStats()))
    return s
  }

  /** A live component's counters, and the response times of the modelled requests it answered (if any). */
  componentStats(comp: object): Record<string, unknown> {
    const { response, ...counts } = this.statsOf(comp)
    return response.count > 0 ? { ...counts, response: response.summary() } : counts
  }

  /** Environment of a host's programs: LIVESIM_HOST_<T> for every host T that serves live ports. */
  hostVars(h: NetHost): Record<string, string> {
    const out: Record<string, string> = {}
    for (const t of this.served.keys()) {
      const name = this.plan.hosts[t]!.name
      out[hostVar(name)] = t === h.index ? h.bindAddr : this.views.get(h.index)!.get(t)!
    }
    return out
  }

  /** Open the proxies: for each live host of this runtime, a view of every other host that serves live ports. */
  async listen(hosts: NetHost[]): Promise<void> {
    for (const s of hosts) {
      const view = new Map<number, string>()
      this.views.set(s.index, view)
      this.clientConns.set(s.index, new Map())
      this.serverConns.set(s.index, new Map())
      this.nextConnId.set(s.index, 1)
      for (const [t, ports] of this.served) {
        if (t === s.index) continue
        const addr = this.addresses.alloc()
        view.set(t, addr)
        for (const [port, comp] of ports) await this.listenView(s, t, comp, addr, port)
      }
    }
  }

  private listenView(s: NetHost, t: number, tComp: number, addr: string, port: number): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => this.accept(s, t, tComp, port, sock))
    this.listeners.push(server)
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot listen on ${addr}:${port} (view of ${this.plan.hosts[t]!.name} from ${s.name}): ${err.message}`)))
      server.listen({ host: addr, port, exclusive: true }, () => resolve())
    })
  }

  /** A program on S connected to T:port. */
  private accept(s: NetHost, t: number, tComp: number, port: number, sock: net.Socket): void {
    if (this.closed) return void sock.destroy()
    const id = this.nextConnId.get(s.index)!
    this.nextConnId.set(s.index, id + 1)
    const from = s.comps[0]!
    const send: Send = (type, payload, atNs) => this.sendLive(from.ctx, type, t, tComp, id, type === MSG_LIVE_OPEN ? port : DIR_C2S, payload, atNs)
    const conn = this.conn(sock, this.statsOf(from), send)
    this.clientConns.get(s.index)!.set(id, conn)
    send(MSG_LIVE_OPEN, undefined, s.virtualNowNs())
    this.relay(s, conn, () => this.clientConns.get(s.index)?.delete(id))
  }

  /** A message for a live component of host h arrived at virtual time atNs: act when the cell's clock gets there. */
  receive(h: NetHost, comp: NetComp, msg: Message, atNs: number): void {
    h.enqueue(atNs, () => {
      if (this.trace) this.log.trace({ host: h.name, dueNs: atNs, nowNs: h.virtualNowNs(), type: msg.type, bytes: msg.payload?.length ?? 0 }, 'deliver')
      switch (msg.type) {
        case MSG_REQUEST:
          return this.modelled.request(h, comp.ctx, this.statsOf(comp), msg, atNs)
        case MSG_LIVE_OPEN:
          return this.open(h, comp, msg)
        case MSG_LIVE_DATA:
        case MSG_LIVE_FIN:
          // DATA or FIN for one end of a connection: T's socket to its program (C2S), or S's socket accepted from its program (S2C).
          return this.toProgram(msg.tag === DIR_C2S ? this.serverConns.get(h.index)?.get(`${msg.srcHost}.${msg.id}`) : this.clientConns.get(h.index)?.get(msg.id), msg)
        default:
          this.log.warn({ host: h.name, type: msg.type }, 'live component ignored a message it does not understand')
      }
    })
  }

  /** OPEN at T: connect to the program, relay what it writes back to the client's host. */
  private open(h: NetHost, comp: NetComp, msg: Message): void {
    if (this.closed) return
    const key = `${msg.srcHost}.${msg.id}`
    const sock = net.connect({ host: h.bindAddr, port: msg.tag, allowHalfOpen: true, noDelay: true })
    const { srcHost, srcComp, id } = msg
    const conn = this.conn(sock, this.statsOf(comp), (type, payload, atNs) => this.sendLive(comp.ctx, type, srcHost, srcComp, id, DIR_S2C, payload, atNs))
    this.serverConns.get(h.index)!.set(key, conn)
    this.relay(h, conn, () => this.serverConns.get(h.index)?.delete(key))
  }

  private conn(sock: net.Socket, stats: Stats, send: Send): Conn {
    return { sock, finSent: false, stats, pending: [], send, key: undefined, readBytes: 0, lastNs: 0 }
  }

  /** A live stream message stamped atNs; OPEN and FIN are charged 64 bytes. */
  private sendLive(ctx: NetComp['ctx'], type: number, dstHost: number, dstComp: number, id: number, tag: number, payload: Buffer | undefined, atNs: number): void {
    const m = newMessage(type, dstHost, dstComp, id, payload ? payload.length : 64)
    m.tag = tag
    m.payload = payload
    ctx.sendAt(m, atNs)
  }

  /**
   * Relay a program's socket (either end of a connection) into the simulated network: what it writes
   * becomes DATA, its end (or an error) one FIN, queued until the end of the quantum (flush()), when
   * the write stamps of the quantum are known.
   */
  private relay(h: NetHost, conn: Conn, forget: () => void): void {
    const { sock, stats } = conn
    conn.stats.connections++
    const queue = (buf: Buffer | undefined) => {
      conn.pending.push({ buf, pos: conn.readBytes, readNs: h.virtualNowNs() })
      conn.readBytes += buf?.length ?? 0
      let d = this.dirty.get(h.index)
      if (!d) this.dirty.set(h.index, (d = new Set()))
      d.add(conn)
    }
    sock.on('data', (chunk: Buffer) => {
      stats.bytesOut += chunk.length
      conn.key ??= stampKeyOfPeer(sock)
      queue(chunk)
    })
    const fin = () => {
      if (conn.finSent) return
      conn.finSent = true
      queue(undefined)
    }
    sock.on('end', fin)
    sock.on('error', (err) => {
      this.log.debug({ host: h.name, err: err.message }, 'live connection error')
      fin()
    })
    sock.on('close', () => {
      fin()
      if (!this.closed) stats.closed++
      forget()
    })
  }

  /**
   * End of a quantum of host h (its cells frozen): send what its programs wrote, each byte stamped
   * with the virtual time of the write that wrote it (stamps.ts; one read may hold bytes of several
   * writes), never before `floorNs` (the window's start) and in stamp order across the host's
   * connections, as they enter the links. Bytes no write stamp covers (a program the shim does not
   * cover) go with the time the runtime read them.
   */
  flush(h: NetHost, floorNs: number): void {
    const conns = this.dirty.get(h.index) ?? new Set<Conn>()
    if (conns.size === 0 && !this.modelled.hasReplies(h)) return
    h.stamps?.poll()
    const out: { conn: Conn | undefined; reply: ReplyOut | undefined; type: number; payload: Buffer | undefined; at: number; seq: number; wrote: number }[] = []
    const emit = (conn: Conn, type: number, payload: Buffer | undefined, at: number) => {
      const t = Math.max(floorNs, conn.lastNs, at)
      conn.lastNs = t
      out.push({ conn, reply: undefined, type, payload, at: t, seq: out.length, wrote: at })
    }
    const replies: ReplyOut[] = []
    this.modelled.collect(h, floorNs, replies)
    for (const r of replies) out.push({ conn: undefined, reply: r, type: r.msg.type, payload: undefined, at: r.at, seq: out.length, wrote: r.at })
    for (const conn of conns) {
      const key = h.stamps && conn.key !== undefined ? conn.key : undefined
      for (const p of conn.pending) {
        if (!p.buf) {
          emit(conn, MSG_LIVE_FIN, undefined, p.readNs)
          continue
        }
        const end = p.pos + p.buf.length
        for (let pos = p.pos; pos < end; ) {
          const st = key !== undefined ? h.stamps!.stampOf(key, pos) : undefined
          const upTo = Math.min(end, st ? st.end : key !== undefined ? h.stamps!.nextOff(key, pos) : Infinity)
          if (!st) conn.stats.unstampedBytes += upTo - pos
          emit(conn, MSG_LIVE_DATA, p.buf.subarray(pos - p.pos, upTo - p.pos), st ? st.vt : p.readNs)
          pos = upTo
        }
      }
      conn.pending.length = 0
      if (conn.finSent && key !== undefined) h.stamps!.release(key)
    }
    conns.clear()
    out.sort((a, b) => a.at - b.at || a.seq - b.seq)
    for (const o of out) {
      if (this.trace) this.log.trace({ host: h.name, bytes: o.payload?.length ?? o.reply?.msg.bytes ?? 0, stampNs: o.at, wroteNs: o.wrote, type: o.type }, 'send')
      if (o.conn) o.conn.send(o.type, o.payload, o.at)
      else o.reply!.ctx.sendAt(o.reply!.msg, o.at)
    }
  }

  /** Write DATA into the program's end of a connection, or end it on FIN. */
  private toProgram(conn: Conn | undefined, msg: Message): void {
    if (!conn || conn.sock.destroyed) return
    if (msg.type === MSG_LIVE_FIN) return void conn.sock.end()
    conn.stats.bytesIn += msg.payload?.length ?? 0
    if (msg.payload) conn.sock.write(msg.payload)
  }

  close(): void {
    this.closed = true
    for (const l of this.listeners) l.close()
    for (const m of [...this.clientConns.values(), ...this.serverConns.values()]) for (const c of m.values()) c.sock.destroy()
    this.modelled.close()
  }
}

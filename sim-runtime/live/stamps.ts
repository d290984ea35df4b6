// Write stamps: the virtual time at which a live program wrote each chunk it sends, so that the
// runtime hands the chunk to the simulated network at that time, not at the (later) time it read the
// chunk from its proxy socket (docs/live.md, "Write stamps").
//
// The shim (shim/stamps.c) wraps write, writev, send, sendto (connected) and sendmsg (connected): for a
// connected IPv4 socket it appends, before the system call, (virtual time, offset of the write's first
// byte in the socket's stream, bytes asked, local port, peer port, peer address) to a ring in a file
// the runtime made (LIVESIM_STAMPS), one ring per cell. The runtime reads the ring after each quantum
// (poll()) and matches records to its proxy sockets by address: a program's socket (local port L, peer
// P:port R) is the runtime's socket (remote port L, local P:R). A byte at offset X of the stream was
// written by the last write that started at or before X (stampOf()): a write that wrote less than it
// asked, or nothing, is followed by one starting where the bytes really went.
import { closeSync, openSync, readSync } from 'node:fs'
import { STAMP_ENTRY_BYTES as ENTRY, STAMP_HEADER_BYTES as HEADER, STAMP_SLOTS, stampOffset } from './shim/layout.ts'

const OFF_SEQ = stampOffset('seq')
const OFF_VT = stampOffset('vt')
const OFF_OFF = stampOffset('off')
const OFF_LPORT = stampOffset('lport')
const OFF_RPORT = stampOffset('rport')
const OFF_RADDR = stampOffset('raddr')

/** One write of a program: when (virtual ns), and where in the socket's stream its bytes start. */
export interface WriteStamp {
  vt: number
  off: number
}

/** The key of a connection as the shim writes it: program's local port, its peer's port and address (IPv4, host order, top bit cleared). */
export function stampKey(lport: number, rport: number, raddr: number): string {
  return `${lport}:${rport}:${raddr & 0x7fffffff}`
}

/** The key of the program's end of a runtime socket: its remote port is the program's local port. */
export function stampKeyOfPeer(sock: { remotePort?: number; localPort?: number; localAddress?: string }): string | undefined {
  const { remotePort, localPort, localAddress } = sock
  if (remotePort === undefined || localPort === undefined || localAddress === undefined) return undefined
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(localAddress)
  if (!m) return undefined
  const addr = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
  return stampKey(remotePort, localPort, addr)
}

/** Keep records of connections nobody claimed for this many polls (the runtime may learn of a connection after its first write). */
const UNCLAIMED_POLLS = 8

export class StampReader {
  private readonly fd: number
  private readonly toVirtualNs: (epochNs: bigint) => number
  private tail = 0
  private polls = 0
  private readonly buf = Buffer.alloc(STAMP_SLOTS * ENTRY)
  private readonly head = Buffer.alloc(8)
  private readonly queues = new Map<string, { q: WriteStamp[]; seen: number; claimed: boolean }>()
  /** Records overwritten before they were read (more than STAMP_SLOTS writes between two polls). */
  lost = 0
  closed = false

  constructor(file: string, toVirtualNs: (epochNs: bigint) => number) {
    this.fd = openSync(file, 'r')
    this.toVirtualNs = toVirtualNs
  }

  /** Read the records appended since the last poll (stops at one still being written). */
  poll(): void {
    if (this.closed) return
    this.polls++
    readSync(this.fd, this.head, 0, 8, 0)
    const head = Number(this.head.readBigUInt64LE(0))
    if (head - this.tail > STAMP_SLOTS) {
      this.lost += head - this.tail - STAMP_SLOTS
      this.tail = head - STAMP_SLOTS
    }
    while (this.tail < head) {
      // One contiguous stretch of slots per read (a wrap needs two).
      const first = this.tail % STAMP_SLOTS
      const count = Math.min(head - this.tail, STAMP_SLOTS - first)
      readSync(this.fd, this.buf, 0, count * ENTRY, HEADER + first * ENTRY)
      let k = 0
      for (; k < count; k++) {
        const o = k * ENTRY
        const seq = Number(this.buf.readBigUInt64LE(o + OFF_SEQ))
        if (seq < this.tail + k + 1) break // still being written: read from here at the next poll
        if (seq > this.tail + k + 1) {
          this.lost++ // overwritten by a write of a later lap
          continue
        }
        const key = stampKey(this.buf.readUInt16LE(o + OFF_LPORT), this.buf.readUInt16LE(o + OFF_RPORT), this.buf.readUInt32LE(o + OFF_RADDR))
        let e = this.queues.get(key)
        if (!e) this.queues.set(key, (e = { q: [], seen: this.polls, claimed: false }))
        e.seen = this.polls
        e.q.push({ vt: this.toVirtualNs(this.buf.readBigInt64LE(o + OFF_VT)), off: Number(this.buf.readBigUInt64LE(o + OFF_OFF)) })
      }
      this.tail += k
      if (k < count) break
    }
    if ((this.polls & 63) === 0) {
      for (const [key, e] of this.queues) if (!e.claimed && this.polls - e.seen > UNCLAIMED_POLLS) this.queues.delete(key)
    }
  }

  /**
   * The write that wrote byte `pos` of a connection's stream (from the program), and where the next
   * write starts (Infinity: none yet); undefined when no record covers it (a program the shim does not
   * stamp). Offsets asked of one key must not decrease: records before `pos` are dropped.
   */
  stampOf(key: string, pos: number): { vt: number; end: number } | undefined {
    let e = this.queues.get(key)
    if (!e) this.queues.set(key, (e = { q: [], seen: this.polls, claimed: true }))
    e.claimed = true
    const q = e.q
    while (q.length > 1 && q[1]!.off <= pos) q.shift()
    const first = q[0]
    if (!first || first.off > pos) return undefined
    return { vt: first.vt, end: q.length > 1 ? q[1]!.off : Infinity }
  }

  /** Where the first recorded write of a connection at or after `pos` starts (Infinity: none). */
  nextOff(key: string, pos: number): number {
    for (const r of this.queues.get(key)?.q ?? []) if (r.off > pos) return r.off
    return Infinity
  }

  /** The connection is gone: forget its records. */
  release(key: string): void {
    this.queues.delete(key)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.fd)
  }
}

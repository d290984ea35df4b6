// Wire format of the leader ↔ runtime stream (one long-lived HTTP/2 stream per runtime), and of
// the runtime → runtime streams of peer batches (peers.ts).
//
//   frame   := u32le length-of-frame | u8 type | 3 bytes zero | payload (8-byte aligned)
//   GRANT   := f64 epoch | f64 windowEndNs | f64 count | count × message (WIRE_SLOTS f64 each) | payloads
//   REPORT  := f64 epoch | f64 nextEventNs  | f64 count | count × message | payloads
//   BATCH   := f64 epoch | f64 fromRuntime  | f64 count | count × message | payloads     (runtime → runtime)
//   TALLY   := f64 epoch | f64 count | count × (f64 runtime, f64 earliestNs, f64 batches)  (→ parent or leader)
//   OPEN    := f64 epoch | f64 count | count × (f64 runtime, f64 windowEndNs, f64 batches)  (a GRANT)
//
// Star (LIVESIM_SYNC=star): the leader relays every cross-runtime message, REPORT → GRANT. Peer
// batches (the default): after PEERS (JSON: the runtimes' addresses and which carries which host)
// a runtime sends a BATCH per window to each runtime it has messages for, and the leader a TALLY
// instead of a REPORT: per runtime, the earliest time of pending work it knows of (its own next
// event, the earliest message it just sent to each peer) and how many BATCHes it sent there. The
// leader sums those into each runtime's OPEN (the next window, and how many BATCHes of the last one
// to wait for; the receiver's own entry first). Above a number of runtimes, interior runtimes of a
// tree merge their children's TALLYs (earliest time and BATCHes per runtime) before the leader sees
// them, and pass each child the OPEN entries of its subtree (peers.ts).
//   payloads:= the payload bytes of the messages that carry one (slot SLOT_PAYLOAD > 0), concatenated
//              in message order, zero-padded to a multiple of 8 (live components' TCP data)
//   others  := UTF-8 JSON
//
// Barrier frames are flat float64 arrays: encoding is one copy, decoding one copy into an aligned
// buffer; no JSON on the hot path. The decoder checks every length and type and throws FrameError,
// which the caller turns into a clear error and a cut-off peer.
import { SLOT_PAYLOAD, WIRE_SLOTS } from '../engine/message.ts'

export const PROTOCOL_VERSION = 3
export const FRAME_HEADER = 8
export const MAX_FRAME_BYTES = 256 * 1024 * 1024

export const F_HELLO = 1
export const F_WELCOME = 2
export const F_GRANT = 3
export const F_REPORT = 4
export const F_FINISH = 5
export const F_RESULTS = 6
export const F_ERROR = 7
export const F_ABORT = 8
export const F_PEERS = 9
export const F_BATCH = 10
export const F_TALLY = 11
export const F_OPEN = 12

const NAMES: Record<number, string> = {
  [F_HELLO]: 'HELLO',
  [F_WELCOME]: 'WELCOME',
  [F_GRANT]: 'GRANT',
  [F_REPORT]: 'REPORT',
  [F_FINISH]: 'FINISH',
  [F_RESULTS]: 'RESULTS',
  [F_ERROR]: 'ERROR',
  [F_ABORT]: 'ABORT',
  [F_PEERS]: 'PEERS',
  [F_BATCH]: 'BATCH',
  [F_TALLY]: 'TALLY',
  [F_OPEN]: 'OPEN',
}

export function frameName(type: number): string {
  return NAMES[type] ?? `unknown(${type})`
}

export class FrameError extends Error {}

export interface Frame {
  type: number
  payload: Buffer
}

export interface BarrierFrame {
  epoch: number
  timeNs: number
  /** count × WIRE_SLOTS float64s. */
  messages: Float64Array
  count: number
  /** The payloads of the messages that carry one, in message order. */
  payloads: Buffer[]
}

export function encodeJson(type: number, value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const out = Buffer.allocUnsafe(FRAME_HEADER + body.length)
  out.writeUInt32LE(out.length, 0)
  out.writeUInt32LE(type, 4) // type in the low byte, zero padding above
  body.copy(out, FRAME_HEADER)
  return out
}

/**
 * Encode a GRANT or REPORT. `messages` holds `count` messages starting at index 0; `payloads` the
 * payloads of those with a payload length, in message order.
 */
export function encodeBarrier(type: number, epoch: number, timeNs: number, messages: Float64Array, count: number, payloads: readonly Uint8Array[] = NO_PAYLOADS): Buffer {
  const slots = 3 + count * WIRE_SLOTS
  let payloadBytes = 0
  for (const p of payloads) payloadBytes += p.length
  const padded = (payloadBytes + 7) & ~7
  // A fresh ArrayBuffer is 8-byte aligned, so the float64 view needs no copy.
  const ab = new ArrayBuffer(FRAME_HEADER + slots * 8 + padded)
  const head = new Uint32Array(ab, 0, 2)
  head[0] = ab.byteLength
  head[1] = type
  const f = new Float64Array(ab, FRAME_HEADER, slots)
  f[0] = epoch
  f[1] = timeNs
  f[2] = count
  if (count > 0) f.set(messages.subarray(0, count * WIRE_SLOTS), 3)
  if (payloadBytes > 0) {
    const bytes = new Uint8Array(ab, FRAME_HEADER + slots * 8)
    let o = 0
    for (const p of payloads) {
      bytes.set(p, o)
      o += p.length
    }
  }
  return Buffer.from(ab)
}

const NO_PAYLOADS: readonly Uint8Array[] = []
const EMPTY = new Float64Array(0)

export function decodeBarrier(frame: Frame): BarrierFrame {
  const p = frame.payload
  if (p.length < 24 || p.length % 8 !== 0) throw new FrameError(`${frameName(frame.type)} payload of ${p.length} bytes is not a barrier record`)
  const epoch = p.readDoubleLE(0)
  const timeNs = p.readDoubleLE(8)
  const count = p.readDoubleLE(16)
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new FrameError(`${frameName(frame.type)}: bad epoch ${epoch}`)
  if (!(timeNs >= 0)) throw new FrameError(`${frameName(frame.type)}: bad time ${timeNs}`)
  if (!Number.isSafeInteger(count) || count < 0 || 24 + count * WIRE_SLOTS * 8 > p.length) {
    throw new FrameError(`${frameName(frame.type)}: message count ${count} does not match payload of ${p.length} bytes`)
  }
  if (count === 0) {
    if (p.length !== 24) throw new FrameError(`${frameName(frame.type)}: ${p.length - 24} bytes after zero messages`)
    return { epoch, timeNs, messages: EMPTY, count, payloads: [] }
  }
  // Copy the messages into an aligned array (the payload may sit anywhere in a chunk).
  const end = 24 + count * WIRE_SLOTS * 8
  const messages = new Float64Array(count * WIRE_SLOTS)
  Buffer.from(messages.buffer).set(p.subarray(24, end))
  const payloads: Buffer[] = []
  let o = end
  for (let i = 0; i < count; i++) {
    const len = messages[i * WIRE_SLOTS + SLOT_PAYLOAD]!
    if (len === 0) continue
    if (!Number.isSafeInteger(len) || len < 0 || o + len > p.length) throw new FrameError(`${frameName(frame.type)}: message ${i} has a payload length ${len} beyond the frame`)
    payloads.push(p.subarray(o, o + len))
    o += len
  }
  if (((o - end + 7) & ~7) + end !== p.length) throw new FrameError(`${frameName(frame.type)}: ${p.length - o} bytes after the payloads`)
  return { epoch, timeNs, messages, count, payloads }
}

/** Float64s per TALLY or OPEN entry: runtime slot, a time (ns), BATCHes. */
export const TALLY_SLOTS = 3

/** A TALLY or an OPEN: `count` entries of TALLY_SLOTS float64s. */
export interface TallyFrame {
  epoch: number
  entries: Float64Array
  count: number
}

function encodeEntries(type: number, epoch: number, entries: Float64Array, count: number): Buffer {
  const slots = 2 + count * TALLY_SLOTS
  const ab = new ArrayBuffer(FRAME_HEADER + slots * 8)
  const head = new Uint32Array(ab, 0, 2)
  head[0] = ab.byteLength
  head[1] = type
  const f = new Float64Array(ab, FRAME_HEADER, slots)
  f[0] = epoch
  f[1] = count
  if (count > 0) f.set(entries.subarray(0, count * TALLY_SLOTS), 2)
  return Buffer.from(ab)
}

function decodeEntries(frame: Frame, runtimes: number, finite: boolean): TallyFrame {
  const name = frameName(frame.type)
  const p = frame.payload
  if (p.length < 16 || (p.length - 16) % (8 * TALLY_SLOTS) !== 0) throw new FrameError(`${name} payload of ${p.length} bytes does not hold whole entries`)
  const epoch = p.readDoubleLE(0)
  const count = p.readDoubleLE(8)
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new FrameError(`${name}: bad epoch ${epoch}`)
  if (count !== (p.length - 16) / (8 * TALLY_SLOTS)) throw new FrameError(`${name}: count ${count} does not match payload of ${p.length} bytes`)
  const entries = new Float64Array(count * TALLY_SLOTS)
  Buffer.from(entries.buffer).set(p.subarray(16))
  for (let i = 0; i < count; i++) {
    const slot = entries[TALLY_SLOTS * i]!
    const t = entries[TALLY_SLOTS * i + 1]!
    const batches = entries[TALLY_SLOTS * i + 2]!
    if (!Number.isInteger(slot) || slot < 0 || slot >= runtimes) throw new FrameError(`${name}: entry ${i} names runtime ${slot} of ${runtimes}`)
    if (!(t >= 0) || (finite && !(t <= Number.MAX_SAFE_INTEGER))) throw new FrameError(`${name}: entry ${i} has time ${t}`)
    if (!Number.isSafeInteger(batches) || batches < 0) throw new FrameError(`${name}: entry ${i} has ${batches} batches`)
  }
  return { epoch, entries, count }
}

/** Encode a TALLY of `count` entries (runtime, earliestNs, BATCHes sent to it) from `entries`. */
export function encodeTally(epoch: number, entries: Float64Array, count: number): Buffer {
  return encodeEntries(F_TALLY, epoch, entries, count)
}

/** Decode a TALLY; `runtimes` bounds the slots it may name. Times may be Infinity (nothing pending). */
export function decodeTally(frame: Frame, runtimes: number): TallyFrame {
  return decodeEntries(frame, runtimes, false)
}

/** Encode an OPEN of `count` entries (runtime, windowEndNs, BATCHes of the last epoch to wait for). */
export function encodeOpen(epoch: number, entries: Float64Array, count: number): Buffer {
  return encodeEntries(F_OPEN, epoch, entries, count)
}

/** Decode an OPEN: an epoch from 1 on, at least one entry, finite window ends. */
export function decodeOpen(frame: Frame, runtimes: number): TallyFrame {
  const o = decodeEntries(frame, runtimes, true)
  if (o.epoch < 1) throw new FrameError(`OPEN: bad epoch ${o.epoch}`)
  if (o.count < 1) throw new FrameError('OPEN without an entry')
  return o
}

export function decodeJson<T = unknown>(frame: Frame): T {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T
  } catch {
    throw new FrameError(`${frameName(frame.type)} frame does not hold valid JSON`)
  }
}

/** Incremental decoder: feed chunks from the stream, get whole frames. */
export class FrameDecoder {
  private chunks: Buffer[] = []
  private buffered = 0

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const frames: Frame[] = []
    while (this.buffered >= FRAME_HEADER) {
      const head = this.chunks.length === 1 ? this.chunks[0]! : this.flatten()
      const len = head.readUInt32LE(0)
      const type = head.readUInt32LE(4)
      if (len < FRAME_HEADER || len > MAX_FRAME_BYTES) throw new FrameError(`frame length ${len} is out of range (${FRAME_HEADER}..${MAX_FRAME_BYTES})`)
      if (!(type in NAMES)) throw new FrameError(`unknown frame type ${type}`)
      if (this.buffered < len) break
      const all = this.chunks.length === 1 ? this.chunks[0]! : this.flatten()
      frames.push({ type, payload: all.subarray(FRAME_HEADER, len) })
      const rest = all.subarray(len)
      this.chunks = rest.length ? [rest] : []
      this.buffered = rest.length
    }
    return frames
  }

  private flatten(): Buffer {
    const b = Buffer.concat(this.chunks, this.buffered)
    this.chunks = [b]
    return b
  }
}

// A message between components. The same fixed set of numeric fields is used in memory and on the
// wire (sync/frames.ts encodes them as float64s), so crossing a process boundary costs a copy, not a
// serialisation of arbitrary objects.

export const MSG_REQUEST = 1
export const MSG_RESPONSE = 2
export const MSG_ERROR = 3
/**
 * Live TCP connections through the simulated network (sim-runtime/live/net.ts). `id` names the
 * connection on the client's host; OPEN carries the server port in `tag`; DATA and FIN carry the
 * direction in `tag` (DIR_C2S from the connecting side, DIR_S2C back) and DATA the bytes in `payload`.
 */
export const MSG_LIVE_OPEN = 4
export const MSG_LIVE_DATA = 5
export const MSG_LIVE_FIN = 6
export const DIR_C2S = 0
export const DIR_S2C = 1
/** Custom components may use types from here up. */
export const MSG_USER = 16

export class Message {
  srcHost = 0
  srcComp = 0
  dstHost = 0
  dstComp = 0
  type = 0
  /** Request id, chosen by the requester; echoed in the reply. */
  id = 0
  /** Size of this message on the wire. */
  bytes = 0
  /** Requests: size of the reply the requester expects. */
  replyBytes = 0
  /** Free for components (e.g. a timestamp or a parameter). */
  tag = 0
  /**
   * Real bytes carried by the message: a live program's TCP data, or a modelled client's request to a
   * live program. Crosses the wire after the fixed slots (frames.ts); `bytes` is still what the link
   * charges for.
   */
  payload: Uint8Array | undefined = undefined
}

/** A message of `type` to (dstHost, dstComp); requests also say how big a reply they expect. */
export function newMessage(type: number, dstHost: number, dstComp: number, id: number, bytes: number, replyBytes = 0): Message {
  const m = new Message()
  m.type = type
  m.dstHost = dstHost
  m.dstComp = dstComp
  m.id = id
  m.bytes = bytes
  m.replyBytes = replyBytes
  return m
}

/** Number of float64 slots a message takes on the wire, with its delivery key. Slot 11: payload length. */
export const WIRE_SLOTS = 12
export const SLOT_PAYLOAD = 11

export function writeMessage(f: Float64Array, at: number, m: Message, deliverNs: number, originSeq: number): void {
  f[at] = deliverNs
  f[at + 1] = originSeq
  f[at + 2] = m.srcHost
  f[at + 3] = m.srcComp
  f[at + 4] = m.dstHost
  f[at + 5] = m.dstComp
  f[at + 6] = m.type
  f[at + 7] = m.id
  f[at + 8] = m.bytes
  f[at + 9] = m.replyBytes
  f[at + 10] = m.tag
  f[at + 11] = m.payload ? m.payload.length : 0
}

export function readMessage(f: Float64Array, at: number): Message {
  const m = new Message()
  m.srcHost = f[at + 2]!
  m.srcComp = f[at + 3]!
  m.dstHost = f[at + 4]!
  m.dstComp = f[at + 5]!
  m.type = f[at + 6]!
  m.id = f[at + 7]!
  m.bytes = f[at + 8]!
  m.replyBytes = f[at + 9]!
  m.tag = f[at + 10]!
  return m
}

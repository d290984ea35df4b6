// A message between components. The same fixed set of numeric fields is used in memory and on the
// wire (sync/frames.ts encodes them as float64s), so crossing a process boundary costs a copy, not a
// serialisation of arbitrary objects.

export const MSG_REQUEST = 1
export const MSG_RESPONSE = 2
export const MSG_ERROR = 3
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

/** Number of float64 slots a message takes on the wire, with its delivery key. */
export const WIRE_SLOTS = 11

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

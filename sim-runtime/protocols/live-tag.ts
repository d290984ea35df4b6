// How a modelled component's request to a live program says what it is (engine/message.ts `tag`):
// the program's port, the protocol its payload speaks, and which connection of the sender's carries
// it. The sender (components/) writes it, the runtime on the program's host (live/) reads it. A
// RESPONSE or ERROR to an HTTP request carries the status code in its `tag` (0 when there is none).
//
//   tag = port + 65536 × protocol + 262144 × connection
//   connection 0: any idle connection of the sender's pool (one request at a time on each);
//   connection k + 1: the sender's own connection k (a closed-loop user's, or a pipeline).

export const PROTO_REDIS = 1
export const PROTO_HTTP = 2

const PORTS = 65_536
const PROTOS = 4
/** Largest connection number a tag can carry (tags stay exact in a float64 slot). */
export const MAX_CONNECTION = 2 ** 32

export interface LiveTag {
  port: number
  proto: number
  /** The sender's own connection, or -1: a connection of its pool. */
  connection: number
}

export function liveTag(port: number, proto: number, connection: number): number {
  if (!(port > 0 && port < PORTS && proto > 0 && proto < PROTOS && connection >= -1 && connection < MAX_CONNECTION)) {
    throw new Error(`liveTag: port ${port}, protocol ${proto}, connection ${connection} out of range`)
  }
  return port + PORTS * proto + PORTS * PROTOS * (connection + 1)
}

export function readLiveTag(tag: number): LiveTag {
  const port = tag % PORTS
  const proto = Math.floor(tag / PORTS) % PROTOS
  return { port, proto, connection: Math.floor(tag / (PORTS * PROTOS)) - 1 }
}

/** "2xx" for 200-299, and so on. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`
}

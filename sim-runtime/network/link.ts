// One direction of a simulated network link, modelled at the sender: FIFO serialisation at the
// link's bandwidth, a bounded queue of messages waiting to be sent, loss drawn from the link's own
// seeded stream, then propagation latency. A message entering at t is delivered at
// max(t, link free) + size/bandwidth + latency, or dropped.
import type { PlanLink } from '../api/plan.ts'
import { serializationNs } from '../api/units.ts'
import { Deque } from '../engine/deque.ts'
import { Rng } from '../engine/rng.ts'

export class LinkState {
  readonly spec: PlanLink
  private readonly rng: Rng | undefined
  private freeAtNs = 0
  /** Start-of-transmission times of messages not yet sent, oldest first. */
  private readonly waiting = new Deque<number>()
  messages = 0
  bytes = 0
  drops = 0

  constructor(spec: PlanLink, seed: number, name: string) {
    this.spec = spec
    // Only a lossy link draws random numbers; a lossless one needs no stream.
    this.rng = spec.loss > 0 ? new Rng(seed, `link:${name}`) : undefined
  }

  /**
   * Returns the delivery time of a message of `bytes` sent at `nowNs`, or -1 if it is dropped.
   * `reliable` (live TCP streams): never dropped by loss or a full queue — a byte stream cannot lose
   * a chunk, and TCP's retransmissions are not modelled.
   */
  transmit(nowNs: number, bytes: number, reliable = false): number {
    while (this.waiting.length > 0 && this.waiting.peek()! <= nowNs) this.waiting.shift()
    if (!reliable && this.waiting.length >= this.spec.queueLimit) {
      this.drops++
      return -1
    }
    const startNs = this.freeAtNs > nowNs ? this.freeAtNs : nowNs
    const doneNs = startNs + serializationNs(bytes, this.spec.bandwidthBitsPerSec)
    this.freeAtNs = doneNs
    if (startNs > nowNs) this.waiting.push(startNs)
    if (!reliable && this.rng !== undefined && this.rng.uniform() < this.spec.loss) {
      // Lost on the wire: it used the link, but never arrives.
      this.drops++
      return -1
    }
    this.messages++
    this.bytes += bytes
    return doneNs + this.spec.latencyNs
  }
}

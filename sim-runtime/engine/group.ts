// The hosts one runtime carries (every host with `livesim run`, one per pod on Kubernetes). Runs
// a window on the hosts that have events in it and gathers the messages that leave them.
//
// A window costs O(active · log N), not O(N): a queue of hosts by their next event time says which
// hosts have events before the window's end, and only hosts that ran can have messages to send. A host
// with nothing to do is not visited; it stands at the time it last ran until a message reaches it,
// when it is brought to the group's time first (nothing happens to it in between: it had no
// event). Hosts with live components run every window: their programs act between events.
import assert from 'node:assert/strict'
import type { RunPlan } from '../api/plan.ts'
import type { ComponentFactory } from '../components/component.ts'
import '../components/index.ts'
import { HISTOGRAM, type HistogramBuckets } from './histogram.ts'
import { HostSim, type HostSimResults, type LiveFactory } from './host.ts'
import { HostQueue } from './host-queue.ts'
import { readMessage, SLOT_PAYLOAD, WIRE_SLOTS, writeMessage, type Message } from './message.ts'

export interface HostResults extends HostSimResults {
  events: number
  causalityViolations: number
  latenessSumNs: number
  latenessMaxNs: number
  /**
   * The buckets of every histogram summary in `components`, by component, then the summary's path
   * there ("latency", "latencyByStatusClass.2xx"): what merges a group's replicas exactly, sent
   * beside the components because JSON drops their HISTOGRAM symbol.
   */
  histograms: Record<string, Record<string, HistogramBuckets>>
  /** Hosts with live components: their cell, clock and time accounting (live/runner.ts). */
  live?: Record<string, unknown>
}

/** The histogram buckets under the summaries in `value`, by dotted path; depth-first, keys in order. */
export function histogramsIn(value: unknown, path = '', out: Record<string, HistogramBuckets> = {}): Record<string, HistogramBuckets> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return out
  const buckets = (value as { [HISTOGRAM]?: HistogramBuckets })[HISTOGRAM]
  if (buckets) {
    out[path] = buckets
    return out
  }
  for (const [k, v] of Object.entries(value)) histogramsIn(v, path ? `${path}.${k}` : k, out)
  return out
}

/** One window in this many is timed for the hosts' busy time (HostGroup.busyNs). */
export const TIMED_EVERY = 16

export class HostGroup {
  readonly plan: RunPlan
  /** The hosts this group carries; a host's position here is its slot. */
  readonly hosts: HostSim[]
  /** Plan index → slot, -1 for hosts of other runtimes. */
  private readonly slotOf: Int32Array
  private out = new Float64Array(1024 * WIRE_SLOTS)
  /** Virtual time every host stands at, or would had it been visited (the last window's end). */
  private nowNs = 0
  /** Hosts (slots) by the time of their next event; hosts with live components are not in it. */
  private readonly queue: HostQueue
  /** Hosts with live components: run every window. */
  private readonly always: HostSim[]
  private readonly isAlways: Uint8Array
  /** The hosts whose outbox may hold messages: those that ran since it was last emptied. */
  private senders: HostSim[] = []
  private readonly isSender: Uint8Array
  /**
   * Wall time (ms) of the windows each host (by slot) ran in, each window's time shared among its
   * hosts by their events, estimated from one window in TIMED_EVERY: a clock reading costs about as
   * much as a few events, and a window of a small cluster holds a few events.
   */
  private readonly busyMs: Float64Array
  /** The slots that ran in the current window, and their events in it (timed windows). */
  private ranSlots = new Int32Array(64)
  private ranEvents = new Float64Array(64)
  private windows = 0
  /** Wall time (ms) of the last runUntil when it was timed, else -1. */
  lastWindowMs = -1

  constructor(plan: RunPlan, hostIndices: number[], factories?: Map<string, ComponentFactory>, live?: LiveFactory) {
    this.plan = plan
    this.hosts = hostIndices.map((i) => new HostSim(plan, i, factories, live))
    this.slotOf = new Int32Array(plan.hosts.length).fill(-1)
    this.hosts.forEach((h, slot) => {
      assert.equal(this.slotOf[h.index], -1, `host ${h.name} is twice in one group`)
      this.slotOf[h.index] = slot
    })
    this.queue = new HostQueue(this.hosts.length)
    this.isSender = new Uint8Array(this.hosts.length)
    this.isAlways = new Uint8Array(this.hosts.length)
    this.busyMs = new Float64Array(this.hosts.length)
    this.always = this.hosts.filter((h) => plan.hosts[h.index]!.components.some((c) => c.spec.live))
    for (const h of this.always) this.isAlways[this.slotOf[h.index]!] = 1
  }

  owns(hostIndex: number): boolean {
    return (this.slotOf[hostIndex] ?? -1) >= 0
  }

  start(): void {
    this.hosts.forEach((h, slot) => {
      h.start()
      this.markSender(h, slot)
      this.requeue(h, slot)
    })
  }

  /** Key h's slot by its next event. */
  private requeue(h: HostSim, slot: number): void {
    if (!this.isAlways[slot]) this.queue.set(slot, h.nextEventNs())
  }

  private markSender(h: HostSim, slot: number): void {
    if (this.isSender[slot]) return
    this.isSender[slot] = 1
    this.senders.push(h)
  }

  /** Hand a message to h, first bringing h to the group's time (it had no event before it). */
  private deliverTo(slot: number, msg: Message, deliverNs: number, originSeq: number): void {
    const h = this.hosts[slot]!
    if (h.nowNs < this.nowNs) {
      if (h.nextEventNs() < this.nowNs) assert.fail(`${h.name} has an event at ${h.nextEventNs()}ns, before the group's time ${this.nowNs}ns`)
      h.runUntil(this.nowNs)
    }
    h.deliver(msg, deliverNs, originSeq)
    if (!this.isAlways[slot] && this.queue.keyOf(slot) > h.nextEventNs()) this.queue.set(slot, h.nextEventNs())
  }

  /** Hand incoming messages (count × WIRE_SLOTS float64s, with the payloads of those that carry one) to their hosts. */
  deliver(messages: Float64Array, count: number, payloads: readonly Uint8Array[] = []): void {
    let p = 0
    for (let i = 0; i < count; i++) {
      const at = i * WIRE_SLOTS
      const dst = messages[at + 4]!
      const slot = this.slotOf[dst] ?? -1
      if (slot < 0) throw new Error(`message for host index ${dst}, which this runtime does not carry`)
      const m = readMessage(messages, at)
      if (messages[at + SLOT_PAYLOAD]! > 0) {
        m.payload = payloads[p++]
        if (!m.payload) throw new Error(`message ${i} names a payload that is missing`)
      }
      this.deliverTo(slot, m, messages[at]!, messages[at + 1]!)
    }
  }

  /**
   * Hand the messages between this group's own hosts over to their destination hosts, in the order
   * each host sent them; the others stay in the outboxes for the leader. A runtime that steps through
   * a window in quanta (runWindow, runtime.ts) calls this at every quantum's end.
   */
  routeLocal(): void {
    let still = 0
    for (const h of this.senders) {
      let kept = 0
      for (const o of h.outbox) {
        const slot = this.slotOf[o.msg.dstHost]!
        if (slot >= 0) this.deliverTo(slot, o.msg, o.deliverNs, o.originSeq)
        else h.outbox[kept++] = o
      }
      h.outbox.length = kept
      if (kept > 0) this.senders[still++] = h
      else this.isSender[this.slotOf[h.index]!] = 0
    }
    this.senders.length = still
  }

  /** The earliest delivery time of the messages waiting in the outboxes, Infinity when none waits. */
  nextOutboundNs(): number {
    let t = Infinity
    for (const h of this.senders) for (const o of h.outbox) if (o.deliverNs < t) t = o.deliverNs
    return t
  }

  /** Process every event before windowEndNs: run each host that has one (and every live host) to it. */
  runUntil(windowEndNs: number): void {
    if (windowEndNs < this.nowNs) assert.fail(`window end ${windowEndNs}ns is before the group's time ${this.nowNs}ns`)
    const timed = this.windows++ % TIMED_EVERY === 0
    const startMs = timed ? performance.now() : 0
    let ran = 0
    for (const h of this.always) {
      const slot = this.slotOf[h.index]!
      const before = h.eventsProcessed
      h.runUntil(windowEndNs)
      this.markSender(h, slot)
      if (timed) ran = this.ran(slot, h.eventsProcessed - before, ran)
    }
    const queue = this.queue
    while (queue.minKey() < windowEndNs) {
      const slot = queue.minSlot()
      const h = this.hosts[slot]!
      const before = h.eventsProcessed
      h.runUntil(windowEndNs)
      this.markSender(h, slot)
      queue.set(slot, h.nextEventNs())
      if (timed) ran = this.ran(slot, h.eventsProcessed - before, ran)
    }
    this.lastWindowMs = timed ? performance.now() - startMs : -1
    if (timed) this.shareBusy(ran, this.lastWindowMs * TIMED_EVERY)
    this.nowNs = windowEndNs
  }

  /** Note that `slot` ran `events` events in this window, the ran-th host to run; returns ran + 1. */
  private ran(slot: number, events: number, ran: number): number {
    if (ran === this.ranSlots.length) {
      const slots = new Int32Array(ran * 2)
      slots.set(this.ranSlots)
      this.ranSlots = slots
      const evs = new Float64Array(ran * 2)
      evs.set(this.ranEvents)
      this.ranEvents = evs
    }
    this.ranSlots[ran] = slot
    this.ranEvents[ran] = events
    return ran + 1
  }

  /** Share a window's wall time among the `ran` hosts that ran in it, by their events (evenly when none had any). */
  private shareBusy(ran: number, windowMs: number): void {
    let events = 0
    for (let i = 0; i < ran; i++) events += this.ranEvents[i]!
    for (let i = 0; i < ran; i++) this.busyMs[this.ranSlots[i]!]! += events > 0 ? (windowMs * this.ranEvents[i]!) / events : windowMs / ran
  }

  nextEventNs(): number {
    let t = this.queue.minKey()
    // A live host's programs may schedule events between windows.
    for (const h of this.always) t = Math.min(t, h.nextEventNs())
    return t
  }

  /**
   * Drain every host's outbox into one flat array; returns [array, count, payloads]. The array is
   * reused; payloads lists the payloads of the messages that carry one, in order.
   */
  drainOutbox(): [Float64Array, number, Uint8Array[]] {
    let count = 0
    for (const h of this.senders) count += h.outbox.length
    if (this.out.length < count * WIRE_SLOTS) this.out = new Float64Array(count * WIRE_SLOTS * 2)
    let i = 0
    const payloads: Uint8Array[] = []
    for (const h of this.senders) {
      for (const o of h.outbox) {
        writeMessage(this.out, (i++) * WIRE_SLOTS, o.msg, o.deliverNs, o.originSeq)
        if (o.msg.payload) payloads.push(o.msg.payload)
      }
      h.outbox.length = 0
      this.isSender[this.slotOf[h.index]!] = 0
    }
    this.senders = []
    return [this.out, count, payloads]
  }

  /** Per-host results, every host brought to the group's time first. */
  results(): Record<string, HostResults> {
    const out: Record<string, HostResults> = {}
    for (const h of this.hosts) {
      if (h.nowNs < this.nowNs) h.runUntil(this.nowNs)
      const r = h.results(this.plan.endTimeNs)
      const histograms: HostResults['histograms'] = {}
      for (const [name, c] of Object.entries(r.components)) {
        const found = histogramsIn(c)
        if (Object.keys(found).length) histograms[name] = found
      }
      out[h.name] = {
        events: h.eventsProcessed,
        causalityViolations: h.causalityViolations,
        latenessSumNs: h.latenessSumNs,
        latenessMaxNs: h.latenessMaxNs,
        ...r,
        histograms,
      }
    }
    return out
  }

  /** Per host: the wall time of the windows it ran in, shared by events, ns: an estimate from the timed windows. */
  busyNs(): Record<string, number> {
    return Object.fromEntries(this.hosts.map((h, slot) => [h.name, Math.round(this.busyMs[slot]! * 1e6)]))
  }
}

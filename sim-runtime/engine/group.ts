// The hosts one runtime process carries (all of them with --partition 1, one per pod on
// Kubernetes). Runs a window on each host and gathers the messages that leave them.
import type { RunPlan } from '../api/plan.ts'
import type { ComponentFactory } from '../components/component.ts'
import '../components/index.ts'
import { HostSim, type LiveFactory } from './host.ts'
import { readMessage, SLOT_PAYLOAD, WIRE_SLOTS, writeMessage } from './message.ts'

export interface HostResults {
  events: number
  causalityViolations: number
  latenessSumNs: number
  latenessMaxNs: number
  components: Record<string, unknown>
  links: Record<string, { messages: number; bytes: number; drops: number }>
  /** Hosts with live components: their cell, clock and time accounting (live/runner.ts). */
  live?: Record<string, unknown>
}

export class HostGroup {
  readonly plan: RunPlan
  readonly hosts: HostSim[]
  private readonly byIndex = new Map<number, HostSim>()
  private out = new Float64Array(1024 * WIRE_SLOTS)

  constructor(plan: RunPlan, hostIndices: number[], factories?: Map<string, ComponentFactory>, live?: LiveFactory) {
    this.plan = plan
    this.hosts = hostIndices.map((i) => new HostSim(plan, i, factories, live))
    for (const h of this.hosts) this.byIndex.set(h.index, h)
  }

  owns(hostIndex: number): boolean {
    return this.byIndex.has(hostIndex)
  }

  start(): void {
    for (const h of this.hosts) h.start()
  }

  /** Hand incoming messages (count × WIRE_SLOTS float64s, with the payloads of those that carry one) to their hosts. */
  deliver(messages: Float64Array, count: number, payloads: readonly Uint8Array[] = []): void {
    let p = 0
    for (let i = 0; i < count; i++) {
      const at = i * WIRE_SLOTS
      const dst = messages[at + 4]!
      const host = this.byIndex.get(dst)
      if (!host) throw new Error(`message for host index ${dst}, which this runtime does not carry`)
      const m = readMessage(messages, at)
      if (messages[at + SLOT_PAYLOAD]! > 0) {
        m.payload = payloads[p++]
        if (!m.payload) throw new Error(`message ${i} names a payload that is missing`)
      }
      host.deliver(m, messages[at]!, messages[at + 1]!)
    }
  }

  /**
   * Hand the messages between this group's own hosts over to their destination hosts, in the order
   * each host sent them; the others stay in the outboxes for the leader. A runtime that steps through
   * a window in quanta (runWindow, runtime.ts) calls this at every quantum's end.
   */
  routeLocal(): void {
    for (const h of this.hosts) {
      if (h.outbox.length === 0) continue
      let kept = 0
      for (const o of h.outbox) {
        const d = this.byIndex.get(o.msg.dstHost)
        if (d) d.deliver(o.msg, o.deliverNs, o.originSeq)
        else h.outbox[kept++] = o
      }
      h.outbox.length = kept
    }
  }

  runUntil(windowEndNs: number): void {
    for (const h of this.hosts) h.runUntil(windowEndNs)
  }

  nextEventNs(): number {
    let t = Infinity
    for (const h of this.hosts) {
      const n = h.nextEventNs()
      if (n < t) t = n
    }
    return t
  }

  /**
   * Drain every host's outbox into one flat array; returns [array, count, payloads]. The array is
   * reused; payloads lists the payloads of the messages that carry one, in order.
   */
  drainOutbox(): [Float64Array, number, Uint8Array[]] {
    let count = 0
    for (const h of this.hosts) count += h.outbox.length
    if (this.out.length < count * WIRE_SLOTS) this.out = new Float64Array(count * WIRE_SLOTS * 2)
    let i = 0
    const payloads: Uint8Array[] = []
    for (const h of this.hosts) {
      for (const o of h.outbox) {
        writeMessage(this.out, (i++) * WIRE_SLOTS, o.msg, o.deliverNs, o.originSeq)
        if (o.msg.payload) payloads.push(o.msg.payload)
      }
      h.outbox.length = 0
    }
    return [this.out, count, payloads]
  }

  results(): Record<string, HostResults> {
    const out: Record<string, HostResults> = {}
    for (const h of this.hosts) {
      const r = h.results(this.plan.endTimeNs)
      out[h.name] = {
        events: h.eventsProcessed,
        causalityViolations: h.causalityViolations,
        latenessSumNs: h.latenessSumNs,
        latenessMaxNs: h.latenessMaxNs,
        components: r.components,
        links: r.links,
      }
    }
    return out
  }
}

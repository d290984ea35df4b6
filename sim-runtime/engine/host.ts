// One simulated host: its components, its event queue and its egress links. A host only ever
// processes its own events; hosts meet through messages exchanged at barriers (sync/), which is
// what lets any partition of hosts into processes give identical results.
import assert from 'node:assert/strict'
import type { PlanComponent, RunPlan } from '../api/plan.ts'
import type { Component, ComponentContext } from '../components/component.ts'
import { componentFactory } from '../components/component.ts'
import { LinkState } from '../network/link.ts'
import { EventHeap, type SimEvent } from './heap.ts'
import { Message, MSG_LIVE_FIN, MSG_LIVE_OPEN } from './message.ts'
import { Rng } from './rng.ts'

const EV_MESSAGE = -1
/** Events at one instant whose components a stuck run's error names (HostSim.instantEventLimit). */
const STUCK_TALLY = 1000
/** Events between two looks at the time, for that guard. */
const STUCK_CHECK_EVERY = 1 << 20

/** A live component's context: a modelled component's, and sendAt, which only live components need. */
export interface LiveContext extends ComponentContext {
  /**
   * Send a message stamped `atNs`, a virtual time in the window just run (live programs run after
   * the host's modelled events of a window, so their output is stamped earlier than now). Same-host
   * messages are delivered at now.
   */
  sendAt(msg: Message, atNs: number): void
}

/** Builds a live component (sim-runtime/live/runner.ts) for the host that carries it. */
export type LiveFactory = (c: PlanComponent, ctx: LiveContext) => Component

interface HostEvent extends SimEvent {
  comp: number
  type: number
  data: unknown
}

/** A message leaving this host for another one, stamped with its delivery key. */
export interface OutboundMessage {
  deliverNs: number
  originSeq: number
  msg: Message
}

export class HostSim {
  readonly index: number
  readonly name: string
  readonly plan: RunPlan
  nowNs = 0
  private seq = 0
  private readonly heap = new EventHeap<HostEvent>()
  private readonly components: Component[] = []
  private readonly links = new Map<number, LinkState>()
  /** Cross-host messages produced in the current window. */
  outbox: OutboundMessage[] = []
  eventsProcessed = 0
  /**
   * Events one virtual instant may take before the run fails as a loop that never advances time (a
   * client with no think time against a server with no service time on the same host): without this
   * guard such a run would spin forever at that instant. Ten million take a few seconds; the largest
   * legitimate burst at one instant is one event per client or request in flight.
   */
  instantEventLimit = 10_000_000
  causalityViolations = 0
  latenessSumNs = 0
  latenessMaxNs = 0

  constructor(plan: RunPlan, index: number, factories?: Map<string, import('../components/component.ts').ComponentFactory>, live?: LiveFactory) {
    const host = plan.hosts[index]
    if (!host) throw new Error(`no host with index ${index}`)
    this.plan = plan
    this.index = index
    this.name = host.name
    for (const c of host.components) {
      const model = c.spec.model
      if (!model) {
        if (!live) throw new Error(`${c.path}: live components run only in a sim-runtime (livesim run, or a SimHost pod), not in the in-process driver`)
        this.components.push(live(c, this.liveContext(c.index, c.path)))
        continue
      }
      const factory = factories?.get(c.path) ?? componentFactory(model.kind)
      if (!factory) throw new Error(`${c.path}: no component kind ${model.kind} is registered`)
      this.components.push(factory(model, this.context(c.index, c.path)))
    }
  }

  private context(componentIndex: number, path: string): ComponentContext {
    const rngs = new Map<string, Rng>()
    return {
      plan: this.plan,
      hostIndex: this.index,
      componentIndex,
      path,
      now: () => this.nowNs,
      schedule: (delayNs, type, data) => this.schedule(this.nowNs + delayNs, componentIndex, type, data),
      send: (msg) => {
        msg.srcHost = this.index
        msg.srcComp = componentIndex
        this.send(msg, this.nowNs)
      },
      rng: (stream) => {
        let r = rngs.get(stream)
        if (!r) {
          r = new Rng(this.plan.seed, `${path}#${stream}`)
          rngs.set(stream, r)
        }
        return r
      },
      resolve: (target) => this.plan.resolve(this.index, target),
    }
  }

  private liveContext(componentIndex: number, path: string): LiveContext {
    return {
      ...this.context(componentIndex, path),
      sendAt: (msg, atNs) => {
        msg.srcHost = this.index
        msg.srcComp = componentIndex
        this.send(msg, Math.min(atNs, this.nowNs))
      },
    }
  }

  start(): void {
    for (const c of this.components) c.start()
  }

  private schedule(atNs: number, comp: number, type: number, data: unknown): void {
    if (!(atNs >= this.nowNs) || !Number.isSafeInteger(atNs)) {
      throw new Error(`${this.name}: event scheduled at ${atNs}ns, before now (${this.nowNs}ns) or not an integer`)
    }
    this.heap.push({ t: atNs, o: this.index, s: this.seq++, comp, type, data })
  }

  private send(msg: Message, atNs: number): void {
    if (msg.dstHost === this.index) {
      this.heap.push({ t: this.nowNs, o: this.index, s: this.seq++, comp: msg.dstComp, type: EV_MESSAGE, data: msg })
      return
    }
    let link = this.links.get(msg.dstHost)
    if (!link) {
      const spec = this.plan.link(this.index, msg.dstHost)
      // The name seeds a lossy link's stream; most links lose nothing and need none.
      link = new LinkState(spec, this.plan.seed, spec.loss > 0 ? `${this.name}->${this.plan.hosts[msg.dstHost]!.name}` : '')
      this.links.set(msg.dstHost, link)
    }
    const deliverNs = link.transmit(atNs, msg.bytes, msg.type >= MSG_LIVE_OPEN && msg.type <= MSG_LIVE_FIN)
    if (deliverNs < 0) return
    this.outbox.push({ deliverNs, originSeq: this.seq++, msg })
  }

  /** Accept a message from another host. A message stamped before now is a causality violation. */
  deliver(msg: Message, deliverNs: number, originSeq: number): void {
    let t = deliverNs
    if (t < this.nowNs) {
      this.causalityViolations++
      const late = this.nowNs - t
      this.latenessSumNs += late
      if (late > this.latenessMaxNs) this.latenessMaxNs = late
      t = this.nowNs
    }
    this.heap.push({ t, o: msg.srcHost, s: originSeq, comp: msg.dstComp, type: EV_MESSAGE, data: msg })
  }

  /** Virtual time of the next event, or Infinity. */
  nextEventNs(): number {
    const e = this.heap.peek()
    return e === undefined ? Infinity : e.t
  }

  /** Process every event with t < windowEndNs; afterwards the host stands at windowEndNs. */
  runUntil(windowEndNs: number): void {
    // assert.fail, not assert(): its message would be built on every call of this hot path.
    if (windowEndNs < this.nowNs) assert.fail(`${this.name}: window end ${windowEndNs}ns is before now ${this.nowNs}ns`)
    const heap = this.heap
    const comps = this.components
    let n = 0
    // The guard against a loop at one instant costs the hot path one comparison: every `every`
    // events (then, near the limit, every event) it looks at the time. Time never goes back, so the
    // same time at two looks means every event in between was at it.
    const limit = this.instantEventLimit
    const every = Math.max(1, Math.min(STUCK_CHECK_EVERY, Math.floor(limit / 10)))
    let checkAt = every
    let instant = -1
    let since = 0
    /** The components of the last STUCK_TALLY events at one instant, once it nears the limit. */
    let tally: Map<number, number> | undefined
    while (true) {
      const e = heap.peek()
      if (e === undefined || e.t >= windowEndNs) break
      heap.pop()
      this.nowNs = e.t
      if (++n === checkAt) {
        checkAt = n + every
        if (e.t !== instant) {
          instant = e.t
          since = n
          tally = undefined
        } else if (n - since + every > limit - STUCK_TALLY) {
          checkAt = n + 1 // near the limit: a look at every event
          if (n - since > limit - STUCK_TALLY) {
            tally ??= new Map()
            tally.set(e.comp, (tally.get(e.comp) ?? 0) + 1)
            if (n - since >= limit) this.failStuck(e.t, tally)
          }
        }
      }
      const c = comps[e.comp]!
      if (e.type === EV_MESSAGE) c.onMessage(e.data as Message)
      else c.onTimer(e.type, e.data)
    }
    this.eventsProcessed += n
    this.nowNs = windowEndNs
  }

  /** Fails the run stuck at virtual time t, naming the components of its last events there. */
  private failStuck(t: number, tally: Map<number, number>): never {
    const paths = this.plan.hosts[this.index]!.components
    const total = [...tally.values()].reduce((x, y) => x + y, 0)
    const who = [...tally].sort((a, b) => b[1] - a[1]).map(([comp, k]) => `${paths[comp]?.path ?? comp} (${k} of the last ${total})`)
    throw new Error(
      `${this.name}: ${this.instantEventLimit} events at virtual time ${t}ns without time advancing: a loop with no delay in it, through ${who.join(', ')}; ` +
        'give it time (a service time or a think time above zero)',
    )
  }

  /**
   * Per-component results and this host's egress link counters: every link when the results hold
   * every host (plan.results.detail Hosts), and always their totals by destination group and the
   * plan.results.outliers links with the most drops.
   */
  results(endTimeNs: number): HostSimResults {
    const components: Record<string, unknown> = {}
    const host = this.plan.hosts[this.index]!
    host.components.forEach((c, i) => {
      components[c.name] = { kind: c.spec.model?.kind ?? 'Live', ...this.components[i]!.results(endTimeNs) }
    })
    const detail = this.plan.results.detail === 'Hosts'
    const links: Record<string, LinkCounters> = {}
    const linkGroups: Record<string, LinkCounters & { links: number }> = {}
    const drops: (LinkDrop & { order: number })[] = []
    for (const [dst, l] of this.links) {
      const to = this.plan.hosts[dst]!
      if (detail) links[`${this.name}->${to.name}`] = { messages: l.messages, bytes: l.bytes, drops: l.drops }
      const g = (linkGroups[to.group] ??= { links: 0, messages: 0, bytes: 0, drops: 0 })
      g.links++
      g.messages += l.messages
      g.bytes += l.bytes
      g.drops += l.drops
      if (l.drops > 0) drops.push({ from: this.name, to: to.name, messages: l.messages, bytes: l.bytes, drops: l.drops, order: dst })
    }
    drops.sort((a, b) => b.drops - a.drops || a.order - b.order)
    const linkDrops = drops.slice(0, this.plan.results.outliers).map(({ order: _order, ...d }) => d)
    return { components, links, linkGroups, linkDrops }
  }
}

export interface LinkCounters {
  messages: number
  bytes: number
  drops: number
}

/** A link among the outliers by drops: from and to are host names. */
export interface LinkDrop extends LinkCounters {
  from: string
  to: string
}

export interface HostSimResults {
  components: Record<string, unknown>
  /** "from->to" → counters; empty unless plan.results.detail is Hosts. */
  links: Record<string, LinkCounters>
  /** Destination group → the links to it that carried traffic, and their totals. */
  linkGroups: Record<string, LinkCounters & { links: number }>
  /** The links with the most drops (drops > 0), most first, then by destination in plan order. */
  linkDrops: LinkDrop[]
}

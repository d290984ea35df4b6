// Client: a workload generator. Open loop (Poisson or constant rate, arrivals independent of replies)
// or closed loop (N users, each waiting for its reply, then thinking). Measures latency in virtual
// time from send to reply, throughput, errors and timeouts. To a live component it sends real
// requests (redis: or http:, protocols/requests.ts); with http: it also counts status codes and
// latency per status class.
import { parseDurationNs, parseSizeBytes, NS_PER_SEC } from '../api/units.ts'
import type { ModelSpec } from '../api/schema.ts'
import { Histogram } from '../engine/histogram.ts'
import { newMessage, MSG_REQUEST, MSG_RESPONSE, type Message } from '../engine/message.ts'
import { registerComponent, round, type Component, type ComponentContext } from './component.ts'
import { TargetPicker } from './targets.ts'
import { liveRequests, type LiveRequests } from '../protocols/requests.ts'
import { statusClass } from '../protocols/live-tag.ts'

const T_ARRIVAL = 1
const T_THINK = 2
const T_TIMEOUT = 3

interface Pending {
  startNs: number
  user: number
}

export class Client implements Component {
  private readonly ctx: ComponentContext
  private readonly picker: TargetPicker
  private readonly requestBytes: number
  private readonly responseBytes: number
  private readonly timeoutNs: number
  private readonly open: { intervalNs: number; poisson: boolean } | undefined
  private readonly closed: { users: number; thinkNs: number } | undefined
  private readonly arrivals
  private readonly think
  /** Real requests to a live target (redis: or http:). */
  private readonly live: LiveRequests | undefined
  /** http: replies by status code, and their latency by status class ("2xx"). */
  private readonly status: Map<number, number> | undefined
  private readonly classLatency = new Map<string, Histogram>()
  private readonly outstanding = new Map<number, Pending>()
  private readonly latency = new Histogram()
  private nextId = 1
  sent = 0
  completed = 0
  errors = 0
  timeouts = 0

  constructor(spec: ModelSpec, ctx: ComponentContext) {
    this.ctx = ctx
    this.picker = new TargetPicker(ctx.resolve(spec.target!), spec.balance, () => ctx.rng('balance'))
    this.requestBytes = parseSizeBytes(spec.requestSize ?? 512)
    this.responseBytes = parseSizeBytes(spec.responseSize ?? 1024)
    this.timeoutNs = spec.timeout ? parseDurationNs(spec.timeout) : 0
    if (spec.openLoop) {
      this.open = { intervalNs: NS_PER_SEC / spec.openLoop.rate, poisson: (spec.openLoop.arrival ?? 'Poisson') === 'Poisson' }
    } else if (spec.closedLoop) {
      this.closed = { users: spec.closedLoop.users, thinkNs: spec.closedLoop.thinkTime ? parseDurationNs(spec.closedLoop.thinkTime) : 0 }
    }
    this.arrivals = ctx.rng('arrivals')
    this.think = ctx.rng('think')
    this.live = liveRequests(ctx.plan, ctx.hostIndex, spec.target!, spec, (name) => ctx.rng(name))
    if (spec.http) this.status = new Map()
  }

  start(): void {
    if (this.open) this.ctx.schedule(this.nextGapNs(), T_ARRIVAL, null)
    if (this.closed) {
      for (let u = 0; u < this.closed.users; u++) this.ctx.schedule(this.thinkNs(), T_THINK, u)
    }
  }

  private nextGapNs(): number {
    const o = this.open!
    return Math.round(o.poisson ? this.arrivals.exponential(o.intervalNs) : o.intervalNs)
  }

  private thinkNs(): number {
    const c = this.closed!
    return c.thinkNs > 0 ? Math.round(this.think.exponential(c.thinkNs)) : 0
  }

  private request(user: number): void {
    const id = this.nextId++
    const dst = this.picker.pick()
    const m = newMessage(MSG_REQUEST, dst, this.picker.target.component, id, this.requestBytes, this.responseBytes)
    const live = this.live
    if (live) {
      // The real request; a closed-loop user keeps its own connection (like redis-benchmark -c or wrk -c).
      m.payload = live.next(dst)
      m.bytes = m.payload.length
      m.tag = live.tag(user >= 0 ? user : live.openLoopConnection)
    }
    this.outstanding.set(id, { startNs: this.ctx.now(), user })
    this.sent++
    this.ctx.send(m)
    if (this.timeoutNs > 0) this.ctx.schedule(this.timeoutNs, T_TIMEOUT, id)
  }

  onTimer(type: number, data: unknown): void {
    if (type === T_ARRIVAL) {
      this.request(-1)
      this.ctx.schedule(this.nextGapNs(), T_ARRIVAL, null)
    } else if (type === T_THINK) {
      this.request(data as number)
    } else if (type === T_TIMEOUT) {
      const p = this.outstanding.get(data as number)
      if (!p) return
      this.outstanding.delete(data as number)
      this.timeouts++
      this.done(p.user)
    }
  }

  onMessage(msg: Message): void {
    const p = this.outstanding.get(msg.id)
    if (!p) return // a reply after its timeout
    this.outstanding.delete(msg.id)
    const latencyNs = this.ctx.now() - p.startNs
    if (msg.type === MSG_RESPONSE) {
      this.completed++
      this.latency.record(latencyNs)
    } else {
      this.errors++
    }
    if (this.status && msg.tag > 0) this.countStatus(msg.tag, latencyNs)
    this.done(p.user)
  }

  private countStatus(status: number, latencyNs: number): void {
    this.status!.set(status, (this.status!.get(status) ?? 0) + 1)
    const cls = statusClass(status)
    let h = this.classLatency.get(cls)
    if (!h) this.classLatency.set(cls, (h = new Histogram()))
    h.record(latencyNs)
  }

  private done(user: number): void {
    if (user >= 0) this.ctx.schedule(this.thinkNs(), T_THINK, user)
  }

  results(endTimeNs: number): Record<string, unknown> {
    return {
      sent: this.sent,
      completed: this.completed,
      errors: this.errors,
      timeouts: this.timeouts,
      outstanding: this.outstanding.size,
      throughputPerSec: round((this.completed * NS_PER_SEC) / endTimeNs, 3),
      latency: this.latency.summary(),
      ...(this.status ? this.statusResults() : {}),
    }
  }

  /** Replies by status code, and latency by status class, in ascending order (deterministic JSON). */
  private statusResults(): Record<string, unknown> {
    const status: Record<string, number> = {}
    for (const code of [...this.status!.keys()].sort((a, b) => a - b)) status[String(code)] = this.status!.get(code)!
    const byClass: Record<string, unknown> = {}
    for (const cls of [...this.classLatency.keys()].sort()) byClass[cls] = this.classLatency.get(cls)!.summary()
    return { status, latencyByStatusClass: byClass }
  }
}

registerComponent('Client', (spec, ctx) => new Client(spec, ctx))

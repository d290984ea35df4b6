// Client: a workload generator. Open loop (Poisson or constant rate, arrivals independent of replies)
// or closed loop (N users, each waiting for its reply, then thinking). Measures latency in virtual
// time from send to reply, throughput, errors and timeouts.
import { parseDurationNs, parseSizeBytes, NS_PER_SEC } from '../api/units.ts'
import type { ModelSpec } from '../api/schema.ts'
import { Histogram } from '../engine/histogram.ts'
import { newMessage, MSG_REQUEST, MSG_RESPONSE, type Message } from '../engine/message.ts'
import { registerComponent, round, type Component, type ComponentContext } from './component.ts'
import { TargetPicker } from './targets.ts'
import { encodeCommand } from '../protocols/resp.ts'
import type { Rng } from '../engine/rng.ts'

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
  /** Redis protocol to a live target: the command mix, and the port (the target's :port, or its first). */
  private readonly redis: { setRatio: number; keys: number; value: Buffer; port: number; rng: Rng } | undefined
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
    if (spec.redis) {
      const target = ctx.plan.hosts[this.picker.target.hosts[0]!]!.components[this.picker.target.component]!
      const ports = target.spec.live?.ports ?? []
      const portName = spec.target!.includes(':') ? spec.target!.slice(spec.target!.lastIndexOf(':') + 1) : undefined
      const port = (portName === undefined ? ports[0] : ports.find((p) => p.name === portName))?.port ?? 0
      this.redis = {
        setRatio: spec.redis.setRatio ?? 0.5,
        keys: spec.redis.keys ?? 10_000,
        value: Buffer.alloc(parseSizeBytes(spec.redis.valueSize ?? 64), 'x'),
        port,
        rng: ctx.rng('redis'),
      }
    }
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
    const m = newMessage(MSG_REQUEST, this.picker.pick(), this.picker.target.component, id, this.requestBytes, this.responseBytes)
    const r = this.redis
    if (r) {
      // The real command. tag = connection slot × 65536 + port: a closed-loop user keeps its own
      // connection (like redis-benchmark -c), an open loop pipelines on one.
      const key = `key:${Math.floor(r.rng.uniform() * r.keys)}`
      m.payload = r.rng.uniform() < r.setRatio ? encodeCommand(['SET', key, r.value]) : encodeCommand(['GET', key])
      m.bytes = m.payload.length
      m.tag = Math.max(user, 0) * 65536 + r.port
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
    if (msg.type === MSG_RESPONSE) {
      this.completed++
      this.latency.record(this.ctx.now() - p.startNs)
    } else {
      this.errors++
    }
    this.done(p.user)
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
    }
  }
}

registerComponent('Client', (spec, ctx) => new Client(spec, ctx))

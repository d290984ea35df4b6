// Server: c workers in front of a FIFO queue with an optional bound (requests beyond it are
// rejected with an error reply). Each request takes a service time (constant, exponential or
// lognormal), then optionally makes downstream calls, sequentially or fanned out, while holding its
// worker (thread-per-request), then replies. A call to a live component sends a real request
// (redis: or http:, protocols/requests.ts) and holds the worker until the program's reply; an error
// reply (a Redis error, an HTTP 5xx, a lost connection) fails the request like any failed call.
import { parseDurationNs, parseSizeBytes } from '../api/units.ts'
import type { ModelSpec } from '../api/schema.ts'
import { Deque } from '../engine/deque.ts'
import { Histogram } from '../engine/histogram.ts'
import { newMessage, MSG_ERROR, MSG_REQUEST, MSG_RESPONSE, type Message } from '../engine/message.ts'
import type { Rng } from '../engine/rng.ts'
import { registerComponent, round, type Component, type ComponentContext } from './component.ts'
import { TargetPicker } from './targets.ts'
import { liveRequests, type LiveRequests } from '../protocols/requests.ts'

const T_SERVICE_DONE = 1
const T_CALL_TIMEOUT = 2
const ERROR_BYTES = 64

interface Job {
  srcHost: number
  srcComp: number
  id: number
  replyBytes: number
  arrivalNs: number
  startNs: number
  nextCall: number
  pendingCalls: number
  failed: boolean
}

interface CallDef {
  picker: TargetPicker
  requestBytes: number
  responseBytes: number
  timeoutNs: number
  /** A call to a live component: its real requests. */
  live: LiveRequests | undefined
}

export class Server implements Component {
  private readonly ctx: ComponentContext
  private readonly workers: number
  private readonly queueLimit: number
  private readonly dist: 'Constant' | 'Exponential' | 'LogNormal'
  private readonly meanNs: number
  private readonly mu: number
  private readonly sigma: number
  private readonly serviceRng: Rng
  private readonly calls: CallDef[]
  private readonly fanOut: boolean
  private readonly queue = new Deque<Job>()
  private readonly inCall = new Map<number, Job>()
  /** Replies to calls over http:, by status code (undefined without such calls). */
  private readonly callStatus: Map<number, number> | undefined
  private nextCallId = 1
  private busy = 0
  private busyNs = 0
  private maxQueue = 0
  private readonly wait = new Histogram()
  private readonly response = new Histogram()
  arrivals = 0
  completed = 0
  rejected = 0
  errors = 0

  constructor(spec: ModelSpec, ctx: ComponentContext) {
    this.ctx = ctx
    this.workers = spec.workers ?? 1
    this.queueLimit = spec.queueLimit ?? Infinity
    const service = spec.service!
    this.dist = service.distribution
    this.meanNs = parseDurationNs(service.mean)
    this.sigma = service.sigma ?? 0
    // LogNormal parameterised by its mean: mean = exp(mu + sigma²/2).
    this.mu = Math.log(Math.max(this.meanNs, 1)) - (this.sigma * this.sigma) / 2
    this.serviceRng = ctx.rng('service')
    this.calls = (spec.calls ?? []).map((c, i) => ({
      picker: new TargetPicker(ctx.resolve(c.target), spec.balance, () => ctx.rng(`balance:${i}`)),
      requestBytes: parseSizeBytes(c.requestSize ?? 512),
      responseBytes: parseSizeBytes(c.responseSize ?? 1024),
      timeoutNs: c.timeout ? parseDurationNs(c.timeout) : 0,
      live: liveRequests(ctx.plan, ctx.hostIndex, c.target, c, (name) => ctx.rng(`${name}:${i}`)),
    }))
    this.fanOut = spec.callMode === 'FanOut'
    if (spec.calls?.some((c) => c.http)) this.callStatus = new Map()
  }

  start(): void {}

  private serviceNs(): number {
    switch (this.dist) {
      case 'Constant':
        return this.meanNs
      case 'Exponential':
        return Math.round(this.serviceRng.exponential(this.meanNs))
      case 'LogNormal':
        return Math.round(Math.exp(this.mu + this.sigma * this.serviceRng.normal()))
    }
  }

  onMessage(msg: Message): void {
    if (msg.type === MSG_REQUEST) return this.arrive(msg)
    const job = this.inCall.get(msg.id)
    if (!job) return // reply to a call that already timed out
    this.inCall.delete(msg.id)
    if (this.callStatus && msg.tag > 0) this.callStatus.set(msg.tag, (this.callStatus.get(msg.tag) ?? 0) + 1)
    this.callReturned(job, msg.type === MSG_RESPONSE)
  }

  private arrive(msg: Message): void {
    this.arrivals++
    const job: Job = {
      srcHost: msg.srcHost,
      srcComp: msg.srcComp,
      id: msg.id,
      replyBytes: msg.replyBytes,
      arrivalNs: this.ctx.now(),
      startNs: 0,
      nextCall: 0,
      pendingCalls: 0,
      failed: false,
    }
    if (this.busy < this.workers) return this.begin(job)
    if (this.queue.length >= this.queueLimit) {
      this.rejected++
      return this.reply(job, MSG_ERROR, ERROR_BYTES)
    }
    this.queue.push(job)
    if (this.queue.length > this.maxQueue) this.maxQueue = this.queue.length
  }

  private begin(job: Job): void {
    this.busy++
    const now = this.ctx.now()
    job.startNs = now
    this.wait.record(now - job.arrivalNs)
    this.ctx.schedule(this.serviceNs(), T_SERVICE_DONE, job)
  }

  onTimer(type: number, data: unknown): void {
    if (type === T_SERVICE_DONE) {
      const job = data as Job
      if (this.calls.length === 0) return this.finish(job)
      if (this.fanOut) {
        job.pendingCalls = this.calls.length
        for (const c of this.calls) this.call(job, c)
      } else {
        this.call(job, this.calls[0]!)
      }
    } else if (type === T_CALL_TIMEOUT) {
      const id = data as number
      const job = this.inCall.get(id)
      if (!job) return
      this.inCall.delete(id)
      this.callReturned(job, false)
    }
  }

  private call(job: Job, c: CallDef): void {
    const id = this.nextCallId++
    const dst = c.picker.pick()
    const m = newMessage(MSG_REQUEST, dst, c.picker.target.component, id, c.requestBytes, c.responseBytes)
    if (c.live) {
      // A connection of the server's pool per call in flight: the worker holds it until the reply.
      m.payload = c.live.next(dst)
      m.bytes = m.payload.length
      m.tag = c.live.tag(-1)
    }
    this.inCall.set(id, job)
    this.ctx.send(m)
    if (c.timeoutNs > 0) this.ctx.schedule(c.timeoutNs, T_CALL_TIMEOUT, id)
  }

  private callReturned(job: Job, ok: boolean): void {
    if (!ok) job.failed = true
    if (this.fanOut) {
      if (--job.pendingCalls === 0) this.finish(job)
      return
    }
    job.nextCall++
    if (job.failed || job.nextCall >= this.calls.length) return this.finish(job)
    this.call(job, this.calls[job.nextCall]!)
  }

  private finish(job: Job): void {
    const now = this.ctx.now()
    this.busy--
    this.busyNs += now - job.startNs
    if (job.failed) {
      this.errors++
      this.reply(job, MSG_ERROR, ERROR_BYTES)
    } else {
      this.completed++
      this.response.record(now - job.arrivalNs)
      this.reply(job, MSG_RESPONSE, job.replyBytes)
    }
    const next = this.queue.shift()
    if (next) this.begin(next)
  }

  private reply(job: Job, type: number, bytes: number): void {
    this.ctx.send(newMessage(type, job.srcHost, job.srcComp, job.id, bytes))
  }

  results(endTimeNs: number): Record<string, unknown> {
    return {
      arrivals: this.arrivals,
      completed: this.completed,
      rejected: this.rejected,
      errors: this.errors,
      queued: this.queue.length,
      maxQueue: this.maxQueue,
      utilization: round(this.busyNs / (this.workers * endTimeNs)),
      wait: this.wait.summary(),
      response: this.response.summary(),
      ...(this.callStatus ? { callStatus: Object.fromEntries([...this.callStatus].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])) } : {}),
    }
  }
}

registerComponent('Server', (spec, ctx) => new Server(spec, ctx))

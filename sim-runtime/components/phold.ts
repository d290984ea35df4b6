// Phold: one logical process (LP) of PHOLD (R. M. Fujimoto, "Performance of Time Warp Under
// Synthetic Workloads", 1990), the workload parallel simulators are compared on, as ROSS defines it
// (models/phold): an LP starts with `startEvents` events; each event draws, with probability
// `remote`, a destination uniformly among all LPs (itself included), else the LP itself, and causes
// one event there at now + lookahead + Exp(mean − lookahead). The random draws come in ROSS's order.
//
// An event for another LP waits the exponential part here, then crosses the link, whose latency
// the manifest makes the lookahead: the link is what gives conservative windows their lookahead.
// An event for this LP is a timer. Messages are 0 bytes: no serialisation time on the link.
import { parseDurationNs } from '../api/units.ts'
import { PHOLD_DEFAULTS, type ModelSpec } from '../api/schema.ts'
import { MSG_USER, newMessage, type Message } from '../engine/message.ts'
import type { Rng } from '../engine/rng.ts'
import { registerComponent, type Component, type ComponentContext } from './component.ts'

/** An event at this LP. */
const T_EVENT = 1
/** The exponential part of a remote event's delay has passed: send it (data: the destination host). */
const T_SEND = 2
const MSG_PHOLD = MSG_USER

export class Phold implements Component {
  private readonly ctx: ComponentContext
  private readonly lps: readonly number[]
  private readonly component: number
  private readonly remote: number
  private readonly lookaheadNs: number
  /** Mean of the exponential part of an increment: mean − lookahead. */
  private readonly expMeanNs: number
  private readonly startEvents: number
  private readonly rng: Rng
  /** PHOLD events processed: arrivals from other LPs and this LP's own. */
  events = 0
  /** Events sent to another LP. */
  remoteSent = 0

  constructor(spec: ModelSpec, ctx: ComponentContext) {
    this.ctx = ctx
    const target = ctx.resolve(spec.target!)
    this.lps = target.hosts
    this.component = target.component
    const p = spec.phold ?? {}
    this.remote = p.remote ?? PHOLD_DEFAULTS.remote
    this.lookaheadNs = parseDurationNs(p.lookahead ?? PHOLD_DEFAULTS.lookahead)
    this.expMeanNs = parseDurationNs(p.mean ?? PHOLD_DEFAULTS.mean) - this.lookaheadNs
    if (this.expMeanNs < 0) throw new Error(`${ctx.path}: phold.lookahead is longer than phold.mean`)
    this.startEvents = p.startEvents ?? PHOLD_DEFAULTS.startEvents
    this.rng = ctx.rng('phold')
  }

  start(): void {
    for (let i = 0; i < this.startEvents; i++) this.ctx.schedule(this.lookaheadNs + this.exponentialNs(), T_EVENT, null)
  }

  private exponentialNs(): number {
    return Math.round(this.rng.exponential(this.expMeanNs))
  }

  /** One PHOLD event at this LP: cause the next one, here or at a random LP. */
  private event(): void {
    this.events++
    const self = this.ctx.hostIndex
    const dest = this.rng.uniform() <= this.remote ? this.lps[this.rng.below(this.lps.length)]! : self
    if (dest === self) {
      this.ctx.schedule(this.lookaheadNs + this.exponentialNs(), T_EVENT, null)
      return
    }
    this.remoteSent++
    this.ctx.schedule(this.exponentialNs(), T_SEND, dest)
  }

  onTimer(type: number, data: unknown): void {
    if (type === T_EVENT) return this.event()
    this.ctx.send(newMessage(MSG_PHOLD, data as number, this.component, 0, 0))
  }

  onMessage(_msg: Message): void {
    this.event()
  }

  results(): Record<string, unknown> {
    return { events: this.events, remoteSent: this.remoteSent }
  }
}

registerComponent('Phold', (spec, ctx) => new Phold(spec, ctx))

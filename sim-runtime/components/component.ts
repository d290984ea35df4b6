// The one small interface every modelled component implements, and the registry of kinds.
// A component sees only its context: the clock, timers, its random streams, and send().
// Adding a model is one new file that calls registerComponent(); see docs/components.md.
import type { ModelSpec, RunPlan, ResolvedTarget } from '../api/index.ts'
import type { Message } from '../engine/message.ts'
import type { Rng } from '../engine/rng.ts'

export interface ComponentContext {
  readonly plan: RunPlan
  readonly hostIndex: number
  readonly componentIndex: number
  /** "host/component": the identity used for random streams and results. */
  readonly path: string
  /** Current virtual time in nanoseconds. */
  now(): number
  /** Call onTimer(type, data) after delayNs (≥ 0, integer) of virtual time. */
  schedule(delayNs: number, type: number, data: unknown): void
  /** Send a message; srcHost/srcComp are filled in. Cross-host messages cross the simulated network. */
  send(msg: Message): void
  /** A seeded random stream private to this component; the same name gives the same stream. */
  rng(stream: string): Rng
  /** Resolve a target string (host/component, group/component, component) from this host. */
  resolve(target: string): ResolvedTarget
}

export interface Component {
  /** Called once at virtual time 0, before any event. */
  start(): void
  onTimer(type: number, data: unknown): void
  onMessage(msg: Message): void
  /** Per-component results at the end of the run: plain JSON, deterministic for a given seed. */
  results(endTimeNs: number): Record<string, unknown>
}

export type ComponentFactory = (spec: ModelSpec, ctx: ComponentContext) => Component

const registry = new Map<string, ComponentFactory>()

export function registerComponent(kind: string, factory: ComponentFactory): void {
  if (registry.has(kind)) throw new Error(`component kind ${kind} is already registered`)
  registry.set(kind, factory)
}

export function componentFactory(kind: string): ComponentFactory | undefined {
  return registry.get(kind)
}

/** Round a derived float for results, so digests never depend on the last bits of a division. */
export function round(x: number, digits = 6): number {
  if (!Number.isFinite(x)) return 0
  const f = 10 ** digits
  return Math.round(x * f) / f
}

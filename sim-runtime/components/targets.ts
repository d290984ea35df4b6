// Picking a replica of a target: round-robin (deterministic per caller) or random (caller's stream).
import type { ResolvedTarget } from '../api/plan.ts'
import type { Rng } from '../engine/rng.ts'

export class TargetPicker {
  private next = 0
  readonly target: ResolvedTarget
  private readonly rng: Rng | undefined

  constructor(target: ResolvedTarget, balance: 'RoundRobin' | 'Random' | undefined, rng: () => Rng) {
    this.target = target
    this.rng = balance === 'Random' && target.hosts.length > 1 ? rng() : undefined
  }

  pick(): number {
    const hosts = this.target.hosts
    if (hosts.length === 1) return hosts[0]!
    if (this.rng) return hosts[this.rng.below(hosts.length)]!
    const h = hosts[this.next]!
    this.next = (this.next + 1) % hosts.length
    return h
  }
}

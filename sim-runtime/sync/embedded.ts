// The embedded runtime: every host of a run without live components in one process, stepped through
// the windows of a WindowClock (the leader's own clock in `livesim run`), with no frames, no
// barrier round trips and no child process. Messages between hosts are handed over in memory at the
// start of the window after the one that sent them (HostGroup.routeLocal), exactly when the leader
// would relay them: every link is at least the lookahead long, so none is due earlier, and those
// sent in the last window are never delivered, as with the leader.
//
// simulateInProcess runs it to the end in one call; the leader (Leader.runEmbedded) runs it in
// slices of wall time, so that status, /metrics, the watchdog and Ctrl-C get their turn between them.
import assert from 'node:assert/strict'
import type { RunPlan } from '../api/plan.ts'
import type { ComponentFactory } from '../components/component.ts'
import { HostGroup, type HostResults } from '../engine/group.ts'
import { BarrierProfiler } from './profile.ts'
import type { WindowClock } from './windows.ts'

/** Windows between two looks at the wall clock: a look costs about as much as an idle window. */
const WINDOWS_PER_LOOK = 64

export class EmbeddedRuntime {
  private readonly group: HostGroup
  private readonly clock: WindowClock
  private started = false
  /** No window is left before the run's end. */
  over = false
  /** Its windows: it is the last to report each barrier, and never waits. */
  readonly profiler: BarrierProfiler

  constructor(plan: RunPlan, clock: WindowClock, factories?: Map<string, ComponentFactory>, id = 'runtime-0') {
    assert.equal(plan.liveComponents, 0, 'live components need a runtime process: their cells are not embedded')
    this.group = new HostGroup(plan, plan.hosts.map((h) => h.index), factories)
    this.clock = clock
    this.profiler = new BarrierProfiler([{ id, hosts: plan.hosts.map((h) => h.name) }], true)
  }

  /** Start every host's components (virtual time 0). */
  start(): void {
    assert(!this.started, 'the embedded runtime was started twice')
    this.started = true
    this.group.start()
  }

  /**
   * Run windows until the run is over or the wall clock (performance.now()) passes `deadlineMs`;
   * returns `over`. A window is never cut: the deadline is looked at between windows.
   */
  runUntilWall(deadlineMs: number): boolean {
    assert(this.started, 'the embedded runtime runs windows only once started')
    const { group, clock, profiler } = this
    const startMs = performance.now()
    for (let n = 1; !this.over; n++) {
      const end = clock.next(Math.min(group.nextEventNs(), group.nextOutboundNs()))
      if (end < 0) {
        this.over = true
        break
      }
      group.routeLocal()
      group.runUntil(end)
      profiler.window(group.lastWindowMs)
      if (n % WINDOWS_PER_LOOK === 0 && performance.now() >= deadlineMs) break
    }
    profiler.busy(0, (performance.now() - startMs) * 1e6)
    return this.over
  }

  results(): Record<string, HostResults> {
    assert(this.over, 'results before the run is over')
    return this.group.results()
  }

  /** Per host: its share of the windows' wall time, ns. */
  hostBusyNs(): Record<string, number> {
    return this.group.busyNs()
  }
}

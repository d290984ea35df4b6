// The in-process driver: every host in this process through the same windows as the leader's, no
// network, run to the end in one call (the embedded runtime, embedded.ts). For tests (fidelity,
// determinism against the multi-process run) and benchmarks; `livesim run` of a modelled-only
// cluster runs the same embedded runtime inside its leader.
import type { RunPlan } from '../api/plan.ts'
import type { ComponentFactory } from '../components/component.ts'
import { EmbeddedRuntime } from './embedded.ts'
import { assembleResults, type SimResults } from './results.ts'
import { WindowClock, windowsFromEnv, type Stepping, type Windows } from './windows.ts'

export function simulateInProcess(plan: RunPlan, opts: { stepping?: Stepping; factories?: Map<string, ComponentFactory>; windows?: Windows } = {}): SimResults {
  const started = performance.now()
  const clock = new WindowClock(plan, opts.stepping)
  clock.configure([plan.hosts.map((h) => h.index)], opts.windows ?? windowsFromEnv(), false)
  const runtime = new EmbeddedRuntime(plan, clock, opts.factories)
  runtime.start()
  runtime.runUntilWall(Infinity)
  const wall = (performance.now() - started) / 1000
  return assembleResults(plan, runtime.results(), { barriers: clock.barriers, virtualTimeNs: plan.endTimeNs, wallSeconds: wall, runtimes: 0, profile: runtime.profiler.runtimes(), hostBusyNs: runtime.hostBusyNs() })
}

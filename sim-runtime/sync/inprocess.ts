// The in-process driver: every host in this process, the same windows as the leader, no network.
// For tests (fidelity, determinism against the multi-process run) and the engine benchmark;
// `livesim run` always goes through the leader and HTTP/2.
import type { RunPlan } from '../api/plan.ts'
import type { ComponentFactory } from '../components/component.ts'
import { HostGroup } from '../engine/group.ts'
import { WIRE_SLOTS } from '../engine/message.ts'
import { assembleResults, type SimResults } from './results.ts'
import { WindowClock, type Stepping } from './windows.ts'

export function simulateInProcess(plan: RunPlan, opts: { stepping?: Stepping; factories?: Map<string, ComponentFactory> } = {}): SimResults {
  const started = performance.now()
  const group = new HostGroup(plan, plan.hosts.map((h) => h.index), opts.factories)
  const clock = new WindowClock(plan, opts.stepping)
  group.start()
  // drainOutbox() reuses its buffer: the messages are delivered before the next drain overwrites it.
  let [pending, count, payloads] = group.drainOutbox()
  while (true) {
    let earliest = group.nextEventNs()
    for (let i = 0; i < count; i++) earliest = Math.min(earliest, pending[i * WIRE_SLOTS]!)
    const end = clock.next(earliest)
    if (end < 0) break
    group.deliver(pending, count, payloads)
    group.runUntil(end)
    ;[pending, count, payloads] = group.drainOutbox()
  }
  const wall = (performance.now() - started) / 1000
  return assembleResults(plan, group.results(), clock.barriers, plan.endTimeNs, wall, 0)
}

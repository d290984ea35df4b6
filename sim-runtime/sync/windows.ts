// Window computation, shared by the leader and the in-process driver so that both step through
// exactly the same barriers.
//
// Conservative: T_next = min(next event times, messages in flight) + lookahead, capped at endTime.
// Idle stretches are skipped in one window.
// Live components run all the time, so a run with them has no idle stretch: its windows are
// T + the runtime lookahead (the smallest latency of a link between hosts of different runtime
// processes; Infinity when one runtime carries every host), at most LIVE_WINDOW_MAX_NS, in whole sync
// quanta and at least one. Each runtime runs such a window in quanta of the sync quantum (runWindow,
// runtime.ts), handing messages between its own hosts over at every quantum's end: the quantum, not
// the window, is what the live cells of a host synchronise on, and it stays ≤ the smallest link
// latency, so nothing sent in a quantum is due before the next one. With one runtime (`livesim run`,
// --partition 1) that saves the HTTP/2 barrier of every quantum.
// Slack: the window runs `slack` further; late messages are counted by the receiving host.
// Fixed stepping (for comparison only): T_next = T + step, whatever is pending.
import assert from 'node:assert/strict'
import type { RunPlan } from '../api/plan.ts'

export type Stepping = 'adaptive' | 'fixed'

/**
 * The longest window (virtual ns) of a run with live components when no link between runtimes is
 * shorter: the leader's status, progress and abort still come at least this often (about 10-30 ms of
 * wall time at the slowdowns of live runs on a small machine).
 */
export const LIVE_WINDOW_MAX_NS = 1_000_000

export class WindowClock {
  private readonly plan: RunPlan
  private readonly stepping: Stepping
  /** Virtual time every host stands at. */
  nowNs = 0
  barriers = 0
  /**
   * The smallest latency of a link between hosts carried by different runtime processes: what bounds
   * a window of a run with live components (the leader sets it at gang start; Infinity with a single
   * runtime). Until set, the run's lookahead.
   */
  runtimeLookaheadNs: number

  constructor(plan: RunPlan, stepping: Stepping = 'adaptive') {
    this.plan = plan
    this.stepping = stepping
    this.runtimeLookaheadNs = plan.lookaheadNs
  }

  /**
   * Given the earliest pending event or message, return the end of the next window, or -1 when the
   * run is over (nothing left before endTime).
   */
  next(earliestNs: number): number {
    const { endTimeNs, lookaheadNs, mode, slackNs, quantumNs, liveComponents } = this.plan
    if (this.nowNs >= endTimeNs) return -1
    let end: number
    if (this.stepping === 'fixed') {
      end = this.nowNs + Math.min(lookaheadNs, endTimeNs)
    } else {
      // Live programs run all the time: with them, no stretch is idle and the run goes to endTime.
      if (earliestNs >= endTimeNs && liveComponents === 0) return -1
      const slack = mode === 'Slack' ? slackNs : 0
      if (liveComponents > 0) {
        // Live programs may send at any time: the window starts now, whatever is pending.
        // A whole number of quanta, so that the runtimes' quanta stay where per-quantum windows put them.
        end = this.nowNs + quantumNs * Math.max(1, Math.floor(Math.min(this.runtimeLookaheadNs + slack, LIVE_WINDOW_MAX_NS) / quantumNs))
      } else {
        end = Math.max(earliestNs, this.nowNs) + lookaheadNs + slack
      }
    }
    end = Math.min(end, endTimeNs)
    // Windows are monotonic and never pass the run's end.
    if (!(end > this.nowNs && end <= endTimeNs)) assert.fail(`window end ${end}ns does not advance past ${this.nowNs}ns within endTime ${endTimeNs}ns`)
    this.barriers++
    this.nowNs = end
    return end
  }
}

/** Up to this many hosts the leader looks at every pair for the runtime lookahead; beyond, it takes the run's lookahead. */
const PAIRWISE_MAX_HOSTS = 512

/**
 * The smallest latency of a link between two hosts carried by different runtimes (`runtimes`: the host
 * indices of each), Infinity when one runtime carries them all. Above PAIRWISE_MAX_HOSTS hosts, the
 * run's lookahead (the smallest link latency of all), which is never larger.
 */
export function runtimeLookaheadNs(plan: RunPlan, runtimes: readonly (readonly number[])[]): number {
  const carrying = runtimes.filter((r) => r.length > 0)
  if (carrying.length <= 1) return Infinity
  if (plan.hosts.length > PAIRWISE_MAX_HOSTS) return plan.lookaheadNs
  let min = Infinity
  for (let i = 0; i < carrying.length; i++) {
    for (let j = 0; j < carrying.length; j++) {
      if (i === j) continue
      for (const a of carrying[i]!) for (const b of carrying[j]!) min = Math.min(min, plan.link(a, b).latencyNs)
    }
  }
  return min
}

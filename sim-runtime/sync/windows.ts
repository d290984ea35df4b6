// Window computation, shared by the leader and the in-process driver so that both step through
// exactly the same barriers.
//
// Conservative: T_next = min(next event times, messages in flight) + lookahead, capped at endTime
// (and at the quantum when live components run). Idle stretches are skipped in one window.
// Slack: the window runs `slack` further; late messages are counted by the receiving host.
// Fixed stepping (for comparison only): T_next = T + step, whatever is pending.
import type { RunPlan } from '../api/plan.ts'

export type Stepping = 'adaptive' | 'fixed'

export class WindowClock {
  private readonly plan: RunPlan
  private readonly stepping: Stepping
  /** Virtual time every host stands at. */
  nowNs = 0
  barriers = 0

  constructor(plan: RunPlan, stepping: Stepping = 'adaptive') {
    this.plan = plan
    this.stepping = stepping
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
      const from = Math.max(earliestNs, this.nowNs)
      end = from + lookaheadNs + (mode === 'Slack' ? slackNs : 0)
      if (liveComponents > 0) end = Math.min(end, this.nowNs + quantumNs)
    }
    end = Math.min(end, endTimeNs)
    if (!(end > this.nowNs)) throw new Error(`window end ${end}ns does not advance past ${this.nowNs}ns`)
    this.barriers++
    this.nowNs = end
    return end
  }
}

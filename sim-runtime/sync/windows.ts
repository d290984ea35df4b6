// Window computation, shared by the leader and the in-process driver so that both step through
// exactly the same barriers.
//
// Conservative: T_next = min(next event times, messages in flight) + lookahead, capped at endTime.
// Idle stretches are skipped in one window. With topology-aware windows (the default, topology.ts)
// the lookahead is the shortest link that can carry a message: between the hosts of one process
// when it carries them all (embedded, in-process), between runtime processes otherwise, where each
// runtime gets a window end of its own (nextPerRuntime). `windows: 'global'` (LIVESIM_WINDOWS=global)
// keeps the smallest latency of any link, one window for all. Slack and fixed stepping always do.
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
import { buildTopology, cutLookaheadNs, internalLookaheadNs, RuntimeWindows, type Topology } from './topology.ts'

export type Stepping = 'adaptive' | 'fixed'

/** Window ends from the communication graph (topology.ts), or from the smallest latency of any link. */
export type Windows = 'topology' | 'global'

/** The windows a run gets by default: LIVESIM_WINDOWS=global turns topology-aware windows off. */
export function windowsFromEnv(env: NodeJS.ProcessEnv = process.env): Windows {
  const v = env.LIVESIM_WINDOWS
  if (v === undefined || v === '' || v === 'topology') return 'topology'
  if (v === 'global') return 'global'
  throw new Error(`LIVESIM_WINDOWS must be topology or global, got ${JSON.stringify(v)}`)
}

/** Whether topology-aware windows apply to a run's modelled windows: Conservative, adaptive, no live component. */
export function topologyApplies(plan: RunPlan, stepping: Stepping, windows: Windows): boolean {
  return windows === 'topology' && plan.mode === 'Conservative' && stepping === 'adaptive' && plan.liveComponents === 0
}

/**
 * The longest window (virtual ns) of a run with live components when no link between runtimes is
 * shorter: the leader's status, progress and abort still come at least this often (about 10-30 ms of
 * wall time at the slowdowns of live runs on a small machine).
 */
export const LIVE_WINDOW_MAX_NS = 1_000_000

/**
 * The longest topology-aware window (virtual ns) past the earliest pending event, unless the run's
 * lookahead is longer: a runtime whose hosts nothing else can reach would otherwise run to the end in
 * one window, and the leader's status, progress, watchdog and abort come between windows.
 */
export const TOPOLOGY_WINDOW_MAX_NS = 1_000_000

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
  /**
   * The lookahead of adaptive windows of a run without live components: the run's (the smallest
   * latency of any link) unless topology-aware windows set a longer one.
   */
  lookaheadNs: number
  /** Per-runtime windows (nextPerRuntime), set by the leader at gang start when they apply. */
  perRuntime: RuntimeWindows | undefined
  /** Each runtime's window end so far (per-runtime windows). */
  private runtimeEndNs: Float64Array | undefined

  constructor(plan: RunPlan, stepping: Stepping = 'adaptive') {
    this.plan = plan
    this.stepping = stepping
    this.runtimeLookaheadNs = plan.lookaheadNs
    this.lookaheadNs = plan.lookaheadNs
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
        end = Math.max(earliestNs, this.nowNs) + (mode === 'Slack' ? lookaheadNs : this.lookaheadNs) + slack
      }
    }
    end = Math.min(end, endTimeNs)
    // Windows are monotonic and never pass the run's end.
    if (!(end > this.nowNs && end <= endTimeNs)) assert.fail(`window end ${end}ns does not advance past ${this.nowNs}ns within endTime ${endTimeNs}ns`)
    this.barriers++
    this.nowNs = end
    return end
  }

  /**
   * Set the lookaheads for the runtimes that carry the hosts (`runtimes`: their host indices; one
   * list when one process carries every host), at gang start. A live run's windows span the
   * shortest link between runtimes: with topology-aware windows, of the links that can carry a
   * message. Modelled windows, with topology-aware windows (topologyApplies): across runtime
   * processes, a window end per runtime (nextPerRuntime); in one process, the shortest link between
   * two of its hosts that can carry a message. Both at most TOPOLOGY_WINDOW_MAX_NS past the earliest
   * event, unless the run's lookahead is longer.
   */
  configure(runtimes: readonly (readonly number[])[], windows: Windows, processes: boolean, topo: Topology = buildTopology(this.plan)): void {
    const plan = this.plan
    const carrying = runtimes.filter((r) => r.length > 0)
    if (plan.liveComponents > 0) {
      this.runtimeLookaheadNs = windows === 'topology' && plan.mode === 'Conservative' ? cutLookaheadNs(topo, carrying) : runtimeLookaheadNs(plan, carrying)
      return
    }
    if (!topologyApplies(plan, this.stepping, windows)) return
    const cap = Math.max(TOPOLOGY_WINDOW_MAX_NS, plan.lookaheadNs)
    if (processes) {
      this.perRuntime = new RuntimeWindows(topo, carrying, cap)
      this.lookaheadNs = Math.min(this.perRuntime.cutLookaheadNs, cap)
    } else {
      this.lookaheadNs = Math.min(internalLookaheadNs(topo, carrying.flat()), cap)
    }
    assert(this.lookaheadNs >= plan.lookaheadNs, 'topology-aware windows are never shorter than global ones')
  }

  /**
   * Per-runtime windows (topology.ts): given each runtime's earliest pending time (its next event or
   * message in flight to it), write each runtime's window end into `ends`; false when the run is
   * over. nowNs becomes the smallest end, the time every host has reached.
   */
  nextPerRuntime(earliestNs: Float64Array, ends: Float64Array): boolean {
    const windows = this.perRuntime
    assert(windows && this.stepping === 'adaptive' && this.plan.mode === 'Conservative' && this.plan.liveComponents === 0, 'per-runtime windows need a Conservative, adaptive run without live components')
    const { endTimeNs } = this.plan
    const R = windows.runtimes
    let earliest = Infinity
    for (let r = 0; r < R; r++) earliest = Math.min(earliest, earliestNs[r]!)
    if (this.nowNs >= endTimeNs || earliest >= endTimeNs) return false
    const last = (this.runtimeEndNs ??= new Float64Array(R))
    windows.ends(earliestNs, ends)
    let low = Infinity
    for (let r = 0; r < R; r++) {
      const end = Math.min(ends[r]!, endTimeNs)
      // A runtime's windows never go back: what it ran can no longer be undercut.
      if (!(end >= last[r]!)) assert.fail(`window end ${end}ns of runtime ${r} is before its last one, ${last[r]}ns`)
      ends[r] = last[r] = end
      if (end < low) low = end
    }
    if (!(low > earliest)) assert.fail(`no runtime can process the earliest pending event at ${earliest}ns: windows end at ${low}ns`)
    this.barriers++
    this.nowNs = low
    return true
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

// The straggler profile: which runtime holds the barriers up. Per runtime, the leader measures how
// long each runtime took from a GRANT to its REPORT (its window plus the way there and back), how
// long it then waited for the others until the next GRANT, and how often it was the last to report;
// the runtime measures its own time inside its windows (busy). Per host: its events, and its share of
// the wall time of the windows it ran in (by events). All of it is wall time, which differs from
// run to run: the results carry it outside the digest, as they carry `wall`.
//
// A barrier is one GRANT and every runtime's REPORT; exactly one runtime is the last to report each
// barrier, so the lastToReport counts sum to the barriers. An embedded run (every host in the
// leader's process) is one runtime that is the last of every barrier and never waits.
import assert from 'node:assert/strict'
import { RESULTS_LIMITS } from '../api/schema.ts'
import { Histogram } from '../engine/histogram.ts'

export interface RuntimeProfile {
  runtime: string
  /** Its hosts: every name for a few, the first and the last of many. */
  hosts: string
  /** Wall time inside its windows as the runtime measured it, ns (0 until its results arrive). */
  busyNs: number
  /** Summed over barriers: from the GRANT to its REPORT arriving at the leader, ns. */
  reportNs: number
  /** Summed over barriers: from its REPORT to the next GRANT (or the end), ns: waiting for the others. */
  waitNs: number
  /** Barriers at which its REPORT came last. */
  lastToReport: number
  /** Quantiles of the time from a GRANT to its REPORT, ns. */
  reportP50Ns: number
  reportP99Ns: number
  embedded?: true
}

export interface HostProfile {
  host: string
  events: number
  /** The wall time of the windows it ran in, shared among their hosts by events, ns. */
  busyNs: number
}

export interface RunProfile {
  barriers: number
  /** Runtimes that took part (the embedded run: one). */
  runtimeCount: number
  /**
   * The runtimes, the most often last to report first: every one with detail Hosts, else as many
   * as the outliers (at least the five status shows).
   */
  runtimes: RuntimeProfile[]
  /** Every host with detail Hosts, else the plan.results.outliers busiest; the busiest first. */
  hosts: HostProfile[]
}

/** Runtimes that status lists as stragglers (SimCluster status.stragglers). */
export const STRAGGLERS_SHOWN = RESULTS_LIMITS.stragglersShown

/** A runtime as status shows it: the top five stragglers (seconds of wall time). */
export interface Straggler {
  runtime: string
  hosts: string
  lastToReport: number
  reportSeconds: number
  waitSeconds: number
  reportP50Seconds: number
  reportP99Seconds: number
}

/** A list of host names for a message or a label: all of a few, the first and last of many. */
export function hostsLabel(hosts: readonly string[]): string {
  return hosts.length <= 4 ? hosts.join(', ') : `${hosts.slice(0, 2).join(', ')}, …, ${hosts.at(-1)} (${hosts.length} hosts)`
}

/** The leader's measurements of its runtimes, slot i per runtime; times from performance.now(), ms. */
export class BarrierProfiler {
  private readonly labels: string[]
  private readonly ids: string[]
  private readonly reportMs: Float64Array
  private readonly waitMs: Float64Array
  private readonly last: Float64Array
  private readonly busyNs: Float64Array
  /** When its REPORT of the open barrier arrived, -1 when it has not reported since the last GRANT. */
  private readonly reportedAt: Float64Array
  private readonly reportNs: Histogram[]
  private readonly embedded: boolean
  private grantedAt = -1
  barriers = 0

  constructor(runtimes: { id: string; hosts: readonly string[] }[], embedded = false) {
    assert(!embedded || runtimes.length === 1, 'an embedded run is one runtime')
    const n = runtimes.length
    this.ids = runtimes.map((r) => r.id)
    this.labels = runtimes.map((r) => hostsLabel(r.hosts))
    this.reportMs = new Float64Array(n)
    this.waitMs = new Float64Array(n)
    this.last = new Float64Array(n)
    this.busyNs = new Float64Array(n)
    this.reportedAt = new Float64Array(n).fill(-1)
    this.reportNs = Array.from({ length: n }, () => new Histogram())
    this.embedded = embedded
  }

  /** GRANTs go out (or the run ends): the runtimes that reported stop waiting. */
  grant(nowMs: number): void {
    for (let i = 0; i < this.reportedAt.length; i++) {
      if (this.reportedAt[i]! >= 0) this.waitMs[i]! += nowMs - this.reportedAt[i]!
      this.reportedAt[i] = -1
    }
    this.grantedAt = nowMs
  }

  /** Runtime i's REPORT of the open barrier arrived; `last`: every other runtime had reported. */
  report(i: number, nowMs: number, last: boolean): void {
    assert(this.grantedAt >= 0 && this.reportedAt[i] === -1, `runtime ${this.ids[i]} reported twice, or before a GRANT`)
    const ms = nowMs - this.grantedAt
    this.reportMs[i]! += ms
    this.reportNs[i]!.record(ms * 1e6)
    this.reportedAt[i] = nowMs
    if (last) {
      this.last[i]!++
      this.barriers++
    }
  }

  /**
   * Embedded: one window computed, which is the whole barrier; `ms`, its wall time when it was timed
   * (one window in HostGroup's TIMED_EVERY), else negative. Its quantiles come from the timed windows.
   */
  window(ms: number): void {
    if (ms >= 0) this.reportNs[0]!.record(ms * 1e6)
    this.last[0]!++
    this.barriers++
  }

  /**
   * Runtime i's own measure of its time inside its windows: from its results, or (embedded) each
   * stretch of windows computed, added up.
   */
  busy(i: number, ns: number): void {
    if (!(Number.isFinite(ns) && ns >= 0)) return
    if (this.embedded) this.busyNs[i]! += ns
    else this.busyNs[i] = ns
  }

  runtimes(): RuntimeProfile[] {
    return this.order().map((i) => this.profileOf(i))
  }

  /** The `n` runtimes most often last to report (then the longest to report), as status shows them. */
  stragglers(n: number): Straggler[] {
    const s = (ns: number) => Math.round(ns / 1e3) / 1e6
    return this.order()
      .slice(0, n)
      .map((i) => {
        const p = this.profileOf(i)
        return {
          runtime: p.runtime,
          hosts: p.hosts,
          lastToReport: p.lastToReport,
          reportSeconds: s(p.reportNs),
          waitSeconds: s(p.waitNs),
          reportP50Seconds: s(p.reportP50Ns),
          reportP99Seconds: s(p.reportP99Ns),
        }
      })
  }

  /** Slots, the most often last first, then the longest to report, then by name. */
  private order(): number[] {
    const idx = this.ids.map((_, i) => i)
    return idx.sort((a, b) => this.last[b]! - this.last[a]! || this.reportNsOf(b) - this.reportNsOf(a) || (this.ids[a]! < this.ids[b]! ? -1 : 1))
  }

  /** Embedded: its windows are all it does, and it has no report to wait for: their time is its report time. */
  private reportNsOf(i: number): number {
    return this.embedded ? this.busyNs[i]! : this.reportMs[i]! * 1e6
  }

  private profileOf(i: number): RuntimeProfile {
    const h = this.reportNs[i]!
    return {
      runtime: this.ids[i]!,
      hosts: this.labels[i]!,
      busyNs: Math.round(this.busyNs[i]!),
      reportNs: Math.round(this.reportNsOf(i)),
      waitNs: Math.round(this.waitMs[i]! * 1e6),
      lastToReport: this.last[i]!,
      reportP50Ns: h.quantile(0.5),
      reportP99Ns: h.quantile(0.99),
      ...(this.embedded ? { embedded: true as const } : {}),
    }
  }

  /** Totals for /metrics, by runtime id. */
  totals(): { id: string; reportSeconds: number; waitSeconds: number; lastToReport: number; busySeconds: number; p50Seconds: number; p99Seconds: number }[] {
    return this.ids.map((id, i) => ({
      id,
      reportSeconds: this.reportNsOf(i) / 1e9,
      waitSeconds: this.waitMs[i]! / 1000,
      lastToReport: this.last[i]!,
      busySeconds: this.busyNs[i]! / 1e9,
      p50Seconds: this.reportNs[i]!.quantile(0.5) / 1e9,
      p99Seconds: this.reportNs[i]!.quantile(0.99) / 1e9,
    }))
  }
}

// Driving frozen cells through one quantum of virtual time, the scheme of docs/live.md
// ("Driving scheme"). Not part of the brief's interfaces: the runtime's barrier loop may call it, or
// copy what it does. Every cell is frozen between quanta.
//
//   1. anchor = now + lead: the instant at which the cells will be thawed. `lead` covers writing every
//      clock file (measured, adaptive), so that the thaw never comes later than the anchor.
//   2. clock.set(start, rate, { anchorNs: anchor, untilNs: start + virtualNs }) for every cell: each
//      program's clock reads `start` at the anchor, and never passes the barrier.
//   3. Sleep until the anchor, thaw every cell.
//   4. Sleep until anchor + budget − freezeMargin, where budget = virtualNs / rate and freezeMargin is
//      the freeze latency seen so far (adaptive, at most budget / 4), and freeze every cell.
//   5. span = (all frozen) − anchor. When span < budget the programs lost (budget − span) of wall time
//      at the end of the quantum: their clocks jump forward by that at the next thaw, as if they had
//      been descheduled. When span > budget (overrunNs > 0: the runtime did not get a CPU in time, or
//      a freeze was slow) the programs ran that much longer than granted; their clocks stood still at
//      the barrier meanwhile (the shim's limit), so nothing they read is past it, but they did run:
//      the runtime should count overruns (like lateness in Slack mode).
import type { Cell } from './cell.ts'
import type { VirtualClock } from './clock.ts'

export interface QuantumResult {
  /** Wall ns from the anchor until every cell was frozen again. */
  spanNs: number
  /** span − budget when positive: how far past the barrier a program may have read its clock. */
  overrunNs: number
  /** How late the thaw came after the anchor (a clock file write took longer than the lead): wall time the programs' clocks skipped. */
  lateThawNs: number
  /** Wall ns from the freeze request to all frozen. */
  freezeNs: number
  /** CPU ns each cell consumed in this quantum (same order as the cells). */
  cpuNs: number[]
}

export interface QuantumDriver {
  /** Run every cell from virtual `startNs` for `virtualNs`, its clock advancing at `rate`. */
  run(startNs: number, virtualNs: number, rate?: number): Promise<QuantumResult>
}

const napCell = new Int32Array(new SharedArrayBuffer(4))
const now = () => process.hrtime.bigint()
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Wait until the hrtime instant `until`: timers for the bulk, then thread naps, then a short spin (≤ 30 µs). */
async function waitUntil(until: bigint): Promise<void> {
  let left = Number(until - now())
  if (left > 2_500_000) {
    await sleepMs(Math.floor((left - 1_500_000) / 1e6))
    left = Number(until - now())
  }
  while (left > 80_000) {
    Atomics.wait(napCell, 0, 0, (left - 60_000) / 1e6)
    left = Number(until - now())
  }
  while (now() < until) {
    // spin the last tens of µs: a nap wakes up ~60 µs late
  }
}

export function createQuantumDriver(cells: Cell[], clocks: (VirtualClock | undefined)[]): QuantumDriver {
  if (clocks.length !== cells.length) throw new Error('one clock (or undefined) per cell')
  let writeNsPerClock = 100_000 // adapted from measurements
  let freezeMarginNs = 200_000
  return {
    async run(startNs, virtualNs, rate = 1) {
      if (cells.some((c) => !c.frozen)) throw new Error('runQuantum: every cell must be frozen before a quantum')
      const budgetNs = virtualNs / rate
      const cpuBefore = cells.map((c) => c.cpuTimeNs())
      const nClocks = clocks.filter(Boolean).length
      const t0 = now()
      const anchor = t0 + BigInt(Math.round(writeNsPerClock * nClocks * 1.5 + 20_000))
      for (const clock of clocks) clock?.set(startNs, rate, { anchorNs: anchor, untilNs: startNs + virtualNs })
      const written = now()
      if (nClocks > 0) writeNsPerClock = 0.8 * writeNsPerClock + 0.2 * (Number(written - t0) / nClocks)
      await waitUntil(anchor)
      const thawAt = now()
      await Promise.all(cells.map((c) => c.thaw()))
      await waitUntil(anchor + BigInt(Math.max(0, Math.round(budgetNs - freezeMarginNs))))
      const freezeAt = now()
      await Promise.all(cells.map((c) => c.freeze()))
      const frozenAt = now()
      const freezeNs = Number(frozenAt - freezeAt)
      const spanNs = Number(frozenAt - anchor)
      // Margin: the freeze latency, remembered as a slowly decaying maximum, never more than a
      // quarter of the budget. (An overrun caused by a late timer — the runtime did not get a CPU —
      // is not fixed by a larger margin; it is reported.)
      freezeMarginNs = Math.min(Math.max(freezeNs * 1.5, freezeMarginNs * 0.95, 30_000), Math.max(30_000, budgetNs / 4))
      return {
        spanNs,
        overrunNs: Math.max(0, spanNs - budgetNs),
        lateThawNs: Math.max(0, Number(thawAt - anchor)),
        freezeNs,
        cpuNs: cells.map((c, i) => c.cpuTimeNs() - (cpuBefore[i] as number)),
      }
    },
  }
}

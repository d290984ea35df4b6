/**
 * The helpers `npm run bench -- live-redis-fidelity` computes its verdict with: reading
 * redis-benchmark's CSV, combining repetitions, the one-way link latency from ping-pong runs, the
 * accuracy formula, and the SimCluster it runs (which must pass the API's own validation).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { load } from 'js-yaml'
import { describe, expect, it } from 'vitest'
import { validateSimCluster } from '../../sim-runtime/api/validate.ts'
import { parseDurationNs } from '../../sim-runtime/api/units.ts'
import {
  accuracy,
  buildWakeCost,
  combineRows,
  cpuDmaLatencyKnob,
  durationString,
  fidelityManifest,
  oneWayOf,
  pairedAccuracy,
  parseBenchmarkCsv,
  perRequestGapNs,
  phaseSteady,
  referencePlacement,
  SAME_CPU,
  wakeCostNs,
  type CsvRow,
  type PingPong,
  type WakeCost,
} from '../../bench/live-redis.ts'
import { meanLowerBound95, withTwoSidedGoal, type BenchResult } from '../../bench/common.ts'

/** What redis-benchmark 7 prints with --csv (-t set,get), after a warning line of its own. */
const CSV = [
  'WARNING: Could not fetch server CONFIG',
  '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"',
  '"SET","74906.37","0.081","0.032","0.079","0.111","0.151","0.519"',
  '"GET","75187.97","0.080","0.024","0.079","0.103","0.127","1.031"',
  '',
].join('\n')

const row = (rps: number, p50Ms: number, p99Ms: number): CsvRow => ({ rps, avgMs: p50Ms, minMs: p50Ms / 2, p50Ms, p95Ms: p99Ms, p99Ms, maxMs: p99Ms * 2 })

describe('redis-benchmark CSV', () => {
  it('reads every column of every test by the header, skipping other lines', () => {
    const rows = parseBenchmarkCsv(CSV)
    expect(Object.keys(rows)).toEqual(['SET', 'GET'])
    expect(rows.SET).toEqual({ rps: 74906.37, avgMs: 0.081, minMs: 0.032, p50Ms: 0.079, p95Ms: 0.111, p99Ms: 0.151, maxMs: 0.519 })
    expect(rows.GET!.maxMs).toBe(1.031)
  })

  it('follows the header, not the column order, and takes \\r\\n line ends', () => {
    const text = '"test","p50_latency_ms","rps","avg_latency_ms","min_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\r\n"SET","0.063","93023.26","0.07","0.02","0.09","0.12","0.4"\r\n'
    expect(parseBenchmarkCsv(text).SET).toMatchObject({ rps: 93023.26, p50Ms: 0.063 })
  })

  it('rejects a row with a missing or non-numeric value, naming the column', () => {
    const text = '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\n"SET","n/a","0.08","0.03","0.079","0.11","0.15","0.5"'
    expect(() => parseBenchmarkCsv(text)).toThrow(/no numeric rps/)
    const short = '"test","rps","avg_latency_ms"\n"SET","1","2"'
    expect(() => parseBenchmarkCsv(short)).toThrow(/no numeric min_latency_ms/)
  })

  it('ignores rows before a header (nothing to read them by)', () => {
    expect(parseBenchmarkCsv('"SET","1","2"\n')).toEqual({})
  })
})

describe('combining repetitions', () => {
  const samples = [{ SET: row(70_000, 0.079, 0.2) }, { SET: row(90_000, 0.063, 0.15) }, { SET: row(75_000, 0.071, 0.3) }]

  it('median: per metric, each on its own', () => {
    expect(combineRows(samples, 'median').SET).toMatchObject({ rps: 75_000, p50Ms: 0.071, p99Ms: 0.2 })
  })

  it('best: the largest rps and the smallest latencies', () => {
    expect(combineRows(samples, 'best').SET).toMatchObject({ rps: 90_000, p50Ms: 0.063, p99Ms: 0.15, maxMs: 0.3 })
  })
})

describe('the link latency and the verdict', () => {
  const pp = (p50Ns: number) => ({ p50Ns }) as PingPong

  it('one way is half the median p50 round trip of the ping-pong runs', () => {
    expect(oneWayOf([pp(12_000), pp(16_600), pp(14_000)])).toBe(7_000)
    expect(oneWayOf([pp(13_001)])).toBe(6_501)
    expect(() => oneWayOf([])).toThrow(/no ping-pong runs/)
  })

  it('accuracy is 1 - |sim - native| / native, the same either side', () => {
    expect(accuracy(100, 100)).toBe(1)
    expect(accuracy(90, 100)).toBeCloseTo(0.9, 12)
    expect(accuracy(110, 100)).toBeCloseTo(0.9, 12)
    expect(accuracy(71, 63)).toBeCloseTo(0.873, 3) // p50 one 8 µs bucket up in the host's fast phase
    expect(accuracy(250, 100)).toBeCloseTo(-0.5, 12)
  })

  it('paired repetitions: the mean livesim run against the mean native run, not quantized to p50 buckets', () => {
    // redis-benchmark's p50 (ms) on both sides of its 71 / 79 µs bucket edge in the same share:
    // the median of per-pair accuracies would be 0.899 (pairs 79/71, 71/79, 71/71), a bucket's worth.
    expect(pairedAccuracy([0.079, 0.071, 0.071], [0.071, 0.079, 0.071])).toBeCloseTo(1, 12)
    // SET at ten clients in one recorded run: native 71, 79, 71 against livesim 79, 79, 79.
    expect(pairedAccuracy([0.079, 0.079, 0.079], [0.071, 0.079, 0.071])).toBeCloseTo(0.9276, 4) // 1 - (79 - 73.67) / 73.67; the paired median said 0.8873
    // A steady offset of a whole bucket still counts in full, either way.
    expect(pairedAccuracy([0.071, 0.071, 0.071], [0.079, 0.079, 0.079])).toBeCloseTo(accuracy(0.071, 0.079), 12)
    expect(pairedAccuracy([110, 120], [100, 100])).toBeCloseTo(0.85, 12)
    // Differences of opposite sign cancel only as far as they are equal: the mean of them, relative to the mean native.
    expect(pairedAccuracy([90, 130], [100, 100])).toBeCloseTo(0.9, 12)
    expect(() => pairedAccuracy([1, 2], [1])).toThrow(/2 livesim and 1 native values/)
    expect(() => pairedAccuracy([], [])).toThrow(/at least one each/)
  })

  it('the verdict: mean per-pair accuracy and its one-sided 95 % lower bound (Student t)', () => {
    // Five pairs, sd 0.02: t(0.95, 4) = 2.1318, so the bound is 0.94 - 2.1318 * 0.02 / sqrt(5).
    const xs = [0.92, 0.94, 0.96, 0.92, 0.96]
    const b = meanLowerBound95(xs)
    expect(b.mean).toBeCloseTo(0.94, 12)
    expect(b.sd).toBeCloseTo(0.02, 12)
    expect(b.lower95).toBeCloseTo(0.94 - (2.131847 * 0.02) / Math.sqrt(5), 6)
    // Per-pair accuracies never cancel: one pair 10 % high and one 10 % low is 0.9, not 1.
    expect(meanLowerBound95([accuracy(110, 100), accuracy(90, 100)]).mean).toBeCloseTo(0.9, 12)
    // Two pairs: t(0.95, 1) = 6.3138, a wide bound; one pair: no spread, no bound.
    expect(meanLowerBound95([0.9, 1]).lower95).toBeCloseTo(0.95 - (6.313752 * Math.SQRT1_2) / Math.sqrt(2) / 10, 5)
    expect(meanLowerBound95([0.97]).lower95).toBe(-Infinity)
    expect(() => meanLowerBound95([])).toThrow(/no samples/)
  })

  it('a two-sided goal fails a clock that under-counts as well as one that over-counts', () => {
    const r = (ratio: number): BenchResult => withTwoSidedGoal({ name: 'x', value: ratio, unit: 'u', baseline: 1, ratio }, 0.05)
    expect(r(1.04).met).toBe(true)
    expect(r(0.96).met).toBe(true)
    expect(r(1.06).met).toBe(false)
    expect(r(0.5).met).toBe(false)
    expect(r(0.5).goal).toBe('|ratio - 1| <= 0.05')
  })

  it('durations keep nanoseconds and read back the same', () => {
    for (const ns of [6_000, 6_895, 8_312, 1_000_000, 2_500_000_000]) expect(parseDurationNs(durationString(ns))).toBe(ns)
    expect(durationString(7_000)).toBe('7us')
    expect(durationString(6_894.6)).toBe('6895ns')
  })

  it('knobs: a clear error for what they do not take', () => {
    expect(cpuDmaLatencyKnob(undefined)).toBe(0)
    expect(cpuDmaLatencyKnob(' off ')).toBe('off')
    expect(cpuDmaLatencyKnob('20')).toBe(20)
    expect(() => cpuDmaLatencyKnob('-1')).toThrow(/LIVE_REDIS_CPU_DMA_LATENCY: microseconds/)
    expect(referencePlacement('same')).toMatchObject({ name: 'same' })
    expect(() => referencePlacement('both')).toThrow(/"same" or "cross", got "both"/)
  })
})

describe('the fidelity SimCluster', () => {
  it('passes the API validation, with both hosts on the measured link and the knobs where asked', () => {
    const text = fidelityManifest({ latencyNs: 6_895, endTimeNs: 400_000_000, requests: 20_000, clients: 10, clock: 'Cooperative', cpus: '1' })
    const { cluster } = validateSimCluster(load(text))
    expect(cluster.spec.hosts.map((h) => h.name)).toEqual(['db', 'bench'])
    expect(parseDurationNs(String(cluster.spec.network?.default?.latency))).toBe(6_895)
    const live = cluster.spec.hosts.map((h) => h.components[0]!.live!)
    expect(live.map((l) => l.clock)).toEqual(['Cooperative', 'Cooperative'])
    expect(live[1]!.command).toEqual(expect.arrayContaining(['redis-benchmark', '$(LIVESIM_HOST_DB_0)', '-c', '10', '-n', '20000']))
    expect(cluster.spec.hosts.map((h) => h.cell?.cpus)).toEqual(['1', '1'])
  })

  it('without knobs, leaves the clock and the cell to the defaults', () => {
    const text = fidelityManifest({ latencyNs: 8_000, endTimeNs: 1_000_000_000, requests: 1000, clients: 1 })
    expect(text).not.toMatch(/clock:|cell:/)
    const { cluster } = validateSimCluster(load(text))
    expect(cluster.spec.hosts.map((h) => h.components[0]!.live!.clock)).toEqual([undefined, undefined])
  })
})

describe('diagnostics of the fidelity run (not in its value)', () => {
  const w = (sleeping: number, polling: number): WakeCost => ({
    clientCpu: 1,
    serverCpu: 0,
    rounds: 50_000,
    sleepingPeerWriteNs: sleeping,
    pollingPeerWriteNs: polling,
    sleepingPeerRoundTripNs: 16_000,
    pollingPeerRoundTripNs: 12_500,
  })
  it("a sender's wake-up cost is its write() to a sleeping peer minus to a polling one, whichever is larger", () => {
    expect(wakeCostNs(w(6_430, 5_420))).toBe(1_010)
    expect(wakeCostNs(w(5_000, 5_200))).toBe(-200)
  })

  it('the per-request gap is 1e9/native rps - 1e9/livesim rps, per test both have', () => {
    const row = (rps: number): CsvRow => ({ rps, avgMs: 0.08, minMs: 0.02, p50Ms: 0.079, p95Ms: 0.1, p99Ms: 0.15, maxMs: 1 })
    const gap = perRequestGapNs({ SET: row(75_000), GET: row(80_000), PING_INLINE: row(70_000) }, { SET: row(82_000), GET: row(78_000) })
    expect(gap).toEqual({ GET: -321, SET: 1_138 })
  })

  it('a repetition is steady when its round trips agree within 15 %, not across a phase change', () => {
    expect(phaseSteady([12_120, 12_160, 12_400])).toBe(true)
    expect(phaseSteady([16_700, 16_900, 17_100])).toBe(true)
    expect(phaseSteady([12_100, 16_800, 16_700])).toBe(false)
    expect(phaseSteady([12_100, 12_100, 16_800])).toBe(false)
    expect(phaseSteady([12_000, 13_700], 1.15)).toBe(true)
    expect(phaseSteady([12_000, 13_900], 1.15)).toBe(false)
    expect(phaseSteady([])).toBe(false)
    expect(phaseSteady([12_000, 0])).toBe(false)
  })

  it('wakecost runs both kinds of peer to the end and reports every field', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'livesim-wakecost-'))
    try {
      const r = await buildWakeCost(dir)(SAME_CPU, 2_000)
      expect(r).toMatchObject({ clientCpu: SAME_CPU.clientCpu, serverCpu: SAME_CPU.serverCpu, rounds: 2_000 })
      for (const k of ['sleepingPeerWriteNs', 'pollingPeerWriteNs', 'sleepingPeerRoundTripNs', 'pollingPeerRoundTripNs'] as const) expect(r[k]).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

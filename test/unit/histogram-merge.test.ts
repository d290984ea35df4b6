// Histograms merge exactly: for any samples split in any way among any number of histograms, the
// merge answers every quantile, count, sum, min and max as one histogram fed every sample does.
// A property test over seeded random cases (a failure names its seed, which replays it).
import { describe, expect, it } from 'vitest'
import { Histogram, HISTOGRAM, type HistogramBuckets } from '../../sim-runtime/engine/histogram.ts'
import { Rng } from '../../sim-runtime/engine/rng.ts'

const QUANTILES = [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1]

/** Samples of one random case: a mixture of scales (exact buckets, µs, ms, s), some repeated. */
function samples(rng: Rng): number[] {
  const n = 1 + rng.below(3000)
  const scales = [1, 300, 50_000, 2_000_000, 3_000_000_000]
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const scale = scales[rng.below(scales.length)]!
    out.push(rng.uniform() < 0.1 && out.length ? out[rng.below(out.length)]! : Math.round(rng.exponential(scale)))
  }
  return out
}

describe('histogram merge (property: over 300 seeded cases)', () => {
  it('gives the quantiles, count, sum, min and max of one histogram holding every sample', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = new Rng(seed, 'histogram-merge')
      const xs = samples(rng)
      const union = new Histogram()
      const parts = Array.from({ length: 1 + rng.below(12) }, () => new Histogram())
      for (const x of xs) {
        union.record(x)
        parts[rng.below(parts.length)]!.record(x)
      }
      const merged = parts.reduce((m, p) => m.merge(p), new Histogram())
      for (const q of QUANTILES) expect(merged.quantile(q), `seed ${seed}, q ${q}`).toBe(union.quantile(q))
      expect([merged.count, merged.sum, merged.min, merged.max], `seed ${seed}`).toEqual([union.count, union.sum, union.min, union.max])
      // The same through JSON, as runtimes send the buckets and results carry them.
      const wire = JSON.parse(JSON.stringify(parts.map((p) => p.buckets()))) as HistogramBuckets[]
      const viaJson = wire.reduce((m, b) => m.merge(Histogram.fromBuckets(b)), new Histogram())
      expect([viaJson.summary(), viaJson.buckets()], `seed ${seed}`).toEqual([union.summary(), union.buckets()])
    }
  })

  it('round-trips buckets through JSON, empty and one-sample histograms too', () => {
    for (const xs of [[], [0], [255], [256, 257, 1e12], [7, 7, 7, 1_000_000]]) {
      const h = new Histogram()
      for (const x of xs) h.record(x)
      const back = Histogram.fromBuckets(JSON.parse(JSON.stringify(h.buckets())) as HistogramBuckets)
      expect(back.summary()).toEqual(h.summary())
      expect(back.buckets()).toEqual(h.buckets())
    }
  })

  it('refuses buckets that disagree with their count, or another layout', () => {
    const h = new Histogram()
    h.record(5)
    expect(() => Histogram.fromBuckets({ ...h.buckets(), count: 2 })).toThrow(/hold 1 samples, its count says 2/)
    expect(() => Histogram.fromBuckets({ ...h.buckets(), subBucketBits: 7 })).toThrow(/7 sub-bucket bits/)
    expect(() => Histogram.fromBuckets({ ...h.buckets(), counts: '1 0' })).toThrow(/not a non-zero integer/)
  })

  it('carries its buckets in summary() under a symbol that JSON leaves out', () => {
    const h = new Histogram()
    h.record(1000)
    const s = h.summary()
    expect((s as { [HISTOGRAM]?: HistogramBuckets })[HISTOGRAM]).toEqual(h.buckets())
    expect(Object.keys(JSON.parse(JSON.stringify(s)) as object)).toEqual(['count', 'meanNs', 'p50Ns', 'p90Ns', 'p99Ns', 'p999Ns', 'maxNs'])
  })
})

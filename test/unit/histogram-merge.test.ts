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

  it('puts every value in the bucket the JSON format documents, across all powers of two', () => {
    // HistogramBuckets: bucket i holds i below 256; above, with e = floor((i - 256) / 256) + 8,
    // the 2^(e-8) values from (256 + (i - 256) mod 256) * 2^(e-8).
    const range = (i: number): [number, number] => {
      if (i < 256) return [i, i]
      const e = Math.floor((i - 256) / 256) + 8
      const lo = (256 + ((i - 256) % 256)) * 2 ** (e - 8)
      return [lo, lo + 2 ** (e - 8) - 1]
    }
    const values = [0, 1, 255, 256, 257, 511, 512, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5_000, 2 ** 40 + 123_456, 2 ** 52]
    const rng = new Rng(7, 'histogram-buckets')
    for (let k = 0; k < 2000; k++) values.push(Math.floor(rng.uniform() * 2 ** rng.below(53)))
    for (const v of values) {
      const h = new Histogram()
      h.record(v)
      const runs = h.buckets().counts.split(' ').map(Number)
      const i = runs.length === 1 ? 0 : -runs[0]!
      expect(runs.at(-1), `value ${v}`).toBe(1)
      const [lo, hi] = range(i)
      expect(v >= lo && v <= hi, `value ${v} in bucket ${i} = [${lo}, ${hi}]`).toBe(true)
    }
  })

  it('refuses a bucket past the last one', () => {
    expect(() => Histogram.fromBuckets({ count: 1, sum: 0, min: 0, max: 0, subBucketBits: 8, counts: '-20000 1' })).toThrow(/bucket 20000 is past the last/)
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

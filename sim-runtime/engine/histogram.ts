// A log-linear histogram of non-negative integers (nanoseconds): exact below 256, then 256 linear
// sub-buckets per power of two (relative error < 0.4%). Count, sum, min and max are exact, so the
// mean is exact. Deterministic: no floating-point state but the bucket counts.

const SUB_BITS = 8
const SUB = 1 << SUB_BITS

function bucketOf(v: number): number {
  if (v < SUB) return v
  const e = v < 4294967296 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / 4294967296))
  const sub = Math.floor(v / 2 ** (e - SUB_BITS)) - SUB
  return SUB + (e - SUB_BITS) * SUB + sub
}

function bucketRange(i: number): [number, number] {
  if (i < SUB) return [i, i]
  const e = Math.floor((i - SUB) / SUB) + SUB_BITS
  const sub = (i - SUB) % SUB
  const width = 2 ** (e - SUB_BITS)
  const lo = (SUB + sub) * width
  return [lo, lo + width - 1]
}

export class Histogram {
  private counts = new Float64Array(SUB * 4)
  count = 0
  sum = 0
  min = Infinity
  max = 0

  record(v: number): void {
    const x = v < 0 ? 0 : Math.round(v)
    const b = bucketOf(x)
    if (b >= this.counts.length) {
      const grown = new Float64Array(Math.max(b + 1, this.counts.length * 2))
      grown.set(this.counts)
      this.counts = grown
    }
    this.counts[b]! += 1
    this.count++
    this.sum += x
    if (x < this.min) this.min = x
    if (x > this.max) this.max = x
  }

  /** The value at quantile q (0 < q ≤ 1): the midpoint of the bucket holding rank ceil(q·count). */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      if (seen >= rank) {
        const [lo, hi] = bucketRange(i)
        return Math.min(this.max, Math.max(this.min, Math.round((lo + hi) / 2)))
      }
    }
    return this.max
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  summary(): { count: number; meanNs: number; p50Ns: number; p90Ns: number; p99Ns: number; p999Ns: number; maxNs: number } {
    return {
      count: this.count,
      meanNs: Math.round(this.mean()),
      p50Ns: this.quantile(0.5),
      p90Ns: this.quantile(0.9),
      p99Ns: this.quantile(0.99),
      p999Ns: this.quantile(0.999),
      maxNs: this.count ? this.max : 0,
    }
  }
}

// A log-linear histogram of non-negative integers (nanoseconds): exact below 256, then 256 linear
// sub-buckets per power of two (relative error < 0.4%). Count, sum, min and max are exact, so the
// mean is exact. Deterministic: no floating-point state but the bucket counts.
//
// Histograms merge exactly (bucket counts add), so the quantiles of a merge are those of one
// histogram fed every sample: results merge a group's replicas this way (sync/group-results.ts).
// A summary() carries its histogram's buckets under HISTOGRAM, a symbol: invisible to JSON, found
// by the runtime, which sends them beside the results (HostResults.histograms).

const SUB_BITS = 8
const SUB = 1 << SUB_BITS
/** Pages of SUB buckets: page 0 holds 0-255, page p ≥ 1 the power of two 2^(p+7); 57 reach 2^64. */
const PAGES = 64 - SUB_BITS + 1

function bucketOf(v: number): number {
  if (v < SUB) return v
  if (v < 4294967296) {
    // Below 2^32 the sub-bucket is an unsigned shift (>>> reads v as a uint32, exact there).
    const e = 31 - Math.clz32(v)
    return SUB + (e - SUB_BITS) * SUB + ((v >>> (e - SUB_BITS)) - SUB)
  }
  const e = 63 - Math.clz32(Math.floor(v / 4294967296))
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

/** The property of a summary() object that holds its histogram's buckets (HistogramBuckets). */
export const HISTOGRAM = Symbol('livesim.histogram')

/**
 * A histogram in JSON. `counts` is the bucket counts from bucket 0, run-length encoded and
 * space-separated (one line of JSON): a number ≥ 1 is the next bucket's count, −n skips n empty
 * buckets. Bucket i holds exactly i below 256; above, with e = ⌊(i − 256) / 256⌋ + 8, the
 * 2^(e−8) values from (256 + (i − 256) mod 256) · 2^(e−8).
 */
export interface HistogramBuckets {
  count: number
  sum: number
  min: number
  max: number
  subBucketBits: number
  counts: string
}

export type HistogramSummary = ReturnType<Histogram['summary']>

export class Histogram {
  /**
   * The bucket counts in pages of SUB buckets, allocated on first use: page 0 holds 0-255, page p
   * the values of one power of two (2^(p+7) to 2^(p+8) − 1). A run's latencies span a few powers
   * of two, so a histogram holds a few KiB where one flat array up to its largest bucket held 32 KiB
   * for values near 1 ms, and thousands of them (a server's per host) stayed in the CPU's caches.
   */
  private pages: (Float64Array | undefined)[] = []
  count = 0
  sum = 0
  min = Infinity
  max = 0

  /** Page p, new (the list grows to it, packed: a histogram of values up to 1 ms has 14 slots). */
  private page(p: number): Float64Array {
    while (this.pages.length <= p) this.pages.push(undefined)
    const page = new Float64Array(SUB)
    this.pages[p] = page
    return page
  }

  record(v: number): void {
    const x = v < 0 ? 0 : Math.round(v)
    const b = bucketOf(x)
    const p = b >>> SUB_BITS
    const page = this.pages[p] ?? this.page(p)
    page[b & (SUB - 1)]! += 1
    this.count++
    this.sum += x
    if (x < this.min) this.min = x
    if (x > this.max) this.max = x
  }

  /** Add every sample of `other` to this histogram: the result is as if both had recorded them all. */
  merge(other: Histogram): this {
    for (let p = 0; p < other.pages.length; p++) {
      const from = other.pages[p]
      if (from === undefined) continue
      const to = this.pages[p] ?? this.page(p)
      for (let i = 0; i < SUB; i++) to[i]! += from[i]!
    }
    this.count += other.count
    this.sum += other.sum
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
    return this
  }

  /** The count of bucket b. */
  private at(b: number): number {
    const page = this.pages[b >>> SUB_BITS]
    return page === undefined ? 0 : page[b & (SUB - 1)]!
  }

  /** One past the last bucket that may hold a sample (the end of the last allocated page). */
  private end(): number {
    let p = this.pages.length - 1
    while (p >= 0 && this.pages[p] === undefined) p--
    return (p + 1) * SUB
  }

  buckets(): HistogramBuckets {
    const counts: number[] = []
    let empty = 0
    let last = this.end() - 1
    while (last >= 0 && this.at(last) === 0) last--
    for (let i = 0; i <= last; i++) {
      const c = this.at(i)
      if (c === 0) {
        empty++
        continue
      }
      if (empty > 0) counts.push(-empty)
      empty = 0
      counts.push(c)
    }
    return { count: this.count, sum: this.sum, min: this.count ? this.min : 0, max: this.max, subBucketBits: SUB_BITS, counts: counts.join(' ') }
  }

  /** The histogram that `b` (from buckets()) describes; throws on anything else. */
  static fromBuckets(b: HistogramBuckets): Histogram {
    if (b.subBucketBits !== SUB_BITS) throw new Error(`histogram with ${b.subBucketBits} sub-bucket bits; this one has ${SUB_BITS}`)
    if (typeof b.counts !== 'string') throw new Error('histogram counts must be a string of space-separated integers')
    const h = new Histogram()
    let i = 0
    let total = 0
    for (const c of b.counts === '' ? [] : b.counts.split(' ').map(Number)) {
      if (!Number.isSafeInteger(c) || c === 0) throw new Error(`histogram run-length entry ${c} is not a non-zero integer`)
      if (c < 0) {
        i -= c
        continue
      }
      const p = i >>> SUB_BITS
      if (i >= PAGES * SUB) throw new Error(`histogram bucket ${i} is past the last (${PAGES * SUB - 1})`)
      const page = h.pages[p] ?? h.page(p)
      page[i++ & (SUB - 1)] = c
      total += c
    }
    if (total !== b.count) throw new Error(`histogram buckets hold ${total} samples, its count says ${b.count}`)
    h.count = b.count
    h.sum = b.sum
    h.min = b.count ? b.min : Infinity
    h.max = b.max
    return h
  }

  /** The value at quantile q (0 < q ≤ 1): the midpoint of the bucket holding rank ceil(q·count). */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let p = 0; p < this.pages.length; p++) {
      const page = this.pages[p]
      if (page === undefined) continue
      for (let j = 0; j < SUB; j++) {
        seen += page[j]!
        if (seen < rank) continue
        const [lo, hi] = bucketRange(p * SUB + j)
        return Math.min(this.max, Math.max(this.min, Math.round((lo + hi) / 2)))
      }
    }
    return this.max
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  /** Count, mean and quantiles for results; the buckets ride along under HISTOGRAM (not in JSON). */
  summary(): { count: number; meanNs: number; p50Ns: number; p90Ns: number; p99Ns: number; p999Ns: number; maxNs: number } {
    const s = {
      count: this.count,
      meanNs: Math.round(this.mean()),
      p50Ns: this.quantile(0.5),
      p90Ns: this.quantile(0.9),
      p99Ns: this.quantile(0.99),
      p999Ns: this.quantile(0.999),
      maxNs: this.count ? this.max : 0,
    }
    Object.defineProperty(s, HISTOGRAM, { value: this.buckets(), enumerable: false })
    return s
  }
}

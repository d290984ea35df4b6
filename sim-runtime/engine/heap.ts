// A binary min-heap of events ordered by the placement-independent key
// (timeNs, originHost, originSeq). Keys are unique: originSeq is a per-origin-host counter.
// Hand-written rather than a library: this is the innermost loop of the engine, and the comparison
// is inlined on three numeric fields with no closure call per step.

export interface SimEvent {
  /** Virtual time in integer nanoseconds. */
  t: number
  /** Index of the host that created the event (plan order). */
  o: number
  /** Sequence number at the origin host. */
  s: number
}

export class EventHeap<E extends SimEvent> {
  private items: E[] = []

  get size(): number {
    return this.items.length
  }

  peek(): E | undefined {
    return this.items[0]
  }

  push(e: E): void {
    const a = this.items
    let i = a.length
    a.push(e)
    while (i > 0) {
      const p = (i - 1) >> 1
      const q = a[p]!
      if (q.t < e.t || (q.t === e.t && (q.o < e.o || (q.o === e.o && q.s < e.s)))) break
      a[i] = q
      i = p
    }
    a[i] = e
  }

  pop(): E | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (top === undefined || last === undefined || a.length === 0) return top
    const n = a.length
    let i = 0
    while (true) {
      let c = 2 * i + 1
      if (c >= n) break
      const r = c + 1
      if (r < n) {
        const x = a[c]!
        const y = a[r]!
        if (y.t < x.t || (y.t === x.t && (y.o < x.o || (y.o === x.o && y.s < x.s)))) c = r
      }
      const ch = a[c]!
      if (last.t < ch.t || (last.t === ch.t && (last.o < ch.o || (last.o === ch.o && last.s < ch.s)))) break
      a[i] = ch
      i = c
    }
    a[i] = last
    return top
  }
}

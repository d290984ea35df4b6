// The hosts of a group ordered by the time of their next event: an indexed binary min-heap over
// slots 0…n-1 (a heap position per slot), so that a host's key changes in place in O(log n), with
// no allocation and no stale entries. Equal times go to the lower slot, so the order in which hosts
// are visited is deterministic (results do not depend on it: hosts meet only at barriers).

export class HostQueue {
  /** The slot at each heap position. */
  private readonly heap: Int32Array
  /** The heap position of each slot. */
  private readonly pos: Int32Array
  /** Each slot's key: the virtual time (ns) of its next event, Infinity when it has none. */
  private readonly key: Float64Array

  constructor(slots: number) {
    this.heap = new Int32Array(slots)
    this.pos = new Int32Array(slots)
    this.key = new Float64Array(slots).fill(Infinity)
    for (let i = 0; i < slots; i++) this.heap[i] = this.pos[i] = i
  }

  /** The earliest key, Infinity when no slot has one (or there are no slots). */
  minKey(): number {
    return this.heap.length === 0 ? Infinity : this.key[this.heap[0]!]!
  }

  /** The slot with the earliest key (ties: the lowest slot); only meaningful when minKey() is finite. */
  minSlot(): number {
    return this.heap[0]!
  }

  keyOf(slot: number): number {
    return this.key[slot]!
  }

  set(slot: number, t: number): void {
    const old = this.key[slot]!
    this.key[slot] = t
    if (t < old) this.up(this.pos[slot]!)
    else if (t > old) this.down(this.pos[slot]!)
  }

  private before(a: number, b: number): boolean {
    const ka = this.key[a]!
    const kb = this.key[b]!
    return ka < kb || (ka === kb && a < b)
  }

  private place(at: number, slot: number): void {
    this.heap[at] = slot
    this.pos[slot] = at
  }

  private up(at: number): void {
    const h = this.heap
    const s = h[at]!
    while (at > 0) {
      const p = (at - 1) >> 1
      if (!this.before(s, h[p]!)) break
      this.place(at, h[p]!)
      at = p
    }
    this.place(at, s)
  }

  private down(at: number): void {
    const h = this.heap
    const n = h.length
    const s = h[at]!
    while (true) {
      let c = 2 * at + 1
      if (c >= n) break
      if (c + 1 < n && this.before(h[c + 1]!, h[c]!)) c++
      if (!this.before(h[c]!, s)) break
      this.place(at, h[c]!)
      at = c
    }
    this.place(at, s)
  }
}

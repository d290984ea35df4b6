// A FIFO queue over a growable ring buffer: O(1) push and shift without Array.prototype.shift's copy.
export class Deque<T> {
  /** Empty until the first push: most queues (a link's waiting messages) never hold anything. */
  private buf: (T | undefined)[] = []
  private head = 0
  private len = 0

  get length(): number {
    return this.len
  }

  push(x: T): void {
    if (this.len === this.buf.length) {
      const next: (T | undefined)[] = new Array(Math.max(4, this.buf.length * 2))
      for (let i = 0; i < this.len; i++) next[i] = this.buf[(this.head + i) % this.buf.length]
      this.buf = next
      this.head = 0
    }
    this.buf[(this.head + this.len) % this.buf.length] = x
    this.len++
  }

  peek(): T | undefined {
    return this.len ? this.buf[this.head] : undefined
  }

  shift(): T | undefined {
    if (this.len === 0) return undefined
    const x = this.buf[this.head]
    this.buf[this.head] = undefined
    this.head = (this.head + 1) % this.buf.length
    this.len--
    return x
  }
}

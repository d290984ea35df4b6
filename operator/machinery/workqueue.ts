// A rate-limited, de-duplicating work queue (client-go's semantics): a key is queued at most once;
// a key being processed that is added again is re-queued when it is done, never processed twice at
// once; failures are retried with per-item exponential backoff. Knows nothing of SimClusters.
import assert from 'node:assert/strict'
import { Counter, Gauge, type Registry } from 'prom-client'

export interface WorkQueueMetrics {
  depth: Gauge
  adds: Counter
  retries: Counter
}

export function workQueueMetrics(registry: Registry): WorkQueueMetrics {
  return {
    depth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of the work queue.', labelNames: ['name'], registers: [registry] }),
    adds: new Counter({ name: 'workqueue_adds_total', help: 'Adds handled by the work queue.', labelNames: ['name'], registers: [registry] }),
    retries: new Counter({ name: 'workqueue_retries_total', help: 'Retries handled by the work queue.', labelNames: ['name'], registers: [registry] }),
  }
}

export class WorkQueue {
  readonly name: string
  private readonly queue: string[] = []
  private readonly dirty = new Set<string>()
  private readonly processing = new Set<string>()
  private readonly failures = new Map<string, number>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private readonly waiters: ((k: string | undefined) => void)[] = []
  private shuttingDown = false
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly metrics: WorkQueueMetrics | undefined

  constructor(name: string, opts: { baseDelayMs?: number; maxDelayMs?: number; metrics?: WorkQueueMetrics } = {}) {
    this.name = name
    this.baseDelayMs = opts.baseDelayMs ?? 5
    this.maxDelayMs = opts.maxDelayMs ?? 300_000
    this.metrics = opts.metrics
  }

  get length(): number {
    return this.queue.length
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return
    this.metrics?.adds.inc({ name: this.name })
    this.dirty.add(key)
    if (this.processing.has(key)) return
    const w = this.waiters.shift()
    if (w) w(key)
    else this.queue.push(key)
    this.metrics?.depth.set({ name: this.name }, this.queue.length)
  }

  /** Add after a delay; a later call with a shorter delay wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return
    if (delayMs <= 0) return this.add(key)
    const existing = this.timers.get(key)
    if (existing) clearTimeout(existing)
    const t = setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, delayMs)
    t.unref()
    this.timers.set(key, t)
  }

  /** Re-queue after this item's next backoff delay. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0
    this.failures.set(key, n + 1)
    const delay = Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs)
    this.metrics?.retries.inc({ name: this.name })
    this.addAfter(key, delay)
    return delay
  }

  forget(key: string): void {
    this.failures.delete(key)
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0
  }

  /** Next key to process, or undefined once shut down. */
  get(): Promise<string | undefined> {
    const k = this.queue.shift()
    if (k !== undefined) return Promise.resolve(this.take(k))
    if (this.shuttingDown) return Promise.resolve(undefined)
    return new Promise((resolve) => this.waiters.push((key) => resolve(key === undefined ? undefined : this.take(key))))
  }

  private take(key: string): string {
    // A key is never handed out twice at once: that is what lets a reconciler own its key.
    assert(!this.processing.has(key), `workqueue ${this.name}: ${key} handed out while it is being processed`)
    this.dirty.delete(key)
    this.processing.add(key)
    this.metrics?.depth.set({ name: this.name }, this.queue.length)
    return key
  }

  done(key: string): void {
    assert(this.processing.has(key), `workqueue ${this.name}: done(${key}) for a key not being processed`)
    this.processing.delete(key)
    if (this.dirty.has(key)) {
      const w = this.waiters.shift()
      if (w) w(key)
      else this.queue.push(key)
    }
  }

  shutDown(): void {
    this.shuttingDown = true
    for (const t of this.timers.values()) clearTimeout(t)
    for (const w of this.waiters.splice(0)) w(undefined)
  }
}

// An informer: a local cache of one resource type kept current by list + watch.
// - 410 Gone (resourceVersion too old) → relist;
// - a dropped connection or an error → reconnect with exponential backoff (relisting if needed);
// - a silent stall (no event, no bookmark, no close for stallMs) → the stream is torn down and rewatched;
// - every resyncMs, every cached object is handed to onResync (a periodic safety net).
// Knows nothing of SimClusters.
import type { Logger } from 'pino'
import { isGone, objectKey, type KubeClient, type KubeList, type KubeObject, type Resource, type WatchHandle } from '../kube/rest.ts'

export interface InformerHandlers<T> {
  onAdd?(o: T): void
  onUpdate?(o: T, old: T): void
  onDelete?(o: T): void
  onResync?(o: T): void
}

export interface InformerOptions {
  namespace?: string
  labelSelector?: string
  fieldSelector?: string
  resyncMs?: number
  /** Server-side watch timeout; the server closes the stream after about this long. */
  watchTimeoutSec?: number
  /** Tear down a watch that stays silent this long (bookmarks count as life). */
  stallMs?: number
  maxBackoffMs?: number
}

export class Informer<T extends KubeObject> {
  readonly resource: Resource
  private readonly client: KubeClient
  private readonly log: Logger
  private readonly opts: Required<Omit<InformerOptions, 'namespace' | 'labelSelector' | 'fieldSelector'>> & InformerOptions
  private readonly cache = new Map<string, T>()
  private readonly handlers: InformerHandlers<T>[] = []
  private resourceVersion = ''
  private watch: WatchHandle | undefined
  private stopped = false
  private synced = false
  private syncWaiters: (() => void)[] = []
  private resyncTimer: NodeJS.Timeout | undefined
  /** Counters for tests and metrics. */
  readonly stats = { lists: 0, watches: 0, relistsAfterGone: 0, reconnects: 0, stalls: 0 }

  constructor(client: KubeClient, resource: Resource, log: Logger, opts: InformerOptions = {}) {
    this.client = client
    this.resource = resource
    this.log = log.child({ informer: resource.plural })
    this.opts = { resyncMs: 300_000, watchTimeoutSec: 300, stallMs: 330_000, maxBackoffMs: 30_000, ...opts }
  }

  addHandlers(h: InformerHandlers<T>): void {
    this.handlers.push(h)
  }

  get(key: string): T | undefined {
    return this.cache.get(key)
  }

  list(filter?: (o: T) => boolean): T[] {
    const all = [...this.cache.values()]
    return filter ? all.filter(filter) : all
  }

  /**
   * Write-through: put an object the API server just returned (e.g. after a status patch) into the
   * cache, so the next reconcile does not start from the copy that write replaced. The watch event
   * for the same write arrives later and changes nothing.
   */
  upsert(o: T): void {
    o.apiVersion ??= this.resource.apiVersion
    o.kind ??= this.resource.kind
    this.cache.set(objectKey(o), o)
  }

  hasSynced(): boolean {
    return this.synced
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r))
  }

  start(): void {
    void this.loop()
    this.resyncTimer = setInterval(() => {
      for (const o of this.cache.values()) for (const h of this.handlers) h.onResync?.(o)
    }, this.opts.resyncMs)
    this.resyncTimer.unref()
  }

  stop(): void {
    this.stopped = true
    if (this.resyncTimer) clearInterval(this.resyncTimer)
    this.watch?.abort()
  }

  private query(): Record<string, string> {
    const q: Record<string, string> = {}
    if (this.opts.labelSelector) q.labelSelector = this.opts.labelSelector
    if (this.opts.fieldSelector) q.fieldSelector = this.opts.fieldSelector
    return q
  }

  /** List everything and replace the cache, emitting add/update/delete for the differences. */
  private async relist(): Promise<void> {
    const qs = new URLSearchParams({ ...this.query(), limit: '500' })
    const fresh = new Map<string, T>()
    let rv: string
    let cont = ''
    do {
      if (cont) qs.set('continue', cont)
      const page = await this.client.get<KubeList<T>>(`${this.resource.collection(this.opts.namespace)}?${qs}`)
      for (const item of page.items) {
        item.apiVersion ??= this.resource.apiVersion
        item.kind ??= this.resource.kind
        fresh.set(objectKey(item), item)
      }
      rv = page.metadata.resourceVersion
      cont = page.metadata.continue ?? ''
    } while (cont)
    this.stats.lists++
    const old = new Map(this.cache)
    this.cache.clear()
    for (const [k, o] of fresh) this.cache.set(k, o)
    for (const [k, o] of fresh) {
      const prev = old.get(k)
      if (!prev) this.emit('add', o)
      else if (prev.metadata.resourceVersion !== o.metadata.resourceVersion) this.emit('update', o, prev)
    }
    for (const [k, o] of old) if (!fresh.has(k)) this.emit('delete', o)
    this.resourceVersion = rv
    if (!this.synced) {
      this.synced = true
      for (const w of this.syncWaiters.splice(0)) w()
    }
  }

  private emit(kind: 'add' | 'update' | 'delete', o: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.onAdd?.(o)
        else if (kind === 'update') h.onUpdate?.(o, old!)
        else h.onDelete?.(o)
      } catch (err) {
        this.log.error({ err }, 'informer handler failed')
      }
    }
  }

  private async loop(): Promise<void> {
    let backoffMs = 200
    let needList = true
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist()
          needList = false
        }
        this.stats.watches++
        const q = { ...this.query(), resourceVersion: this.resourceVersion, timeoutSeconds: String(this.opts.watchTimeoutSec) }
        this.watch = this.client.watch<T>(this.resource.collection(this.opts.namespace), q, (ev) => this.onEvent(ev.type, ev.object), this.opts.stallMs)
        await this.watch.done
        backoffMs = 200 // a clean close: rewatch from where we are
      } catch (err) {
        if (this.stopped) return
        if (isGone(err)) {
          this.stats.relistsAfterGone++
          this.log.info('watch expired (410 Gone): relisting')
          needList = true
          continue
        }
        const stalled = /no data for/.test((err as Error).message)
        if (stalled) this.stats.stalls++
        this.stats.reconnects++
        // After a stall or an outage we cannot know what we missed cheaply: relist.
        needList = true
        this.log.warn({ err: (err as Error).message, retryMs: backoffMs }, 'watch failed: reconnecting')
        await new Promise((r) => setTimeout(r, backoffMs * (0.8 + Math.random() * 0.4)))
        backoffMs = Math.min(backoffMs * 2, this.opts.maxBackoffMs)
      }
    }
  }

  private onEvent(type: string, o: T): void {
    if (type === 'BOOKMARK') {
      if (o.metadata.resourceVersion) this.resourceVersion = o.metadata.resourceVersion
      return
    }
    o.apiVersion ??= this.resource.apiVersion
    o.kind ??= this.resource.kind
    const key = objectKey(o)
    if (o.metadata.resourceVersion) this.resourceVersion = o.metadata.resourceVersion
    const prev = this.cache.get(key)
    if (type === 'DELETED') {
      this.cache.delete(key)
      this.emit('delete', o)
    } else {
      this.cache.set(key, o)
      if (prev) this.emit('update', o, prev)
      else this.emit('add', o)
    }
  }
}

// The pods bound to this node: an informer on spec.nodeName=<node> feeds one PodWorker per pod
// (keyed by namespace/name, replaced when the uid changes).
import { Informer } from '../../operator/machinery/informer.ts'
import { objectKey, R } from '../../operator/kube/rest.ts'
import { PodWorker, type NodeContext } from './pod-worker.ts'
import type { Pod } from './types.ts'

export class PodManager {
  private readonly ctx: NodeContext
  private readonly informer: Informer<Pod>
  private readonly workers = new Map<string, PodWorker>()
  /** Workers taken out of the map that may still be stopping processes. */
  private readonly retired = new Set<PodWorker>()
  private stopping = false

  constructor(ctx: NodeContext) {
    this.ctx = ctx
    this.informer = new Informer<Pod>(ctx.client, R.pods, ctx.log, {
      fieldSelector: `spec.nodeName=${ctx.nodeName}`,
      resyncMs: 30_000,
      watchTimeoutSec: 300,
      stallMs: 330_000,
      maxBackoffMs: 5_000,
    })
    this.informer.addHandlers({
      onAdd: (p) => this.sync(p),
      onUpdate: (p) => this.sync(p),
      onResync: (p) => this.sync(p),
      onDelete: (p) => this.gone(p),
    })
  }

  start(): Promise<void> {
    this.informer.start()
    return this.informer.waitForSync()
  }

  private sync(pod: Pod): void {
    if (this.stopping) return
    const key = objectKey(pod)
    let w = this.workers.get(key)
    if (w && w.uid !== pod.metadata.uid) {
      // Same name, new pod: the old one was deleted while we were not looking.
      this.retire(w)
      w = undefined
    }
    if (!w) {
      w = new PodWorker(this.ctx, pod)
      this.workers.set(key, w)
    }
    w.update(pod)
  }

  private gone(pod: Pod): void {
    const key = objectKey(pod)
    const w = this.workers.get(key)
    if (!w || w.uid !== pod.metadata.uid) return
    this.workers.delete(key)
    this.retire(w)
  }

  private retire(w: PodWorker): void {
    this.retired.add(w)
    void w.vanished().finally(() => this.retired.delete(w))
  }

  /** Stop watching and stop every pod's processes (SIGKILL after graceMs). */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true
    this.informer.stop()
    await Promise.all([...this.workers.values(), ...this.retired].map((w) => w.shutdown(graceMs)))
  }

  /** Synchronous: SIGKILL every process group (for process exit). */
  killAll(): void {
    for (const w of [...this.workers.values(), ...this.retired]) w.killNow()
  }
}

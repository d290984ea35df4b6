// A controller: workers take keys from a work queue and call a reconcile function; errors and
// requested requeues go back with backoff. Metrics carry controller-runtime's names.
// Knows nothing of SimClusters.
import type { Logger } from 'pino'
import { Counter, Histogram, type Registry } from 'prom-client'
import { WorkQueue, type WorkQueueMetrics } from './workqueue.ts'

export interface Result {
  /** Reconcile again after this long even if nothing changes (e.g. to poll progress). */
  requeueAfterMs?: number
}

export type Reconcile = (key: string) => Promise<Result | void>

export interface ControllerMetrics {
  total: Counter
  errors: Counter
  time: Histogram
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  return {
    total: new Counter({ name: 'controller_runtime_reconcile_total', help: 'Reconciliations by controller and result.', labelNames: ['controller', 'result'], registers: [registry] }),
    errors: new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Reconciliation errors by controller.', labelNames: ['controller'], registers: [registry] }),
    time: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Time per reconciliation by controller.',
      labelNames: ['controller'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  }
}

export class Controller {
  readonly name: string
  readonly queue: WorkQueue
  private readonly reconcile: Reconcile
  private readonly log: Logger
  private readonly workers: number
  private readonly metrics: ControllerMetrics
  private running: Promise<void>[] = []
  reconciles = 0

  constructor(name: string, reconcile: Reconcile, log: Logger, metrics: ControllerMetrics, qm: WorkQueueMetrics, workers = 2) {
    this.name = name
    this.reconcile = reconcile
    this.log = log.child({ controller: name })
    this.metrics = metrics
    this.workers = workers
    this.queue = new WorkQueue(name, { metrics: qm })
  }

  start(): void {
    for (let i = 0; i < this.workers; i++) this.running.push(this.work())
  }

  async stop(): Promise<void> {
    this.queue.shutDown()
    await Promise.all(this.running)
  }

  private async work(): Promise<void> {
    while (true) {
      const key = await this.queue.get()
      if (key === undefined) return
      const end = this.metrics.time.startTimer({ controller: this.name })
      this.reconciles++
      try {
        const r = await this.reconcile(key)
        this.queue.forget(key)
        if (r?.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, r.requeueAfterMs)
          this.metrics.total.inc({ controller: this.name, result: 'requeue_after' })
        } else {
          this.metrics.total.inc({ controller: this.name, result: 'success' })
        }
      } catch (err) {
        const delay = this.queue.addRateLimited(key)
        this.metrics.total.inc({ controller: this.name, result: 'error' })
        this.metrics.errors.inc({ controller: this.name })
        this.log.warn({ key, err: (err as Error).message, retryMs: delay }, 'reconcile failed')
      } finally {
        end()
        this.queue.done(key)
      }
    }
  }
}

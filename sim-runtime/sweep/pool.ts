// The worker threads that run a sweep's trials (trial-worker.ts): one per trial running at once,
// created when first needed and reused for the next trial. Each has the heap limit of this
// process, the heap that validation budgets a run's modelled state for (api/state-budget.ts
// localHeapBudget). A worker that dies (out of heap) fails its trial and is replaced by the next run.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { SimCluster } from '../api/schema.ts'
import type { SimResults } from '../sync/results.ts'
import type { FromWorker, ToWorker } from './trial-worker.ts'

const here = fileURLToPath(import.meta.url)
/** trial-worker.ts from source, trial-worker.js from dist. */
const WORKER = path.join(path.dirname(here), `trial-worker${path.extname(here)}`)

export interface TrialRequest {
  cluster: SimCluster
  baseDir: string
  signal: AbortSignal
  onProgress: (fraction: number) => void
  workDir?: string
}

export class TrialPool {
  private readonly idle: Worker[] = []
  private readonly workers = new Set<Worker>()
  private readonly logLevel: string
  private readonly heapMiB = Math.floor(v8.getHeapStatistics().heap_size_limit / 2 ** 20)
  private nextId = 1

  constructor(logLevel: string) {
    this.logLevel = logLevel
  }

  run(req: TrialRequest): Promise<SimResults> {
    const worker = this.idle.pop() ?? this.spawn()
    const id = this.nextId++
    return new Promise<SimResults>((resolve, reject) => {
      const onAbort = () => worker.postMessage({ abort: id } satisfies ToWorker)
      const done = (alive: boolean) => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit)
        req.signal.removeEventListener('abort', onAbort)
        if (alive) this.idle.push(worker)
        else this.workers.delete(worker)
      }
      const onMessage = (m: FromWorker) => {
        if (m.id !== id) return
        if ('progress' in m) return req.onProgress(m.progress)
        done(true)
        if ('results' in m) resolve(m.results as SimResults)
        else reject(new Error(m.error))
      }
      // ERR_WORKER_OUT_OF_MEMORY: the trial fails, not the sweep.
      const onError = (err: Error) => {
        done(false)
        reject(err)
      }
      const onExit = (code: number) => {
        done(false)
        reject(new Error(`the trial's worker thread exited with code ${code} before its results`))
      }
      worker.on('message', onMessage).on('error', onError).on('exit', onExit)
      req.signal.addEventListener('abort', onAbort, { once: true })
      if (req.signal.aborted) onAbort()
      worker.postMessage({ run: id, data: { manifest: req.cluster, baseDir: req.baseDir, workDir: req.workDir, logLevel: this.logLevel } } satisfies ToWorker)
    })
  }

  private spawn(): Worker {
    const w = new Worker(WORKER, { resourceLimits: { maxOldGenerationSizeMb: this.heapMiB } })
    this.workers.add(w)
    return w
  }

  /** Stop every worker (each has finished or been aborted by then). */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.terminate()))
    this.workers.clear()
    this.idle.length = 0
  }
}

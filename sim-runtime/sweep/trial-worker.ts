// Trials of `livesim sweep` in a worker thread: runLocal, as `livesim run` calls it, on each trial's
// SimCluster, one trial at a time. A cluster without live components runs embedded in the runLocal
// caller's thread; a thread per running trial lets trials use a core each and keeps the sweep's
// main thread (its progress, Ctrl-C) free. A worker serves trial after trial, so its modules load once.
// Messages in: { run: id, data } and { abort: id }; out: { id, progress }, then { id, results } or { id, error }.
import { parentPort } from 'node:worker_threads'
import { pino } from 'pino'
import type { SimCluster } from '../api/schema.ts'
import { validateSimCluster } from '../api/validate.ts'
import { runLocal } from '../run/local.ts'

export interface TrialData {
  manifest: SimCluster
  baseDir: string
  workDir?: string
  logLevel: string
}

export type ToWorker = { run: number; data: TrialData } | { abort: number }
export type FromWorker = { id: number; progress: number } | { id: number; results: unknown } | { id: number; error: string }

async function runTrial(port: NonNullable<typeof parentPort>, id: number, data: TrialData, signal: AbortSignal): Promise<void> {
  try {
    const { cluster, plan } = validateSimCluster(data.manifest, { baseDir: data.baseDir })
    const results = await runLocal({
      cluster,
      plan,
      baseDir: data.baseDir,
      logger: pino({ name: 'livesim-sweep', level: data.logLevel }).child({ trial: cluster.metadata.name }),
      signal,
      statusIntervalMs: 500,
      onStatus: (s) => port.postMessage({ id, progress: s.progress } satisfies FromWorker),
      childEnv: data.workDir ? () => ({ LIVESIM_WORK_DIR: data.workDir! }) : undefined,
    })
    port.postMessage({ id, results } satisfies FromWorker)
  } catch (err) {
    port.postMessage({ id, error: (err as Error).message } satisfies FromWorker)
  }
}

function serve(port: NonNullable<typeof parentPort>): void {
  const running = new Map<number, AbortController>()
  port.on('message', (m: ToWorker) => {
    if ('abort' in m) {
      running.get(m.abort)?.abort()
      return
    }
    const abort = new AbortController()
    running.set(m.run, abort)
    void runTrial(port, m.run, m.data, abort.signal).finally(() => running.delete(m.run))
  })
}

if (parentPort) serve(parentPort)

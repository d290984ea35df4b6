// One run of examples/scale-10k.yaml as `livesim run` does it (validated against the heap budget,
// then runLocal with its defaults: embedded), in a process of its own so that start-up and peak RSS
// are this run's. Prints one JSON line on stdout: the phases' wall seconds, events, results bytes.
//
//   node bench/scale-child.ts DIVISOR END_TIME WINDOWS      e.g.  10 1s topology
//
// DIVISOR divides every group's replicas (10: 1,000 hosts); WINDOWS is topology or global.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import { localHeapBudget } from '../sim-runtime/api/state-budget.ts'
import { parseManifest, validateSimCluster } from '../sim-runtime/api/validate.ts'
import { runLocal } from '../sim-runtime/run/local.ts'
import { resultsJson } from '../sim-runtime/sync/results.ts'
import type { Windows } from '../sim-runtime/sync/windows.ts'

export interface ScaleRun {
  hosts: number
  windows: Windows
  events: number
  /** Validating the manifest, then runLocal until its first window. */
  startupSeconds: number
  /** The windows (results.wall.seconds). */
  runSeconds: number
  /** CPU time of this process from the first window until runLocal returned (windows and assembly). */
  runCpuSeconds: number
  /** From the last window until runLocal returned the results. */
  assemblySeconds: number
  /** Writing the results as `livesim run --out` does (resultsJson). */
  writeSeconds: number
  resultsBytes: number
  barriers: number
  slowdown: number
  digest: string
  causalityViolations: number
  maxRssBytes: number
}

async function main(divisor: number, endTime: string, windows: Windows): Promise<ScaleRun> {
  const t0 = performance.now()
  const file = path.join(import.meta.dirname, '..', 'examples', 'scale-10k.yaml')
  const doc = parseManifest(readFileSync(file, 'utf8'), file) as { spec: { endTime: string; hosts: { replicas?: number }[] } }
  doc.spec.endTime = endTime
  for (const h of doc.spec.hosts) h.replicas = Math.max(1, Math.round((h.replicas ?? 1) / divisor))
  const { cluster, plan } = validateSimCluster(doc, { source: file, baseDir: path.dirname(file), heap: localHeapBudget(1) })
  // The leader logs its embedded start: the first window follows at once.
  let startedMs = 0
  let startedCpu = process.cpuUsage()
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        if (!line.includes('embedded start')) return
        startedMs = performance.now()
        startedCpu = process.cpuUsage()
      },
    },
  )
  const results = await runLocal({ cluster, plan, baseDir: path.dirname(file), logger, windows })
  const returnedMs = performance.now()
  const cpu = process.cpuUsage(startedCpu)
  assert(startedMs > 0, 'the leader did not log its embedded start')
  const json = resultsJson(results) + '\n'
  const writtenMs = performance.now()
  let events = 0
  for (const g of Object.values(results.groups)) events += g.events
  return {
    hosts: plan.hosts.length,
    windows,
    events,
    startupSeconds: (startedMs - t0) / 1000,
    runSeconds: results.wall.seconds,
    runCpuSeconds: (cpu.user + cpu.system) / 1e6,
    assemblySeconds: (returnedMs - startedMs) / 1000 - results.wall.seconds,
    writeSeconds: (writtenMs - returnedMs) / 1000,
    resultsBytes: Buffer.byteLength(json),
    barriers: results.sync.barriers,
    slowdown: results.wall.slowdown,
    digest: results.digest,
    causalityViolations: results.sync.causalityViolations,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  }
}

const [divisor, endTime, windows] = process.argv.slice(2)
if (!divisor || !endTime || (windows !== 'topology' && windows !== 'global')) {
  process.stderr.write('usage: node bench/scale-child.ts DIVISOR END_TIME topology|global\n')
  process.exit(2)
}
process.stdout.write(JSON.stringify(await main(Number(divisor), endTime, windows)) + '\n')

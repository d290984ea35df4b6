// phold: PHOLD events/s per core (bench/README.md, "PHOLD": the parameters) at 1,000 and 10,000
// LPs, in 1 and 4 runtime processes over HTTP/2 and in the in-process engine, interleaved.
// `value`: 1,000 LPs in 1 runtime process; `baseline`: 1,000 LPs in process. Not judged; ROSS's
// published per-core figure is printed beside it.
import os from 'node:os'
import { runLocal } from '../sim-runtime/run/local.ts'
import { EmbeddedRuntime } from '../sim-runtime/sync/embedded.ts'
import { WindowClock } from '../sim-runtime/sync/windows.ts'
import { best, loadExample, machine, note, ratio, sig, type BenchContext, type Benchmark, type Loaded } from './common.ts'

/**
 * ROSS (Time Warp, optimistic) on LLNL's Sequoia: 504 × 10⁹ PHOLD events/s on 1,966,080 Blue Gene/Q
 * cores, 251 M LPs (Barnes, Carothers, Jefferson, LaPre, "Warp Speed: Executing Time Warp on 1,966,080
 * Cores", PADS 2013, abstract; doi:10.1145/2486092.2486134).
 */
export const ROSS_SEQUOIA_PER_CORE = 504e9 / 1_966_080

interface Measure {
  /** PHOLD events (arrivals and self-events; not the timers before remote sends). */
  events: number
  seconds: number
  cores: number
  barriers: number
  digest?: string
}

/** examples/phold.yaml with `lps` LPs and the end time that gives about 10⁶ events. */
function model(lps: number): Loaded {
  return loadExample('phold.yaml', (doc) => {
    const spec = doc.spec as { endTime: string; hosts: { replicas: number }[] }
    spec.hosts[0]!.replicas = lps
    spec.endTime = lps >= 10_000 ? '100ms' : '1s'
  })
}

/** The in-process engine: every LP in this process, the windows timed alone. */
function inProcess(m: Loaded): Measure {
  const clock = new WindowClock(m.plan)
  clock.configure([m.plan.hosts.map((h) => h.index)], 'topology', false)
  const runtime = new EmbeddedRuntime(m.plan, clock)
  runtime.start()
  const t0 = performance.now()
  runtime.runUntilWall(Infinity)
  const seconds = (performance.now() - t0) / 1000
  let events = 0
  for (const h of Object.values(runtime.results())) events += (h.components.phold as { events: number }).events
  return { events, seconds, cores: 1, barriers: clock.barriers }
}

async function processes(ctx: BenchContext, m: Loaded, partition: number): Promise<Measure> {
  const r = await runLocal({ cluster: m.cluster, plan: m.plan, baseDir: m.baseDir, logger: ctx.logger, partition })
  const events = (r.groups.lp!.components.phold as { events: number }).events
  return { events, seconds: r.wall.seconds, cores: Math.min(partition, os.availableParallelism()), barriers: r.sync.barriers, digest: r.digest }
}

const perCore = (x: Measure) => x.events / x.seconds / x.cores

export const phold: Benchmark = {
  name: 'phold',
  description: 'PHOLD events/s per core at 1,000 and 10,000 LPs: in process, 1 and 4 runtime processes',
  async run(ctx) {
    const sides = ['inProcess', 'runtimes1', 'runtimes4'] as const
    const runs: Record<string, Measure[]> = {}
    for (let i = 0; i < ctx.reps; i++) {
      for (const lps of [1_000, 10_000]) {
        const m = model(lps)
        for (const side of sides) {
          const x = side === 'inProcess' ? inProcess(m) : await processes(ctx, m, side === 'runtimes1' ? 1 : 4)
          ;(runs[`${side}@${lps}`] ??= []).push(x)
          note(`phold: ${lps} LPs ${side}: ${x.events} events in ${sig(x.seconds)} s, ${sig(perCore(x))} events/s per core, ${x.barriers} barriers`)
        }
      }
    }
    const bestOf = (key: string) => sig(best(runs[key]!.map(perCore), 'max'))
    const figures = Object.fromEntries(Object.keys(runs).map((k) => [k, bestOf(k)]))
    const digests = Object.entries(runs).flatMap(([k, xs]) => xs.filter((x) => x.digest).map((x) => `${k.split('@')[1]} ${x.digest}`))
    const sameDigest = [1_000, 10_000].every((lps) => new Set(digests.filter((d) => d.startsWith(`${lps} `))).size <= 1)
    const value = figures['runtimes1@1000']!
    const baseline = figures['inProcess@1000']!
    return {
      name: 'phold',
      value,
      unit: 'PHOLD events/s per core',
      baseline,
      ratio: ratio(value, baseline),
      perCore: figures,
      rossSequoiaPerCore: sig(ROSS_SEQUOIA_PER_CORE),
      sameDigest,
      detail: {
        events: Object.fromEntries(Object.entries(runs).map(([k, xs]) => [k, xs[0]!.events])),
        barriers: Object.fromEntries(Object.entries(runs).map(([k, xs]) => [k, xs[0]!.barriers])),
        seconds: Object.fromEntries(Object.entries(runs).map(([k, xs]) => [k, xs.map((x) => sig(x.seconds))])),
        perCore: 'events/s over min(runtime processes, CPUs); in process: 1',
      },
      ...machine(),
    }
  },
}

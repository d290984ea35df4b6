// Benchmarks on the shipped examples, all through runLocal with its defaults, exactly as `livesim
// run` (these examples have no live component: their hosts run embedded, in the leader's process).
//
// skipahead-sparse       barriers of examples/sparse.yaml with adaptive windows (skip-ahead) vs
//                        fixed stepping; both runs must give the same results digest.
// slack-vs-conservative  wall seconds of examples/slack.yaml vs the same manifest with spec.sync
//                        deleted (Conservative: the quickstart cluster), plus what Slack costs in
//                        fidelity (late messages).
// quickstart-slowdown    wall seconds per virtual second of examples/quickstart.yaml through
//                        runLocal's default (embedded: the hosts in the leader's process), vs the
//                        in-process driver (simulateInProcess: the same windows and engine, no
//                        leader); --partition 1 (one runtime process over HTTP/2) for comparison.
import { runLocal } from '../sim-runtime/run/local.ts'
import type { SimResults } from '../sim-runtime/sync/results.ts'
import { simulateInProcess } from '../sim-runtime/sync/inprocess.ts'
import type { Stepping } from '../sim-runtime/sync/windows.ts'
import { best, loadExample, machine, note, ratio, sig, stats, withGoal, type BenchContext, type Benchmark, type Loaded } from './common.ts'

async function local(ctx: BenchContext, m: Loaded, stepping?: Stepping): Promise<SimResults> {
  return runLocal({ cluster: m.cluster, plan: m.plan, baseDir: m.baseDir, logger: ctx.logger, stepping })
}

function slowdown(r: SimResults): number {
  return r.wall.seconds / (r.virtualTimeNs / 1e9)
}

export const skipaheadSparse: Benchmark = {
  name: 'skipahead-sparse',
  description: 'barriers of examples/sparse.yaml, adaptive windows vs fixed stepping',
  async run(ctx) {
    const m = loadExample('sparse.yaml')
    // Barrier counts are deterministic: one run of each.
    const adaptive = await local(ctx, m, 'adaptive')
    const fixed = await local(ctx, m, 'fixed')
    const sameDigest = adaptive.digest === fixed.digest
    if (!sameDigest) note(`skipahead-sparse: DIGESTS DIFFER: adaptive ${adaptive.digest}, fixed ${fixed.digest}`)
    note(`skipahead-sparse: adaptive ${adaptive.sync.barriers} barriers in ${adaptive.wall.seconds}s, fixed ${fixed.sync.barriers} in ${fixed.wall.seconds}s`)
    // Skipping ahead must not change the results: the goal needs the same digest as well.
    const r = withGoal(
      {
        name: 'skipahead-sparse',
        value: adaptive.sync.barriers,
        unit: 'barriers',
        baseline: fixed.sync.barriers,
        ratio: ratio(adaptive.sync.barriers, fixed.sync.barriers),
        sameDigest,
        detail: {
          digest: adaptive.digest,
          adaptiveWallSeconds: adaptive.wall.seconds,
          fixedWallSeconds: fixed.wall.seconds,
          lookaheadNs: adaptive.sync.lookaheadNs,
          virtualSeconds: adaptive.virtualTimeNs / 1e9,
        },
        ...machine(),
      },
      '<=',
      0.1,
    )
    r.goal = `${r.goal} and the same digest`
    r.met = r.met === true && sameDigest
    return r
  },
}

export const slackVsConservative: Benchmark = {
  name: 'slack-vs-conservative',
  description: 'wall seconds of examples/slack.yaml (Slack) vs the same cluster in Conservative mode',
  async run(ctx) {
    const slack = loadExample('slack.yaml')
    const conservative = loadExample('slack.yaml', (doc) => {
      delete (doc.spec as Record<string, unknown>).sync
    })
    const s: SimResults[] = []
    const c: SimResults[] = []
    for (let i = 0; i < ctx.reps; i++) {
      s.push(await local(ctx, slack))
      c.push(await local(ctx, conservative))
      note(`slack-vs-conservative: slack ${s[i]!.wall.seconds}s (${s[i]!.sync.barriers} barriers), conservative ${c[i]!.wall.seconds}s (${c[i]!.sync.barriers} barriers)`)
    }
    const value = best(s.map((r) => r.wall.seconds), 'min')
    const baseline = best(c.map((r) => r.wall.seconds), 'min')
    const s0 = s[0]!
    const c0 = c[0]!
    const clients = (r: SimResults) => {
      const out: { completed?: number; latency?: { p99Ns?: number } }[] = []
      for (const h of Object.values(r.hosts)) {
        for (const comp of Object.values(h.components) as { kind?: string; completed?: number; latency?: { p99Ns?: number } }[]) if (comp.kind === 'Client') out.push(comp)
      }
      return out
    }
    const completed = (r: SimResults) => clients(r).reduce((n, c) => n + (c.completed ?? 0), 0)
    // Late messages are delivered at the receiver's now, so Slack inflates measured latencies.
    const p99 = (r: SimResults) => Math.max(...clients(r).map((c) => c.latency?.p99Ns ?? 0))
    return {
      name: 'slack-vs-conservative',
      value: sig(value),
      unit: 's',
      baseline: sig(baseline),
      ratio: ratio(value, baseline),
      slackNs: slack.plan.slackNs,
      barriers: s0.sync.barriers,
      baselineBarriers: c0.sync.barriers,
      violations: s0.sync.causalityViolations,
      latenessTotalNs: s0.sync.latenessTotalNs,
      latenessMaxNs: s0.sync.latenessMaxNs,
      latenessMeanNs: s0.sync.causalityViolations ? Math.round(s0.sync.latenessTotalNs / s0.sync.causalityViolations) : 0,
      baselineViolations: c0.sync.causalityViolations,
      detail: {
        crossHostMessages: Object.values(s0.links).reduce((n, l) => n + l.messages, 0),
        clientCompleted: { slack: completed(s0), conservative: completed(c0) },
        clientLatencyP99MaxNs: { slack: p99(s0), conservative: p99(c0) },
        ...stats(
          s.map((r) => r.wall.seconds),
          c.map((r) => r.wall.seconds),
          'min',
        ),
      },
      ...machine(),
    }
  },
}

export const quickstartSlowdown: Benchmark = {
  name: 'quickstart-slowdown',
  description: 'wall s per virtual s of examples/quickstart.yaml via runLocal (embedded, the default), vs the in-process driver',
  async run(ctx) {
    const m = loadExample('quickstart.yaml')
    const virtualS = m.plan.endTimeNs / 1e9
    /** A run and the wall seconds of the whole call that made it. */
    const timed = async (run: () => Promise<SimResults> | SimResults) => {
      const t0 = performance.now()
      const r = await run()
      return { r, s: (performance.now() - t0) / 1000 }
    }
    const embeddedRun = () => timed(() => local(ctx, m))
    const inprocRun = () => timed(() => simulateInProcess(m.plan))
    // One warm-up of each, so that neither side's samples are all JIT warm-up.
    await embeddedRun()
    await inprocRun()
    const embedded: { r: SimResults; s: number }[] = []
    const inproc: { r: SimResults; s: number }[] = []
    const processes: { r: SimResults; s: number }[] = []
    for (let i = 0; i < ctx.reps; i++) {
      embedded.push(await embeddedRun())
      inproc.push(await inprocRun())
      // For comparison, not judged: the same run in one runtime process over HTTP/2 (--partition 1).
      processes.push(await timed(() => runLocal({ cluster: m.cluster, plan: m.plan, baseDir: m.baseDir, logger: ctx.logger, partition: 1 })))
      note(`quickstart-slowdown: runLocal embedded ${sig(embedded[i]!.s)}s, in-process ${sig(inproc[i]!.s)}s, --partition 1 ${sig(processes[i]!.s)}s (${processes[i]!.r.wall.seconds}s from gang start) for ${virtualS}s virtual`)
    }
    const digests = new Set([...embedded, ...inproc, ...processes].map((x) => x.r.digest))
    const sameDigest = digests.size === 1
    if (!sameDigest) note(`quickstart-slowdown: DIGESTS DIFFER: ${[...digests].join(', ')}`)
    const value = best(embedded.map((x) => x.s / virtualS), 'min')
    const baseline = best(inproc.map((x) => x.s / virtualS), 'min')
    const barriers = embedded[0]!.r.sync.barriers
    const r = withGoal(
      {
        name: 'quickstart-slowdown',
        value: sig(value),
        unit: 'wall s / virtual s',
        baseline: sig(baseline),
        ratio: ratio(value, baseline),
        sameDigest,
        barriers,
        detail: {
          runtimes: embedded[0]!.r.wall.runtimes,
          events: Object.values(embedded[0]!.r.hosts).reduce((n, h) => n + h.events, 0),
          // The embedded run's own wall, from the start of its windows (results.wall).
          resultsWallSlowdown: sig(best(embedded.map((x) => slowdown(x.r)), 'min')),
          // One runtime process over HTTP/2: the whole call (spawn included), and from gang start as before the embedded default.
          partition1Slowdown: sig(best(processes.map((x) => x.s / virtualS), 'min')),
          partition1ResultsWallSlowdown: sig(best(processes.map((x) => slowdown(x.r)), 'min')),
          partition1OverheadUsPerBarrier: sig(((best(processes.map((x) => x.r.wall.seconds), 'min') - best(inproc.map((x) => x.s), 'min')) * 1e6) / barriers, 3),
          ...stats(
            embedded.map((x) => x.s / virtualS),
            inproc.map((x) => x.s / virtualS),
            'min',
          ),
        },
        ...machine(),
      },
      '<=',
      2,
    )
    r.goal = `${r.goal} and the same digest`
    r.met = r.met === true && sameDigest
    return r
  },
}

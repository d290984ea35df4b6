// Benchmarks on the shipped examples, all through runLocal (the leader here, runtimes as child
// processes over HTTP/2, exactly as `livesim run`) with the default partition.
//
// skipahead-sparse       barriers of examples/sparse.yaml with adaptive windows (skip-ahead) vs
//                        fixed stepping; both runs must give the same results digest.
// slack-vs-conservative  wall seconds of examples/slack.yaml vs the same manifest with spec.sync
//                        deleted (Conservative: the quickstart cluster), plus what Slack costs in
//                        fidelity (late messages).
// quickstart-slowdown    wall seconds per virtual second of examples/quickstart.yaml, vs the
//                        in-process driver (simulateInProcess: same windows, no processes, no
//                        HTTP/2), so the ratio is the price of the barriers and processes.
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
  description: 'wall s per virtual s of examples/quickstart.yaml via runLocal, vs the in-process driver',
  async run(ctx) {
    const m = loadExample('quickstart.yaml')
    // Warm the in-process engine once so its samples are not all JIT warm-up.
    simulateInProcess(m.plan)
    const live: SimResults[] = []
    const inproc: SimResults[] = []
    for (let i = 0; i < ctx.reps; i++) {
      live.push(await local(ctx, m))
      inproc.push(simulateInProcess(m.plan))
      note(`quickstart-slowdown: runLocal ${live[i]!.wall.seconds}s, in-process ${inproc[i]!.wall.seconds}s for ${live[i]!.virtualTimeNs / 1e9}s virtual`)
    }
    if (live[0]!.digest !== inproc[0]!.digest) note(`quickstart-slowdown: DIGESTS DIFFER: runLocal ${live[0]!.digest}, in-process ${inproc[0]!.digest}`)
    const value = best(live.map(slowdown), 'min')
    const baseline = best(inproc.map(slowdown), 'min')
    const barriers = live[0]!.sync.barriers
    return {
      name: 'quickstart-slowdown',
      value: sig(value),
      unit: 'wall s / virtual s',
      baseline: sig(baseline),
      ratio: ratio(value, baseline),
      sameDigest: live[0]!.digest === inproc[0]!.digest,
      barriers,
      // What each barrier costs over the in-process run, all of it synchronisation overhead.
      overheadUsPerBarrier: sig(((best(live.map((r) => r.wall.seconds), 'min') - best(inproc.map((r) => r.wall.seconds), 'min')) * 1e6) / barriers, 3),
      detail: {
        runtimes: live[0]!.wall.runtimes,
        events: Object.values(live[0]!.hosts).reduce((n, h) => n + h.events, 0),
        ...stats(live.map(slowdown), inproc.map(slowdown), 'min'),
      },
      ...machine(),
    }
  },
}

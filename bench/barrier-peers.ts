// What passes through the leader per barrier, star against peer batches (issue 23, "No star";
// bench/README.md, "barrier-peers"). Standalone, not part of `npm run bench`:
//
//   node bench/barrier-peers.ts [runs=3] [runtimes=5] [endTime=100ms] [load=1]
//
// `load` multiplies the clients' open-loop rate (2000/s each): the message volume.
//
// Modes (BENCH_SYNC_MODES, default star,peers): star (LIVESIM_SYNC=star), peers (the default: peer
// batches, flat TALLYs below LIVESIM_SYNC_TREE_MIN runtimes), tree (peer batches with the
// aggregation tree forced on: LIVESIM_SYNC_TREE_MIN=1, fan-in BENCH_TREE_FANIN, default 2).
//
// examples/fanout.yaml (200 hosts) over `runtimes` runtime processes (`livesim run --partition N`,
// hosts in plan order), topology-aware windows, `runs` runs per sync mode, the modes interleaved
// (LIVESIM_SYNC=star, then the default, then star again...) so that a change of the machine's load
// hits both. Per run: wall seconds from gang start, barriers, the leader's traffic on the runtimes'
// sync streams (frames and bytes in and out, messages it relayed: all but the bytes of RESULTS are
// deterministic), the CPU of this process (the leader's, over the whole run, start-up included),
// load1 when the run ended, and the digest, which must be one for every run. One JSON line per run on stdout, a summary per mode on stderr.
import os from 'node:os'
import { runLocal } from '../sim-runtime/run/local.ts'
import type { LeaderStatus } from '../sim-runtime/sync/leader.ts'
import { loadExample, makeBenchLogger, median, note } from './common.ts'

const runs = Number(process.argv[2] ?? 3)
const runtimes = Number(process.argv[3] ?? 5)
const endTime = process.argv[4] ?? '100ms'
const load = Number(process.argv[5] ?? 1)
const modes = (process.env.BENCH_SYNC_MODES ?? 'star,peers').split(',')

interface Row {
  mode: string
  run: number
  wallSeconds: number
  barriers: number
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  relayedMessages: number
  leaderCpuSeconds: number
  load1: number
  digest: string
}

async function once(mode: string, run: number): Promise<Row> {
  const m = loadExample('fanout.yaml', (doc) => {
    const spec = doc.spec as { endTime: string; hosts: { name: string; components: { model: { openLoop?: { rate: number } } }[] }[] }
    spec.endTime = endTime
    for (const h of spec.hosts) for (const c of h.components) if (c.model.openLoop) c.model.openLoop.rate *= load
  })
  const names = ['LIVESIM_SYNC', 'LIVESIM_SYNC_TREE_MIN', 'LIVESIM_SYNC_TREE_FANIN'] as const
  const saved = names.map((n) => process.env[n])
  process.env.LIVESIM_SYNC = mode === 'tree' ? 'peers' : mode
  if (mode === 'tree') {
    process.env.LIVESIM_SYNC_TREE_MIN = '1'
    process.env.LIVESIM_SYNC_TREE_FANIN = process.env.BENCH_TREE_FANIN ?? '2'
  }
  let last: LeaderStatus | undefined
  const cpu = process.cpuUsage()
  try {
    const res = await runLocal({ cluster: m.cluster, plan: m.plan, baseDir: m.baseDir, logger: makeBenchLogger(), partition: runtimes, statusIntervalMs: 1000, onStatus: (s) => (last = s) })
    const used = process.cpuUsage(cpu)
    const t = last!.traffic
    return {
      mode,
      run,
      wallSeconds: res.wall.seconds,
      barriers: res.sync.barriers,
      framesIn: t.framesIn,
      framesOut: t.framesOut,
      bytesIn: t.bytesIn,
      bytesOut: t.bytesOut,
      relayedMessages: t.relayedMessages,
      leaderCpuSeconds: Math.round((used.user + used.system) / 1e3) / 1e3,
      load1: Math.round(os.loadavg()[0]! * 100) / 100,
      digest: res.digest,
    }
  } finally {
    names.forEach((n, i) => {
      if (saved[i] === undefined) delete process.env[n]
      else process.env[n] = saved[i]
    })
  }
}

const rows: Row[] = []
for (let r = 0; r < runs; r++) {
  for (const mode of modes) {
    const row = await once(mode, r)
    rows.push(row)
    process.stdout.write(JSON.stringify(row) + '\n')
  }
}
for (const mode of modes) {
  const mine = rows.filter((r) => r.mode === mode)
  const med = (k: keyof Row) => Math.round(median(mine.map((r) => r[k] as number)) * 1000) / 1000
  note(
    `${mode}: fanout.yaml ${endTime} load ×${load}, ${runtimes} runtimes, ${mine.length} runs: wall ${med('wallSeconds')} s (median), barriers ${med('barriers')}, ` +
      `leader frames in ${med('framesIn')} out ${med('framesOut')}, bytes in ${med('bytesIn')} out ${med('bytesOut')}, relayed ${med('relayedMessages')}, leader CPU ${med('leaderCpuSeconds')} s, ` +
      `µs/barrier ${Math.round((med('wallSeconds') / med('barriers')) * 1e6)}, load1 ${mine.map((r) => r.load1).join('/')}`,
  )
}
if (new Set(rows.map((r) => r.digest)).size !== 1) {
  note(`DIGESTS DIFFER: ${rows.map((r) => `${r.mode}:${r.digest}`).join(' ')}`)
  process.exitCode = 1
}

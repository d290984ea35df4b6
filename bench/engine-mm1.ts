// engine-mm1: events per second of the livesim engine on an M/M/1 queue, against SimPy on the
// same model in the same invocation.
//
// Model: one host carrying a Client (open loop, Poisson arrivals at 1000/s, no timeout) whose
// target is a Server on the same host (1 worker, unbounded FIFO queue, exponential service, mean
// 500us): rho = 0.5. One host means an infinite lookahead, so simulateInProcess runs the whole
// endTime in one window: this measures the engine (heap, components, RNG), not synchronisation.
//
// Making the event counts comparable. livesim counts, per host, every event popped from its heap
// (engine/host.ts runUntil: eventsProcessed). A request costs exactly four of them:
//   1. the Client's arrival timer (T_ARRIVAL; it sends the request and schedules the next arrival)
//   2. the request's delivery to the Server: same-host messages are heap events at `now`
//      (HostSim.send → EV_MESSAGE); no link, no timeout timers since no timeout is configured
//   3. the Server's service-done timer (T_SERVICE_DONE; it sends the reply, starts the next job)
//   4. the reply's delivery to the Client (EV_MESSAGE → Client.onMessage)
// so events = client.sent + server.arrivals + server.completed + client.completed, which run()
// checks. bench/mm1_simpy.py counts the same four points in SimPy's idiomatic model (source
// Timeout, customer process start, service Timeout, customer process end), each of which is an
// event SimPy schedules and pops too; SimPy's extra Resource Request/Release events are not counted.
// Both report counted events / wall seconds of the simulation loop only (no start-up or imports).
// SimPy runs a shorter virtual time (it is ~10× slower); events/s is a rate, so that is fair.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { simulateInProcess } from '../sim-runtime/sync/inprocess.ts'
import { BENCH_DIR, loadManifestText, best, machine, note, ratio, stats, ROOT, totalEvents, withGoal, type Benchmark } from './common.ts'

const RATE_PER_SEC = 1000
const SERVICE_MEAN_S = 0.0005
/** ≈ 4 × 1000 × 750 = 3M events per livesim run. */
const LIVESIM_END_S = 750
/** ≈ 600k events per SimPy run (≈ 2.5 s). */
const SIMPY_END_S = 150

export const VENV = path.join(ROOT, '.bench', 'venv')
const PYTHON = path.join(VENV, 'bin', 'python')

function mm1Manifest(endS: number): string {
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: bench-mm1 }
spec:
  endTime: ${endS}s
  seed: 1
  hosts:
    - name: box
      components:
        - name: client
          model: { kind: Client, target: server, openLoop: { rate: ${RATE_PER_SEC} } }
        - name: server
          model: { kind: Server, workers: 1, service: { distribution: Exponential, mean: ${SERVICE_MEAN_S * 1e6}us } }
`
}

/** Create .bench/venv with simpy unless it is already there. Output of venv/pip goes to stderr. */
export function ensureSimpy(): void {
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 2, 2] })
    if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`)
    return r.status === 0
  }
  if (!existsSync(PYTHON)) {
    note(`creating ${path.relative(ROOT, VENV)} (python3 -m venv)`)
    if (!run('python3', ['-m', 'venv', VENV])) throw new Error('python3 -m venv failed; is python3-venv installed?')
  }
  const has = spawnSync(PYTHON, ['-c', 'import simpy'], { stdio: 'ignore' }).status === 0
  if (!has) {
    note('installing simpy into the bench venv (pip install simpy)')
    if (!run(PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'simpy'])) throw new Error('pip install simpy failed')
  }
}

interface SimpyRun {
  events: number
  wallSeconds: number
  arrivals: number
  deliveries: number
  completions: number
  replies: number
  simpy: string
  python: string
}

function runSimpy(): SimpyRun {
  const r = spawnSync(PYTHON, [path.join(BENCH_DIR, 'mm1_simpy.py'), String(RATE_PER_SEC), String(SERVICE_MEAN_S), String(SIMPY_END_S), '1'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) throw new Error(`mm1_simpy.py exited with ${r.status ?? r.signal}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as SimpyRun
}

interface LivesimRun {
  events: number
  wallSeconds: number
  counts: { sent: number; arrivals: number; served: number; completed: number }
  barriers: number
}

function runLivesim(text: string): LivesimRun {
  const { plan } = loadManifestText(text, 'engine-mm1')
  const t0 = performance.now()
  const res = simulateInProcess(plan)
  const wallSeconds = (performance.now() - t0) / 1000
  const comps = res.hosts['box-0']!.components as Record<string, Record<string, number>>
  const counts = { sent: comps.client!.sent!, arrivals: comps.server!.arrivals!, served: comps.server!.completed!, completed: comps.client!.completed! }
  const events = totalEvents(res.hosts)
  const expected = counts.sent + counts.arrivals + counts.served + counts.completed
  // The request events can straddle endTime by at most one request; anything else means the
  // event accounting above (and the comparison with SimPy) no longer holds.
  if (Math.abs(events - expected) > 4) throw new Error(`livesim counted ${events} events, expected ${expected} (4 per request): update the comment in engine-mm1.ts`)
  return { events, wallSeconds, counts, barriers: res.sync.barriers }
}

export const engineMm1: Benchmark = {
  name: 'engine-mm1',
  description: 'livesim engine events/s on M/M/1 (rho 0.5) vs SimPy on the same model',
  async run(ctx) {
    ensureSimpy()
    const text = mm1Manifest(LIVESIM_END_S)
    note(`engine-mm1: warm-up run of livesim`)
    runLivesim(mm1Manifest(LIVESIM_END_S / 10))
    const live: LivesimRun[] = []
    const simpy: SimpyRun[] = []
    // Interleaved, so that load from elsewhere on the machine hits both alike.
    for (let i = 0; i < ctx.reps; i++) {
      const l = runLivesim(text)
      live.push(l)
      note(`engine-mm1: livesim ${l.events} events in ${l.wallSeconds.toFixed(3)}s = ${Math.round(l.events / l.wallSeconds)} events/s`)
      const s = runSimpy()
      simpy.push(s)
      note(`engine-mm1: simpy   ${s.events} events in ${s.wallSeconds.toFixed(3)}s = ${Math.round(s.events / s.wallSeconds)} events/s`)
    }
    const liveRates = live.map((l) => l.events / l.wallSeconds)
    const simpyRates = simpy.map((s) => s.events / s.wallSeconds)
    const value = best(liveRates, 'max')
    const baseline = best(simpyRates, 'max')
    return withGoal(
      {
        name: 'engine-mm1',
        value: Math.round(value),
        unit: 'events/s',
        baseline: Math.round(baseline),
        ratio: ratio(value, baseline),
        detail: {
          model: `M/M/1, Poisson ${RATE_PER_SEC}/s, exponential service mean ${SERVICE_MEAN_S * 1e6}us (rho ${RATE_PER_SEC * SERVICE_MEAN_S}), 4 counted events per request`,
          livesim: { virtualSeconds: LIVESIM_END_S, events: live[0]!.events, counts: live[0]!.counts, barriers: live[0]!.barriers },
          simpy: {
            virtualSeconds: SIMPY_END_S,
            events: simpy[0]!.events,
            version: simpy[0]!.simpy,
            python: simpy[0]!.python,
          },
          ...stats(liveRates, simpyRates, 'max', 7),
          node: process.version,
        },
        ...machine(),
      },
      '>=',
      10,
    )
  },
}

// barrier-http2-N: wall microseconds per barrier of `livesim run` with N runtime processes, against
// a raw TCP ping-pong barrier with the same number of processes, measured in the same invocation.
//
// livesim: HOSTS idle hosts (a Server each that never gets a request), so a window does no
// simulation work and a barrier is pure synchronisation: the leader (in this process, as with
// `livesim run`) writes a GRANT on each runtime's HTTP/2 stream, every runtime runs an empty window
// and answers with a REPORT, the leader computes the next window. runLocal with partition N and
// stepping 'fixed' gives exactly endTime / lookahead barriers; results.wall.seconds runs from gang
// start (every runtime started) to the last window, so process start-up is excluded.
// The same HOSTS hosts are used for every N up to HOSTS (a single host would have no lookahead,
// hence one window); only their split into processes changes. Above HOSTS processes, one host each.
//
// Baseline: the floor for the same communication pattern. A coordinator in this process (a
// net.Server on loopback, Nagle off) and N child processes (bench/tcp-barrier-child.ts); each round
// the coordinator writes a 32-byte frame to every child (a GRANT with no messages is 32 bytes of
// payload too), each child answers with 32 bytes, the round ends when all have answered; as many
// rounds as livesim has barriers, timed from the first round (livesim's wall runs from gang start,
// so both include their JIT warm-up). value/baseline/ratio compare those. steadyValue/
// steadyBaseline/steadyRatio compare the same runs after the first WARMUP_ROUNDS barriers/rounds
// (livesim's from leader status samples), i.e. without warm-up.
//
// Also measured, as an extra field (http2Floor): the same ping-pong over bare node:http2 streams
// (bench/h2-barrier-child.ts, the leader's H2_SETTINGS, Nagle off), no livesim code at all. It
// separates what the HTTP/2 transport costs from what the livesim protocol adds on top of it.
import { spawn, type ChildProcess } from 'node:child_process'
import http2 from 'node:http2'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import path from 'node:path'
import { runLocal } from '../sim-runtime/run/local.ts'
import { H2_SETTINGS } from '../sim-runtime/sync/leader.ts'
import { BENCH_DIR, best, loadManifestText, machine, note, ratio, sig, stats, withGoal, type BenchContext, type Benchmark, type BenchResult } from './common.ts'

const HOSTS = 8
/** Hosts of the run with `processes` runtime processes: HOSTS, or one per process above that. */
const hostsFor = (processes: number) => Math.max(HOSTS, processes)
const LOOKAHEAD_US = 100
const BARRIERS = 2000
const WARMUP_ROUNDS = 200
const FRAME_BYTES = 32

function idleManifest(hosts: number): string {
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: bench-barrier }
spec:
  endTime: ${(BARRIERS * LOOKAHEAD_US) / 1000}ms
  seed: 1
  network:
    default: { latency: ${LOOKAHEAD_US}us, bandwidth: 10Gbps }
  hosts:
    - name: node
      replicas: ${hosts}
      components:
        - name: idle
          model: { kind: Server, service: { distribution: Constant, mean: 1ms } }
`
}

interface LivesimBarrierRun {
  us: number
  /** µs per barrier after the first WARMUP_ROUNDS barriers (JIT warm-up), from status samples. */
  steadyUs: number
  barriers: number
  wallSeconds: number
}

async function livesimBarrier(ctx: BenchContext, processes: number): Promise<LivesimBarrierRun> {
  const { cluster, plan, baseDir } = loadManifestText(idleManifest(hostsFor(processes)), 'barrier-http2')
  // The first status sample at or past WARMUP_ROUNDS barriers: (barriers, wall seconds since gang start).
  let mark: { barriers: number; wallSeconds: number } | undefined
  const res = await runLocal({
    cluster,
    plan,
    baseDir,
    logger: ctx.logger,
    partition: processes,
    stepping: 'fixed',
    // 32 Node processes starting at once on 2 cores can take more than the default minute to
    // register under load; start-up is not what this measures.
    registerTimeoutMs: 600_000,
    statusIntervalMs: 5,
    onStatus: (s) => {
      if (!mark && s.phase === 'Running' && s.barriers >= WARMUP_ROUNDS) mark = { barriers: s.barriers, wallSeconds: s.wallSeconds }
    },
  })
  if (res.wall.runtimes !== processes) throw new Error(`expected ${processes} runtimes, the run had ${res.wall.runtimes}`)
  if (res.sync.barriers !== BARRIERS) throw new Error(`expected ${BARRIERS} barriers, the run had ${res.sync.barriers}`)
  const us = (res.wall.seconds * 1e6) / res.sync.barriers
  const steadyUs = mark && mark.barriers < res.sync.barriers ? ((res.wall.seconds - mark.wallSeconds) * 1e6) / (res.sync.barriers - mark.barriers) : us
  return { us, steadyUs, barriers: res.sync.barriers, wallSeconds: res.wall.seconds }
}

function waitExit(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => c.once('exit', () => resolve()))
}

export interface PingPongResult {
  /** µs per round over all rounds, timed from the first, like livesim's wall from gang start. */
  us: number
  /** µs per round after the first `warmup` rounds. */
  steadyUs: number
  rounds: number
  wallSeconds: number
}

type Transport = 'tcp' | 'h2'

/**
 * A ping-pong barrier between this process and N children: each round writes a FRAME_BYTES frame
 * to every child and ends when every child has answered with one. 'tcp': raw sockets
 * (tcp-barrier-child.ts), the baseline. 'h2': one node:http2 stream per child with the leader's
 * H2_SETTINGS and Nagle off on both ends (h2-barrier-child.ts): what the transport alone costs.
 */
export async function pingPongBarrier(transport: Transport, processes: number, rounds = BARRIERS, warmup = WARMUP_ROUNDS): Promise<PingPongResult> {
  const peers: Duplex[] = []
  const children: ChildProcess[] = []
  let allConnected!: () => void
  const connected = new Promise<void>((resolve) => (allConnected = resolve))
  const addPeer = (d: Duplex) => {
    peers.push(d)
    if (peers.length === processes) allConnected()
  }
  const sessions = new Set<http2.ServerHttp2Session>()
  let server: net.Server | http2.Http2Server
  if (transport === 'tcp') {
    server = net.createServer((s) => {
      s.setNoDelay(true)
      addPeer(s)
    })
  } else {
    const h2 = http2.createServer({ settings: H2_SETTINGS })
    h2.on('connection', (s: net.Socket) => s.setNoDelay(true))
    h2.on('session', (sess) => {
      sessions.add(sess)
      sess.on('error', () => {})
      sess.on('close', () => sessions.delete(sess))
    })
    h2.on('stream', (stream) => {
      stream.on('error', () => {})
      stream.respond({ ':status': 200 })
      addPeer(stream)
    })
    server = h2
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  const childFile = transport === 'tcp' ? 'tcp-barrier-child.ts' : 'h2-barrier-child.ts'
  const childArgs = transport === 'tcp' ? [String(port), String(FRAME_BYTES)] : [String(port), String(FRAME_BYTES), JSON.stringify(H2_SETTINGS)]
  try {
    let failed: ((e: Error) => void) | undefined
    const failure = new Promise<never>((_, reject) => (failed = reject))
    for (let i = 0; i < processes; i++) {
      const c = spawn(process.execPath, [path.join(BENCH_DIR, childFile), ...childArgs], { stdio: ['ignore', 'ignore', 'inherit'] })
      c.on('exit', (code, sig) => {
        if (code !== 0) failed?.(new Error(`${childFile} ${i} exited with ${sig ?? code}`))
      })
      children.push(c)
    }
    await Promise.race([connected, failure])
    const frame = Buffer.alloc(FRAME_BYTES, 0x47)
    const timed = new Promise<PingPongResult>((resolve) => {
      let pending = 0
      let round = 0
      let t0 = 0n
      let tWarm = 0n
      const grant = () => {
        pending = processes
        for (const p of peers) p.write(frame)
      }
      const roundDone = () => {
        round++
        if (round === warmup) tWarm = process.hrtime.bigint()
        if (round === rounds) {
          const end = process.hrtime.bigint()
          const ns = Number(end - t0)
          const steadyNs = warmup > 0 && warmup < rounds ? Number(end - tWarm) / (rounds - warmup) : ns / rounds
          resolve({ us: ns / 1000 / rounds, steadyUs: steadyNs / 1000, rounds, wallSeconds: ns / 1e9 })
          return
        }
        grant()
      }
      for (const p of peers) {
        let got = 0
        p.on('data', (chunk: Buffer) => {
          got += chunk.length
          while (got >= FRAME_BYTES) {
            got -= FRAME_BYTES
            if (--pending === 0) roundDone()
          }
        })
      }
      t0 = process.hrtime.bigint()
      grant()
    })
    return await Promise.race([timed, failure])
  } finally {
    // Ending our side makes every child end its side and exit.
    for (const p of peers) p.end()
    await Promise.all(
      children.map((c) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 2000)
        return waitExit(c).then(() => clearTimeout(t))
      }),
    )
    for (const p of peers) p.destroy()
    for (const sess of sessions) sess.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

function barrierBench(processes: number): Benchmark {
  const name = `barrier-http2-${processes}`
  return {
    name,
    description: `µs per barrier, livesim leader + ${processes} runtime process(es) over HTTP/2, vs a raw TCP ping-pong barrier`,
    async run(ctx) {
      const live: LivesimBarrierRun[] = []
      const tcp: PingPongResult[] = []
      const h2: PingPongResult[] = []
      // Interleaved, so that load from elsewhere on the machine hits all three alike.
      for (let i = 0; i < ctx.reps; i++) {
        const l = await livesimBarrier(ctx, processes)
        live.push(l)
        const t = await pingPongBarrier('tcp', processes)
        tcp.push(t)
        const h = await pingPongBarrier('h2', processes)
        h2.push(h)
        note(
          `${name}: livesim ${l.us.toFixed(1)} us/barrier (${l.barriers} in ${l.wallSeconds}s; ${l.steadyUs.toFixed(1)} after warm-up), ` +
            `tcp ${t.us.toFixed(1)} (${t.steadyUs.toFixed(1)}), bare http2 ${h.us.toFixed(1)} (${h.steadyUs.toFixed(1)}) us/round`,
        )
      }
      const value = best(live.map((l) => l.us), 'min')
      const baseline = best(tcp.map((t) => t.us), 'min')
      const steady = best(live.map((l) => l.steadyUs), 'min')
      const tcpSteady = best(tcp.map((t) => t.steadyUs), 'min')
      const h2Steady = best(h2.map((h) => h.steadyUs), 'min')
      const r: BenchResult = {
        name,
        value: sig(value, 4),
        unit: 'us/barrier',
        baseline: sig(baseline, 4),
        ratio: ratio(value, baseline),
        // After the first WARMUP_ROUNDS barriers/rounds (JIT warm-up excluded on both sides).
        steadyValue: sig(steady, 4),
        steadyBaseline: sig(tcpSteady, 4),
        steadyRatio: ratio(steady, tcpSteady),
        // The same ping-pong over bare node:http2 streams (steady state): the transport's share.
        http2Floor: sig(h2Steady, 4),
        http2FloorRatio: ratio(h2Steady, tcpSteady),
        detail: {
          processes,
          hosts: hostsFor(processes),
          barriers: BARRIERS,
          warmupRounds: WARMUP_ROUNDS,
          frameBytes: FRAME_BYTES,
          ...stats(
            live.map((l) => l.us),
            tcp.map((t) => t.us),
            'min',
          ),
          steadySamples: live.map((l) => sig(l.steadyUs, 4)),
          steadyBaselineSamples: tcp.map((t) => sig(t.steadyUs, 4)),
          http2FloorSamples: h2.map((h) => sig(h.steadyUs, 4)),
        },
        ...machine(),
      }
      return processes === 8 ? withGoal(r, '<=', 1.3) : r
    },
  }
}

export const barrierBenches: Benchmark[] = [1, 4, 8, 32].map(barrierBench)

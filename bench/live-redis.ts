// Benchmarks of live components with a real redis-server (see bench/README.md for the method).
//
// live-redis-fidelity  redis-benchmark against redis-server, both live under livesim, over a
//                      simulated link whose latency is this machine's measured one-way loopback TCP
//                      latency, vs the same redis-benchmark run natively against a native
//                      redis-server in the same invocation, in paired repetitions. accuracy =
//                      1 - |mean(sim - native)| / mean(native) over the repetitions, for GET and SET
//                      p50, p99 and throughput; value = the smallest accuracy over p50 and
//                      throughput (all tests, all client counts).
// live-redis-slowdown  wall s per virtual s of examples/redis-live.yaml (redis-server live, modelled
//                      clients), vs the same for examples/quickstart.yaml (all modelled), both
//                      through the `livesim run` CLI in the same invocation.
//
// Knobs (environment): LIVE_REDIS_CLIENTS (redis-benchmark -c values, default "1,10"),
// LIVE_REDIS_REQUESTS (-n, default 20000), LIVE_REDIS_END_MARGIN (virtual end time = start-up + 2N
// replies at the rate of the pilot runs × this + 50 ms, default 1.25), LIVE_REDIS_CLOCK (the live
// components' clock: Cooperative, the default here, CpuTime or WallTime), LIVE_REDIS_PLACEMENT (the
// native reference: "cross", server and client on two CPUs, the default on a machine with two, or
// "same", both on one), LIVE_REDIS_CPU_DMA_LATENCY (µs held in /dev/cpu_dma_latency for the whole
// benchmark, default 0; "off"), LIVE_REDIS_KEEP=1 (keep the work directories).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, constants as fsConstants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { SimResults } from '../sim-runtime/sync/results.ts'
import { best, compileC, EXAMPLES, machine, meanLowerBound95, median, note, ratio, ROOT, sig, stats, type BenchContext, type Benchmark } from './common.ts'

const CLI = path.join(ROOT, 'sim-runtime', 'cli', 'main.ts')

// ---------------------------------------------------------------------------------------------
// Machine dependencies

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** redis-server, redis-benchmark (redis-tools) and cc; hack/live-deps.sh installs what is missing. */
function ensureDeps(): void {
  const need = ['redis-server', 'redis-benchmark', 'cc', 'taskset']
  if (need.every(onPath)) return
  note('live-redis: installing redis-server, redis-tools, libfaketime with hack/live-deps.sh')
  execFileSync(path.join(ROOT, 'hack', 'live-deps.sh'), { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 })
  const missing = need.filter((c) => !onPath(c))
  if (missing.length) throw new Error(`hack/live-deps.sh ran, but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} still missing`)
}

function workDir(tag: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `livesim-${tag}-`))
}

function cleanUp(dir: string, ok: boolean): void {
  if (ok && !process.env.LIVE_REDIS_KEEP) rmSync(dir, { recursive: true, force: true })
  else note(`live-redis: work directory kept: ${dir}`)
}

function run(cmd: string, args: string[], opts: { timeoutMs: number; cwd?: string }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${err.message}\n${tail(stderr, 2000)}`))
      else resolve({ stdout, stderr })
    })
  })
}

function tail(text: string, chars: number): string {
  return text.length > chars ? `…${text.slice(-chars)}` : text
}

// ---------------------------------------------------------------------------------------------
// (a) One-way loopback TCP latency: a C ping-pong

/**
 * `pingpong ROUNDS BYTES [CLIENT_CPU [SERVER_CPU]]`: a server and a client process (fork) on
 * 127.0.0.1 with TCP_NODELAY and blocking sockets, pinned to those CPUs when given
 * (sched_setaffinity; the server defaults to the client's); the client writes BYTES, the server
 * echoes them; ROUNDS/10 warm-up rounds, then ROUNDS timed ones (CLOCK_MONOTONIC around
 * write + read). Prints JSON: round-trip min, p50, p90, p99, mean in ns. One-way latency = p50 / 2:
 * what one message costs from a write() in one process to the return of read() in another (system
 * calls, the loopback stack, the switch to the reader).
 */
const PINGPONG_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { long long x = *(const long long *)a, y = *(const long long *)b; return x < y ? -1 : x > y; }
static int full(int fd, char *buf, int n, int rd) {
  for (int o = 0; o < n;) { int k = rd ? (int)read(fd, buf + o, n - o) : (int)write(fd, buf + o, n - o); if (k <= 0) return -1; o += k; }
  return 0;
}
int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20000, size = argc > 2 ? atoi(argv[2]) : 1, cpu = argc > 3 ? atoi(argv[3]) : -1, scpu = argc > 4 ? atoi(argv[4]) : cpu, warm = rounds / 10, one = 1;
  static char buf[65536];
  if (size < 1 || size > (int)sizeof buf || rounds < 1) { fprintf(stderr, "usage: pingpong ROUNDS BYTES [CLIENT_CPU [SERVER_CPU]]\n"); return 2; }
  if (cpu >= 0) { cpu_set_t set; CPU_ZERO(&set); CPU_SET(cpu, &set); if (sched_setaffinity(0, sizeof set, &set)) { perror("sched_setaffinity"); return 1; } }
  memset(buf, 'x', sizeof buf);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &al)) { perror("listen"); return 1; }
  pid_t pid = fork();
  if (pid == 0) {
    if (scpu >= 0) { cpu_set_t set; CPU_ZERO(&set); CPU_SET(scpu, &set); if (sched_setaffinity(0, sizeof set, &set)) { perror("sched_setaffinity"); _exit(1); } }
    int c = accept(ls, NULL, NULL);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (full(c, buf, size, 1) == 0 && full(c, buf, size, 0) == 0) {}
    _exit(0);
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  long long *rtt = malloc(sizeof(long long) * rounds);
  for (int i = 0; i < warm + rounds; i++) {
    long long t0 = now();
    if (full(s, buf, size, 0) || full(s, buf, size, 1)) { perror("pingpong"); return 1; }
    if (i >= warm) rtt[i - warm] = now() - t0;
  }
  close(s);
  waitpid(pid, NULL, 0);
  long long sum = 0;
  for (int i = 0; i < rounds; i++) sum += rtt[i];
  qsort(rtt, rounds, sizeof *rtt, cmp);
  printf("{\"clientCpu\":%d,\"serverCpu\":%d,\"rounds\":%d,\"bytes\":%d,\"minNs\":%lld,\"p50Ns\":%lld,\"p90Ns\":%lld,\"p99Ns\":%lld,\"meanNs\":%lld}\n", cpu, scpu, rounds, size,
         rtt[0], rtt[rounds / 2], rtt[(long long)rounds * 90 / 100], rtt[(long long)rounds * 99 / 100], sum / rounds);
  return 0;
}
`

/**
 * `wakecost ROUNDS CLIENT_CPU SERVER_CPU`: what a sender's write() costs when its peer sleeps in
 * epoll_wait (a native peer: redis-server, redis-benchmark) against when its peer polls (livesim's
 * proxy, which is never asleep while the cells run). Client and server processes pinned as given;
 * the client writes 40 bytes and polls a non-blocking socket for the echo (it never sleeps, so the
 * echo's wake-up costs nothing here); the server either sleeps in epoll_wait before each recv
 * ("sleep") or spins on a non-blocking recv ("poll"; both spinning loops yield, which does not touch
 * the measured write() and lets the processes take turns when they share a CPU), a fresh connection and server for each.
 * CLOCK_THREAD_CPUTIME_ID around each write(); ROUNDS/10 warm-up rounds. Prints JSON: the client's
 * CPU time per write() and the round trip, both in ns, for each kind of peer.
 */
const WAKECOST_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static long long clk(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int pin(int cpu) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); return sched_setaffinity(0, sizeof s, &s); }
/* One kind of peer: the client's CPU time per write() and the round trip (mean ns), or -1. */
static int measure(int rounds, int ccpu, int scpu, int sleeping, double *write_ns, double *round_ns) {
  int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &al)) { perror("listen"); return -1; }
  pid_t pid = fork();
  if (pid == 0) {
    if (pin(scpu)) { perror("sched_setaffinity"); _exit(1); }
    int c = accept(ls, NULL, NULL), ep = epoll_create1(0);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
    char b[64];
    for (;;) {
      if (sleeping) { struct epoll_event e; if (epoll_wait(ep, &e, 1, -1) < 0 && errno != EINTR) _exit(1); }
      ssize_t n = recv(c, b, sizeof b, 0);
      if (n == 0) _exit(0);
      if (n < 0) { if (errno == EAGAIN || errno == EINTR) { sched_yield(); continue; } _exit(1); }
      if (send(c, b, (size_t)n, 0) != n) _exit(1);
    }
  }
  close(ls);
  /* Any failure from here on takes the server down with it: a polling server would spin forever. */
#define FAIL(what) do { perror(what); kill(pid, SIGKILL); waitpid(pid, NULL, 0); return -1; } while (0)
  if (pin(ccpu)) FAIL("sched_setaffinity");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) FAIL("connect");
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(s, F_SETFL, O_NONBLOCK);
  char b[64];
  memset(b, 'x', sizeof b);
  int warm = rounds / 10;
  long long wsum = 0, t0 = 0;
  for (int i = 0; i < warm + rounds; i++) {
    if (i == warm) { wsum = 0; t0 = clk(CLOCK_MONOTONIC); }
    long long c0 = clk(CLOCK_THREAD_CPUTIME_ID);
    if (send(s, b, 40, 0) != 40) FAIL("send");
    wsum += clk(CLOCK_THREAD_CPUTIME_ID) - c0;
    for (int got = 0; got < 40;) {
      ssize_t n = recv(s, b, sizeof b, 0);
      if (n > 0) got += (int)n;
      else if (n == 0 || (errno != EAGAIN && errno != EINTR)) FAIL("recv");
      else sched_yield();
    }
  }
  *round_ns = (double)(clk(CLOCK_MONOTONIC) - t0) / rounds;
  *write_ns = (double)wsum / rounds;
  close(s);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}
int main(int argc, char **argv) {
  if (argc != 4 || atoi(argv[1]) < 1) { fprintf(stderr, "usage: wakecost ROUNDS CLIENT_CPU SERVER_CPU\n"); return 2; }
  int rounds = atoi(argv[1]), ccpu = atoi(argv[2]), scpu = atoi(argv[3]);
  double sw, sr, pw, pr;
  if (measure(rounds, ccpu, scpu, 1, &sw, &sr) || measure(rounds, ccpu, scpu, 0, &pw, &pr)) return 1;
  printf("{\"clientCpu\":%d,\"serverCpu\":%d,\"rounds\":%d,\"sleepingPeerWriteNs\":%.0f,\"pollingPeerWriteNs\":%.0f,\"sleepingPeerRoundTripNs\":%.0f,\"pollingPeerRoundTripNs\":%.0f}\n", ccpu, scpu, rounds, sw, pw, sr, pr);
  return 0;
}
`

/** What `wakecost` prints. */
export interface WakeCost {
  clientCpu: number
  serverCpu: number
  rounds: number
  /** The client's CPU time per write() when the peer sleeps in epoll_wait (ns). */
  sleepingPeerWriteNs: number
  /** The same when the peer polls (ns). */
  pollingPeerWriteNs: number
  sleepingPeerRoundTripNs: number
  pollingPeerRoundTripNs: number
}

/** Compile `wakecost` into dir: a function running it (50 000 rounds unless told) with the processes placed as p says. */
export function buildWakeCost(dir: string): (p: Placement, rounds?: number) => Promise<WakeCost> {
  const bin = compileC(dir, 'wakecost', WAKECOST_C)
  return async (p, rounds = 50_000) => JSON.parse((await run(bin, [String(rounds), String(p.clientCpu), String(p.serverCpu)], { timeoutMs: 60_000 })).stdout) as WakeCost
}

/** The sender's cost of waking a sleeping peer: its write() with a sleeping peer minus with a polling one (ns, may be ≤ 0 in noise). */
export function wakeCostNs(w: WakeCost): number {
  return Math.round(w.sleepingPeerWriteNs - w.pollingPeerWriteNs)
}

/**
 * How much less time per request livesim's redis-benchmark took than the native one, per test:
 * 1e9 / native rps - 1e9 / livesim rps (ns; negative when livesim was slower). At -c 10 both are
 * CPU-bound on the client, so this is what a request cost the client less under livesim.
 */
export function perRequestGapNs(native: Record<string, CsvRow>, sim: Record<string, CsvRow>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const test of Object.keys(native).sort()) {
    const n = native[test]?.rps
    const s = sim[test]?.rps
    if (!(n! > 0) || !(s! > 0)) continue
    out[test] = Math.round(1e9 / n! - 1e9 / s!)
  }
  return out
}

export interface PingPong {
  /** The CPUs the processes were pinned to, -1 when not pinned. */
  clientCpu: number
  serverCpu: number
  rounds: number
  bytes: number
  minNs: number
  p50Ns: number
  p90Ns: number
  p99Ns: number
  meanNs: number
}

export interface Loopback {
  /** One-way latency before the runs: the median p50 round trip of the reference placement's runs, halved (the livesim runs use links measured next to each native run). */
  oneWayNs: number
  method: string
  /** Both processes on one CPU: the samples. */
  sameCpu: PingPong[]
  /** Client and server on two different CPUs (none on a 1-CPU machine). */
  crossCpu: PingPong[]
}

/** Where the native processes run: the server's and the client's CPU. */
export interface Placement {
  name: 'same' | 'cross'
  serverCpu: number
  clientCpu: number
}

const LAST_CPU = os.availableParallelism() - 1
/** Client and server on one CPU, the last. */
export const SAME_CPU: Placement = { name: 'same', serverCpu: LAST_CPU, clientCpu: LAST_CPU }
/** Server on CPU 0, client on the last one (absent on a 1-CPU machine). */
export const CROSS_CPU: Placement | undefined = LAST_CPU > 0 ? { name: 'cross', serverCpu: 0, clientCpu: LAST_CPU } : undefined

/**
 * The native reference's placement, `LIVE_REDIS_PLACEMENT`: "cross" (the default where there are two
 * CPUs) or "same". Across CPUs is the physically right reference: in the simulated cluster client and
 * server are on different hosts, each with its own CPU, so at -c 10 they work in parallel; on one CPU
 * they take turns, and a simulation that accounts CPU correctly is faster than that.
 */
export function referencePlacement(text: string | undefined): Placement {
  const want = text === undefined || text.trim() === '' ? (CROSS_CPU ? 'cross' : 'same') : text.trim()
  if (want === 'same') return SAME_CPU
  if (want === 'cross') {
    if (!CROSS_CPU) throw new Error('LIVE_REDIS_PLACEMENT: "cross" needs two CPUs; this machine has one')
    return CROSS_CPU
  }
  throw new Error(`LIVE_REDIS_PLACEMENT: "same" or "cross", got ${JSON.stringify(text)}`)
}

/** A held PM QoS request (/dev/cpu_dma_latency): in force until release(). */
export interface LatencyHold {
  microseconds: number
  release(): void
}

/**
 * Ask the kernel to keep the CPUs out of idle states whose exit latency exceeds `us` microseconds
 * (PM QoS, /dev/cpu_dma_latency; the request holds while the file is open). With 0 an idle vCPU
 * polls instead of halting, and a wake-up across CPUs no longer waits for the hypervisor to
 * reschedule a halted vCPU. Measured on the 2-core VM this was built on: the cross-CPU ping-pong
 * round trip falls from 52-76 µs (spread run to run) to 13.5-14.8 µs. It applies to the whole
 * machine, native and livesim alike. Undefined when the file cannot be opened (not root, no such
 * device); the bench then says so and runs without.
 */
export function holdCpuDmaLatency(us: number): LatencyHold | undefined {
  let fd: number
  try {
    fd = openSync('/dev/cpu_dma_latency', fsConstants.O_WRONLY)
  } catch {
    return undefined
  }
  const value = Buffer.alloc(4)
  value.writeInt32LE(us)
  try {
    writeSync(fd, value)
  } catch {
    closeSync(fd)
    return undefined
  }
  let open = true
  return {
    microseconds: us,
    release() {
      if (open) closeSync(fd)
      open = false
    },
  }
}

/**
 * Compile the ping-pong into dir and run it `reps` times on one CPU and `reps` times across two,
 * interleaved (20 000 rounds of 40 bytes, about a GET's size): the median p50 of the reference
 * placement's runs, halved, is oneWayNs. The links the livesim runs use come from more runs
 * (`probe`), one just before each native run.
 * Across CPUs without the PM QoS hold, a round trip on the 2-core VM this was built on costs 50-80 µs
 * with a wide spread (halted vCPUs woken through the hypervisor), against 13.4 µs on one CPU.
 */
export async function measureLoopback(
  dir: string,
  reps: number,
  reference: Placement,
): Promise<{ loop: Loopback; probe: (p: Placement) => Promise<PingPong> }> {
  const bin = compileC(dir, 'pingpong', PINGPONG_C)
  const sameCpu: PingPong[] = []
  const crossCpu: PingPong[] = []
  const probe = async (p: Placement) => JSON.parse((await run(bin, ['20000', '40', String(p.clientCpu), String(p.serverCpu)], { timeoutMs: 60_000 })).stdout) as PingPong
  for (let i = 0; i < reps; i++) {
    sameCpu.push(await probe(SAME_CPU))
    if (CROSS_CPU) crossCpu.push(await probe(CROSS_CPU))
  }
  const used = reference.name === 'cross' ? crossCpu : sameCpu
  const oneWayNs = oneWayOf(used)
  const where = reference.name === 'cross' ? `client on CPU ${reference.clientCpu}, server on CPU ${reference.serverCpu}` : `both processes pinned to CPU ${reference.serverCpu}`
  const loop: Loopback = {
    oneWayNs,
    method: `C ping-pong over 127.0.0.1 TCP (TCP_NODELAY, blocking, 40-byte messages, 20000 rounds after 2000 warm-up), ${where}: one-way = median p50 round trip over ${reps} runs / 2`,
    sameCpu,
    crossCpu,
  }
  return { loop, probe }
}

/**
 * Whether ping-pong round trips measured around one repetition agree within tolerance (largest /
 * smallest): the host was in one phase for its native and its livesim run. The phases of the VM this
 * was built on differ by ~1.4× (12 against 17 µs); within one, runs differ by a few %.
 */
export function phaseSteady(roundTripsNs: readonly number[], tolerance = 1.15): boolean {
  if (roundTripsNs.length === 0 || roundTripsNs.some((x) => !(x > 0))) return false
  return Math.max(...roundTripsNs) / Math.min(...roundTripsNs) <= tolerance
}

/** The one-way latency of ping-pong runs: their median p50 round trip, halved (p50: a descheduled round does not inflate it). */
export function oneWayOf(runs: readonly PingPong[]): number {
  if (runs.length === 0) throw new Error('oneWayOf: no ping-pong runs')
  return Math.max(1, Math.round(median(runs.map((s) => s.p50Ns)) / 2))
}

// ---------------------------------------------------------------------------------------------
// (b) Native redis-server + redis-benchmark

export interface CsvRow {
  rps: number
  avgMs: number
  minMs: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
}

/**
 * The rows of `redis-benchmark --csv` output (redis 6/7: "test","rps","avg_latency_ms",
 * "min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"), by test.
 * Other lines (warnings, a log's other content) are ignored.
 */
export function parseBenchmarkCsv(text: string): Record<string, CsvRow> {
  const out: Record<string, CsvRow> = {}
  let header: string[] | undefined
  for (const raw of text.split(/\r?\n|\r/)) {
    const line = raw.trim()
    if (!line.startsWith('"')) continue
    const cells = line.split(',').map((c) => c.replace(/^"|"$/g, ''))
    if (cells[0] === 'test') {
      header = cells
      continue
    }
    if (!header) continue
    const col = (name: string) => {
      const i = header!.indexOf(name)
      const v = i < 0 ? NaN : Number(cells[i])
      if (!Number.isFinite(v)) throw new Error(`redis-benchmark CSV: no numeric ${name} in ${JSON.stringify(line)}`)
      return v
    }
    out[cells[0]!] = {
      rps: col('rps'),
      avgMs: col('avg_latency_ms'),
      minMs: col('min_latency_ms'),
      p50Ms: col('p50_latency_ms'),
      p95Ms: col('p95_latency_ms'),
      p99Ms: col('p99_latency_ms'),
      maxMs: col('max_latency_ms'),
    }
  }
  return out
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(p))
    })
  })
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    const done = (ok: boolean) => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(1000, () => done(false))
    s.on('error', () => done(false))
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', (d) => done(d.toString('latin1').startsWith('+PONG')))
  })
}

async function startRedis(dir: string, cpu: number): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort()
  const args = ['-c', String(cpu), 'redis-server', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning']
  const proc = spawn('taskset', args, { stdio: 'ignore' })
  const deadline = Date.now() + 10_000
  while (!(await ping(port))) {
    if (proc.exitCode !== null) throw new Error(`native redis-server (taskset ${args.join(' ')}) exited with ${proc.exitCode} before answering on port ${port}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`native redis-server did not answer PING on port ${port} within 10 s`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { port, proc }
}

function benchmarkArgs(requests: number, clients: number): string[] {
  return ['-t', 'get,set', '-n', String(requests), '-c', String(clients), '--csv']
}

/** redis-benchmark natively, `reps` times against one fresh native redis-server, both pinned (taskset) as `where` says. */
export async function nativeBenchmark(dir: string, requests: number, clients: number, reps: number, where: Placement): Promise<Record<string, CsvRow>[]> {
  const { port, proc } = await startRedis(dir, where.serverCpu)
  try {
    const out: Record<string, CsvRow>[] = []
    for (let i = 0; i < reps; i++) {
      const args = ['-c', String(where.clientCpu), 'redis-benchmark', '-h', '127.0.0.1', '-p', String(port), ...benchmarkArgs(requests, clients)]
      const { stdout } = await run('taskset', args, { timeoutMs: 600_000 })
      const rows = parseBenchmarkCsv(stdout)
      if (!rows.GET || !rows.SET) throw new Error(`native redis-benchmark printed no GET/SET rows:\n${tail(stdout, 2000)}`)
      out.push(rows)
    }
    return out
  } finally {
    proc.kill('SIGKILL')
  }
}

/** Per test and metric, the median over repetitions ('median'), or the best: largest rps, smallest latencies ('best'). */
export function combineRows(samples: Record<string, CsvRow>[], how: 'median' | 'best'): Record<string, CsvRow> {
  const out: Record<string, CsvRow> = {}
  for (const test of Object.keys(samples[0]!)) {
    const row = {} as Record<keyof CsvRow, number>
    for (const k of Object.keys(samples[0]![test]!) as (keyof CsvRow)[]) {
      const xs = samples.map((s) => s[test]![k])
      row[k] = how === 'median' ? median(xs) : best(xs, k === 'rps' ? 'max' : 'min')
    }
    out[test] = row
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// (c) The same benchmark with both ends live under livesim

/** A duration string with ns precision: "7us" when whole microseconds, else "6895ns". */
export function durationString(ns: number): string {
  const n = Math.round(ns)
  if (n % 1_000_000 === 0) return `${n / 1_000_000}ms`
  if (n % 1_000 === 0) return `${n / 1_000}us`
  return `${n}ns`
}

/** The SimCluster of the fidelity benchmark: redis-server on host db, redis-benchmark on host bench. */
export function fidelityManifest(o: { latencyNs: number; endTimeNs: number; requests: number; clients: number; clock?: string; cpus?: string }): string {
  const q = (s: string) => JSON.stringify(s)
  const server = ['redis-server', '--bind', '$(LIVESIM_BIND_ADDR)', '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']
  const bench = ['redis-benchmark', '-h', '$(LIVESIM_HOST_DB_0)', '-p', '6379', ...benchmarkArgs(o.requests, o.clients)]
  const clock = o.clock ? `\n        clock: ${o.clock}` : ''
  const cell = o.cpus !== undefined ? `\n    cell: { cpus: "${o.cpus}" }` : ''
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: redis-bench }
spec:
  endTime: ${durationString(o.endTimeNs)}
  network: { default: { latency: ${durationString(o.latencyNs)}, bandwidth: 10Gbps } }
  hosts:
  - name: db${cell}
    components:
    - name: redis
      live:
        command: [${server.map(q).join(', ')}]
        ports: [{ name: redis, port: 6379 }]${clock}
  - name: bench${cell}
    components:
    - name: rb
      live:
        command: [${bench.map(q).join(', ')}]${clock}
`
}

/** What the results document says about a live component (the contract's fields; all optional here). */
interface LiveComponent {
  kind?: string
  log?: string
  exitCode?: number | null
  exitSignal?: string | null
  exitedAtNs?: number | null
  cpuTimeNs?: number
  [k: string]: unknown
}

type LiveResults = SimResults & { live?: Record<string, unknown> }

interface CliRun {
  results: LiveResults
  /** Wall seconds of the whole CLI process (start-up and teardown included). */
  processSeconds: number
  workDir: string
}

/** `livesim run FILE --out … --work-dir …` as a child process; throws with its stderr on failure. */
async function runCli(manifestFile: string, dir: string, timeoutMs: number): Promise<CliRun> {
  const out = path.join(dir, 'results.json')
  const wd = path.join(dir, 'work')
  const t0 = performance.now()
  await run(process.execPath, [CLI, 'run', manifestFile, '--out', out, '--work-dir', wd, '--quiet'], { timeoutMs, cwd: ROOT })
  const processSeconds = (performance.now() - t0) / 1000
  return { results: JSON.parse(readFileSync(out, 'utf8')) as LiveResults, processSeconds, workDir: wd }
}

function liveComponent(r: LiveResults, host: string, comp: string): LiveComponent {
  const c = r.hosts[host]?.components[comp] as LiveComponent | undefined
  if (!c) throw new Error(`results have no component ${host}/${comp} (hosts: ${Object.keys(r.hosts).join(', ')})`)
  return c
}

interface SimRun {
  rows: Record<string, CsvRow>
  results: LiveResults
  processSeconds: number
  manifest: string
  endTimeNs: number
  redisBenchmark: LiveComponent
  redisServer: LiveComponent
  /** Earlier runs that ended before redis-benchmark did (end time doubled each time). */
  retries: number
}

type SimParams = { latencyNs: number; requests: number; clients: number; clock?: string; cpus?: string }

const PILOTS_NS = [100_000_000, 300_000_000]

export interface Pilot {
  /** Replies per virtual second once redis-benchmark runs. */
  repliesPerSecond: number
  /** Virtual time before the first reply (program start-up, connections, CONFIG GET). */
  startNs: number
  wallSeconds: number
}

/**
 * The virtual rate of replies: two pilot runs of the same cluster (redis-benchmark with a large -n,
 * so that it is busy throughout) of 100 and 300 ms; replies are counted as messages on the link
 * db-0 → bench-0 (each reply is at least one message, so this errs low and the end time long). The
 * difference between the two removes start-up, which is long and variable under livesim.
 */
export async function pilotRate(dir: string, o: SimParams): Promise<Pilot> {
  const counts: number[] = []
  let wallSeconds = 0
  for (const endTimeNs of PILOTS_NS) {
    const file = path.join(dir, `pilot-${endTimeNs / 1e6}ms.yaml`)
    writeFileSync(file, fidelityManifest({ ...o, requests: 10_000_000, endTimeNs }))
    const cli = await runCli(file, mkdtempSync(path.join(dir, 'pilot-')), 1_800_000)
    counts.push(cli.results.links['db-0->bench-0']?.messages ?? 0)
    wallSeconds += cli.results.wall.seconds
  }
  const [t1, t2] = PILOTS_NS as [number, number]
  const [m1, m2] = counts as [number, number]
  if (m2 <= m1) throw new Error(`pilot runs: ${m1} replies by ${t1 / 1e6} ms and ${m2} by ${t2 / 1e6} ms virtual: redis-benchmark is not making progress`)
  const repliesPerSecond = (m2 - m1) / ((t2 - t1) / 1e9)
  const startNs = Math.max(0, t1 - (m1 / repliesPerSecond) * 1e9)
  return { repliesPerSecond, startNs, wallSeconds: sig(wallSeconds, 4) }
}

async function simBenchmark(dir: string, o: SimParams & { endTimeNs: number }): Promise<SimRun> {
  let endTimeNs = o.endTimeNs
  for (let attempt = 0; ; attempt++) {
    const manifest = fidelityManifest({ ...o, endTimeNs })
    const file = path.join(dir, `redis-bench-${attempt}.yaml`)
    writeFileSync(file, manifest)
    const cli = await runCli(file, mkdtempSync(path.join(dir, `run-${attempt}-`)), 3_600_000)
    const rb = liveComponent(cli.results, 'bench-0', 'rb')
    const redis = liveComponent(cli.results, 'db-0', 'redis')
    const logFile = rb.log ?? path.join(cli.workDir, 'bench-0', 'rb.log')
    if (!existsSync(logFile)) throw new Error(`redis-benchmark's log ${logFile} does not exist`)
    const log = readFileSync(logFile, 'utf8')
    const rows = parseBenchmarkCsv(log)
    if (!rows.GET || !rows.SET) {
      const stillRunning = rb.exitCode == null && rb.exitSignal == null
      if (stillRunning && attempt < 2) {
        note(`live-redis-fidelity: redis-benchmark was still running at ${durationString(endTimeNs)} virtual; again with twice the end time`)
        endTimeNs *= 2
        continue
      }
      const why = stillRunning ? `it was still running at the end time ${durationString(endTimeNs)}` : `it exited with code ${rb.exitCode} (signal ${rb.exitSignal})`
      throw new Error(`redis-benchmark under livesim printed no GET and SET rows: ${why}; its log ${logFile} ends with:\n${tail(log, 1500)}`)
    }
    if (rb.exitCode !== undefined && rb.exitCode !== 0) throw new Error(`redis-benchmark under livesim exited with code ${rb.exitCode}; log ${logFile}`)
    return { rows, results: cli.results, processSeconds: cli.processSeconds, manifest, endTimeNs, redisBenchmark: rb, redisServer: redis, retries: attempt }
  }
}

/** 1 - |sim - native| / native; 1 is perfect agreement, 0 is off by 100 % (or more: negative). */
export function accuracy(sim: number, native: number): number {
  return 1 - Math.abs(sim - native) / native
}

/**
 * The accuracy of paired repetitions: 1 - |mean(sim_r - native_r)| / mean(native_r), the mean paired
 * difference (each livesim run against the native run of its own repetition, so both sides cover the
 * same phases of the host) relative to the mean native value. Unlike the median of per-pair
 * accuracies it is not quantized to redis-benchmark's 8 µs p50 buckets: where the run-to-run noise
 * straddles a bucket edge, the means move with the share of runs on either side (dithering), and a
 * steady offset of a whole bucket still counts in full.
 */
export function pairedAccuracy(sims: readonly number[], natives: readonly number[]): number {
  if (sims.length === 0 || sims.length !== natives.length) throw new Error(`pairedAccuracy: ${sims.length} livesim and ${natives.length} native values; they must pair up, at least one each`)
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  return accuracy(mean(sims), mean(natives))
}

function positiveInts(text: string | undefined, fallback: number[], what: string): number[] {
  if (text === undefined || text.trim() === '') return fallback
  const xs = text.split(',').map((s) => Number(s.trim()))
  if (!xs.every((x) => Number.isInteger(x) && x > 0)) throw new Error(`${what}: expected positive integers separated by commas, got ${JSON.stringify(text)}`)
  return xs
}

/** `LIVE_REDIS_CPU_DMA_LATENCY`: microseconds to hold (default 0) or "off". */
export function cpuDmaLatencyKnob(text: string | undefined): number | 'off' {
  if (text === undefined || text.trim() === '') return 0
  if (text.trim() === 'off') return 'off'
  const x = Number(text)
  if (!Number.isInteger(x) || x < 0) throw new Error(`LIVE_REDIS_CPU_DMA_LATENCY: microseconds (an integer ≥ 0) or "off", got ${JSON.stringify(text)}`)
  return x
}

function positiveNumber(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined || text.trim() === '') return fallback
  const x = Number(text)
  if (!(x > 0)) throw new Error(`${what}: expected a positive number, got ${JSON.stringify(text)}`)
  return x
}

const ms = (x: number) => sig(x, 4)

export const liveRedisFidelity: Benchmark = {
  name: 'live-redis-fidelity',
  description: 'redis-benchmark vs redis-server, both live under livesim, against the same natively (accuracy of p50, p99, rps)',
  onlyWhenNamed: true,
  // The verdict is a mean over paired repetitions (pairedAccuracy), and a livesim run costs ~7 s:
  // with five pairs one spoiled by a phase change the ping-pongs did not see weighs a fifth, not a third.
  defaultReps: 5,
  async run(ctx: BenchContext) {
    ensureDeps()
    const clientCounts = positiveInts(process.env.LIVE_REDIS_CLIENTS, [1, 10], 'LIVE_REDIS_CLIENTS')
    const requests = positiveInts(process.env.LIVE_REDIS_REQUESTS, [20000], 'LIVE_REDIS_REQUESTS')[0]!
    const margin = positiveNumber(process.env.LIVE_REDIS_END_MARGIN, 1.25, 'LIVE_REDIS_END_MARGIN')
    const clock = process.env.LIVE_REDIS_CLOCK || 'Cooperative'
    if (clock !== undefined && clock !== 'CpuTime' && clock !== 'WallTime' && clock !== 'Cooperative') throw new Error(`LIVE_REDIS_CLOCK: CpuTime, WallTime or Cooperative, got ${JSON.stringify(clock)}`)
    // Where the simulated hosts' cells run (cell.cpus): "any" leaves it to `livesim run`, which puts
    // Cooperative cells on every CPU but its runtime's (docs/live.md, "Where the runtime runs");
    // "same" puts both on the CPU the native server is pinned to; or a cpuset list.
    const simCpusEnv = process.env.LIVE_REDIS_SIM_CPUS ?? 'any'
    const simCpus = simCpusEnv === 'any' ? undefined : simCpusEnv === 'same' ? String(SAME_CPU.serverCpu) : simCpusEnv
    const reference = referencePlacement(process.env.LIVE_REDIS_PLACEMENT)
    const other = reference.name === 'cross' ? SAME_CPU : CROSS_CPU
    const dmaLatency = cpuDmaLatencyKnob(process.env.LIVE_REDIS_CPU_DMA_LATENCY)
    const dir = workDir('redis-fidelity')
    let ok = false
    // Held for the whole benchmark, so that native and livesim runs see the same machine.
    const hold = dmaLatency === 'off' ? undefined : holdCpuDmaLatency(dmaLatency)
    if (dmaLatency !== 'off' && !hold) note(`live-redis-fidelity: could not hold /dev/cpu_dma_latency at ${dmaLatency} µs (not root, or no such device); running without`)
    try {
      const { loop, probe } = await measureLoopback(dir, Math.max(5, ctx.reps), reference)
      const wake = buildWakeCost(dir)
      note(
        `live-redis-fidelity: reference ${reference.name === 'cross' ? `across CPUs (server ${reference.serverCpu}, client ${reference.clientCpu})` : `on CPU ${reference.serverCpu}`}, cpu_dma_latency ${hold ? `held at ${hold.microseconds} µs` : 'not held'}; one-way loopback latency ${loop.oneWayNs} ns before the runs (round-trip p50s on one CPU ${loop.sameCpu.map((s) => s.p50Ns).join(', ')} ns; across CPUs ${loop.crossCpu.map((s) => s.p50Ns).join(', ') || '-'} ns)`,
      )
      const perClients: Record<string, unknown> = {}
      const p50AndRps: number[] = []
      // The verdict's statistic: per metric, the mean of the per-pair accuracies and its 95 % lower bound.
      const bounds: { metric: string; mean: number; lower95: number; n: number }[] = []
      const p50AndRpsPairedMedian: number[] = []
      const links: Record<string, number> = {}
      const p99s: number[] = []
      /** Per client count, the worst agreement of a native run with the median native run (p50 and rps): the comparison's noise floor. */
      const floors: number[] = []
      for (const clients of clientCounts) {
        // Repetitions of (ping-pong, native run, livesim run with the link that ping-pong gave): this
        // VM's host goes through phases, minutes long, in which a cross-CPU round trip takes 12 or
        // 17-19 µs, and native Redis follows them (C=1 p50 15 or 23 µs); measured minutes apart, the
        // link, the native reference and livesim were from different phases in one run of three.
        const simDir = mkdtempSync(path.join(dir, `sim-c${clients}-`))
        const pings: PingPong[] = []
        const samples: Record<string, CsvRow>[] = []
        const sims: SimRun[] = []
        const simLinks: number[] = []
        const wakes: WakeCost[] = []
        let pilot: Pilot | undefined
        let endTimeNs = 0
        // A repetition counts when the ping-pongs before its native run, before its livesim run and
        // after it agree (phaseSteady): otherwise the host changed phase in between and the pair
        // would measure that, not livesim (it spoiled two of three pairs of one run). It is kept in
        // detail (unsteady) and repeated, up to 2 × BENCH_REPS extra attempts per client count (the
        // development VM changed phase every minute or two; one client count once needed 6 attempts for 3).
        const unsteady: Record<string, unknown>[] = []
        const maxAttempts = 3 * ctx.reps
        for (let attempt = 0, r = 0; r < ctx.reps && attempt < maxAttempts; attempt++) {
          const ping = await probe(reference)
          const linkNs = oneWayOf([ping])
          const w = await wake(reference)
          const [nat] = await nativeBenchmark(dir, requests, clients, 1, reference)
          const params = { latencyNs: linkNs, requests, clients, clock, cpus: simCpus }
          if (!pilot) {
            // The virtual time redis-benchmark needs under livesim: 2N replies at the pilot's rate,
            // with a margin (a run costs wall time in proportion to its virtual time, busy or idle).
            pilot = await pilotRate(simDir, params)
            endTimeNs = Math.ceil((pilot.startNs / 1e6) + ((2 * requests) / pilot.repliesPerSecond) * margin * 1000 + 50) * 1e6
            note(
              `live-redis-fidelity: -c ${clients}: pilots: ${Math.round(pilot.repliesPerSecond)} replies/s virtual after ${sig(pilot.startNs / 1e6, 3)} ms of start-up; livesim runs of ${durationString(endTimeNs)} virtual`,
            )
          }
          const pingMid = await probe(reference)
          const run = await simBenchmark(mkdtempSync(path.join(simDir, `try${attempt}-`)), { ...params, endTimeNs })
          const pingAfter = await probe(reference)
          const roundTrips = [ping, pingMid, pingAfter].map((x) => x.p50Ns)
          const steady = phaseSteady(roundTrips)
          note(
            `live-redis-fidelity: -c ${clients}: ${steady ? `run ${r + 1}/${ctx.reps}` : `attempt ${attempt + 1}, phase changed (round trips ${roundTrips.join(' / ')} ns before native, before livesim, after): repeated`}: link ${linkNs} ns (round trip p50 ${ping.p50Ns} ns); native SET ${nat!.SET!.rps} rps p50 ${nat!.SET!.p50Ms} ms, GET ${nat!.GET!.rps} rps p50 ${nat!.GET!.p50Ms} ms; livesim SET ${run.rows.SET!.rps} rps p50 ${run.rows.SET!.p50Ms} ms, GET ${run.rows.GET!.rps} rps p50 ${run.rows.GET!.p50Ms} ms, ${run.results.wall.seconds} s wall (slowdown ${run.results.wall.slowdown}); a request took livesim's client ${Object.entries(perRequestGapNs(nat!, run.rows)).map(([t, g]) => `${g} ns (${t})`).join(', ')} less than the native one; a native sender's wake-up of its sleeping peer: ${wakeCostNs(w)} ns per write (write() ${w.sleepingPeerWriteNs} ns to a sleeping peer, ${w.pollingPeerWriteNs} ns to a polling one, as livesim's proxy is)`,
          )
          if (!steady) {
            unsteady.push({ roundTripsNs: roundTrips, linkNs, native: roundRows(nat!), sim: roundRows(run.rows), wakeCostNs: wakeCostNs(w) })
            continue
          }
          r++
          pings.push(ping)
          wakes.push(w)
          samples.push(nat!)
          sims.push(run)
          simLinks.push(linkNs)
        }
        if (sims.length === 0) throw new Error(`live-redis-fidelity: -c ${clients}: the host changed phase during every one of ${maxAttempts} attempts (unsteady: ${JSON.stringify(unsteady)})`)
        if (sims.length < ctx.reps) note(`live-redis-fidelity: -c ${clients}: only ${sims.length} of ${ctx.reps} repetitions in a steady phase after ${maxAttempts} attempts; the verdict is on those`)
        links[`c${clients}`] = median(simLinks)
        const otherSamples = other ? await nativeBenchmark(dir, requests, clients, ctx.reps, other) : undefined
        // The median native run per metric is the reference, against the median livesim run: a
        // Cooperative cell's clock runs with the wall, so livesim sees the machine's state as native
        // Redis does (bench/README.md, "live-redis-fidelity"); the best native runs are in detail.
        const native = combineRows(samples, 'median')
        const nativeBest = combineRows(samples, 'best')
        const sim = sims[sims.length - 1]!
        const simRows = combineRows(sims.map((x) => x.rows), 'median')
        const acc: Record<string, Record<string, number>> = {}
        const accMedian: Record<string, Record<string, number>> = {}
        const accBest: Record<string, Record<string, number>> = {}
        const accRuns: Record<string, Record<string, number>>[] = []
        for (const test of ['GET', 'SET']) {
          const n = native[test]!
          const s = simRows[test]!
          // Paired: each repetition's livesim run against its own native run (same minutes of the
          // machine); the verdict is on the mean paired difference, the median of the per-pair
          // accuracies is kept for comparison (it moves in whole 8 µs p50 buckets).
          const simOf = (k: 'p50Ms' | 'p99Ms' | 'rps') => sims.map((x) => x.rows[test]![k])
          const nativeOf = (k: 'p50Ms' | 'p99Ms' | 'rps') => samples.map((x) => x[test]![k])
          const perPair = (k: 'p50Ms' | 'p99Ms' | 'rps') => {
            const nat = nativeOf(k)
            return simOf(k).map((v, r) => accuracy(v, nat[r]!))
          }
          const paired = (k: 'p50Ms' | 'p99Ms' | 'rps') => pairedAccuracy(simOf(k), nativeOf(k))
          const pairs = { p50: perPair('p50Ms'), p99: perPair('p99Ms'), rps: perPair('rps') }
          const a = { p50: paired('p50Ms'), p99: paired('p99Ms'), rps: paired('rps') }
          const m = { p50: median(pairs.p50), p99: median(pairs.p99), rps: median(pairs.rps) }
          p50AndRps.push(a.p50, a.rps)
          for (const k of ['p50', 'rps'] as const) {
            const b = meanLowerBound95(pairs[k])
            bounds.push({ metric: `c${clients}.${test}.${k}`, mean: b.mean, lower95: b.lower95, n: b.n })
          }
          p50AndRpsPairedMedian.push(m.p50, m.rps)
          p99s.push(a.p99)
          acc[test] = { p50: sig(a.p50, 4), p99: sig(a.p99, 4), rps: sig(a.rps, 4) }
          accMedian[test] = { p50: sig(m.p50, 4), p99: sig(m.p99, 4), rps: sig(m.rps, 4) }
          sims.forEach((_, r) => {
            const row = (accRuns[r] ??= {})
            row[test] = { p50: sig(pairs.p50[r]!, 4), rps: sig(pairs.rps[r]!, 4) }
          })
          acc[`${test}OfMedians`] = { p50: sig(accuracy(s.p50Ms, n.p50Ms), 4), p99: sig(accuracy(s.p99Ms, n.p99Ms), 4), rps: sig(accuracy(s.rps, n.rps), 4) }
          const b = nativeBest[test]!
          accBest[test] = { p50: sig(accuracy(s.p50Ms, b.p50Ms), 4), p99: sig(accuracy(s.p99Ms, b.p99Ms), 4), rps: sig(accuracy(s.rps, b.rps), 4) }
        }
        // For comparison only: the same against native processes placed the other way.
        const otherNative = otherSamples ? combineRows(otherSamples, 'median') : undefined
        const accOther: Record<string, Record<string, number>> = {}
        if (otherNative) {
          for (const test of ['GET', 'SET']) {
            const n = otherNative[test]!
            const s = simRows[test]!
            accOther[test] = { p50: sig(accuracy(s.p50Ms, n.p50Ms), 4), p99: sig(accuracy(s.p99Ms, n.p99Ms), 4), rps: sig(accuracy(s.rps, n.rps), 4) }
          }
        }
        note(
          `live-redis-fidelity: -c ${clients}: medians of ${sims.length}: native SET ${native.SET!.rps} rps p50 ${native.SET!.p50Ms} ms, GET ${native.GET!.rps} rps p50 ${native.GET!.p50Ms} ms; livesim SET ${simRows.SET!.rps} rps p50 ${simRows.SET!.p50Ms} ms, GET ${simRows.GET!.rps} rps p50 ${simRows.GET!.p50Ms} ms`,
        )
        // How much native runs disagree with the reference: the noise floor of this comparison.
        const selfAccuracy = Math.min(
          ...samples.flatMap((smp) => ['GET', 'SET'].flatMap((t) => [accuracy(smp[t]!.p50Ms, native[t]!.p50Ms), accuracy(smp[t]!.rps, native[t]!.rps)])),
        )
        floors.push(selfAccuracy)
        perClients[`c${clients}`] = {
          accuracy: acc,
          accuracyPairedMedian: accMedian,
          accuracyRuns: accRuns,
          linkLatencyNs: simLinks,
          linkPingPongs: pings,
          unsteady,
          wakeCosts: wakes,
          wakeCostNs: wakes.map(wakeCostNs),
          perRequestGapNs: sims.map((x, r) => perRequestGapNs(samples[r]!, x.rows)),
          accuracyVsNativeBest: accBest,
          native: roundRows(native),
          nativeBest: roundRows(nativeBest),
          nativeSamples: samples.map(roundRows),
          nativeOtherPlacement: other?.name ?? null,
          nativeOther: otherNative ? roundRows(otherNative) : null,
          nativeOtherSamples: otherSamples?.map(roundRows) ?? null,
          accuracyVsOther: otherNative ? accOther : null,
          nativeSelfAccuracyP50Rps: sig(selfAccuracy, 4),
          sim: roundRows(simRows),
          simSamples: sims.map((x) => roundRows(x.rows)),
          simWallSeconds: sims.map((x) => x.results.wall.seconds),
          simProcessSeconds: sims.map((x) => sig(x.processSeconds, 4)),
          simSlowdown: sims.map((x) => x.results.wall.slowdown),
          simVirtualSeconds: sim.results.virtualTimeNs / 1e9,
          pilotRepliesPerSecond: sig(pilot!.repliesPerSecond, 4),
          pilotStartNs: Math.round(pilot!.startNs),
          pilotWallSeconds: pilot!.wallSeconds,
          endTimeRetries: sims.map((x) => x.retries),
          barriers: sim.results.sync.barriers,
          causalityViolations: sims.map((x) => x.results.sync.causalityViolations),
          redisBenchmark: pickLive(sim.redisBenchmark),
          redisServer: pickLive(sim.redisServer),
          live: sim.results.live,
          hostsLive: { 'db-0': sim.results.hosts['db-0']?.live, 'bench-0': sim.results.hosts['bench-0']?.live },
          links: sim.results.links,
        }
      }
      const value = Math.min(...bounds.map((b) => b.mean))
      const lower95 = Math.min(...bounds.map((b) => b.lower95))
      const decidedBy = bounds.reduce((w, b) => (b.lower95 < w.lower95 ? b : w))
      ok = true
      return {
        name: 'live-redis-fidelity',
        value: sig(value, 4),
        unit: 'accuracy (1 - relative error)',
        baseline: 1,
        ratio: ratio(value, 1),
        // The verdict: every metric's 95 % lower bound of the mean per-pair accuracy at or above 0.90
        // (bench/README.md, "Decision rules"); value is the smallest mean.
        goal: 'lower95 >= 0.90',
        met: lower95 >= 0.9,
        lower95: sig(lower95, 4),
        decidedBy: { metric: decidedBy.metric, mean: sig(decidedBy.mean, 4), lower95: sig(decidedBy.lower95, 4), pairs: decidedBy.n },
        clockMode: clock,
        accuracyBounds: bounds.map((b) => ({ metric: b.metric, mean: sig(b.mean, 4), lower95: sig(b.lower95, 4), pairs: b.n })),
        // Not the verdict: the accuracy of the mean livesim run against the mean native run of the same
        // pairs (errors of opposite sign cancel in it) and the median of per-pair accuracies.
        valueMeanDifference: sig(Math.min(...p50AndRps), 4),
        minAccuracyP99: sig(Math.min(...p99s), 4),
        valuePairedMedian: sig(Math.min(...p50AndRpsPairedMedian), 4),
        // Not the verdict: how far single native runs fell from their own median (p50 and rps, the
        // worst over client counts). It says how noisy the reference is run to run (redis-benchmark's
        // 8 µs p50 buckets, the host's phases); the verdict is over pairs, so it is no floor for `value`.
        nativeNoiseFloor: sig(Math.min(...floors), 4),
        linkLatencyNs: links,
        placement: reference.name,
        cpuDmaLatencyUs: hold ? hold.microseconds : null,
        simCpus: simCpus ?? 'any',
        requests,
        clients: clientCounts,
        detail: {
          comparison:
            'accuracy = 1 - |livesim - native| / native per test (GET, SET) and metric (p50, p99 latency, rps) of redis-benchmark -t get,set --csv; per pair r, a_r = 1 - |livesim_r - native_r| / native_r; per metric (p50 and rps of every test and client count) the mean of a_r and its one-sided 95 % lower bound (Student t, pairs - 1 degrees of freedom); value = the smallest mean, lower95 = the smallest bound, met when lower95 >= 0.90; each of BENCH_REPS repetitions is a ping-pong (the link), a native run and a livesim run, and counts only when ping-pongs before the native run, before the livesim run and after it agree within 15 % (the host did not change phase; otherwise it is repeated, at most 2 × BENCH_REPS extra attempts, and kept in unsteady); not the verdict: valueMeanDifference = 1 - |mean over repetitions of (livesim run - its own native run)| / mean native run (errors of opposite sign cancel), valuePairedMedian = the minimum of the medians of per-pair accuracies (accuracyRuns: each pair; accuracyPairedMedian: the medians; <TEST>OfMedians: median livesim against median native; accuracyVsNativeBest: against the best native run per metric, largest rps, smallest latency); link latency = median p50 round trip / 2 of a C ping-pong; ping-pong and native redis-server + redis-benchmark pinned as placement says (cross: server on CPU 0, client on the last CPU; same: both on the last CPU), the other placement in detail (not used); /dev/cpu_dma_latency held as cpuDmaLatencyUs says for the whole benchmark; diagnostics, not in the value: wakeCostNs = a native sender\'s write() CPU time with its peer asleep in epoll_wait minus with its peer polling (C, 40 bytes, pinned like the ping-pong, measured before each native run), perRequestGapNs = 1e9/native rps - 1e9/livesim rps per test (what a request cost livesim\'s client less)',
          loopback: loop,
          ...perClients,
        },
        ...machine(),
      }
    } finally {
      hold?.release()
      cleanUp(dir, ok)
    }
  },
}

function roundRows(rows: Record<string, CsvRow>): Record<string, CsvRow> {
  const out: Record<string, CsvRow> = {}
  for (const [t, r] of Object.entries(rows)) {
    out[t] = { rps: sig(r.rps, 6), avgMs: ms(r.avgMs), minMs: ms(r.minMs), p50Ms: ms(r.p50Ms), p95Ms: ms(r.p95Ms), p99Ms: ms(r.p99Ms), maxMs: ms(r.maxMs) }
  }
  return out
}

function pickLive(c: LiveComponent): Record<string, unknown> {
  const { log: _log, ...rest } = c
  return rest
}

// ---------------------------------------------------------------------------------------------
// live-redis-slowdown

function slowdownOf(r: SimResults): number {
  return r.wall.seconds / (r.virtualTimeNs / 1e9)
}

export const liveRedisSlowdown: Benchmark = {
  name: 'live-redis-slowdown',
  description: 'wall s per virtual s of examples/redis-live.yaml (live redis-server), vs examples/quickstart.yaml (all modelled)',
  async run(ctx: BenchContext) {
    const example = path.join(EXAMPLES, 'redis-live.yaml')
    if (!existsSync(example)) throw new Error(`${path.relative(ROOT, example)} does not exist: this benchmark runs that example (redis-server live, modelled clients)`)
    ensureDeps()
    const quickstart = path.join(EXAMPLES, 'quickstart.yaml')
    const dir = workDir('redis-slowdown')
    let ok = false
    try {
      const live: CliRun[] = []
      const base: CliRun[] = []
      for (let i = 0; i < ctx.reps; i++) {
        live.push(await runCli(example, mkdtempSync(path.join(dir, 'live-')), 3_600_000))
        base.push(await runCli(quickstart, mkdtempSync(path.join(dir, 'quickstart-')), 600_000))
        note(
          `live-redis-slowdown: redis-live ${live[i]!.results.wall.seconds}s wall for ${live[i]!.results.virtualTimeNs / 1e9}s virtual (${live[i]!.results.sync.barriers} barriers); quickstart ${base[i]!.results.wall.seconds}s for ${base[i]!.results.virtualTimeNs / 1e9}s`,
        )
      }
      const value = best(live.map((c) => slowdownOf(c.results)), 'min')
      const baseline = best(base.map((c) => slowdownOf(c.results)), 'min')
      const r0 = live[0]!.results
      const components: Record<string, unknown> = {}
      for (const [h, host] of Object.entries(r0.hosts)) {
        for (const [name, comp] of Object.entries(host.components) as [string, LiveComponent][]) components[`${h}/${name}`] = comp.kind === 'Live' ? pickLive(comp) : summarizeModelled(comp)
      }
      ok = true
      return {
        name: 'live-redis-slowdown',
        value: sig(value),
        unit: 'wall s / virtual s',
        baseline: sig(baseline),
        ratio: ratio(value, baseline),
        barriers: r0.sync.barriers,
        baselineBarriers: base[0]!.results.sync.barriers,
        lookaheadNs: r0.sync.lookaheadNs,
        causalityViolations: r0.sync.causalityViolations,
        detail: {
          baselineIs: 'examples/quickstart.yaml (9 hosts, all modelled) through the same CLI in the same invocation',
          virtualSeconds: r0.virtualTimeNs / 1e9,
          wallSeconds: live.map((c) => c.results.wall.seconds),
          processSeconds: live.map((c) => sig(c.processSeconds, 4)),
          baselineWallSeconds: base.map((c) => c.results.wall.seconds),
          msPerBarrier: sig((best(live.map((c) => c.results.wall.seconds), 'min') * 1000) / r0.sync.barriers, 4),
          // A leader barrier spans several quanta when one runtime carries every host (sync/windows.ts).
          msPerQuantum: sig((best(live.map((c) => c.results.wall.seconds), 'min') * 1000) / Math.max(...Object.values(r0.hosts).map((v) => Number(v.live?.quanta ?? 0)), 1), 4),
          live: r0.live,
          hostsLive: Object.fromEntries(Object.entries(r0.hosts).flatMap(([h, v]) => (v.live ? [[h, v.live]] : []))),
          components,
          ...stats(live.map((c) => slowdownOf(c.results)), base.map((c) => slowdownOf(c.results)), 'min'),
        },
        ...machine(),
      }
    } finally {
      cleanUp(dir, ok)
    }
  },
}

function summarizeModelled(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of ['kind', 'sent', 'completed', 'errors', 'timeouts', 'latency']) if (k in c) out[k] = c[k]
  return out
}

export const liveRedisBenches: Benchmark[] = [liveRedisFidelity, liveRedisSlowdown]

// Modelled HTTP clients and modelled Servers in front of live programs, in whole runs: a live nginx
// (Debian's package) behind simulated links, the web-stack example (nginx in front of memcached), and
// a modelled Server whose calls reach a live nginx and a live redis-server. Latencies are virtual
// time: a client's latency is the links it crosses plus the time the servers took, as the
// simulation measured it at the servers. Needs libfaketime, redis-server (ensureLiveDeps), nginx and
// memcached (hack/live-deps.sh installs them; CI runs it): without nginx these tests are skipped,
// saying so in their names.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSimCluster } from '../../sim-runtime/api/validate.ts'
import { which } from '../../sim-runtime/live/spawn.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'
import { manifest, root, runProcesses } from '../helpers.ts'
import { ensureLiveDeps, skipTitle } from './helpers.ts'

const NGINX = which('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined)
const noNginx = NGINX ? undefined : 'nginx is not installed (hack/live-deps.sh installs it)'
const noMemcached = noNginx ?? (which('memcached') ? undefined : 'memcached is not installed (hack/live-deps.sh installs it)')

/** A live nginx on host `web` answering every request with 200 "hello" (404 under /missing). */
function nginxHost(): string {
  const conf = [
    'daemon off;',
    'master_process off;',
    'pid nginx.pid;',
    'error_log stderr warn;',
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path tmp/${t};`),
    '  keepalive_requests 1000000;',
    '  server {',
    '    listen $(LIVESIM_BIND_ADDR):8080;',
    '    location /missing { return 404; }',
    '    location / { return 200 "hello"; }',
    '  }',
    '}',
  ].join('\n')
  return `    - name: web
      components:
        - name: nginx
          live:
            command: [sh, -c, 'mkdir -p tmp && printf "%s" "$NGINX_CONF" > nginx.conf && exec ${NGINX} -p "$PWD/" -c nginx.conf -e stderr']
            env: [{ name: NGINX_CONF, value: ${JSON.stringify(conf)} }]
            ports: [{ name: http, port: 8080 }]`
}

type Summary = { count: number; meanNs: number; p50Ns: number; maxNs: number }
type ClientResults = { completed: number; errors: number; timeouts: number; status: Record<string, number>; latency: Summary; latencyByStatusClass: Record<string, Summary> }
const client = (r: SimResults, host: string) => r.hosts[host]!.components.load as ClientResults
/**
 * How far a server's mean response time may be from its clients' (less their links) because of
 * `extra` replies it sent that no client received before the end of the run: each moves its mean by
 * at most its max / count. Plus 2 µs for the rounding of the means.
 */
const meanSlackNs = (extra: number, s: Summary & { maxNs: number }) => 2_000 + (Math.max(extra, 0) * s.maxNs) / s.count
const live = (r: SimResults, host: string, comp: string) => r.hosts[host]!.components[comp] as { requests: number; replies: number; errors: number; bytesIn: number; unstampedBytes: number; response: Summary }

describe('modelled HTTP in front of live programs', () => {
  let work: string
  beforeAll(() => {
    ensureLiveDeps()
    work = mkdtempSync(path.join(tmpdir(), 'livesim-web-test-'))
  })
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  /**
   * Acceptance: over a link of L each way, a modelled HTTP client's latency is 2L plus the server's
   * time, which the runtime measures at the server (delivery of each request to the write of its
   * reply's last byte). Two client groups behind links of 100 µs and 300 µs share one nginx (GET
   * and POST): the same server time, latencies 400 µs apart. Tolerance: 10 µs of virtual time (the p50s come from
   * histograms with < 0.4 % error, over slightly different request sets: the server's covers both
   * groups; measured: 0.5 and 1.1 µs). The means are exact: they differ only by the replies the
   * clients had not received when the run ended (meanSlackNs; measured: 0.4 µs apart).
   */
  it.skipIf(noNginx)(skipTitle('a modelled HTTP client sees 2 × link latency + the server time of a live nginx', noNginx), async () => {
    const m = manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: web-latency }
spec:
  endTime: 40ms
  seed: 5
  network:
    default: { latency: 100us, bandwidth: 100Gbps }    # a 2 KiB POST takes 0.2 µs to serialise
    links: [{ from: far, to: web, latency: 300us }]
  hosts:
${nginxHost()}
    - name: near
      components:
        - name: load
          model: { kind: Client, target: web/nginx:http, closedLoop: { users: 2, thinkTime: 200us }, http: { paths: [/a, /missing] }, timeout: 20ms }
    - name: far
      components:
        - name: load
          model: { kind: Client, target: web/nginx, closedLoop: { users: 2, thinkTime: 200us }, http: { method: POST, path: /b, bodySize: 2KiB, headers: [{ name: Content-Type, value: application/json }] }, timeout: 20ms }
`)
    const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, 'latency') }) })
    const server = live(r, 'web-0', 'nginx')
    const near = client(r, 'near-0')
    const far = client(r, 'far-0')
    for (const c of [near, far]) {
      expect(c.errors).toBe(0)
      expect(c.timeouts).toBe(0)
      expect(c.completed).toBeGreaterThan(20)
    }
    // Status codes are counted per code, latency per class.
    expect(Object.keys(near.status)).toEqual(['200', '404'])
    expect(near.status['200']! + near.status['404']!).toBe(near.completed)
    expect(far.status).toEqual({ '200': far.completed })
    // The far client POSTs 2 KiB bodies: nginx read them all.
    expect(server.bytesIn).toBeGreaterThan(far.completed * 2048)
    expect(near.latencyByStatusClass['4xx']!.count).toBe(near.status['404'])
    // Every reply was stamped with the time nginx wrote it (at most the 4 users' last requests unanswered).
    expect(server.unstampedBytes).toBe(0)
    expect(server.requests - server.replies).toBeLessThanOrEqual(4)
    expect(server.response.count).toBe(server.replies)
    // A static reply takes nginx some µs of virtual time (measured: p50 18-22 µs); replies stamped
    // when the runtime read them instead of when nginx wrote them measured 69 µs.
    expect(server.response.p50Ns).toBeGreaterThan(0)
    expect(server.response.p50Ns).toBeLessThan(50_000)
    for (const [c, linkNs] of [[near, 100_000], [far, 300_000]] as const) {
      expect(Math.abs(c.latency.p50Ns - (2 * linkNs + server.response.p50Ns)), `p50 ${c.latency.p50Ns} vs 2 × ${linkNs} + ${server.response.p50Ns}`).toBeLessThanOrEqual(10_000)
    }
    // The means (exact) of all requests: the clients' together against the server's.
    const meanNs = (near.latency.meanNs * near.completed + far.latency.meanNs * far.completed - 2 * (100_000 * near.completed + 300_000 * far.completed)) / (near.completed + far.completed)
    const extra = server.replies - near.completed - far.completed
    expect(Math.abs(meanNs - server.response.meanNs), `client means less links ${meanNs} vs the server's ${server.response.meanNs}`).toBeLessThanOrEqual(meanSlackNs(extra, server.response))
    expect(r.sync.causalityViolations).toBe(0)
  }, 180_000)

  it.skipIf(noMemcached)(skipTitle('runs the web-stack example: nginx answers cached pages 200 and others 404 from a live memcached', noMemcached), async () => {
    const text = readFileSync(path.join(root, 'examples', 'web-stack.yaml'), 'utf8').replace('endTime: 200ms', 'endTime: 40ms')
    const m = { ...loadSimCluster(text, { baseDir: path.join(root, 'examples') }), baseDir: path.join(root, 'examples') }
    const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, 'stack') }) })
    expect((r.hosts['cache-0']!.components.fill as { exitCode: number }).exitCode).toBe(0)
    const nginx = live(r, 'web-0', 'nginx')
    let ok = 0
    let missing = 0
    for (const h of ['client-0', 'client-1']) {
      const c = client(r, h)
      expect(c.errors).toBe(0)
      expect(Object.keys(c.status).sort()).toEqual(['200', '404'])
      ok += c.status['200']!
      missing += c.status['404']!
      // Four link crossings of 100 µs: client → nginx → memcached and back.
      expect(c.latency.p50Ns).toBeGreaterThanOrEqual(400_000)
      expect(c.latencyByStatusClass['2xx']!.count).toBe(c.status['200'])
    }
    // Pages 0-5 are in the cache, 6-9 are not: about 60 % hits (the paths are drawn at random).
    expect(ok / (ok + missing)).toBeGreaterThan(0.45)
    expect(ok / (ok + missing)).toBeLessThan(0.75)
    // nginx's time includes its round trip to memcached over the 100 µs link.
    expect(nginx.response.p50Ns).toBeGreaterThanOrEqual(200_000)
    expect(nginx.unstampedBytes).toBe(0)
  }, 180_000)

  /**
   * A modelled Server in front of live programs: each request takes 50 µs of service, then a call to
   * nginx over HTTP and a call to redis-server, each holding the worker until the program's reply.
   * The client's mean latency is exactly the sum of its parts: 2 × 100 µs to the server, 50 µs, and
   * per call 2 × 100 µs plus the program's mean response time (as its runtime measured it).
   */
  it.skipIf(noNginx)(skipTitle('a modelled Server whose calls reach a live nginx and a live redis-server holds its worker until their replies', noNginx), async () => {
    const m = manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: web-calls }
spec:
  endTime: 40ms
  seed: 9
  network: { default: { latency: 100us } }
  hosts:
${nginxHost()}
    - name: db
      components:
        - name: redis
          live: { command: [redis-server, --bind, $(LIVESIM_BIND_ADDR), --port, "6379", --save, "", --appendonly, "no"], ports: [{ name: redis, port: 6379 }] }
    - name: app
      components:
        - name: api
          model:
            kind: Server
            workers: 2
            service: { distribution: Constant, mean: 50us }
            calls:
              - { target: web/nginx:http, http: { path: /render }, timeout: 20ms }
              - { target: db/redis, redis: { setRatio: 0.5, keys: 100 }, timeout: 20ms }
    - name: c
      components:
        - name: load
          model: { kind: Client, target: app/api, closedLoop: { users: 2, thinkTime: 100us }, timeout: 30ms }
`)
    const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, 'calls') }) })
    const c = r.hosts['c-0']!.components.load as { completed: number; errors: number; latency: Summary }
    const api = r.hosts['app-0']!.components.api as { completed: number; errors: number; callStatus: Record<string, number>; response: Summary }
    const nginx = live(r, 'web-0', 'nginx')
    const redis = live(r, 'db-0', 'redis')
    expect(c.errors).toBe(0)
    expect(api.errors).toBe(0)
    expect(c.completed).toBeGreaterThan(20)
    // One Redis call after each page; at the end, each of the 2 workers may be between the two.
    expect(Object.keys(api.callStatus)).toEqual(['200'])
    expect(nginx.replies - api.callStatus['200']!).toBeGreaterThanOrEqual(0)
    expect(nginx.replies - api.callStatus['200']!).toBeLessThanOrEqual(2)
    expect(nginx.replies - redis.replies).toBeGreaterThanOrEqual(0)
    expect(nginx.replies - redis.replies).toBeLessThanOrEqual(2)
    // The worker is held through both calls: the server's response time covers them.
    expect(api.response.meanNs).toBeGreaterThanOrEqual(50_000 + 4 * 100_000)
    const expectedNs = 2 * 100_000 + 50_000 + (2 * 100_000 + nginx.response.meanNs) + (2 * 100_000 + redis.response.meanNs)
    // Exact but for the last requests of the run, which the programs answered and the client had not
    // yet received (measured: 1.5 µs apart).
    const slackNs = meanSlackNs(nginx.replies - c.completed, nginx.response) + meanSlackNs(redis.replies - c.completed, redis.response)
    expect(Math.abs(c.latency.meanNs - expectedNs), `client mean ${c.latency.meanNs} vs ${expectedNs}`).toBeLessThanOrEqual(slackNs)
    expect(r.sync.causalityViolations).toBe(0)
  }, 180_000)
})

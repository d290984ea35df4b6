// Modelled requests to live programs on the program's host (sim-runtime/live/modelled.ts), against
// real servers on loopback without cells: connections per sender (own and pooled), keep-alive and
// close, status codes in the replies' tags, 5xx and malformed replies as errors, lost connections.
// Also the request side (protocols/requests.ts, live-tag.ts).
import http from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSimCluster } from '../../sim-runtime/api/validate.ts'
import { MSG_ERROR, MSG_REQUEST, MSG_RESPONSE, newMessage, type Message } from '../../sim-runtime/engine/message.ts'
import { Histogram } from '../../sim-runtime/engine/histogram.ts'
import { Rng } from '../../sim-runtime/engine/rng.ts'
import { ModelledRequests, type ReplyOut, type RequestStats } from '../../sim-runtime/live/modelled.ts'
import { liveTag, PROTO_HTTP, PROTO_REDIS, readLiveTag, statusClass } from '../../sim-runtime/protocols/live-tag.ts'
import { liveRequests } from '../../sim-runtime/protocols/requests.ts'
import { silent } from '../helpers.ts'

describe('live tags', () => {
  it('round-trip port, protocol and connection (own or pool), and name status classes', () => {
    for (const [port, proto, connection] of [
      [80, PROTO_HTTP, -1],
      [6379, PROTO_REDIS, 0],
      [65535, PROTO_HTTP, 999_999],
      [1, PROTO_REDIS, 2 ** 32 - 1],
    ] as const) {
      const tag = liveTag(port, proto, connection)
      expect(Number.isSafeInteger(tag)).toBe(true)
      expect(readLiveTag(tag)).toEqual({ port, proto, connection })
    }
    expect(() => liveTag(0, PROTO_HTTP, 0)).toThrow(/out of range/)
    expect(() => liveTag(80, 7, 0)).toThrow(/out of range/)
    expect([statusClass(200), statusClass(404), statusClass(503)]).toEqual(['2xx', '4xx', '5xx'])
  })
})

const CLUSTER = `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: req }
spec:
  endTime: 1s
  hosts:
    - name: web
      replicas: 2
      components:
        - name: nginx
          live: { command: [nginx], ports: [{ name: admin, port: 9000 }, { name: http, port: 8080 }] }
    - name: c
      components:
        - name: load
          model: { kind: Client, target: web/nginx:http, closedLoop: { users: 1 }, http: { paths: [/a, /b, /c] } }
`

describe('requests of a modelled component (protocols/requests.ts)', () => {
  const { plan } = loadSimCluster(CLUSTER)
  const from = plan.hostIndex.get('c-0')!

  it('sends HTTP requests to the port the target names, with each replica as Host, over the seeded paths', () => {
    const reqs = liveRequests(plan, from, 'web/nginx:http', { http: { paths: ['/a', '/b', '/c'] } }, (n) => new Rng(1, n))!
    const web1 = plan.hostIndex.get('web-1')!
    const lines = Array.from({ length: 60 }, () => reqs.next(web1).toString('latin1'))
    expect(new Set(lines.map((l) => l.split(' ')[1]))).toEqual(new Set(['/a', '/b', '/c']))
    expect(lines[0]).toMatch(/^GET \/[abc] HTTP\/1\.1\r\nHost: web-1:8080\r\n/)
    expect(readLiveTag(reqs.tag(3))).toEqual({ port: 8080, proto: PROTO_HTTP, connection: 3 })
    expect(reqs.openLoopConnection).toBe(-1)
    // The same seed draws the same paths.
    const again = liveRequests(plan, from, 'web/nginx:http', { http: { paths: ['/a', '/b', '/c'] } }, (n) => new Rng(1, n))!
    expect(Array.from({ length: 60 }, () => again.next(web1).toString('latin1'))).toEqual(lines)
  })

  it('sends Redis commands to the first port without a :port, pipelining an open loop on one connection', () => {
    const reqs = liveRequests(plan, from, 'web/nginx', { redis: { setRatio: 1, keys: 3, valueSize: 2 } }, (n) => new Rng(1, n))!
    expect(reqs.next(0).toString('latin1')).toMatch(/^\*3\r\n\$3\r\nSET\r\n\$5\r\nkey:[012]\r\n\$2\r\nxx\r\n$/)
    expect(readLiveTag(reqs.tag(reqs.openLoopConnection))).toEqual({ port: 9000, proto: PROTO_REDIS, connection: 0 })
    expect(liveRequests(plan, from, 'web/nginx', {}, (n) => new Rng(1, n))).toBeUndefined()
  })
})

describe('modelled requests on the program host (live/modelled.ts)', () => {
  let server: http.Server
  let raw: net.Server
  let port = 0
  let rawPort = 0
  let accepted = 0
  /** What the raw server answers to each request line it reads. */
  let rawReply = (_line: string) => ''

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const code = Number(req.url!.slice(1)) || 200
      res.writeHead(code, { 'Content-Length': 2 }).end('ok')
    })
    server.on('connection', () => accepted++)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as net.AddressInfo).port
    raw = net.createServer((sock) => {
      sock.on('data', (d: Buffer) => {
        const out = rawReply(d.toString('latin1').split('\r\n')[0]!)
        if (out === 'CLOSE') sock.destroy()
        else if (out) sock.write(out)
      })
    })
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
    rawPort = (raw.address() as net.AddressInfo).port
  })
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()))
    await new Promise<void>((r) => raw.close(() => r()))
  })

  const host = { index: 0, name: 'web-0', bindAddr: '127.0.0.1', stamps: undefined, virtualNowNs: () => 5_000 }
  const newStats = (): RequestStats & { response: Histogram } => ({ connections: 0, bytesIn: 0, bytesOut: 0, requests: 0, replies: 0, errors: 0, unstampedBytes: 0, response: new Histogram() })
  const ctx = { sendAt: () => {} }

  function request(id: number, path: string, p: number, connection: number, keepAlive = true): Message {
    const m = newMessage(MSG_REQUEST, 0, 0, id, 0)
    m.srcHost = 1
    m.srcComp = 2
    m.payload = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n${keepAlive ? '' : 'Connection: close\r\n'}\r\n`, 'latin1')
    m.tag = liveTag(p, PROTO_HTTP, connection)
    return m
  }

  /** Collect replies until `n` have come (each collect is one quantum's end, at floor 1000). */
  async function replies(reqs: ModelledRequests, n: number): Promise<ReplyOut[]> {
    const out: ReplyOut[] = []
    for (let k = 0; k < 500 && out.length < n; k++) {
      await new Promise((r) => setTimeout(r, 5))
      reqs.collect(host, 1000, out)
    }
    return out
  }

  it('answers each request with its status in the tag, 5xx as an error, on one kept-alive connection per own connection', async () => {
    const reqs = new ModelledRequests(silent)
    const st = newStats()
    accepted = 0
    const got: ReplyOut[] = []
    for (const [i, path] of ['/200', '/404', '/503', '/200'].entries()) {
      reqs.request(host, ctx, st, request(i + 1, path, port, 0), 1_000)
      got.push(...(await replies(reqs, 1)))
    }
    expect(got.map((r) => [r.msg.id, r.msg.type, r.msg.tag, r.msg.dstHost, r.msg.dstComp])).toEqual([
      [1, MSG_RESPONSE, 200, 1, 2],
      [2, MSG_RESPONSE, 404, 1, 2],
      [3, MSG_ERROR, 503, 1, 2],
      [4, MSG_RESPONSE, 200, 1, 2],
    ])
    // No write stamps here: each reply goes with the time it was read (never before the floor).
    expect(got.every((r) => r.at === 5_000)).toBe(true)
    expect(st).toMatchObject({ connections: 1, requests: 4, replies: 4, errors: 1 })
    // Delivered at 1000, answered (read) at 5000: the server's time of each.
    expect(st.response.summary()).toMatchObject({ count: 4, p50Ns: 4_000, maxNs: 4_000 })
    expect(st.unstampedBytes).toBeGreaterThan(0)
    expect(accepted).toBe(1)
    reqs.close()
  })

  it('takes an idle pooled connection or opens one per request in flight, and a new one after Connection: close', async () => {
    const reqs = new ModelledRequests(silent)
    const st = newStats()
    accepted = 0
    for (let i = 1; i <= 3; i++) reqs.request(host, ctx, st, request(i, '/200', port, -1), 1_000)
    expect(await replies(reqs, 3)).toHaveLength(3)
    expect(st.connections).toBe(3) // three in flight at once
    for (let i = 4; i <= 6; i++) {
      reqs.request(host, ctx, st, request(i, '/200', port, -1), 1_000)
      expect(await replies(reqs, 1)).toHaveLength(1)
    }
    expect(st.connections).toBe(3) // one at a time: idle ones reused
    for (let i = 7; i <= 8; i++) {
      reqs.request(host, ctx, st, request(i, '/200', port, 0, false), 1_000)
      expect((await replies(reqs, 1)).map((r) => r.msg.tag)).toEqual([200])
    }
    expect(st.connections).toBe(5) // keepAlive false: a connection per request
    expect(st.errors).toBe(0)
    reqs.close()
  })

  it('fails the waiting requests when a reply is malformed or the connection is lost, and carries on with a new connection', async () => {
    const reqs = new ModelledRequests(silent)
    const st = newStats()
    rawReply = (line) => (line.includes('/bad') ? 'HTTP/1.1 two hundred\r\n\r\n' : line.includes('/drop') ? 'CLOSE' : 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
    reqs.request(host, ctx, st, request(1, '/bad', rawPort, 0), 1_000)
    expect((await replies(reqs, 1)).map((r) => [r.msg.id, r.msg.type, r.msg.tag])).toEqual([[1, MSG_ERROR, 0]])
    reqs.request(host, ctx, st, request(2, '/drop', rawPort, 0), 1_000)
    expect((await replies(reqs, 1)).map((r) => [r.msg.id, r.msg.type])).toEqual([[2, MSG_ERROR]])
    reqs.request(host, ctx, st, request(3, '/ok', rawPort, 0), 1_000)
    expect((await replies(reqs, 1)).map((r) => [r.msg.id, r.msg.type, r.msg.tag])).toEqual([[3, MSG_RESPONSE, 200]])
    expect(st).toMatchObject({ connections: 3, requests: 3, replies: 1, errors: 2 })
    reqs.close()
  })

  it('answers a request without a protocol with an error at once', () => {
    const reqs = new ModelledRequests(silent)
    const st = newStats()
    const sent: Message[] = []
    const m = request(9, '/', port, 0)
    m.tag = 80 // no protocol
    reqs.request(host, { sendAt: (msg) => sent.push(msg) }, st, m, 1_000)
    expect(sent.map((x) => [x.id, x.type])).toEqual([[9, MSG_ERROR]])
    expect(st.errors).toBe(1)
  })
})

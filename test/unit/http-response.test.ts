// The HTTP/1.1 codec of the runtime's HTTP adapter (sim-runtime/protocols/http-response.ts and
// http-request.ts): response boundaries in byte streams split anywhere, pipelining, chunked bodies,
// keep-alive and close, malformed input, and a real HTTP server (node:http) on both sides.
import http from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpParseError, MAX_HEAD_BYTES, ResponseParser, type ParsedResponse } from '../../sim-runtime/protocols/http-response.ts'
import { encodeRequest } from '../../sim-runtime/protocols/http-request.ts'

const b = (s: string) => Buffer.from(s, 'latin1')

/** A response of a test stream: its bytes, status, and whether the connection stays open after it. */
interface Resp {
  text: string
  status: number
  keepAlive?: boolean
}

/** Push `stream` cut at `cuts` (sorted offsets), then end() if asked; every completed response with its end in the stream. */
function feed(stream: Buffer, cuts: number[], end = false, parser = new ResponseParser()): ParsedResponse[] {
  const out: ParsedResponse[] = []
  let prev = 0
  for (const cut of [...cuts, stream.length]) {
    for (const r of parser.scan(stream.subarray(prev, cut))) out.push({ ...r, end: prev + r.end })
    prev = cut
    expect(sumLengths(out) + parser.partialBytes).toBe(parser.bytesPushed)
  }
  if (end) for (const r of parser.scanEnd()) out.push({ ...r, end: stream.length })
  return out
}

const sumLengths = (rs: ParsedResponse[]) => rs.reduce((s, r) => s + r.bytes, 0)

function expected(rs: Resp[]): ParsedResponse[] {
  let end = 0
  return rs.map((r) => {
    end += Buffer.byteLength(r.text, 'latin1')
    return { status: r.status, bytes: Buffer.byteLength(r.text, 'latin1'), end, keepAlive: r.keepAlive ?? true }
  })
}

const concat = (rs: Resp[]) => b(rs.map((r) => r.text).join(''))

/** Keep-alive responses of every framing, as a pipelined stream. */
const PIPELINE: Resp[] = [
  { text: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello', status: 200 },
  { text: 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', status: 404 },
  { text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n', status: 200 },
  { text: 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n', status: 200 },
  { text: 'HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n', status: 204 }, // 204: no body, whatever the header says
  { text: 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', status: 304 },
  { text: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok', status: 201 }, // interim 1xx belongs to the final response
  { text: 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\nX-Folded: a\r\n  b\r\n\r\nerr', status: 500 }, // obs-fold
  { text: 'HTTP/1.1 200\r\nContent-Length: 4\r\n\r\n\r\n\r\n', status: 200 }, // no reason phrase; CRLFs inside a body
  { text: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx', status: 200 },
  { text: 'HTTP/1.1 302 Found\nLocation: /x\nContent-Length: 0\n\n', status: 302 }, // bare LF line endings
  { text: 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc', status: 200 }, // repeated, equal
  { text: 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy', status: 503, keepAlive: false },
]

describe('ResponseParser', () => {
  it('finds every response of a pipelined stream pushed in one chunk, with status, length and keep-alive', () => {
    const stream = concat(PIPELINE)
    expect(feed(stream, [])).toEqual(expected(PIPELINE))
  })

  it('gives the same responses whatever byte the stream is split at', () => {
    const stream = concat(PIPELINE)
    const want = expected(PIPELINE)
    for (let cut = 1; cut < stream.length; cut++) expect(feed(stream, [cut]), `split at ${cut}`).toEqual(want)
  })

  it('gives the same responses fed one byte at a time, and in random cuts', () => {
    const stream = concat(PIPELINE)
    const want = expected(PIPELINE)
    expect(feed(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1))).toEqual(want)
    let seed = 7
    for (let round = 0; round < 50; round++) {
      const cuts = new Set<number>()
      for (let k = 0; k < 6; k++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        cuts.add(1 + (seed % (stream.length - 1)))
      }
      const sorted = [...cuts].sort((x, y) => x - y)
      expect(feed(stream, sorted), `cuts ${sorted.join(',')}`).toEqual(want)
    }
  })

  it('ends a body without Content-Length or chunking at the close, split anywhere', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the server closes\r\n'
    const stream = b(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx${text}`)
    const want = [
      { status: 200, bytes: 39, end: 39, keepAlive: true },
      { status: 200, bytes: text.length, end: stream.length, keepAlive: false },
    ]
    for (let cut = 1; cut < stream.length; cut++) expect(feed(stream, [cut], true), `split at ${cut}`).toEqual(want)
  })

  it('closes after a response that says so, after HTTP/1.0 without keep-alive, and after a non-chunked Transfer-Encoding', () => {
    const cases: [string, boolean][] = [
      ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', true],
      ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: upgrade\r\n\r\n', true],
      ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', false],
      // both framing headers: chunked wins, and the connection is not reused (request smuggling)
      ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', false],
    ]
    for (const [text, keepAlive] of cases) {
      const p = new ResponseParser()
      expect(p.scan(b(text)), text).toEqual([expect.objectContaining({ keepAlive, bytes: text.length })])
      expect(p.closed).toBe(!keepAlive)
    }
    const p = new ResponseParser()
    expect(p.scan(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc'))).toEqual([])
    expect(p.scanEnd()).toEqual([{ status: 200, bytes: 47, end: 0, keepAlive: false }])
  })

  it('reads no body after a HEAD request, when told of the requests', () => {
    const p = new ResponseParser()
    p.sent('HEAD')
    p.sent('GET')
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'
    const get = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'
    expect(p.scan(b(head + get)).map((r) => r.bytes)).toEqual([head.length, get.length])
  })

  it('counts a 5xx as a response, keeps partial bytes across chunks, and handles large bodies by arithmetic', () => {
    const p = new ResponseParser()
    const body = Buffer.alloc(5_000_000, 0x0a)
    const head = b(`HTTP/1.1 502 Bad Gateway\r\nContent-Length: ${body.length}\r\n\r\n`)
    expect(p.push(head)).toBe(0)
    expect(p.partialBytes).toBe(head.length)
    expect(p.push(body.subarray(0, 1_000_000))).toBe(0)
    expect(p.push(body.subarray(1_000_000))).toBe(1)
    expect([p.status[0], p.lengths[0], p.keepAlive[0]]).toEqual([502, head.length + body.length, 1])
    expect(p.completed).toBe(1)
  })

  it('reports many responses from one chunk (more than its first output arrays hold)', () => {
    const one = 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx'
    const p = new ResponseParser()
    expect(p.push(b(one.repeat(100)))).toBe(100)
    expect(p.ends[99]).toBe(one.length * 100)
    expect(p.status[57]).toBe(200)
  })

  const MALFORMED: [string, string, RegExp][] = [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n', /expected a status line "HTTP\/1\.x NNN reason", got "SSH-2\.0-OpenSSH" at byte 16/],
    ['HTTP/2 status line', 'HTTP/2 200 OK\r\n\r\n', /expected a status line/],
    ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', /expected a status line/],
    ['status below 100', 'HTTP/1.1 099 Odd\r\n\r\n', /status code 099 is not a valid status/],
    ['space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx', /invalid header field name "Content-Length " \(no whitespace is allowed before the colon\)/],
    ['header without colon', 'HTTP/1.1 200 OK\r\nnonsense\r\n\r\n', /header line without a colon: "nonsense"/],
    ['fold before any header', 'HTTP/1.1 200 OK\r\n folded\r\n\r\n', /whitespace before the first header field/],
    ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length "-1"/],
    ['non-numeric Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n', /invalid Content-Length "1e3"/],
    ['huge Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n', /invalid Content-Length/],
    ['conflicting Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy', /conflicting Content-Length values \(1 and 2\)/],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /invalid chunk-size line "zz"/],
    ['chunk size too large', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n', /invalid chunk-size line/],
    ['chunk longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', /expected CRLF after a chunk's data, got byte 0x63 \(wrong chunk size\?\)/],
    ['bare CR in a header', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n', /bare CR inside a line/],
    ['bytes after a closing response', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n', /data after a response that closed the connection at byte 57/],
    ['a head section without end', `HTTP/1.1 200 OK\r\n${'X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(3000)}`, new RegExp(`head section longer than ${MAX_HEAD_BYTES} bytes`)],
    ['one endless header line', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`, /head section longer than/],
    ['an endless chunk-size line', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}`, /chunk-size line longer than 4096 bytes/],
  ]

  it.each(MALFORMED)('refuses %s with the reason and the offset, at any split, and stays failed', (_name, text, message) => {
    const stream = b(text)
    for (const cut of [0, 1, Math.floor(stream.length / 2), stream.length - 1]) {
      const p = new ResponseParser()
      let err: unknown
      try {
        feed(stream, cut > 0 ? [cut] : [], false, p)
      } catch (e) {
        err = e
      }
      expect(err, `split at ${cut}`).toBeInstanceOf(HttpParseError)
      expect((err as Error).message).toMatch(message)
      expect((err as HttpParseError).offset).toBeLessThanOrEqual(stream.length)
      expect(() => p.push(b('HTTP/1.1 200 OK\r\n\r\n'))).toThrow(err as Error)
      expect(p.partialBytes).toBe(0)
    }
  })

  it('refuses a close in the middle of a response, but not between responses', () => {
    const cut = ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'HTTP/1.1 200 O', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'HTTP/1.1 100 Continue\r\n\r\n']
    for (const text of cut) {
      const p = new ResponseParser()
      p.push(b(text))
      expect(() => p.end(), text).toThrow(/the connection closed in the middle of a response \(\d+ bytes of it received\)/)
    }
    const p = new ResponseParser()
    expect(p.push(b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n'))).toBe(1)
    expect(p.end()).toBe(0)
    expect(p.closed).toBe(true)
  })
})

describe('encodeRequest', () => {
  it('writes a GET with Host and User-Agent, and a POST with its body, type and length', () => {
    expect(encodeRequest({ method: 'GET', path: '/a?b=1', host: 'web-0' }).toString('latin1')).toBe('GET /a?b=1 HTTP/1.1\r\nHost: web-0\r\nUser-Agent: livesim\r\n\r\n')
    const post = encodeRequest({ method: 'POST', path: '/api', host: 'web-0:8080', headers: [{ name: 'Content-Type', value: 'application/json' }, { name: 'X-Id', value: '7' }], bodyBytes: 3, keepAlive: false })
    expect(post.toString('latin1')).toBe('POST /api HTTP/1.1\r\nHost: web-0:8080\r\nUser-Agent: livesim\r\nContent-Type: application/json\r\nX-Id: 7\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxxx')
    expect(encodeRequest({ method: 'GET', path: '/', host: 'h', headers: [{ name: 'Host', value: 'example.com' }] }).toString('latin1')).toBe('GET / HTTP/1.1\r\nUser-Agent: livesim\r\nHost: example.com\r\n\r\n')
  })

  it('refuses headers that would contradict the framing, and header injection', () => {
    expect(() => encodeRequest({ method: 'GET', path: '/', host: 'h', headers: [{ name: 'content-length', value: '1' }] })).toThrow(/header content-length is set by livesim/)
    expect(() => encodeRequest({ method: 'GET', path: '/', host: 'h', headers: [{ name: 'X', value: 'a\r\nInjected: 1' }] })).toThrow(/malformed/)
  })
})

describe('against a real HTTP server (node:http)', () => {
  let server: http.Server
  let port = 0
  const seen: { method: string; url: string; host: string; bodyBytes: number; connection: string }[] = []

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let bodyBytes = 0
      req.on('data', (c: Buffer) => (bodyBytes += c.length))
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, host: req.headers.host ?? '', bodyBytes, connection: req.headers.connection ?? '' })
        if (req.url === '/chunked') {
          res.write('a'.repeat(1000))
          res.write('b'.repeat(3000))
          res.end()
        } else if (req.url === '/missing') {
          res.writeHead(404, { 'Content-Length': 9 }).end('not found')
        } else {
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`${req.method} ${bodyBytes}`)
        }
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as net.AddressInfo).port
  })
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  /** Send `requests` pipelined on one connection; parse what comes back until `want` responses (or the close). */
  function exchange(requests: Buffer[], want: number): Promise<ParsedResponse[]> {
    return new Promise((resolve, reject) => {
      const p = new ResponseParser()
      const got: ParsedResponse[] = []
      const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(Buffer.concat(requests)))
      sock.on('data', (chunk: Buffer) => {
        try {
          got.push(...p.scan(chunk))
        } catch (err) {
          reject(err as Error)
        }
        if (got.length >= want) {
          sock.destroy()
          resolve(got)
        }
      })
      sock.on('end', () => {
        got.push(...p.scanEnd())
        resolve(got)
      })
      sock.on('error', reject)
    })
  }

  it('parses its pipelined keep-alive responses (chunked, Content-Length, 404) and it parses our requests', async () => {
    const req = (method: string, path: string, bodyBytes = 0) => encodeRequest({ method, path, host: `127.0.0.1:${port}`, bodyBytes })
    seen.length = 0
    const got = await exchange([req('GET', '/chunked'), req('POST', '/upload', 100_000), req('GET', '/missing'), req('GET', '/')], 4)
    expect(got.map((r) => [r.status, r.keepAlive])).toEqual([
      [200, true],
      [200, true],
      [404, true],
      [200, true],
    ])
    expect(got[0]!.bytes).toBeGreaterThan(4000) // both chunks, with their framing
    expect(seen).toEqual([
      { method: 'GET', url: '/chunked', host: `127.0.0.1:${port}`, bodyBytes: 0, connection: '' },
      { method: 'POST', url: '/upload', host: `127.0.0.1:${port}`, bodyBytes: 100_000, connection: '' },
      { method: 'GET', url: '/missing', host: `127.0.0.1:${port}`, bodyBytes: 0, connection: '' },
      { method: 'GET', url: '/', host: `127.0.0.1:${port}`, bodyBytes: 0, connection: '' },
    ])
  })

  it('sees the server close after a request that asked for it', async () => {
    const got = await exchange([encodeRequest({ method: 'GET', path: '/', host: 'x', keepAlive: false })], 2)
    expect(got).toEqual([expect.objectContaining({ status: 200, keepAlive: false })])
  })
})

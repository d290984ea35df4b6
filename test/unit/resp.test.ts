// The RESP2 codec of the Redis protocol adapter (sim-runtime/protocols/resp.ts): message boundaries in
// byte streams split anywhere, pipelining, nesting, errors, malformed input, and a real redis-server.
import { spawn, type ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeCommand, ReplyScanner, RespError } from '../../sim-runtime/protocols/resp.ts'

const root = path.join(import.meta.dirname, '..', '..')

/** A reply of a test stream: its bytes and whether it is an error. */
interface Msg {
  bytes: Buffer
  error?: boolean
}

const b = (s: string) => Buffer.from(s, 'latin1')

/** Push `stream` cut at `cuts` (sorted offsets); return every completed message's (bytes, end-in-stream, error). */
function feed(scanner: ReplyScanner, stream: Buffer, cuts: number[]) {
  const out: { bytes: number; end: number; error: boolean }[] = []
  let prev = 0
  for (const cut of [...cuts, stream.length]) {
    for (const m of scanner.scan(stream.subarray(prev, cut))) out.push({ bytes: m.bytes, end: prev + m.end, error: m.error })
    prev = cut
  }
  return out
}

function expected(msgs: Msg[]) {
  let end = 0
  return msgs.map((m) => {
    end += m.bytes.length
    return { bytes: m.bytes.length, end, error: m.error ?? false }
  })
}

const REPLIES: Msg[] = [
  { bytes: b('+OK\r\n') },
  { bytes: b('-ERR unknown command \'FOO\'\r\n'), error: true },
  { bytes: b(':42\r\n') },
  { bytes: b(':-3\r\n') },
  { bytes: b('$5\r\nhello\r\n') },
  { bytes: b('$0\r\n\r\n') },
  { bytes: b('$-1\r\n') },
  { bytes: b('*-1\r\n') },
  { bytes: b('*0\r\n') },
  { bytes: b('$6\r\na\r\n\r\nb\r\n') }, // CR LF inside a bulk payload
  { bytes: b('*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n') },
  { bytes: b('*2\r\n*2\r\n:1\r\n$1\r\na\r\n*-1\r\n') }, // nested, with a null array inside
  { bytes: b('*3\r\n*0\r\n*1\r\n*1\r\n$-1\r\n-EXECABORT inside\r\n') }, // empty and deep arrays, an error inside
  { bytes: b('-WRONGTYPE Operation against a key holding the wrong kind of value\r\n'), error: true },
  { bytes: b('+\r\n') }, // empty simple string
]

describe('encodeCommand', () => {
  it('writes a RESP array of bulk strings, counting bytes not characters', () => {
    expect(encodeCommand(['SET', 'k', 'v']).toString('latin1')).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n')
    expect(encodeCommand(['GET', 'é']).toString('latin1')).toBe('*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n')
    expect(encodeCommand(['X', Buffer.alloc(0), Buffer.from('0123456789')]).toString('latin1')).toBe('*3\r\n$1\r\nX\r\n$0\r\n\r\n$10\r\n0123456789\r\n')
    expect(() => encodeCommand([])).toThrow(/at least one/)
  })
})

describe('ReplyScanner', () => {
  const stream = Buffer.concat(REPLIES.map((m) => m.bytes))
  const want = expected(REPLIES)

  it('finds every reply in one chunk, with top-level error flags', () => {
    const s = new ReplyScanner()
    expect(feed(s, stream, [])).toEqual(want)
    expect(s.partialBytes).toBe(0)
    expect(s.completed).toBe(REPLIES.length)
    expect(s.bytesPushed).toBe(stream.length)
  })

  it('gives the same boundaries with the stream split at every byte offset, and at every pair of offsets', () => {
    for (let cut = 0; cut <= stream.length; cut++) expect(feed(new ReplyScanner(), stream, [cut])).toEqual(want)
    for (let x = 1; x < stream.length; x++) {
      for (let y = x; y < stream.length; y++) {
        const got = feed(new ReplyScanner(), stream, [x, y])
        if (JSON.stringify(got) !== JSON.stringify(want)) expect({ x, y, got }).toEqual({ x, y, got: want })
      }
    }
  })

  it('handles one byte per push, and reports partial progress', () => {
    const s = new ReplyScanner()
    const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1)
    expect(feed(s, stream, cuts)).toEqual(want)
    const p = new ReplyScanner()
    expect(p.push(b('$10\r\n01234'))).toBe(0)
    expect(p.partialBytes).toBe(10)
    expect(p.inMessage).toBe(true)
    expect(p.push(b('56789\r\n+OK'))).toBe(1)
    expect(p.lengths[0]).toBe(17)
    expect(p.ends[0]).toBe(7)
    expect(p.partialBytes).toBe(3)
  })

  it('counts many pipelined replies in one chunk (typed arrays grow and are reused)', () => {
    const n = 10_000
    const one = b('$3\r\nbar\r\n')
    const s = new ReplyScanner()
    const big = Buffer.concat(Array.from({ length: n }, (_, i) => (i % 7 === 0 ? b('-ERR x\r\n') : one)))
    expect(s.push(big)).toBe(n)
    let errors = 0
    let sum = 0
    for (let i = 0; i < n; i++) {
      errors += s.errors[i]!
      sum += s.lengths[i]!
    }
    expect(errors).toBe(Math.ceil(n / 7))
    expect(sum).toBe(big.length)
    expect(s.ends[n - 1]).toBe(big.length)
    expect(s.push(one)).toBe(1)
    expect(s.lengths[0]).toBe(one.length)
  })

  it('skips large bulk payloads across many chunks', () => {
    const payload = Buffer.alloc(1_000_003, 0x0d) // all \r: must be skipped, not scanned
    const reply = Buffer.concat([b(`*2\r\n$${payload.length}\r\n`), payload, b('\r\n:7\r\n')])
    const s = new ReplyScanner()
    let done = 0
    for (let o = 0; o < reply.length; o += 65536) done += s.push(reply.subarray(o, o + 65536))
    expect(done).toBe(1)
    expect(s.lengths[0]).toBe(reply.length)
  })

  it('agrees with a reference decoder on random nested replies cut at random places', () => {
    let seed = 12345
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const gen = (depth: number): string => {
      switch (rnd(depth > 3 ? 6 : 8)) {
        case 0:
          return `+${'s'.repeat(rnd(5))}\r\n`
        case 1:
          return `-ERR ${'e'.repeat(rnd(5))}\r\n`
        case 2:
          return `:${rnd(2) ? '-' : ''}${rnd(100000)}\r\n`
        case 3: {
          const n = rnd(12)
          return `$${n}\r\n${'\r\n\0x'.repeat(3).slice(0, n)}\r\n`
        }
        case 4:
          return '$-1\r\n'
        case 5:
          return rnd(2) ? '*-1\r\n' : '*0\r\n'
        default: {
          const n = 1 + rnd(4)
          let s = `*${n}\r\n`
          for (let i = 0; i < n; i++) s += gen(depth + 1)
          return s
        }
      }
    }
    for (let round = 0; round < 200; round++) {
      const msgs = Array.from({ length: 1 + rnd(20) }, () => {
        const text = gen(0)
        return { bytes: b(text), error: text.startsWith('-') }
      })
      const stream = Buffer.concat(msgs.map((m) => m.bytes))
      const cuts = Array.from({ length: rnd(10) }, () => rnd(stream.length + 1)).sort((x, y) => x - y)
      const got = feed(new ReplyScanner(), stream, cuts)
      expect(got).toEqual(expected(msgs))
      expect(got).toEqual(referenceReplies(stream))
    }
  })

  it('rejects malformed streams with a clear error, at the right offset, and stays failed', () => {
    const bad: [string, RegExp][] = [
      ['+OK\r\nhello\r\n', /expected a reply type byte \(\+ - : \$ \*\), got 0x68 'h' at byte 5 of the stream/],
      ['$3\r\nabcd\r\n', /expected \\r after a bulk string's payload, got 0x64 'd' \(wrong length\?\) at byte 7/],
      ['$x\r\n', /expected a digit or \\r in a '\$' line, got 0x78 'x' at byte 1/],
      ['$\r\n', /empty number in a '\$' line at byte 1/],
      ['$-2\r\n', /negative length -2 \(only -1, null, is valid\)/],
      ['*-5\r\n', /negative length -5/],
      [':1-2\r\n', /expected a digit or \\r in a ':' line, got 0x2d '-'/],
      ['+OK\rX', /expected \\n after \\r, got 0x58 'X' at byte 4/],
      ['+O\nK\r\n', /bare \\n in a simple string or error line at byte 2/],
      ['$1234567890123456\r\n', /number too long/],
      ['%1\r\n+a\r\n+b\r\n', /RESP3 reply type 0x25 '%' \(only RESP2 is supported: was HELLO 3 sent\?\) at byte 0/],
      ['GET foo\r\n', /expected a reply type byte .* got 0x47 'G' at byte 0/],
    ]
    for (const [text, re] of bad) {
      const s = new ReplyScanner()
      expect(() => s.push(b(text)), text).toThrow(re)
      expect(() => s.push(b('+OK\r\n')), text).toThrow(re) // sticky: a broken stream cannot be resynchronised
    }
    // The offset is in the stream, across pushes.
    const s = new ReplyScanner()
    s.push(b('+OK\r\n$2\r\n'))
    try {
      s.push(b('abc'))
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(RespError)
      expect((err as RespError).offset).toBe(11)
    }
  })
})

/** Independent recursive decoder: the byte length of each complete top-level reply in `buf`. */
function referenceReplies(buf: Buffer): { bytes: number; end: number; error: boolean }[] {
  const line = (o: number) => {
    const e = buf.indexOf('\r\n', o, 'latin1')
    if (e < 0) throw new Error('incomplete')
    return { text: buf.toString('latin1', o + 1, e), next: e + 2 }
  }
  const value = (o: number): number => {
    const t = buf[o]
    const { text, next } = line(o)
    if (t === 0x2b || t === 0x2d || t === 0x3a) return next
    const n = Number(text)
    if (t === 0x24) return n < 0 ? next : next + n + 2
    let p = next
    for (let i = 0; i < n; i++) p = value(p)
    return p
  }
  const out: { bytes: number; end: number; error: boolean }[] = []
  let o = 0
  while (o < buf.length) {
    const e = value(o)
    out.push({ bytes: e - o, end: e, error: buf[o] === 0x2d })
    o = e
  }
  return out
}

describe('against a real redis-server', () => {
  let server: ChildProcess | undefined
  let port = 0

  beforeAll(async () => {
    // hack/live-deps.sh installs redis-server (CI runs it); this test is required, never skipped.
    try {
      execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' })
    } catch {
      execFileSync(path.join(root, 'hack', 'live-deps.sh'), { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 })
    }
    port = await freePort()
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: 'ignore',
    })
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await roundTrip(port, b('PING\r\n'), 1)
        break
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}: ${(err as Error).message}`, { cause: err })
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  })

  afterAll(() => {
    server?.kill('SIGKILL')
  })

  it('counts every reply to a pipeline of all reply types', async () => {
    const big = Buffer.alloc(300_000, 0x0d)
    const commands: Buffer[] = [
      encodeCommand(['FLUSHALL']),
      encodeCommand(['SET', 'k', 'v']), // +OK
      encodeCommand(['GET', 'k']), // bulk
      encodeCommand(['GET', 'missing']), // $-1
      encodeCommand(['INCR', 'n']), // :1
      encodeCommand(['INCR', 'k']), // -ERR not an integer
      encodeCommand(['NOSUCHCOMMAND', 'x']), // -ERR unknown command
      encodeCommand(['RPUSH', 'l', 'a', 'b', 'c']),
      encodeCommand(['LRANGE', 'l', '0', '-1']), // array of bulks
      encodeCommand(['LRANGE', 'nothing', '0', '-1']), // *0
      encodeCommand(['BLPOP', 'nothing', '0.01']), // *-1 after 10 ms
      encodeCommand(['XADD', 's', '1-1', 'f', 'v']),
      encodeCommand(['XRANGE', 's', '-', '+']), // nested arrays
      encodeCommand(['MULTI']),
      encodeCommand(['INCR', 'n']), // +QUEUED
      encodeCommand(['LRANGE', 'l', '0', '0']),
      encodeCommand(['EXEC']), // array with an integer and an array
      encodeCommand(['COMMAND', 'INFO', 'get', 'set']), // deeply nested
      encodeCommand(['SET', 'big', big]),
      encodeCommand(['GET', 'big']), // 300 kB: many socket reads
      b('PING\r\n'), // inline
      b('\r\n'), // blank inline: redis does not reply
      b('ECHO hello\n'),
      b('*0\r\n'), // no reply either
      encodeCommand(['EXEC']), // -ERR EXEC without MULTI
    ]
    for (let i = 0; i < 200; i++) commands.push(encodeCommand(['SET', `key:${i}`, String(i)]), encodeCommand(['GET', `key:${i}`]))
    const stream = Buffer.concat(commands)

    const requests = commands.length - 2 // the blank line and *0 get no reply

    const rs = new ReplyScanner()
    const replies: { bytes: number; error: boolean }[] = []
    let reads = 0
    const received = await roundTrip(port, stream, requests, (chunk) => {
      reads++
      for (const m of rs.scan(chunk)) replies.push({ bytes: m.bytes, error: m.error })
      return replies.length
    })
    expect(replies).toHaveLength(requests)
    expect(rs.partialBytes).toBe(0)
    expect(replies.reduce((n, r) => n + r.bytes, 0)).toBe(received.length)
    expect(reads).toBeGreaterThan(1)
    expect(referenceReplies(received).map((r) => ({ bytes: r.bytes, error: r.error }))).toEqual(replies)
    const errorsAt = replies.flatMap((r, i) => (r.error ? [i] : []))
    expect(errorsAt).toEqual([5, 6, requests - 401]) // INCR k, NOSUCHCOMMAND, the second EXEC
  })
})

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

/**
 * Write `data` to redis on `port`; collect what comes back until `onChunk` says `replies` replies
 * arrived (by default: any data). Rejects on error or after 10 s.
 */
function roundTrip(port: number, data: Buffer, replies: number, onChunk?: (chunk: Buffer) => number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    const got: Buffer[] = []
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`timed out waiting for ${replies} replies`))
    }, 10_000)
    sock.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    sock.on('connect', () => sock.write(data))
    sock.on('data', (chunk) => {
      got.push(chunk)
      const n = onChunk ? onChunk(chunk) : replies
      if (n >= replies) {
        clearTimeout(timer)
        sock.end()
        resolve(Buffer.concat(got))
      }
    })
  })
}

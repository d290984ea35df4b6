// An incremental HTTP/1.1 response parser for the runtime's HTTP adapter: it finds where each
// response of a server → client byte stream ends, its status code, and whether the connection stays
// open after it (RFC 9112), without keeping bodies.
//
//   const p = new ResponseParser()
//   const n = p.push(chunk)   // responses this chunk completed: status[i], lengths[i], ends[i], keepAlive[i]
//   p.end()                   // the server closed the connection: completes a body delimited by the close
//
// Like the RESP scanners (resp.ts), a response may span any number of chunks and a chunk may hold any
// number of responses (pipelining). The output arrays are reused by the next push; `lengths[i]`
// counts the response's bytes in earlier chunks too, `ends[i]` is the offset just past it in this
// chunk. The sum of all lengths plus `partialBytes` is the number of bytes pushed.
//
// Framing (RFC 9112 section 6.3): responses to HEAD (see sent()), 1xx, 204 and 304 have no body;
// else Transfer-Encoding with chunked last is chunked (chunk extensions skipped, trailers read and
// dropped); other Transfer-Encodings and responses with neither header end when the server closes
// the connection; else Content-Length (repeated values must agree). An interim 1xx (not 101) is
// part of the final response that follows it. A response keeps the connection open if it is
// HTTP/1.1 without "Connection: close", or HTTP/1.0 with "Connection: keep-alive", and its body is
// not delimited by the close; 101 Switching Protocols ends HTTP on the connection.
//
// Lines may end in CRLF or a bare LF (section 2.2 allows recipients to accept it); a bare CR inside a
// line, whitespace between a field name and its colon, a status line that is not
// "HTTP/1.x NNN[ reason]", a bad or conflicting Content-Length, a bad chunk size, bytes after a
// response that closed the connection, and a head section over MAX_HEAD_BYTES are malformed:
// HttpParseError says what and where (the byte offset in the stream), and the parser stays failed,
// because a byte stream cannot be resynchronised after a framing error.

/** A framing error in an HTTP response stream. `offset` is the byte offset in the stream (all pushes). */
export class HttpParseError extends Error {
  readonly offset: number
  constructor(message: string, offset: number) {
    super(message)
    this.name = 'HttpParseError'
    this.offset = offset
  }
}

/** One completed response, as returned by `scan` and `scanEnd` (off the hot path). */
export interface ParsedResponse {
  status: number
  /** Total byte length of the response, interim 1xx responses before it included. */
  bytes: number
  /** Offset just past its last byte in the chunk that completed it (0 for end()). */
  end: number
  /** Whether the connection may carry another response after this one. */
  keepAlive: boolean
}

/** Largest status line plus header section (and trailer section) accepted, in bytes. */
export const MAX_HEAD_BYTES = 64 * 1024
/** Largest chunk-size line (with its extensions) accepted, in bytes. */
export const MAX_CHUNK_LINE_BYTES = 4096
/** Largest body or chunk accepted: exact in a double. */
export const MAX_BODY_BYTES = Number.MAX_SAFE_INTEGER

const CR = 13
const LF = 10

// States
const S_START = 0 // before a status line (empty lines are skipped)
const S_HEAD = 1 // header lines, until an empty line
const S_BODY = 2 // skipping Content-Length bytes
const S_CHUNK_SIZE = 3 // a chunk-size line
const S_CHUNK_DATA = 4 // skipping chunk bytes
const S_CHUNK_END = 5 // the CRLF after a chunk's data: CR or LF
const S_CHUNK_END_LF = 6 // the LF after that CR
const S_TRAILER = 7 // trailer lines, until an empty line
const S_UNTIL_CLOSE = 8 // a body delimited by the end of the connection
const S_CLOSED = 9 // the last response closed the connection, or end() was called

const STATUS_LINE = /^HTTP\/1\.(\d) (\d{3})(?: [^\r\n]*)?$/
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const DIGITS = /^[0-9]+$/
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,13})[ \t]*(;.*)?$/

function show(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s)
}

/** The head of the response being read: what decides its framing. */
interface Head {
  minor: number
  status: number
  contentLength: number
  transferEncoding: boolean
  chunked: boolean
  close: boolean
  keepAlive: boolean
  /** A header whose value may still continue on an obs-fold line. */
  name: string
  value: string
}

const newHead = (): Head => ({ minor: 1, status: 0, contentLength: -1, transferEncoding: false, chunked: false, close: false, keepAlive: false, name: '', value: '' })

export class ResponseParser {
  private statusArr = new Uint16Array(8)
  private lens = new Float64Array(8)
  private endsArr = new Uint32Array(8)
  private keep = new Uint8Array(8)
  private count = 0
  private total = 0
  private state = S_START
  private head: Head = newHead()
  /** Bytes of the line in progress that came in earlier chunks. */
  private line = Buffer.alloc(256)
  private lineLen = 0
  /** Bytes of the current head (or trailer) section so far, for the limit. */
  private sectionBytes = 0
  private left = 0
  /** An interim (1xx) response of the response in progress was read. */
  private interim = false
  /** Whether each request still unanswered was a HEAD (only if the caller says so with sent()). */
  private readonly heads: boolean[] = []
  private headsAt = 0
  private carried = 0
  private start = 0
  private base = 0
  private failure: HttpParseError | undefined

  /** Status codes of the responses completed by the last push: [0, n). */
  get status(): Uint16Array {
    return this.statusArr
  }
  /** Byte lengths of the responses completed by the last push: [0, n). */
  get lengths(): Float64Array {
    return this.lens
  }
  /** Offsets in the last chunk just past each completed response: [0, n). */
  get ends(): Uint32Array {
    return this.endsArr
  }
  /** 1 when the connection stays open after response i, else 0: [0, n). */
  get keepAlive(): Uint8Array {
    return this.keep
  }
  /** Bytes seen of the response not yet complete (0 between responses). */
  get partialBytes(): number {
    return this.failure ? 0 : this.carried
  }
  /** Responses completed since construction. */
  get completed(): number {
    return this.total
  }
  /** Bytes pushed since construction. */
  get bytesPushed(): number {
    return this.base
  }
  /** No further response can come: the last one closed the connection, or end() was called. */
  get closed(): boolean {
    return this.state === S_CLOSED
  }

  /**
   * A request was sent with this method. Only HEAD matters (its response has no body): a caller that
   * sends HEAD must call sent() for every request, in order; one that never does need not call it.
   */
  sent(method: string): void {
    this.heads.push(method === 'HEAD')
  }

  /** Feed the next chunk of the stream; returns how many responses it completed. */
  push(chunk: Uint8Array): number {
    if (this.failure) throw this.failure
    this.count = 0
    this.start = 0
    try {
      this.scanChunk(chunk)
    } catch (err) {
      if (err instanceof HttpParseError) this.failure = err
      throw err
    }
    this.carried += chunk.length - this.start
    this.base += chunk.length
    this.total += this.count
    return this.count
  }

  /**
   * The server closed the connection. Completes a response whose body ends with the close (returns 1;
   * ends[0] is 0); returns 0 between responses; throws when a response is cut short.
   */
  end(): number {
    if (this.failure) throw this.failure
    this.count = 0
    this.start = 0
    if (this.state === S_UNTIL_CLOSE) {
      this.complete(0, false)
      this.total++
    } else if (this.state !== S_CLOSED && (this.state !== S_START || this.lineLen > 0 || this.interim)) {
      this.failure = new HttpParseError(`the connection closed in the middle of a response (${this.carried} bytes of it received)`, this.base)
      throw this.failure
    }
    this.state = S_CLOSED
    return this.count
  }

  /** push, with the results as objects. */
  scan(chunk: Uint8Array): ParsedResponse[] {
    return this.results(this.push(chunk))
  }

  /** end, with the results as objects. */
  scanEnd(): ParsedResponse[] {
    return this.results(this.end())
  }

  private results(n: number): ParsedResponse[] {
    const out: ParsedResponse[] = []
    for (let i = 0; i < n; i++) out.push({ status: this.statusArr[i]!, bytes: this.lens[i]!, end: this.endsArr[i]!, keepAlive: this.keep[i] === 1 })
    return out
  }

  private scanChunk(c: Uint8Array): void {
    const len = c.length
    let i = 0
    while (i < len) {
      switch (this.state) {
        case S_BODY:
        case S_CHUNK_DATA: {
          const take = Math.min(this.left, len - i)
          this.left -= take
          i += take
          if (this.left === 0) {
            if (this.state === S_BODY) this.finish(i)
            else this.state = S_CHUNK_END
          }
          break
        }
        case S_CHUNK_END:
        case S_CHUNK_END_LF: {
          const b = c[i]!
          if (b === CR && this.state === S_CHUNK_END) this.state = S_CHUNK_END_LF
          else if (b === LF) this.state = S_CHUNK_SIZE
          else this.fail(`expected CRLF after a chunk's data, got byte 0x${b.toString(16).padStart(2, '0')} (wrong chunk size?)`, i)
          i++
          break
        }
        case S_UNTIL_CLOSE:
          i = len
          break
        case S_CLOSED:
          this.fail('data after a response that closed the connection', i)
          break
        default:
          i = this.readLine(c, i)
      }
    }
  }

  /** Read a line from offset i (carrying a partial one across chunks); handle it when complete. Returns the next offset. */
  private readLine(c: Uint8Array, i: number): number {
    const limit = this.state === S_CHUNK_SIZE ? MAX_CHUNK_LINE_BYTES : MAX_HEAD_BYTES - this.sectionBytes
    const lf = c.indexOf(LF, i)
    const stop = lf < 0 ? c.length : lf
    if (this.lineLen + (stop - i) > limit) {
      this.fail(this.state === S_CHUNK_SIZE ? `chunk-size line longer than ${MAX_CHUNK_LINE_BYTES} bytes` : `head section longer than ${MAX_HEAD_BYTES} bytes`, stop - 1)
    }
    if (lf < 0 || this.lineLen > 0) this.carry(c, i, stop)
    if (lf < 0) return c.length
    let text: string
    if (this.lineLen > 0) {
      text = this.line.toString('latin1', 0, this.lineLen)
      this.lineLen = 0
    } else {
      text = Buffer.from(c.buffer, c.byteOffset + i, stop - i).toString('latin1')
    }
    if (this.state !== S_CHUNK_SIZE) this.sectionBytes += text.length + 1
    if (text.endsWith('\r')) text = text.slice(0, -1)
    if (text.includes('\r')) this.fail('bare CR inside a line', lf)
    this.handleLine(text, lf + 1)
    return lf + 1
  }

  private carry(c: Uint8Array, from: number, to: number): void {
    const need = this.lineLen + (to - from)
    if (need > this.line.length) {
      const grown = Buffer.alloc(Math.max(need, this.line.length * 2))
      this.line.copy(grown, 0, 0, this.lineLen)
      this.line = grown
    }
    this.line.set(c.subarray(from, to), this.lineLen)
    this.lineLen = need
  }

  /** A complete line (without its line ending) of the current state; `next` is the chunk offset after it. */
  private handleLine(text: string, next: number): void {
    switch (this.state) {
      case S_START:
        if (text !== '') this.statusLine(text, next)
        return
      case S_HEAD:
        if (text === '') return this.headDone(next)
        return this.headerLine(text, next)
      case S_CHUNK_SIZE:
        return this.chunkSize(text, next)
      case S_TRAILER:
        if (text === '') this.finish(next)
        return
    }
  }

  private statusLine(text: string, next: number): void {
    const m = STATUS_LINE.exec(text)
    if (!m) this.fail(`expected a status line "HTTP/1.x NNN reason", got ${show(text)}`, next - 1)
    const status = Number(m[2])
    if (status < 100) this.fail(`status code ${m[2]} is not a valid status (100-999)`, next - 1)
    this.head = newHead()
    this.head.minor = Number(m[1])
    this.head.status = status
    this.state = S_HEAD
  }

  private headerLine(text: string, next: number): void {
    const h = this.head
    const first = text.charCodeAt(0)
    if (first === 32 || first === 9) {
      // obs-fold: the previous field's value continues (RFC 9112 section 5.2: replace with SP).
      if (!h.name) this.fail('whitespace before the first header field', next - 1)
      h.value += ` ${text.trim()}`
      return
    }
    this.field(next - 1)
    const colon = text.indexOf(':')
    const name = colon < 0 ? '' : text.slice(0, colon)
    if (!TOKEN.test(name)) {
      this.fail(colon < 0 ? `header line without a colon: ${show(text)}` : `invalid header field name ${show(name)} (no whitespace is allowed before the colon)`, next - 1)
    }
    h.name = name.toLowerCase()
    h.value = text.slice(colon + 1).trim()
  }

  /** The header field read last is complete (its line ended at chunk offset `at`): apply what matters for framing. */
  private field(at: number): void {
    const h = this.head
    const { name, value } = h
    h.name = ''
    if (name === 'content-length') {
      for (const part of value.split(',')) {
        const v = part.trim()
        const n = DIGITS.test(v) ? Number(v) : NaN
        if (!(n <= MAX_BODY_BYTES)) this.fail(`invalid Content-Length ${show(value)}`, at)
        if (h.contentLength >= 0 && h.contentLength !== n) this.fail(`conflicting Content-Length values (${h.contentLength} and ${n})`, at)
        h.contentLength = n
      }
    } else if (name === 'transfer-encoding') {
      const codings = value.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean)
      h.transferEncoding = true
      h.chunked = codings[codings.length - 1] === 'chunked'
    } else if (name === 'connection') {
      for (const token of value.split(',')) {
        const t = token.trim().toLowerCase()
        if (t === 'close') h.close = true
        else if (t === 'keep-alive') h.keepAlive = true
      }
    }
  }

  /** The empty line after the headers: decide how the body is delimited. */
  private headDone(next: number): void {
    this.field(next - 1)
    const h = this.head
    this.sectionBytes = 0
    if (h.status < 200 && h.status !== 101) {
      this.interim = true // the final response follows
      this.state = S_START
      return
    }
    const head = this.heads.length > this.headsAt ? this.heads[this.headsAt++]! : false
    if (this.headsAt > 1024) {
      this.heads.splice(0, this.headsAt)
      this.headsAt = 0
    }
    if (head || h.status === 204 || h.status === 304 || h.status === 101) return this.finish(next)
    if (h.transferEncoding) {
      // Both headers (possible smuggling), or Transfer-Encoding in HTTP/1.0: never reuse the connection.
      if (h.contentLength >= 0 || h.minor === 0) h.close = true
      if (h.chunked) {
        this.state = S_CHUNK_SIZE
        return
      }
      this.state = S_UNTIL_CLOSE
      return
    }
    if (h.contentLength < 0) {
      this.state = S_UNTIL_CLOSE
      return
    }
    this.left = h.contentLength
    this.state = S_BODY
    if (this.left === 0) this.finish(next)
  }

  private chunkSize(text: string, next: number): void {
    const m = CHUNK_SIZE.exec(text)
    if (!m) this.fail(`invalid chunk-size line ${show(text)}`, next - 1)
    this.left = parseInt(m[1]!, 16)
    this.state = this.left === 0 ? S_TRAILER : S_CHUNK_DATA
  }

  /** The response in progress ended just before chunk offset `end`. */
  private finish(end: number): void {
    const h = this.head
    const keepAlive = h.status !== 101 && !h.close && (h.minor >= 1 || h.keepAlive)
    this.complete(end, keepAlive)
    this.state = keepAlive ? S_START : S_CLOSED
  }

  private complete(end: number, keepAlive: boolean): void {
    const n = this.count
    if (n === this.lens.length) this.grow()
    this.statusArr[n] = this.head.status
    this.lens[n] = this.carried + (end - this.start)
    this.endsArr[n] = end
    this.keep[n] = keepAlive ? 1 : 0
    this.count = n + 1
    this.carried = 0
    this.start = end
    this.sectionBytes = 0
    this.interim = false
  }

  private grow(): void {
    const size = this.lens.length * 2
    const s = new Uint16Array(size)
    s.set(this.statusArr)
    this.statusArr = s
    const l = new Float64Array(size)
    l.set(this.lens)
    this.lens = l
    const e = new Uint32Array(size)
    e.set(this.endsArr)
    this.endsArr = e
    const k = new Uint8Array(size)
    k.set(this.keep)
    this.keep = k
  }

  private fail(what: string, offsetInChunk: number): never {
    const off = this.base + Math.max(offsetInChunk, 0)
    throw new HttpParseError(`${what} at byte ${off} of the stream`, off)
  }
}

// A small RESP2 codec for the runtime's Redis protocol adapter: it encodes commands and finds the
// boundaries of replies in TCP byte streams, without decoding (or copying) their values.
//
//   encodeCommand(['SET', 'k', buf])   → one Buffer: *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$<n>\r\n…\r\n
//   new ReplyScanner()                 → server → client direction: + - : $ * values, nested arrays,
//                                        null bulk ($-1) and null array (*-1)
//
// The scanner is an incremental state machine fed with whatever a socket read returned: a message
// may span any number of chunks and a chunk may hold any number of messages (pipelining).
//
// Output, allocation-free per read: `push(chunk)` returns the number n of messages that this chunk
// completed, and fills reusable typed arrays (grown only when a chunk completes more messages than
// ever before; valid until the next push):
//   lengths[i]   byte length of the i-th completed message (including parts in earlier chunks)
//   ends[i]      offset in this chunk just past its last byte, so chunk.subarray(ends[i-1] ?? 0,
//                ends[i]) is its tail in this chunk (its start may lie in an earlier chunk)
//   errors[i]    1 when the reply is an error (-ERR …) at top level, else 0
// `partialBytes` is how much of an incomplete message has been seen so far. The sum of all lengths
// plus partialBytes is always the number of bytes pushed. `scan(chunk)` returns the same as an array
// of {bytes, end, error} objects for callers off the hot path (tests, tools).
//
// Cost: one pass over the header bytes; bulk payloads are skipped by arithmetic, simple lines are
// searched with Buffer.indexOf (memchr). No per-message allocation.
//
// Malformed input throws RespError, which says what was expected, what came, and the byte offset in
// the stream; the scanner then stays failed (every later push throws the same error), because a byte
// stream cannot be resynchronised after a framing error.
//
// What it does not do:
// - RESP3 (HELLO 3, redis-benchmark -3): its type bytes (_ # , ( ! = % ~ > |) are rejected with a
//   message saying so. Push messages (>) would break the one-reply-per-command rule anyway.
// - Match replies to commands: that is the adapter's job. Note that SUBSCRIBE/PSUBSCRIBE (one reply
//   per channel, then pushed messages), MONITOR, and CLIENT REPLY OFF/SKIP break one-to-one
//   matching. `errors` is about the top level only: an error inside an EXEC array is not flagged.

/** A framing error in a RESP stream. `offset` is the byte offset in the stream (all pushes). */
export class RespError extends Error {
  readonly offset: number
  constructor(message: string, offset: number) {
    super(message)
    this.name = 'RespError'
    this.offset = offset
  }
}

/** Encode one command as a RESP array of bulk strings (what clients send). */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  if (args.length === 0) throw new Error('encodeCommand: a command needs at least one argument')
  const sizes = new Array<number>(args.length)
  const countHeader = `*${args.length}\r\n`
  let total = countHeader.length
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const n = typeof a === 'string' ? Buffer.byteLength(a, 'utf8') : a.length
    sizes[i] = n
    total += 1 + decimalDigits(n) + 2 + n + 2
  }
  const out = Buffer.allocUnsafe(total)
  let o = out.write(countHeader, 0, 'latin1')
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const n = sizes[i]!
    o += out.write(`$${n}\r\n`, o, 'latin1')
    o += typeof a === 'string' ? out.write(a, o, 'utf8') : a.copy(out, o)
    out[o++] = CR
    out[o++] = LF
  }
  return out
}

/** One completed message, as returned by `scan` (off the hot path). */
export interface ScannedMessage {
  /** Total byte length of the message. */
  bytes: number
  /** Offset just past its last byte in the chunk that completed it. */
  end: number
  /** A top-level error reply. */
  error: boolean
}

const CR = 13
const LF = 10
const PLUS = 43 // +
const MINUS = 45 // -
const COLON = 58 // :
const DOLLAR = 36 // $
const STAR = 42 // *
const ZERO = 48

/** Largest bulk string accepted (Redis's proto-max-bulk-len can be raised to this; default 512 MiB). */
export const MAX_BULK_BYTES = 2 ** 32
/** Largest array length accepted. */
export const MAX_ARRAY_LENGTH = 2 ** 32
/** Deepest array nesting accepted in replies. */
export const MAX_DEPTH = 1024
const MAX_DIGITS = 15 // < 2^53: exact in a double

function decimalDigits(n: number): number {
  let d = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    d++
  }
  return d
}

function show(b: number): string {
  const c = b >= 32 && b < 127 ? ` '${String.fromCharCode(b)}'` : ''
  return `0x${b.toString(16).padStart(2, '0')}${c}`
}

const RESP3_TYPES = new Set([95, 35, 44, 40, 33, 61, 37, 126, 62, 124]) // _ # , ( ! = % ~ > |

/** The output buffers and byte accounting of a scanner, apart from its state machine (ReplyScanner). */
abstract class Scanner {
  protected lens: Float64Array = new Float64Array(16)
  protected endsArr: Uint32Array = new Uint32Array(16)
  protected errs: Uint8Array = new Uint8Array(16)
  protected count = 0
  /** Bytes of the message in progress that came in earlier chunks. */
  protected carried = 0
  /** Offset in the current chunk where the message in progress started (0 if it started earlier). */
  protected start = 0
  /** Stream offset of the current chunk's first byte. */
  protected base = 0
  protected failure: RespError | undefined
  private total = 0

  /** Byte lengths of the messages completed by the last push: [0, n). Reused by the next push. */
  get lengths(): Float64Array {
    return this.lens
  }
  /** Offsets in the last chunk just past each completed message: [0, n). Reused by the next push. */
  get ends(): Uint32Array {
    return this.endsArr
  }
  /** Bytes seen of the message not yet complete (0 between messages). */
  get partialBytes(): number {
    return this.failure ? 0 : this.carried
  }
  /** Messages completed since construction. */
  get completed(): number {
    return this.total
  }
  /** Bytes pushed since construction. */
  get bytesPushed(): number {
    return this.base
  }
  /** Whether a message is in progress (some of its bytes seen, not all). */
  get inMessage(): boolean {
    return this.carried > 0
  }

  /** Feed the next chunk of the stream; returns how many messages it completed (see lengths, ends). */
  push(chunk: Uint8Array): number {
    if (this.failure) throw this.failure
    this.count = 0
    this.start = 0
    try {
      this.scanChunk(chunk)
    } catch (err) {
      if (err instanceof RespError) this.failure = err
      throw err
    }
    this.carried += chunk.length - this.start
    this.base += chunk.length
    this.total += this.count
    return this.count
  }

  /** push, with the results as objects. */
  scan(chunk: Uint8Array): ScannedMessage[] {
    const n = this.push(chunk)
    const out: ScannedMessage[] = []
    for (let i = 0; i < n; i++) out.push({ bytes: this.lens[i]!, end: this.endsArr[i]!, error: this.errs[i] === 1 })
    return out
  }

  protected abstract scanChunk(chunk: Uint8Array): void

  /** The message in progress ends at chunk offset `end` (exclusive). */
  protected complete(end: number, error: boolean): void {
    const n = this.count
    if (n === this.lens.length) this.grow()
    this.lens[n] = this.carried + (end - this.start)
    this.endsArr[n] = end
    this.errs[n] = error ? 1 : 0
    this.count = n + 1
    this.carried = 0
    this.start = end
  }

  private grow(): void {
    const size = this.lens.length * 2
    const l = new Float64Array(size)
    l.set(this.lens)
    this.lens = l
    const e = new Uint32Array(size)
    e.set(this.endsArr)
    this.endsArr = e
    const r = new Uint8Array(size)
    r.set(this.errs)
    this.errs = r
  }

  protected fail(what: string, offsetInChunk: number): never {
    const off = this.base + offsetInChunk
    throw new RespError(`${what} at byte ${off} of the stream`, off)
  }
}

// ReplyScanner states
const R_TYPE = 0 // expecting a type byte
const R_NUM = 1 // digits of a $ or * length, or of a : integer; `neg` after a leading '-'
const R_NUM_LF = 2 // after the \r of a number line
const R_LINE = 3 // inside a + or - line, looking for \r
const R_LF = 4 // after the \r that ends a value (simple line or bulk payload)
const R_BULK = 5 // skipping bulk payload bytes
const R_BULK_CR = 6 // payload done, expecting \r

/**
 * Finds reply boundaries in a server → client RESP2 stream. See the file comment for the output.
 * `errors[i]` is 1 when reply i is a top-level error (its first byte is '-').
 */
export class ReplyScanner extends Scanner {
  private state = R_TYPE
  private type = 0
  private num = 0
  private digits = 0
  private neg = false
  private bulkLeft = 0
  /** Remaining elements of each open array, innermost last. */
  private stack = new Float64Array(8)
  private depth = 0
  private isError = false

  /** Top-level error flags of the replies completed by the last push: [0, n). */
  get errors(): Uint8Array {
    return this.errs
  }

  protected scanChunk(c: Uint8Array): void {
    const len = c.length
    let i = 0
    let state = this.state
    while (i < len) {
      switch (state) {
        case R_TYPE: {
          const b = c[i]!
          if (this.depth === 0) this.isError = b === MINUS
          if (b === DOLLAR || b === STAR || b === COLON) {
            this.type = b
            this.num = 0
            this.digits = 0
            this.neg = false
            state = R_NUM
          } else if (b === PLUS || b === MINUS) {
            state = R_LINE
          } else if (RESP3_TYPES.has(b)) {
            this.fail(`RESP3 reply type ${show(b)} (only RESP2 is supported: was HELLO 3 sent?)`, i)
          } else {
            this.fail(`expected a reply type byte (+ - : $ *), got ${show(b)}`, i)
          }
          i++
          break
        }
        case R_NUM: {
          // Digits until \r; a leading '-' is allowed.
          while (i < len) {
            const b = c[i]!
            const d = b - ZERO
            if (d >= 0 && d <= 9) {
              if (++this.digits > MAX_DIGITS) this.fail(`number too long in a '${String.fromCharCode(this.type)}' line`, i)
              this.num = this.num * 10 + d
            } else if (b === CR) {
              if (this.digits === 0) this.fail(`empty number in a '${String.fromCharCode(this.type)}' line`, i)
              state = R_NUM_LF
              i++
              break
            } else if (b === MINUS && this.digits === 0 && !this.neg) {
              this.neg = true
            } else {
              this.fail(`expected a digit or \\r in a '${String.fromCharCode(this.type)}' line, got ${show(b)}`, i)
            }
            i++
          }
          break
        }
        case R_NUM_LF: {
          if (c[i] !== LF) this.fail(`expected \\n after \\r, got ${show(c[i]!)}`, i)
          i++
          const t = this.type
          if (t === COLON) {
            state = this.valueDone(i)
          } else if (this.neg) {
            if (this.num !== 1) this.fail(`negative length -${this.num} (only -1, null, is valid)`, i - 1)
            state = this.valueDone(i) // $-1 or *-1: null
          } else if (t === DOLLAR) {
            if (this.num > MAX_BULK_BYTES) this.fail(`bulk string of ${this.num} bytes is beyond the limit of ${MAX_BULK_BYTES}`, i - 1)
            this.bulkLeft = this.num
            state = R_BULK
          } else if (this.num === 0) {
            state = this.valueDone(i) // *0: empty array
          } else {
            if (this.num > MAX_ARRAY_LENGTH) this.fail(`array of ${this.num} elements is beyond the limit of ${MAX_ARRAY_LENGTH}`, i - 1)
            if (this.depth === MAX_DEPTH) this.fail(`arrays nested deeper than ${MAX_DEPTH}`, i - 1)
            if (this.depth === this.stack.length) {
              const s = new Float64Array(this.stack.length * 2)
              s.set(this.stack)
              this.stack = s
            }
            this.stack[this.depth++] = this.num
            state = R_TYPE
          }
          break
        }
        case R_LINE: {
          const cr = c.indexOf(CR, i)
          if (cr < 0) {
            for (; i < len; i++) if (c[i] === LF) this.fail(`bare \\n in a simple string or error line`, i)
            break
          }
          for (; i < cr; i++) if (c[i] === LF) this.fail(`bare \\n in a simple string or error line`, i)
          i = cr + 1
          state = R_LF
          break
        }
        case R_LF: {
          if (c[i] !== LF) this.fail(`expected \\n after \\r, got ${show(c[i]!)}`, i)
          i++
          state = this.valueDone(i)
          break
        }
        case R_BULK: {
          const avail = len - i
          if (avail < this.bulkLeft) {
            this.bulkLeft -= avail
            i = len
          } else {
            i += this.bulkLeft
            this.bulkLeft = 0
            state = R_BULK_CR
          }
          break
        }
        case R_BULK_CR: {
          if (c[i] !== CR) this.fail(`expected \\r after a bulk string's payload, got ${show(c[i]!)} (wrong length?)`, i)
          i++
          state = R_LF
          break
        }
      }
    }
    this.state = state
  }

  /** A value ended just before chunk offset `end`: close the arrays it completes; maybe the reply. */
  private valueDone(end: number): number {
    let d = this.depth
    while (d > 0) {
      if (--this.stack[d - 1]! > 0) {
        this.depth = d
        return R_TYPE
      }
      d--
    }
    this.depth = 0
    this.complete(end, this.isError)
    return R_TYPE
  }
}

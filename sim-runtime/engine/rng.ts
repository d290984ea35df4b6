// Seeded random streams. Every component draws from its own streams, seeded by
// (spec.seed, component path, stream name), so results do not depend on which process runs a host
// or on what other components draw. The generator is xoshiro128** (fast, 32-bit, good quality);
// SHA-256 turns the seed and path into its state once, at start. The state is kept as signed 32-bit
// integers (small integers to V8, stored unboxed); the bits are xoshiro's either way.
import { createHash } from 'node:crypto'

const TWO_POW_26 = 67108864
const TWO_POW_53 = 9007199254740992

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number, path: string) {
    const h = createHash('sha256').update(`livesim\0${seed}\0${path}`).digest()
    this.a = h.readInt32LE(0)
    this.b = h.readInt32LE(4)
    this.c = h.readInt32LE(8)
    this.d = h.readInt32LE(12)
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return r
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5
    const lo = this.nextU32() >>> 6
    return (hi * TWO_POW_26 + lo) / TWO_POW_53
  }

  /** Integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.uniform() * n)
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.uniform()) * mean
  }

  /** Standard normal (Box-Muller; one value per call keeps the stream simple to reason about). */
  normal(): number {
    const u = 1 - this.uniform()
    const v = this.uniform()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }
}

/** Rotate left, as a signed 32-bit integer. */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

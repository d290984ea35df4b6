// Units used in manifests: durations, bandwidths and sizes are strings with units, parsed to exact
// integers (nanoseconds, bits per second, bytes). A value that does not land on an integer is an error,
// never silently rounded: virtual time is integer nanoseconds everywhere.

export const NS_PER_SEC = 1_000_000_000

/** The largest virtual time we accept: 30 days, far below 2^53 ns, so every sum stays exact. */
export const MAX_TIME_NS = 30 * 24 * 3600 * NS_PER_SEC

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
}

const BANDWIDTH_UNITS: Record<string, number> = {
  bps: 1,
  Kbps: 1e3,
  Mbps: 1e6,
  Gbps: 1e9,
  Tbps: 1e12,
}

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
}

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)$'
export const BANDWIDTH_PATTERN = '^[0-9]+(\\.[0-9]+)?(bps|Kbps|Mbps|Gbps|Tbps)$'
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?(B|KB|MB|GB|KiB|MiB|GiB)?$'

export class UnitError extends Error {}

function parseWithUnits(text: string, units: Record<string, number>, what: string, allowed: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-zµ]*)$/.exec(text.trim())
  if (!m) throw new UnitError(`${JSON.stringify(text)} is not a ${what}; expected a number with a unit (${allowed})`)
  const [, num, unit] = m as unknown as [string, string, string]
  const scale = units[unit]
  if (scale === undefined) {
    throw new UnitError(`${JSON.stringify(text)} has unknown unit ${JSON.stringify(unit)}; allowed units: ${allowed}`)
  }
  // Multiply the decimal digits exactly: split "1.25" into 125 and 10^-2 before scaling.
  const [intPart, frac = ''] = num.split('.') as [string, string?]
  const digits = Number(intPart + frac)
  const value = (digits * scale) / 10 ** frac.length
  if (!Number.isFinite(value)) throw new UnitError(`${JSON.stringify(text)} is too large`)
  const rounded = Math.round(value)
  if (Math.abs(rounded - value) > 1e-6 * Math.max(1, Math.abs(value))) {
    throw new UnitError(`${JSON.stringify(text)} is not a whole number of ${what === 'duration' ? 'nanoseconds' : 'base units'}`)
  }
  if (!Number.isSafeInteger(rounded)) throw new UnitError(`${JSON.stringify(text)} is too large`)
  return rounded
}

/** "250us" → 250000 (nanoseconds). */
export function parseDurationNs(text: string): number {
  if (typeof text !== 'string') throw new UnitError(`expected a duration string such as "250us"`)
  return parseWithUnits(text, DURATION_UNITS, 'duration', 'ns, us, ms, s, m, h')
}

/** "10Gbps" → 1e10 (bits per second). */
export function parseBandwidthBitsPerSec(text: string): number {
  if (typeof text !== 'string') throw new UnitError(`expected a bandwidth string such as "10Gbps"`)
  return parseWithUnits(text, BANDWIDTH_UNITS, 'bandwidth', 'bps, Kbps, Mbps, Gbps, Tbps')
}

/** 512, "512B", "4KiB" → bytes. */
export function parseSizeBytes(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new UnitError(`${value} is not a whole, non-negative number of bytes`)
    return value
  }
  const text = /^[0-9.]+$/.test(value.trim()) ? `${value.trim()}B` : value
  return parseWithUnits(text, SIZE_UNITS, 'size', 'B, KB, MB, GB, KiB, MiB, GiB')
}

const MEMORY_UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }
const CPU_MILLI_UNITS: Record<string, number> = { '': 1000, m: 1 }

/** Kubernetes memory quantity (a cell's memory): "512Mi" → bytes. */
export function parseMemoryBytes(text: string): number {
  return parseWithUnits(text, MEMORY_UNITS, 'memory quantity', 'K, M, G, T, Ki, Mi, Gi, Ti, or none for bytes')
}

/** Kubernetes CPU quantity (a cell's cpu): "500m" → 0.5 and "2" → 2 cores. */
export function parseCpuCores(text: string): number {
  return parseWithUnits(text, CPU_MILLI_UNITS, 'CPU quantity', 'm for millicores, or none for cores') / 1000
}

/** A readable duration for tables and progress: 1500000 → "1.5ms". */
export function formatDurationNs(ns: number): string {
  const abs = Math.abs(ns)
  if (abs >= 1e9) return `${trim(ns / 1e9)}s`
  if (abs >= 1e6) return `${trim(ns / 1e6)}ms`
  if (abs >= 1e3) return `${trim(ns / 1e3)}us`
  return `${ns}ns`
}

function trim(x: number): string {
  return Number(x.toPrecision(4)).toString()
}

/**
 * Exact serialisation time of `bytes` at `bitsPerSec`, rounded up to the next nanosecond.
 * Uses BigInt only when the product leaves the exact range of doubles.
 */
export function serializationNs(bytes: number, bitsPerSec: number): number {
  const bitNs = bytes * 8 * NS_PER_SEC
  if (bitNs <= Number.MAX_SAFE_INTEGER) {
    const q = Math.floor(bitNs / bitsPerSec)
    // Integer division of exact integers: correct q by at most one step either way.
    let lo = q
    while (lo * bitsPerSec > bitNs) lo--
    while ((lo + 1) * bitsPerSec <= bitNs) lo++
    return lo * bitsPerSec === bitNs ? lo : lo + 1
  }
  const num = BigInt(bytes) * 8n * BigInt(NS_PER_SEC)
  const den = BigInt(bitsPerSec)
  return Number((num + den - 1n) / den)
}

import { describe, expect, it } from 'vitest'
import { parseBandwidthBitsPerSec, parseDurationNs, parseSizeBytes, serializationNs, UnitError } from '../../sim-runtime/api/units.ts'

describe('units', () => {
  it('parses durations to exact nanoseconds', () => {
    expect(parseDurationNs('250us')).toBe(250_000)
    expect(parseDurationNs('1.5ms')).toBe(1_500_000)
    expect(parseDurationNs('2s')).toBe(2_000_000_000)
    expect(parseDurationNs('0.000000001s')).toBe(1)
    expect(parseDurationNs('3m')).toBe(180e9)
    expect(parseDurationNs('7ns')).toBe(7)
  })
  it('rejects fractional nanoseconds, missing and unknown units', () => {
    expect(() => parseDurationNs('1.5ns')).toThrow(UnitError)
    expect(() => parseDurationNs('10')).toThrow(/unit/)
    expect(() => parseDurationNs('10 parsecs')).toThrow(/unknown unit/)
  })
  it('parses bandwidths and sizes', () => {
    expect(parseBandwidthBitsPerSec('10Gbps')).toBe(1e10)
    expect(parseBandwidthBitsPerSec('1.5Mbps')).toBe(1_500_000)
    expect(parseSizeBytes('4KiB')).toBe(4096)
    expect(parseSizeBytes(512)).toBe(512)
    expect(parseSizeBytes('2')).toBe(2)
    expect(() => parseSizeBytes(-1)).toThrow(UnitError)
  })
  it('computes serialisation time exactly, rounding up', () => {
    expect(serializationNs(1250, 1e9)).toBe(10_000) // 10000 bits at 1 Gbps
    expect(serializationNs(1, 3)).toBe(2_666_666_667) // 8/3 s, rounded up
    expect(serializationNs(0, 1e9)).toBe(0)
    // Large enough to leave the exact range of doubles: the BigInt path.
    expect(serializationNs(1e9, 1e9)).toBe(8e9)
    expect(serializationNs(1e9 + 1, 7)).toBe(Number((BigInt(1e9 + 1) * 8n * 1_000_000_000n + 6n) / 7n))
  })
})

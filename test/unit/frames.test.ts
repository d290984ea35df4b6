import { describe, expect, it } from 'vitest'
import { decodeBarrier, decodeJson, encodeBarrier, encodeJson, F_GRANT, F_HELLO, FrameDecoder, FrameError, FRAME_HEADER } from '../../sim-runtime/sync/frames.ts'
import { SLOT_PAYLOAD, WIRE_SLOTS } from '../../sim-runtime/engine/message.ts'

describe('frames', () => {
  it('round-trips barrier frames split at every byte boundary', () => {
    const msgs = new Float64Array(3 * WIRE_SLOTS).map((_, i) => (i % WIRE_SLOTS === SLOT_PAYLOAD ? 0 : i * 1.5))
    const buf = encodeBarrier(F_GRANT, 12, 123_456_789, msgs, 3)
    for (let cut = 1; cut < buf.length; cut += 7) {
      const d = new FrameDecoder()
      const frames = [...d.push(buf.subarray(0, cut)), ...d.push(buf.subarray(cut))]
      expect(frames).toHaveLength(1)
      const b = decodeBarrier(frames[0]!)
      expect(b.epoch).toBe(12)
      expect(b.timeNs).toBe(123_456_789)
      expect(b.count).toBe(3)
      expect(Array.from(b.messages)).toEqual(Array.from(msgs))
    }
  })
  it('carries payloads after the messages, in message order, split at every byte boundary', () => {
    const msgs = new Float64Array(4 * WIRE_SLOTS).map((_, i) => i)
    const payloads = [Buffer.from('*1\r\n$4\r\nPING\r\n'), Buffer.from([0, 255, 7])]
    // messages 0 and 2 carry payloads, 1 and 3 do not
    ;[payloads[0]!.length, 0, payloads[1]!.length, 0].forEach((len, k) => (msgs[k * WIRE_SLOTS + SLOT_PAYLOAD] = len))
    const buf = encodeBarrier(F_GRANT, 3, 5000, msgs, 4, payloads)
    expect(buf.length % 8).toBe(0)
    for (let cut = 1; cut < buf.length; cut += 5) {
      const d = new FrameDecoder()
      const [f] = [...d.push(buf.subarray(0, cut)), ...d.push(buf.subarray(cut))]
      const b = decodeBarrier(f!)
      expect(b.count).toBe(4)
      expect(Array.from(b.messages)).toEqual(Array.from(msgs))
      expect(b.payloads.map((p) => [...p])).toEqual(payloads.map((p) => [...p]))
    }
    // A payload length that runs past the frame is refused.
    const lying = Buffer.from(buf)
    new Float64Array(lying.buffer, lying.byteOffset + FRAME_HEADER + 24, 4 * WIRE_SLOTS)[SLOT_PAYLOAD] = 10_000
    expect(() => decodeBarrier(new FrameDecoder().push(lying)[0]!)).toThrow(/payload length 10000 beyond the frame/)
    // Bytes after the payloads (beyond the padding) are refused.
    const extra = encodeBarrier(F_GRANT, 3, 5000, msgs, 4, [...payloads, Buffer.alloc(16)])
    expect(() => decodeBarrier(new FrameDecoder().push(extra)[0]!)).toThrow(/after the payloads/)
  })
  it('carries Infinity as a next-event time', () => {
    const d = new FrameDecoder()
    const [f] = d.push(encodeBarrier(F_GRANT, 1, Infinity, new Float64Array(0), 0))
    expect(decodeBarrier(f!).timeNs).toBe(Infinity)
  })
  it('decodes several JSON frames from one chunk', () => {
    const both = Buffer.concat([encodeJson(F_HELLO, { a: 1 }), encodeJson(F_HELLO, { b: [2] })])
    const frames = new FrameDecoder().push(both)
    expect(frames.map((f) => decodeJson(f))).toEqual([{ a: 1 }, { b: [2] }])
  })
  it('rejects garbage: bad lengths, unknown types, inconsistent counts, bad JSON', () => {
    expect(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toThrow(FrameError)
    const tiny = Buffer.alloc(8)
    tiny.writeUInt32LE(4, 0)
    expect(() => new FrameDecoder().push(tiny)).toThrow(/out of range/)
    const unknown = Buffer.alloc(8)
    unknown.writeUInt32LE(8, 0)
    unknown.writeUInt32LE(99, 4)
    expect(() => new FrameDecoder().push(unknown)).toThrow(/unknown frame type 99/)
    const lying = encodeBarrier(F_GRANT, 1, 1, new Float64Array(WIRE_SLOTS), 1)
    new Float64Array(lying.buffer, lying.byteOffset + FRAME_HEADER, 3)[2] = 5
    const [f] = new FrameDecoder().push(lying)
    expect(() => decodeBarrier(f!)).toThrow(/count 5/)
    const bad = Buffer.concat([Buffer.alloc(8), Buffer.from('{"unterminated')])
    bad.writeUInt32LE(bad.length, 0)
    bad.writeUInt32LE(F_HELLO, 4)
    const [j] = new FrameDecoder().push(bad)
    expect(() => decodeJson(j!)).toThrow(/valid JSON/)
  })
})

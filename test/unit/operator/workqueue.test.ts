import { describe, expect, it } from 'vitest'
import { WorkQueue } from '../../../operator/machinery/workqueue.ts'

describe('work queue', () => {
  it('de-duplicates keys waiting in the queue', async () => {
    const q = new WorkQueue('t')
    q.add('a')
    q.add('b')
    q.add('a')
    expect(q.length).toBe(2)
    expect(await q.get()).toBe('a')
    expect(await q.get()).toBe('b')
  })

  it('never hands out a key twice at once; a key added while processing comes back once it is done', async () => {
    const q = new WorkQueue('t')
    q.add('a')
    const k = await q.get()
    q.add('a')
    q.add('a')
    expect(q.length).toBe(0) // held back while 'a' is processing
    q.done(k!)
    expect(q.length).toBe(1)
    expect(await q.get()).toBe('a')
    q.done('a')
    expect(q.length).toBe(0)
  })

  it('wakes a waiting worker on add and returns undefined after shutdown', async () => {
    const q = new WorkQueue('t')
    const waiting = q.get()
    q.add('x')
    expect(await waiting).toBe('x')
    const after = q.get()
    q.shutDown()
    expect(await after).toBeUndefined()
  })

  it('backs off exponentially per item and forgets on success', () => {
    const q = new WorkQueue('t', { baseDelayMs: 10, maxDelayMs: 100 })
    expect([q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')]).toEqual([10, 20, 40, 80, 100])
    expect(q.addRateLimited('b')).toBe(10)
    q.forget('a')
    expect(q.retries('a')).toBe(0)
    expect(q.addRateLimited('a')).toBe(10)
    q.shutDown()
  })

  it('addAfter delivers the key later', async () => {
    const q = new WorkQueue('t')
    q.addAfter('late', 30)
    expect(q.length).toBe(0)
    expect(await q.get()).toBe('late')
  })
})

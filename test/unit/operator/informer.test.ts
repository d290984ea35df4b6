// Informer (operator/machinery/informer.ts) against a fake list/watch API: what it does when the
// watch expires (410 Gone), when the connection drops, and when the stream goes silent. Time is
// vitest's fake clock, so the backoff schedule and the resync period are asserted exactly.
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, Resource, type KubeClient, type KubeList, type KubeObject, type WatchEvent, type WatchHandle } from '../../../operator/kube/rest.ts'
import { Informer } from '../../../operator/machinery/informer.ts'

const THINGS = new Resource('test.livesim.dev', 'v1', 'things', 'Thing')
const NS = 'ns'

interface OpenWatch {
  query: Record<string, string>
  stallMs: number
  onEvent: (e: WatchEvent<KubeObject>) => void
  /** The server closes the stream (a server-side timeout): `done` resolves. */
  close(): void
  /** The stream ends in an error (410 Gone, a dropped connection, a stall): `done` rejects. */
  fail(err: Error): void
  ended: boolean
}

/**
 * One collection of objects behind list (GET of the collection) and watch, with a resourceVersion
 * that grows with every change. Changes are made with put/remove; `emit` decides whether the open
 * watch hears of them (a gap: it does not). `down` makes every list and watch fail as a refused
 * connection would.
 */
function fakeApi() {
  const objects = new Map<string, KubeObject>()
  let rv = 100
  const listTimesMs: number[] = []
  const listRvs: string[] = []
  const watches: OpenWatch[] = []
  let down = false
  let informer: Informer<KubeObject> | undefined
  const snapshot = () => [...objects.values()].map((o) => structuredClone(o))
  const api = {
    objects,
    listTimesMs,
    listRvs,
    watches,
    /** The informer to stop if it retries without waiting: a test then fails instead of hanging. */
    guard(i: Informer<KubeObject>) {
      informer = i
    },
    setDown(v: boolean) {
      down = v
    },
    put(name: string, emit: boolean, data = ''): void {
      const existed = objects.has(name)
      const o: KubeObject = { metadata: { name, namespace: NS, resourceVersion: String(++rv) }, data }
      objects.set(name, o)
      if (emit) api.current()?.onEvent({ type: existed ? 'MODIFIED' : 'ADDED', object: structuredClone(o) })
    },
    remove(name: string, emit: boolean): void {
      const o = objects.get(name)
      if (!o) throw new Error(`test bug: no ${name}`)
      objects.delete(name)
      o.metadata.resourceVersion = String(++rv)
      if (emit) api.current()?.onEvent({ type: 'DELETED', object: structuredClone(o) })
    },
    current(): OpenWatch | undefined {
      const w = watches.at(-1)
      return w && !w.ended ? w : undefined
    },
    /** What the server would list now: name → resourceVersion. */
    state(): Record<string, string> {
      return Object.fromEntries([...objects].map(([k, o]) => [`${NS}/${k}`, o.metadata.resourceVersion!]))
    },
    client: {
      async get<T>(path: string): Promise<T> {
        listTimesMs.push(Date.now())
        // A retry loop without a delay would spin here forever at one instant of the fake clock.
        if (listTimesMs.filter((t) => t === Date.now()).length > 50) informer?.stop()
        if (!path.startsWith(THINGS.collection(NS))) throw new Error(`unexpected GET ${path}`)
        if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' })
        listRvs.push(String(rv))
        const list: KubeList<KubeObject> = { metadata: { resourceVersion: String(rv) }, items: snapshot() }
        return list as T
      },
      watch<T>(path: string, query: Record<string, string>, onEvent: (e: WatchEvent<T>) => void, stallMs: number): WatchHandle {
        if (path !== THINGS.collection(NS)) throw new Error(`unexpected watch ${path}`)
        let settle!: { resolve: () => void; reject: (e: Error) => void }
        const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }))
        // As KubeClient.watch: a stream with no bytes for stallMs is torn down with "no data for".
        let stall: NodeJS.Timeout | undefined
        const arm = () => {
          clearTimeout(stall)
          stall = setTimeout(() => w.fail(new Error(`watch ${path}: no data for ${stallMs / 1000}s`)), stallMs)
        }
        const w: OpenWatch = {
          query,
          stallMs,
          onEvent: (e) => {
            arm()
            onEvent(e as WatchEvent<T>)
          },
          ended: false,
          close: () => {
            clearTimeout(stall)
            w.ended = true
            settle.resolve()
          },
          fail: (err) => {
            clearTimeout(stall)
            w.ended = true
            settle.reject(err)
          },
        }
        watches.push(w)
        if (down) w.fail(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }))
        else arm()
        return { abort: () => w.close(), done }
      },
    },
  }
  return api
}

const log = pino({ level: 'silent' })
const informers: Informer<KubeObject>[] = []

function start(api: ReturnType<typeof fakeApi>, opts: { resyncMs?: number; stallMs?: number } = {}) {
  const inf = new Informer<KubeObject>(api.client as unknown as KubeClient, THINGS, log, { namespace: NS, ...opts })
  const events: string[] = []
  inf.addHandlers({
    onAdd: (o) => events.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    onUpdate: (o, old) => events.push(`update ${o.metadata.name}@${old.metadata.resourceVersion}->${o.metadata.resourceVersion}`),
    onDelete: (o) => events.push(`delete ${o.metadata.name}`),
    onResync: (o) => events.push(`resync ${o.metadata.name}`),
  })
  api.guard(inf)
  informers.push(inf)
  inf.start()
  return { inf, events }
}

/** The informer's cache as name → resourceVersion, to compare with the server's list. */
const cacheOf = (inf: Informer<KubeObject>) => Object.fromEntries(inf.list().map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o.metadata.resourceVersion!]))

/** Let promise chains run without moving the fake clock. */
const settle = () => vi.advanceTimersByTimeAsync(0)

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
  vi.setSystemTime(0) // the informer starts at Date.now() = 0
  // The backoff's jitter factor is 0.8 + 0.4 × random: 1 exactly with random = 0.5.
  vi.spyOn(Math, 'random').mockReturnValue(0.5)
})

afterEach(() => {
  for (const i of informers.splice(0)) i.stop()
  vi.restoreAllMocks()
  vi.useRealTimers()
})

describe('informer', () => {
  it('lists, then watches from the list\'s resourceVersion and applies watch events to the cache', async () => {
    const api = fakeApi()
    api.put('a', false)
    api.put('b', false)
    const { inf, events } = start(api)
    await settle()
    expect(inf.hasSynced()).toBe(true)
    expect(cacheOf(inf)).toEqual(api.state())
    expect(api.current()?.query.resourceVersion).toBe(api.listRvs[0])
    api.put('c', true)
    api.put('a', true, 'changed')
    api.remove('b', true)
    expect(cacheOf(inf)).toEqual(api.state())
    expect(events).toEqual(['add a@101', 'add b@102', 'add c@103', 'update a@101->104', 'delete b'])
  })

  it('410 Gone: relists at once; the cache ends up equal to the server\'s list and what changed in the gap is reported, deletions as deletes', async () => {
    const api = fakeApi()
    for (const n of ['a', 'b', 'c']) api.put(n, false)
    const { inf, events } = start(api)
    await settle()
    events.length = 0
    // The gap: changes the watch never delivers (the server compacted past them).
    api.remove('b', false)
    api.put('c', false, 'changed')
    api.put('d', false)
    api.current()!.fail(new ApiError(410, 'Expired', 'too old resource version: 101 (104)', {}))
    await settle()
    expect(inf.stats.relistsAfterGone).toBe(1)
    expect(inf.stats.lists).toBe(2)
    expect(api.listTimesMs).toEqual([0, 0]) // no backoff for an expired watch
    expect(cacheOf(inf)).toEqual(api.state())
    expect(events.sort()).toEqual(['add d@106', 'delete b', 'update c@103->105'])
    // And it watches again from the fresh list, not from the expired resourceVersion.
    expect(api.watches).toHaveLength(2)
    expect(api.current()?.query.resourceVersion).toBe(api.listRvs[1])
    expect(api.listRvs[1]).not.toBe(api.listRvs[0])
  })

  it('a dropped connection: reconnects with backoff that doubles from 200 ms up to its 30 s bound, relisting; a clean close rewatches at once', async () => {
    const api = fakeApi()
    api.put('a', false)
    const { inf, events } = start(api)
    await settle()
    events.length = 0
    const droppedAtMs = Date.now()
    api.setDown(true)
    api.current()!.fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
    api.put('b', false) // made while the informer is disconnected
    // Eleven attempts fail (lists refused); the informer waits before each one.
    for (let i = 0; i < 11; i++) await vi.advanceTimersToNextTimerAsync()
    const attempts = api.listTimesMs.slice(1)
    const delays = attempts.map((t, i) => t - (i === 0 ? droppedAtMs : attempts[i - 1]!))
    expect(delays).toEqual([200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000, 30_000])
    expect(inf.stats.reconnects).toBe(12) // the drop, then each refused relist
    // The server is back: the next attempt lists (seeing what changed meanwhile) and watches.
    api.setDown(false)
    await vi.advanceTimersToNextTimerAsync()
    expect(Date.now() - api.listTimesMs.at(-2)!).toBe(30_000)
    expect(cacheOf(inf)).toEqual(api.state())
    expect(events).toEqual(['add b@102'])
    expect(api.current()).toBeDefined()
    // A clean close (the server's watch timeout) rewatches at once, without a list or a delay.
    const lists = api.listTimesMs.length
    const watches = api.watches.length
    api.current()!.close()
    await settle()
    expect(api.watches).toHaveLength(watches + 1)
    expect(api.listTimesMs).toHaveLength(lists)
    // ...and the backoff starts again from 200 ms.
    const t = Date.now()
    api.current()!.fail(new Error('socket hang up'))
    await vi.advanceTimersToNextTimerAsync()
    expect(api.listTimesMs.at(-1)! - t).toBe(200)
  })

  it.each([
    { random: 0, factor: 0.8 },
    { random: 0.999, factor: 1.1996 },
  ])('the backoff is jittered within ±20 % (random $random: × $factor), its bound included', async ({ random, factor }) => {
    vi.spyOn(Math, 'random').mockReturnValue(random)
    const api = fakeApi()
    start(api)
    await settle()
    const droppedAtMs = Date.now()
    api.setDown(true)
    api.current()!.fail(new Error('socket hang up'))
    for (let i = 0; i < 10; i++) await vi.advanceTimersToNextTimerAsync()
    const attempts = api.listTimesMs.slice(1)
    const delays = attempts.map((t, i) => t - (i === 0 ? droppedAtMs : attempts[i - 1]!))
    const base = [200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000]
    for (const [i, d] of delays.entries()) expect(d).toBeCloseTo(base[i]! * factor, -0.5)
    expect(delays).toHaveLength(base.length)
  })

  it('a silent stall: every resyncMs each cached object goes to onResync; at stallMs the watch is torn down, and the informer relists and rewatches', async () => {
    const api = fakeApi()
    api.put('a', false)
    api.put('b', false)
    const { inf, events } = start(api, { resyncMs: 60_000, stallMs: 90_000 })
    await settle()
    events.length = 0
    const w = api.current()!
    expect(w.stallMs).toBe(90_000)
    // The stream stays open and says nothing; a change happens that it never delivers.
    api.put('c', false)
    await vi.advanceTimersByTimeAsync(59_999)
    expect(events).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(events.sort()).toEqual(['resync a', 'resync b'])
    // At 90 s of silence the stream is torn down; the informer waits its first backoff, then relists.
    await vi.advanceTimersByTimeAsync(30_000 - 1)
    expect(w.ended).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(w.ended).toBe(true)
    expect(inf.stats.lists).toBe(1)
    await vi.advanceTimersByTimeAsync(200)
    expect(inf.stats.stalls).toBe(1)
    expect(inf.stats.lists).toBe(2)
    expect(cacheOf(inf)).toEqual(api.state())
    expect(events.filter((e) => !e.startsWith('resync')).sort()).toEqual(['add c@103'])
    expect(api.current()).toBeDefined()
    expect(api.current()).not.toBe(w)
    // The resync period goes on: at 120 s, every cached object again, c included.
    events.length = 0
    await vi.advanceTimersByTimeAsync(120_000 - Date.now())
    expect(events.sort()).toEqual(['resync a', 'resync b', 'resync c'])
  })
})

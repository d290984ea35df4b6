// Peer batches (sync/peers.ts): who may send to whom, splitting an outbox per runtime, the tree and
// its combine, the TALLY and OPEN frames, and a receiver that runs a window only once it holds every
// BATCH the leader counted, however they arrive.
import { describe, expect, it } from 'vitest'
import { WIRE_SLOTS, SLOT_PAYLOAD } from '../../sim-runtime/engine/message.ts'
import { decodeBarrier, decodeOpen, decodeTally, encodeBarrier, encodeOpen, encodeTally, F_BATCH, FrameDecoder, FrameError, TALLY_SLOTS } from '../../sim-runtime/sync/frames.ts'
import { combineTallies, openEntriesFor, PeerMesh, peerGraph, splitByRuntime, subtreeOf, syncFromEnv, treeChildren, treeParent } from '../../sim-runtime/sync/peers.ts'
import { buildTopology } from '../../sim-runtime/sync/topology.ts'
import { example, silent } from '../helpers.ts'

/** A TALLY list of [slot, earliestNs, batches] triples. */
function tally(...rows: [number, number, number][]) {
  return { entries: Float64Array.from(rows.flat()), count: rows.length }
}

function rows(t: { entries: Float64Array; count: number }): number[][] {
  return Array.from({ length: t.count }, (_, i) => Array.from(t.entries.subarray(i * TALLY_SLOTS, (i + 1) * TALLY_SLOTS)))
}

/** `n` messages for the given destination hosts, delivery time = 1000 + i. */
function messages(dsts: number[], payloadAt: number[] = []): { msgs: Float64Array; payloads: Uint8Array[] } {
  const msgs = new Float64Array(dsts.length * WIRE_SLOTS)
  const payloads: Uint8Array[] = []
  dsts.forEach((d, i) => {
    msgs[i * WIRE_SLOTS] = 1000 + i
    msgs[i * WIRE_SLOTS + 4] = d
    if (payloadAt.includes(i)) {
      msgs[i * WIRE_SLOTS + SLOT_PAYLOAD] = 3
      payloads.push(Uint8Array.from([i, i, i]))
    }
  })
  return { msgs, payloads }
}

describe('peer graph', () => {
  it('links runtimes whose hosts the communication graph links, and no others', () => {
    // quickstart: client → web → db (and replies). Three runtimes: client, web, db.
    const m = example('quickstart.yaml')
    const topo = buildTopology(m.plan)
    const owner = m.plan.hosts.map((h) => ['client', 'web', 'db'].indexOf(m.plan.hosts[h.index]!.group))
    expect(owner.every((o) => o >= 0)).toBe(true)
    const g = peerGraph(topo, owner, 3)
    expect(g.out).toEqual([[1], [0, 2], [1]])
    expect(g.in).toEqual([[1], [0, 2], [1]])
    // Everything on one runtime: nobody to send to.
    expect(peerGraph(topo, owner.map(() => 0), 1)).toEqual({ out: [[]], in: [[]] })
  })
})

describe('splitByRuntime', () => {
  it('puts each message, with its payload, in the batch of the runtime carrying its host', () => {
    const owner = [0, 1, 1, 2, 3]
    const peerIndex = Int32Array.from([-1, 0, 1, -1])
    const { msgs, payloads } = messages([2, 3, 1, 3, 1], [1, 4])
    const s = splitByRuntime(msgs, 5, payloads, owner, [1, 2], peerIndex)
    expect(s.counts).toEqual([3, 2])
    expect(s.earliestNs).toEqual([1000, 1001])
    expect(Array.from({ length: 3 }, (_, i) => s.messages[0]![i * WIRE_SLOTS + 4])).toEqual([2, 1, 1])
    expect(s.payloads[0]!.map((p) => p[0])).toEqual([4])
    expect(s.payloads[1]!.map((p) => p[0])).toEqual([1])
    // A host on a runtime that is no out-peer: the graph missed an edge, and that is an error.
    expect(() => splitByRuntime(messages([4]).msgs, 1, [], owner, [1, 2], peerIndex)).toThrow(/cannot reach/)
  })
})

describe('aggregation tree', () => {
  it('gives every runtime one parent, fanIn children per interior node, the leader at the top', () => {
    for (const [n, k] of [[1, 2], [7, 2], [40, 3], [1000, 16]] as const) {
      const seen = new Set<number>()
      const top = treeChildren(-1, k, n)
      expect(top).toEqual(Array.from({ length: Math.min(n, k) }, (_, i) => i))
      const queue = [...top]
      let depth = 0
      for (let level = top; level.length; level = level.flatMap((s) => treeChildren(s, k, n))) depth++
      while (queue.length) {
        const s = queue.shift()!
        expect(seen.has(s)).toBe(false)
        seen.add(s)
        for (const c of treeChildren(s, k, n)) {
          expect(treeParent(c, k)).toBe(s)
          queue.push(c)
        }
      }
      expect(seen.size).toBe(n)
      for (const s of top) expect(treeParent(s, k)).toBe(-1)
      // ⌈log_k N⌉ levels at most (a heap of N + 1 nodes, the leader its root).
      expect(depth).toBeLessThanOrEqual(Math.ceil(Math.log(n + 1) / Math.log(k)))
    }
  })

  it('splits the runtimes into disjoint subtrees, and an OPEN into the entries of each', () => {
    for (const [n, k] of [[7, 2], [40, 3], [300, 16]] as const) {
      const top = treeChildren(-1, k, n).map((s) => subtreeOf(s, k, n))
      expect(top.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i))
      for (const t of top) for (const s of t.slice(1)) expect(t).toContain(treeParent(s, k))
    }
    expect(subtreeOf(0, 2, 7)).toEqual([0, 2, 3, 6])
    const open = tally([3, 30, 1], [0, 10, 0], [2, 20, 2])
    const byslot = new Map([[3, 0], [0, 1], [2, 2]])
    expect(rows({ entries: openEntriesFor([0, 2, 3], byslot, open.entries), count: 3 })).toEqual([
      [0, 10, 0],
      [2, 20, 2],
      [3, 30, 1],
    ])
    expect(() => openEntriesFor([0, 1], byslot, open.entries)).toThrow(/lacks runtime 1/)
  })

  it('combines TALLYs to the earliest time and the sum of batches per runtime, whatever the grouping', () => {
    const a = tally([0, 500, 0], [2, 90, 1], [3, 700, 1])
    const b = tally([1, Infinity, 0], [2, 80, 1])
    const c = tally([2, 95, 0], [0, 450, 1])
    const flat = combineTallies([a, b, c])
    expect(rows(flat)).toEqual([
      [0, 450, 1],
      [1, Infinity, 0],
      [2, 80, 2],
      [3, 700, 1],
    ])
    // Interior runtimes combine subtrees in any order and shape: the leader sees the same.
    expect(rows(combineTallies([combineTallies([c, a]), b]))).toEqual(rows(flat))
    expect(rows(combineTallies([a, combineTallies([b, c])]))).toEqual(rows(flat))
    expect(combineTallies([]).count).toBe(0)
  })
})

describe('TALLY and OPEN frames', () => {
  it('round-trip, and refuse what does not fit', () => {
    const t = tally([0, 12, 0], [4, Infinity, 3])
    const [f] = new FrameDecoder().push(encodeTally(9, t.entries, t.count))
    const d = decodeTally(f!, 5)
    expect(d.epoch).toBe(9)
    expect(rows(d)).toEqual(rows(t))
    expect(() => decodeTally(f!, 4)).toThrow(/names runtime 4 of 4/)
    const bad = tally([0, 12, 0.5])
    expect(() => decodeTally(new FrameDecoder().push(encodeTally(1, bad.entries, 1))[0]!, 2)).toThrow(FrameError)
    const open = tally([2, 123_000, 2], [5, 124_000, 0])
    const [o] = new FrameDecoder().push(encodeOpen(3, open.entries, 2))
    const d2 = decodeOpen(o!, 6)
    expect([d2.epoch, d2.count]).toEqual([3, 2])
    expect(rows(d2)).toEqual(rows(open))
    expect(() => decodeOpen(new FrameDecoder().push(encodeOpen(0, open.entries, 1))[0]!, 6)).toThrow(/bad epoch/)
    // A window must end somewhere.
    const never = tally([0, Infinity, 0])
    expect(() => decodeOpen(new FrameDecoder().push(encodeOpen(1, never.entries, 1))[0]!, 1)).toThrow(/has time Infinity/)
    expect(() => decodeOpen(new FrameDecoder().push(encodeOpen(1, never.entries, 0))[0]!, 1)).toThrow(/without an entry/)
  })
})

describe('syncFromEnv', () => {
  it('defaults to peer batches, a tree from 256 runtimes of 16 children', () => {
    expect(syncFromEnv({})).toEqual({ mode: 'peers', treeMin: 256, fanIn: 16 })
    expect(syncFromEnv({ LIVESIM_SYNC: 'star', LIVESIM_SYNC_TREE_MIN: '3', LIVESIM_SYNC_TREE_FANIN: '2' })).toEqual({ mode: 'star', treeMin: 3, fanIn: 2 })
    expect(() => syncFromEnv({ LIVESIM_SYNC: 'ring' })).toThrow(/peers or star/)
    expect(() => syncFromEnv({ LIVESIM_SYNC_TREE_FANIN: '1' })).toThrow(/at least 2/)
  })
})

describe('PeerMesh', () => {
  it('holds a window until every counted BATCH is in, whatever the order and the epoch they come in', async () => {
    // quickstart over three runtimes (client, web, db): web receives from client and db.
    const m = example('quickstart.yaml')
    const topo = buildTopology(m.plan)
    const owner = m.plan.hosts.map((h) => ['client', 'web', 'db'].indexOf(h.group))
    const meshes = [0, 1, 2].map(() => new PeerMesh('t0k3n', silent))
    const errors: string[] = []
    try {
      const ports = await Promise.all(meshes.map((x) => x.listen(0, '127.0.0.1')))
      const urls = ports.map((p) => `http://127.0.0.1:${p}`)
      meshes.forEach((x) => (x.onError = (e) => errors.push(e.message)))
      // The db runtime sends before web has its table: web keeps it until it has.
      meshes[0]!.configure(m.plan, topo, { slot: 0, urls, owner, fanIn: 0 })
      meshes[2]!.configure(m.plan, topo, { slot: 2, urls, owner, fanIn: 0 })
      const web = m.plan.hosts.find((h) => h.group === 'web')!.index
      const toWeb = (t: number) => {
        const { msgs } = messages([web])
        msgs[0] = t
        return msgs
      }
      const fromDb = meshes[2]!.sendWindow(0, 50, toWeb(7000), 1, [])
      expect(rows(fromDb)).toEqual([
        [2, 50, 0],
        [1, 7000, 1],
      ])
      // Nothing sent: only the runtime's own entry, and no frame on the wire.
      expect(rows(meshes[0]!.sendWindow(0, 60, new Float64Array(0), 0, []))).toEqual([[0, 60, 0]])
      meshes[1]!.configure(m.plan, topo, { slot: 1, urls, owner, fanIn: 0 })
      // Epoch 1's batch from the client comes before web collects epoch 0.
      meshes[0]!.sendWindow(1, 60, toWeb(9000), 1, [])
      const e0 = await meshes[1]!.collect(0, 1)
      expect(e0.map((b) => b.messages[0])).toEqual([7000])
      let got: number[] | undefined
      const e1 = meshes[1]!.collect(1, 2).then((bs) => (got = bs.map((b) => b.messages[0]!)))
      await new Promise((r) => setTimeout(r, 50))
      expect(got).toBeUndefined() // one of two
      meshes[2]!.sendWindow(1, 70, toWeb(8000), 1, [])
      await e1
      expect(got).toEqual([9000, 8000]) // in slot order
      expect(errors).toEqual([])
    } finally {
      await Promise.all(meshes.map((x) => x.close()))
    }
  })

  it('refuses a BATCH from a runtime that cannot send here, and a wrong token', async () => {
    const m = example('quickstart.yaml')
    const topo = buildTopology(m.plan)
    const owner = m.plan.hosts.map((h) => ['client', 'web', 'db'].indexOf(h.group))
    const meshes = [0, 1, 2].map(() => new PeerMesh('t0k3n', silent))
    const wrong = new PeerMesh('other', silent)
    const errors: string[] = []
    try {
      const ports = await Promise.all(meshes.map((x) => x.listen(0, '127.0.0.1')))
      const urls = ports.map((p) => `http://127.0.0.1:${p}`)
      meshes.forEach((x) => (x.onError = (e) => errors.push(e.message)))
      meshes[2]!.configure(m.plan, topo, { slot: 2, urls, owner, fanIn: 0 })
      // The client runtime (slot 0) cannot reach db (slot 2): a hand-made BATCH claiming it is refused.
      meshes[0]!.configure(m.plan, topo, { slot: 0, urls: urls.map((u, i) => (i === 1 ? urls[2]! : u)), owner, fanIn: 0 })
      const web = m.plan.hosts.find((h) => h.group === 'web')!.index
      meshes[0]!.sendWindow(0, 0, messages([web]).msgs, 1, [])
      const deadline = Date.now() + 5000
      while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      expect(errors.join('\n')).toMatch(/BATCH from runtime 0, which cannot send to runtime 2/)
      // A wrong token gets 401.
      await wrong.listen(0, '127.0.0.1')
      const wrongErrors: string[] = []
      wrong.onError = (e) => wrongErrors.push(e.message)
      wrong.configure(m.plan, topo, { slot: 0, urls, owner, fanIn: 0 })
      while (wrongErrors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      expect(wrongErrors.join('\n')).toMatch(/refused the peer stream \(HTTP 401\)/)
    } finally {
      await Promise.all([...meshes, wrong].map((x) => x.close()))
    }
  })

  it('a BATCH is a barrier frame whose time slot names the sender', () => {
    const { msgs } = messages([1, 2])
    const [f] = new FrameDecoder().push(encodeBarrier(F_BATCH, 4, 3, msgs, 2))
    const b = decodeBarrier(f!)
    expect([b.epoch, b.timeNs, b.count]).toEqual([4, 3, 2])
  })
})

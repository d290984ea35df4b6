// A user-written component: a cache in front of a backend. A share of requests (hitRatio) is
// answered locally after hitTime; the rest go to the backend and are answered when it replies.
// Loaded by the manifest examples/custom/cache.yaml as  model: { kind: Custom, module: ./cache.mjs }.
import { Histogram, Message, MSG_ERROR, MSG_REQUEST, MSG_RESPONSE, round } from '../../sim-runtime/components/sdk.ts'

const T_HIT = 1

export default function cache(params, ctx) {
  const hitRatio = Number(params.hitRatio ?? 0.8)
  const hitNs = Number(params.hitTimeNs ?? 20_000)
  const backend = ctx.resolve(String(params.backend))
  const rng = ctx.rng('hits')
  const waiting = new Map() // backend call id → original request
  const hitLatency = new Histogram()
  let nextId = 1
  let hits = 0
  let misses = 0
  let failures = 0

  const reply = (req, type) => {
    const m = new Message()
    m.dstHost = req.srcHost
    m.dstComp = req.srcComp
    m.type = type
    m.id = req.id
    m.bytes = type === MSG_RESPONSE ? req.replyBytes : 64
    ctx.send(m)
  }

  return {
    start() {},
    onTimer(type, req) {
      if (type === T_HIT) reply(req, MSG_RESPONSE)
    },
    onMessage(msg) {
      if (msg.type === MSG_REQUEST) {
        if (rng.uniform() < hitRatio) {
          hits++
          hitLatency.record(hitNs)
          ctx.schedule(hitNs, T_HIT, msg)
          return
        }
        misses++
        const call = new Message()
        call.dstHost = backend.hosts[0]
        call.dstComp = backend.component
        call.type = MSG_REQUEST
        call.id = nextId++
        call.bytes = msg.bytes
        call.replyBytes = msg.replyBytes
        waiting.set(call.id, msg)
        ctx.send(call)
        return
      }
      const req = waiting.get(msg.id)
      if (!req) return
      waiting.delete(msg.id)
      if (msg.type !== MSG_RESPONSE) failures++
      reply(req, msg.type === MSG_RESPONSE ? MSG_RESPONSE : MSG_ERROR)
    },
    results() {
      return { hits, misses, failures, hitRatio: round(hits / Math.max(1, hits + misses), 4) }
    },
  }
}

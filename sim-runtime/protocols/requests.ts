// What a modelled component (a Client, or a Server's call) sends to a live program: real requests in
// the protocol its spec names, `redis:` (GET/SET commands over a key space) or `http:` (GET/POST
// over one path or several), to the port its target names. The runtime of the program's host
// writes them into the program's socket and answers with its replies (live/modelled.ts).
import type { RunPlan } from '../api/plan.ts'
import { parseSizeBytes } from '../api/units.ts'
import type { Rng } from '../engine/rng.ts'
import { encodeRequest } from './http-request.ts'
import { liveTag, PROTO_HTTP, PROTO_REDIS } from './live-tag.ts'
import { encodeCommand } from './resp.ts'

/** The `redis:` block of a Client or a call (api/schema.ts). */
export interface RedisRequestsSpec {
  setRatio?: number
  keys?: number
  valueSize?: number | string
}

/** The `http:` block of a Client or a call (api/schema.ts). */
export interface HttpRequestsSpec {
  method?: 'GET' | 'POST'
  path?: string
  paths?: string[]
  headers?: { name: string; value: string }[]
  bodySize?: number | string
  keepAlive?: boolean
}

export interface LiveRequests {
  /** The next request's bytes, for replica `dstHost` of the target. */
  next(dstHost: number): Buffer
  /** The request's tag on the sender's own connection `connection`, or on a connection of its pool (-1). */
  tag(connection: number): number
  /** The connection an open loop sends on: Redis pipelines on one (0), HTTP takes one of the pool per request (-1). */
  readonly openLoopConnection: number
}

/** The port a target names (host/component:port) or, without one, the live component's first port; 0 if it serves none. */
export function targetPort(plan: RunPlan, from: number, target: string): number {
  const r = plan.resolve(from, target)
  const ports = plan.hosts[r.hosts[0]!]!.components[r.component]!.spec.live?.ports ?? []
  const colon = target.lastIndexOf(':')
  const name = target.includes('/') && colon >= 0 ? target.slice(colon + 1) : undefined
  return (name === undefined ? ports[0] : ports.find((p) => p.name === name))?.port ?? 0
}

/**
 * The requests a component with `redis:` or `http:` sends to `target` (validated: a live component
 * serving the port); undefined without either block. `rng(name)` is the component's seeded stream.
 */
export function liveRequests(plan: RunPlan, from: number, target: string, spec: { redis?: RedisRequestsSpec; http?: HttpRequestsSpec }, rng: (name: string) => Rng): LiveRequests | undefined {
  if (spec.redis) return redisRequests(targetPort(plan, from, target), spec.redis, rng('redis'))
  if (spec.http) return httpRequests(plan, targetPort(plan, from, target), spec.http, rng('http'))
  return undefined
}

function redisRequests(port: number, spec: RedisRequestsSpec, rng: Rng): LiveRequests {
  const setRatio = spec.setRatio ?? 0.5
  const keys = spec.keys ?? 10_000
  const value = Buffer.alloc(parseSizeBytes(spec.valueSize ?? 64), 'x')
  return {
    next: () => {
      const key = `key:${Math.floor(rng.uniform() * keys)}`
      return rng.uniform() < setRatio ? encodeCommand(['SET', key, value]) : encodeCommand(['GET', key])
    },
    tag: (connection) => liveTag(port, PROTO_REDIS, connection),
    openLoopConnection: 0,
  }
}

/** Encoded requests kept per (replica, path); beyond this many, requests are encoded each time. */
const HTTP_CACHE_MAX = 4096

function httpRequests(plan: RunPlan, port: number, spec: HttpRequestsSpec, rng: Rng): LiveRequests {
  const paths = spec.paths ?? [spec.path ?? '/']
  const method = spec.method ?? 'GET'
  const bodyBytes = spec.bodySize !== undefined ? parseSizeBytes(spec.bodySize) : 0
  const cache = new Map<number, Buffer>()
  const encode = (dstHost: number, p: number) =>
    encodeRequest({
      method,
      path: paths[p]!,
      host: port === 80 ? plan.hosts[dstHost]!.name : `${plan.hosts[dstHost]!.name}:${port}`,
      headers: spec.headers,
      bodyBytes,
      keepAlive: spec.keepAlive ?? true,
    })
  return {
    next: (dstHost) => {
      const p = paths.length > 1 ? rng.below(paths.length) : 0
      const key = dstHost * paths.length + p
      let req = cache.get(key)
      if (!req) {
        req = encode(dstHost, p)
        if (cache.size < HTTP_CACHE_MAX) cache.set(key, req)
      }
      return req
    },
    tag: (connection) => liveTag(port, PROTO_HTTP, connection),
    openLoopConnection: -1,
  }
}

// How the operator talks to a run's leader: GET /v1/status and /v1/results, POST /v1/ack, all
// on the leader's HTTP/1.1 port with short timeouts (an unreachable leader is an observation,
// not an error).
import type { LeaderStatus } from '../../sim-runtime/sync/leader.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'

export interface LeaderClient {
  status(ip: string): Promise<LeaderStatus | undefined>
  results(ip: string): Promise<SimResults | undefined>
  ack(ip: string, token: string): Promise<boolean>
}

export function httpLeaderClient(port: number, timeoutMs = 3000): LeaderClient {
  const url = (ip: string, path: string) => `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}${path}`
  const getJson = async <T>(ip: string, path: string, ms = timeoutMs): Promise<T | undefined> => {
    try {
      const r = await fetch(url(ip, path), { signal: AbortSignal.timeout(ms) })
      if (!r.ok) return undefined
      return (await r.json()) as T
    } catch {
      return undefined
    }
  }
  return {
    status: (ip) => getJson<LeaderStatus>(ip, '/v1/status'),
    // Results with every host of a large cluster are tens of MB: more time to read them.
    results: (ip) => getJson<SimResults>(ip, '/v1/results', Math.max(timeoutMs, 60_000)),
    ack: async (ip, token) => {
      try {
        const r = await fetch(url(ip, '/v1/ack'), { method: 'POST', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) })
        return r.ok
      } catch {
        return false
      }
    },
  }
}

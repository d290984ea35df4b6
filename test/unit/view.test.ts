// What `livesim run` prints after its table: HTTP status codes of the components that count them.
import { describe, expect, it } from 'vitest'
import { statusLines } from '../../sim-runtime/cli/view.ts'
import type { SimResults } from '../../sim-runtime/sync/results.ts'

const results = (components: Record<string, unknown>) => ({ hosts: { 'c-0': { components } } }) as unknown as SimResults

describe('statusLines', () => {
  it('prints status codes and p50 per status class of HTTP clients, and the status of HTTP calls', () => {
    const r = results({
      load: { kind: 'Client', status: { '200': 12, '404': 3 }, latencyByStatusClass: { '2xx': { p50Ns: 412_300 }, '4xx': { p50Ns: 398_000 } } },
      api: { kind: 'Server', callStatus: { '200': 7, '503': 1 } },
    })
    expect(statusLines(r)).toEqual(['c-0/load: HTTP status 200: 12, 404: 3; p50 2xx 412.3 µs, 4xx 398.0 µs', 'c-0/api: HTTP calls, status 200: 7, 503: 1'])
  })

  it('prints nothing for components without HTTP', () => {
    expect(statusLines(results({ load: { kind: 'Client', completed: 3 }, sql: { kind: 'Server' } }))).toEqual([])
  })
})

// The straggler profile: per runtime, the time from each GRANT to its REPORT, the time it then
// waited, how often it came last (those counts sum to the barriers) and its report p50/p99; per
// host, its events and busy time. In the results outside the digest, in the leader's /metrics and,
// the top five, in its status.
import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { Leader } from '../../sim-runtime/sync/leader.ts'
import { runRuntime } from '../../sim-runtime/sync/runtime.ts'
import { simulateInProcess } from '../../sim-runtime/sync/inprocess.ts'
import { digestOf } from '../../sim-runtime/sync/results.ts'
import { example, silent } from '../helpers.ts'

const TOKEN = 'profile-test-token'

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

describe('the straggler profile', () => {
  it('of three runtimes: last-to-report counts sum to the barriers, in results, /metrics and status', async () => {
    const m = example('quickstart.yaml')
    const leader = new Leader({ cluster: m.cluster, plan: m.plan, token: TOKEN, baseDir: m.baseDir, logger: silent, registerTimeoutMs: 30_000, barrierTimeoutMs: 60_000 })
    try {
      const port = await leader.listen(0, '127.0.0.1', 0)
      const parts = [['client-0', 'client-1', 'client-2', 'client-3'], ['web-0', 'web-1', 'web-2'], ['db-0']]
      const runtimes = parts.map((hosts, i) => runRuntime({ leaderUrl: `http://127.0.0.1:${port}`, token: TOKEN, hosts, runtimeId: `rt-${i}`, logger: silent }))
      const r = await leader.run()
      await Promise.all(runtimes)
      const p = r.profile!
      expect(p.barriers).toBe(r.sync.barriers)
      expect(p.runtimeCount).toBe(3)
      expect(p.runtimes.map((x) => x.runtime).sort()).toEqual(['rt-0', 'rt-1', 'rt-2'])
      expect(p.runtimes.reduce((n, x) => n + x.lastToReport, 0)).toBe(r.sync.barriers)
      for (const x of p.runtimes) {
        expect(x.busyNs, x.runtime).toBeGreaterThan(0)
        expect(x.reportNs, x.runtime).toBeGreaterThan(0)
        expect(x.waitNs, x.runtime).toBeGreaterThanOrEqual(0)
        expect(x.reportP50Ns, x.runtime).toBeGreaterThan(0)
        expect(x.reportP50Ns, x.runtime).toBeLessThanOrEqual(x.reportP99Ns)
        expect(x.embedded).toBeUndefined()
      }
      // Most often last first.
      for (let i = 1; i < p.runtimes.length; i++) expect(p.runtimes[i - 1]!.lastToReport).toBeGreaterThanOrEqual(p.runtimes[i]!.lastToReport)
      expect(p.runtimes.find((x) => x.runtime === 'rt-2')!.hosts).toBe('db-0')
      // Every host (the quickstart's results hold every host), with its events.
      expect(p.hosts.map((h) => h.host).sort()).toEqual(Object.keys(r.hosts).sort())
      for (const h of p.hosts) expect(h.events).toBe(r.hosts[h.host]!.events)
      expect(p.hosts.reduce((n, h) => n + h.busyNs, 0)).toBeGreaterThan(0)
      // Outside the digest: the same digest as a run in one process, whose profile differs.
      expect(digestOf({ ...r, profile: undefined })).toBe(r.digest)
      expect(simulateInProcess(m.plan).digest).toBe(r.digest)

      const status = leader.status()
      expect(status.stragglers!.map((s) => s.runtime)).toEqual(p.runtimes.map((x) => x.runtime))
      expect(status.stragglers![0]!.lastToReport).toBe(p.runtimes[0]!.lastToReport)

      const metrics = await get(leader.httpPort!, '/metrics')
      const last = [...metrics.matchAll(/^livesim_runtime_last_to_report_total\{runtime="(rt-\d)"[^}]*\} (\d+)$/gm)]
      expect(last.map((x) => x[1]).sort()).toEqual(['rt-0', 'rt-1', 'rt-2'])
      expect(last.reduce((n, x) => n + Number(x[2]), 0)).toBe(r.sync.barriers)
      for (const name of ['livesim_runtime_report_seconds_total', 'livesim_runtime_wait_seconds_total', 'livesim_runtime_busy_seconds_total']) {
        expect(metrics).toMatch(new RegExp(`^${name}\\{runtime="rt-0"[^}]*\\} [0-9.e-]+$`, 'm'))
      }
      expect(metrics).toMatch(/^livesim_runtime_report_seconds\{runtime="rt-1",quantile="0.99"[^}]*\} [0-9.e-]+$/m)
    } finally {
      await leader.close()
    }
  }, 120_000)

  it('of an embedded run: one runtime, last to report every barrier, never waiting', () => {
    const r = simulateInProcess(example('quickstart.yaml').plan)
    const [rt, ...others] = r.profile!.runtimes
    expect(others).toEqual([])
    expect(rt).toMatchObject({ runtime: 'runtime-0', embedded: true, lastToReport: r.sync.barriers, waitNs: 0 })
    expect(rt!.busyNs).toBe(rt!.reportNs)
    expect(rt!.reportP50Ns).toBeLessThanOrEqual(rt!.reportP99Ns)
  })
})

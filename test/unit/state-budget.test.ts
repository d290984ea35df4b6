// The heap budget of validation (sim-runtime/api/state-budget.ts): its per-item figures against a
// fresh measurement, and what it refuses and accepts: partitions, queue limits, hosts × components.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { heapIssues, STATE_BYTES, type HeapBudget } from '../../sim-runtime/api/state-budget.ts'
import { placeHosts } from '../../sim-runtime/sync/placement.ts'
import { loadSimCluster } from '../../sim-runtime/api/validate.ts'

const ROOT = path.join(import.meta.dirname, '..', '..')
const GIB4: HeapBudget = { heapLimitBytes: 4 * 2 ** 30, partition: 1 }

const issuesOf = (yaml: string, heap: HeapBudget) => heapIssues(loadSimCluster(yaml).plan, heap)

/** `replicas` client hosts of `users` closed-loop users each, against one server. */
function users(replicas: number, users: number): string {
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: users }
spec:
  endTime: 1s
  hosts:
    - name: client
      replicas: ${replicas}
      components:
        - name: load
          model: { kind: Client, target: web/http, closedLoop: { users: ${users}, thinkTime: 10ms } }
    - name: web
      components:
        - name: http
          model: { kind: Server, workers: 8, service: { distribution: Exponential, mean: 1ms } }
`
}

function openLoop(rate: number, queueLimit: string): string {
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: open }
spec:
  endTime: 1s
  hosts:
    - name: client
      components:
        - name: load
          model: { kind: Client, target: web/http, openLoop: { rate: ${rate} }, timeout: 50ms }
    - name: web
      components:
        - name: http
          model: { kind: Server, workers: 4, ${queueLimit}service: { distribution: Exponential, mean: 100us } }
`
}

describe('heap budget', () => {
  it('its per-item figures cover what hack/measure-state-bytes.ts measures now, and are no more than 25 % above it', () => {
    const measure = (scenario: string) => {
      const r = spawnSync(process.execPath, ['--expose-gc', path.join(ROOT, 'hack', 'measure-state-bytes.ts'), scenario], { encoding: 'utf8', timeout: 120_000 })
      expect(r.status, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { heapBytesPerItem: number }).heapBytesPerItem
    }
    const cases = [
      { scenario: 'users-in-flight-no-timeout', figure: STATE_BYTES.request },
      { scenario: 'users-in-flight', figure: STATE_BYTES.request + STATE_BYTES.timer },
      { scenario: 'open-loop-timers', figure: STATE_BYTES.timer },
      { scenario: 'hosts-1-server', figure: STATE_BYTES.host + STATE_BYTES.component },
    ]
    for (const c of cases) {
      const measured = measure(c.scenario)
      expect(measured, c.scenario).toBeLessThanOrEqual(c.figure)
      expect(measured, c.scenario).toBeGreaterThan(c.figure / 1.25)
    }
  })

  it('suggests the smallest partition that fits, and that partition is accepted', () => {
    const yaml = users(100, 1_000_000)
    const [issue] = issuesOf(yaml, GIB4)
    const n = Number(/--partition (\d+)\)$/.exec(issue!.message)?.[1])
    expect(n).toBeGreaterThan(1)
    expect(issuesOf(yaml, { ...GIB4, partition: n })).toEqual([])
    const [tooFew] = issuesOf(yaml, { ...GIB4, partition: n - 1 })
    expect(tooFew?.path).toBe('spec.hosts[0].components[0].model.closedLoop.users')
    expect(tooFew?.message).toContain(`of ${n - 1} (`)
  })

  it('accepts the same users split over hosts that each fit, and refuses one host that holds them all', () => {
    expect(issuesOf(users(4, 1_000_000), { heapLimitBytes: 2 * 2 ** 30, partition: 4 })).toEqual([])
    const [one] = issuesOf(users(1, 1_000_000), { heapLimitBytes: 512 * 2 ** 20, partition: 1 })
    expect(one?.message).toMatch(/needs ~477 MiB of modelled state \(1000000 users, ~500 B each\), the runtime's heap holds ~352 MiB .*; lower users \(one host is more than a runtime can carry\)$/)
  })

  it('open loop: rate × timeout outstanding, unless the target\'s queue limit bounds them (their timers remain)', () => {
    const [unbounded] = issuesOf(openLoop(100_000_000, ''), GIB4)
    expect(unbounded?.path).toBe('spec.hosts[0].components[0].model.openLoop.rate')
    expect(unbounded?.message).toContain('up to 5000000 requests outstanding (rate × timeout), ~660 B each')
    expect(issuesOf(openLoop(100_000_000, 'queueLimit: 1000, '), GIB4)).toEqual([])
    // The queue holds 4 workers + 1000 waiting; rejections are back within 2 × 100 µs: 1004 + 1e8/s × 200 µs
    // outstanding. The timers of the answered ones remain: ~5e6 × 160 B = 760 MiB.
    const [timers] = issuesOf(openLoop(100_000_000, 'queueLimit: 1000, '), { heapLimitBytes: 512 * 2 ** 20, partition: 1 })
    expect(timers?.message).toContain("up to 21004 requests outstanding (web/http's queue limit) and 4978996 timeout timers of answered ones")
  })

  it('hosts × components count: a thousand hosts of 64 servers are refused in a small heap', () => {
    const servers = Array.from({ length: 64 }, (_, i) => `        - { name: s${i}, model: { kind: Server, service: { distribution: Constant, mean: 1ms } } }`).join('\n')
    const yaml = `apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: wide }\nspec:\n  endTime: 1s\n  hosts:\n    - name: h\n      replicas: 1000\n      components:\n${servers}\n`
    expect(issuesOf(yaml, GIB4)).toEqual([])
    const [issue] = issuesOf(yaml, { heapLimitBytes: 128 * 2 ** 20, partition: 1 })
    expect(issue?.path).toBe('spec.hosts[0].components')
    expect(issue?.message).toContain('(1000 hosts × 64 components)')
    expect(issue?.message).toContain('use fewer hosts or components or split hosts across runtimes (--partition 3)')
  })

  it("with spec.placement, checks each of the placement's runtimes: what fits in 4 does not in 2", () => {
    const servers = Array.from({ length: 64 }, (_, i) => `        - { name: s${i}, model: { kind: Server, service: { distribution: Constant, mean: 1ms } } }`).join('\n')
    const yaml = (runtimes: number) => `apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: wide }\nspec:\n  endTime: 1s\n  placement: { runtimes: ${runtimes} }\n  hosts:\n    - name: h\n      replicas: 1000\n      components:\n${servers}\n`
    const small = { heapLimitBytes: 128 * 2 ** 20, partition: 1 }
    const placed: HeapBudget = { ...small, runtimes: (plan) => placeHosts(plan, plan.placement).runtimes }
    expect(issuesOf(yaml(4), placed)).toEqual([])
    const [issue] = issuesOf(yaml(2), placed)
    expect(issue?.message).toContain('in runtime 1 of 2 (500 hosts × 64 components)')
    expect(issue?.message).toContain('or spread the hosts over more runtimes (spec.placement)')
  })
})

// The real API server and the operator refuse every malformed SimSweep of the table that `livesim
// validate` is tested with (test/sweep-validation-cases.ts), each with its field path.
//
// Each case is created (`kubectl create`, one namespace). What the CRD can express (its structural
// schema, strict field validation, CEL rules) the API server refuses at once, its message naming the
// path. What it cannot (paths resolving in the template, values valid at their path, grid points, the
// grid's size, metrics on components, names within the trials' length: docs/sweeps.md, "Invalid
// sweeps") the API server accepts, and the operator ends the sweep Failed, condition reason
// InvalidSpec, with the same path and words as `livesim validate` in status.message; no trial
// runs, so nothing is waited for but one reconcile. Which layer refuses which case is pinned in the
// table (`apiServer`: what the API server's message names), so a case that moves from one layer to
// the other is noticed; at least 20 are the API server's own.
import { beforeAll, describe, expect, it } from 'vitest'
import { CASES, type Case } from '../sweep-validation-cases.ts'
import { getJson, kubectl, kubectlIn, namespace, until, type Run } from './kube.ts'

const NS = 'e2e-sweep-validation'

interface Named extends Case {
  index: number
  /** metadata.name as created: `bad-<index>`, or the case's own when the name is what it breaks. */
  sweep: string
  layer: 'API server' | 'operator'
}

const named: Named[] = CASES.map((c, index) => {
  const own = /^ {2}name: (.*)$/m.exec(c.yaml)?.[1] ?? ''
  const sweep = own === 'base' ? `bad-${index}` : own
  return { ...c, index, sweep, yaml: c.yaml.replace(/^ {2}name: base$/m, `  name: ${sweep}`), layer: c.apiServer === undefined ? 'operator' : 'API server' }
})

interface SweepJson {
  metadata: { name: string }
  status?: { phase?: string; message?: string; trials?: { total: number }; conditions?: { type: string; status: string; reason: string }[] }
}

const created = new Map<number, Run>()

beforeAll(() => {
  namespace(NS)
  for (const c of named) created.set(c.index, kubectlIn(c.yaml, 'create', '-n', NS, '-f', '-'))
})

/** The sweeps in the namespace, by name. */
function sweeps(): Map<string, SweepJson> {
  return new Map(getJson<{ items: SweepJson[] }>('get', 'simsweeps', '-n', NS).items.map((s) => [s.metadata.name, s]))
}

describe('the API server and the operator refuse malformed SimSweeps with the field path', () => {
  const byApiServer = named.filter((c) => c.layer === 'API server').length
  // An apiVersion the CRD does not serve is refused without a field path (no such kind in that
  // version); the count of at least 20 is of the refusals that name one.
  const withPath = named.filter((c) => /\b(spec|metadata)\./.test(c.apiServer ?? '')).length
  it(`${CASES.length} cases: ${byApiServer} refused by the API server itself, ${withPath} of them naming the field path (at least 20), ${CASES.length - byApiServer} by the operator`, () => {
    expect(withPath).toBeGreaterThanOrEqual(20)
  })

  it.each(named)('#$index $name → $path ($layer)', async (c) => {
    const r = created.get(c.index)!
    const report = `kubectl create: exit ${r.status}\n${r.stderr}${r.stdout}`
    if (c.layer === 'API server') {
      expect(r.status, `the API server accepted it: ${report}`).not.toBe(0)
      expect(r.stderr, report).toContain(c.apiServer)
      return
    }
    expect(r.status, `the API server refused it; the operator was to: ${report}`).toBe(0)
    const sw = await until(
      `SimSweep ${c.sweep} Failed`,
      () => {
        const s = sweeps().get(c.sweep)
        return s?.status?.phase === 'Failed' ? s : undefined
      },
      60_000,
    )
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True')?.reason).toBe('InvalidSpec')
    expect(sw.status?.message).toContain(`${c.path}: `)
    expect(sw.status?.message).toContain(c.message)
    // Refused before any trial: none was created.
    expect(kubectl('get', 'simclusters', '-n', NS, '-l', `livesim.dev/sweep=${c.sweep}`, '-o', 'name').trim()).toBe('')
  })
})

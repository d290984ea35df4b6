// Table-driven test of SimSweep validation: each malformed sweep breaks one thing in a small valid
// base, and must be refused with a ValidationError naming the exact field path and saying what is
// wrong and what is allowed; nothing may be half-applied or run.
// The table is test/sweep-validation-cases.ts, shared with the e2e test against the API server.
import { describe, expect, it } from 'vitest'
import { ValidationError } from '../../sim-runtime/api/validate.ts'
import { trials } from '../../sim-runtime/sweep/grid.ts'
import { loadSimSweep } from '../../sim-runtime/sweep/validate.ts'
import { BASE, CASES } from '../sweep-validation-cases.ts'

describe('SimSweep validation refuses malformed sweeps with the field path', () => {
  it('the base sweep is valid: 4 points × 2 seeds', () => {
    const grid = loadSimSweep(BASE)
    expect(grid.points).toBe(4)
    expect(trials(grid).map((t) => [t.name, t.seed, t.values])).toEqual([
      ['base-p0-s0', 7, [1, '50us']],
      ['base-p0-s1', 8, [1, '50us']],
      ['base-p1-s0', 7, [1, '100us']],
      ['base-p1-s1', 8, [1, '100us']],
      ['base-p2-s0', 7, [2, '50us']],
      ['base-p2-s1', 8, [2, '50us']],
      ['base-p3-s0', 7, [2, '100us']],
      ['base-p3-s1', 8, [2, '100us']],
    ])
  })

  it(`has at least 20 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20)
  })

  it.each(CASES)('$name → $path', ({ yaml, path, message }) => {
    let error: unknown
    try {
      loadSimSweep(yaml, { source: 'sweep.yaml' })
    } catch (err) {
      error = err
    }
    expect(error, 'the sweep was accepted').toBeInstanceOf(ValidationError)
    const issues = (error as ValidationError).issues
    const hit = issues.find((i) => i.path === path && i.message.includes(message))
    expect(hit, `no issue at ${path} containing ${JSON.stringify(message)}; got:\n${issues.map((i) => `${i.path}: ${i.message}`).join('\n')}`).toBeDefined()
    expect((error as Error).message).toMatch(/^sweep\.yaml: invalid SimSweep:\n/)
    expect((error as Error).message).not.toMatch(/\n\s+at .+:\d+:\d+/)
  })
})

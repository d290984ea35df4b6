// `npm run bench`'s command line: what it refuses before running anything (exit 2, a clear line).
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from '../helpers.ts'

const RUN = path.join(root, 'bench', 'run.ts')

function bench(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', cwd: root, timeout: 60_000, env: { ...process.env, ...env } })
}

describe('the bench command line', () => {
  it('refuses an unknown benchmark with the list of names, running nothing', () => {
    const r = bench(['no-such-bench'])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain('unknown benchmark "no-such-bench"')
    expect(r.stderr).toContain('live-redis-fidelity')
    expect(r.stdout).toBe('')
  })

  it('refuses a BENCH_REPS that is not a positive integer, running nothing', () => {
    for (const reps of ['x', '0', '-1', '2.5']) {
      const r = bench(['skipahead-sparse'], { BENCH_REPS: reps })
      expect(r.status, reps).toBe(2)
      expect(r.stderr).toContain(`BENCH_REPS must be a positive integer, got ${JSON.stringify(reps)}`)
      expect(r.stderr).not.toContain('running')
      expect(r.stdout).toBe('')
    }
  })
})

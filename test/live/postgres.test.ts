// examples/postgres-pgbench.yaml, shortened: PostgreSQL (Debian's package) live on host db-0, loaded
// at virtual time 0, pgbench on host bench-0 across a 100 µs link. What holds whether or not
// pgbench's timers follow virtual time (postgres-timers.test.ts checks -T and -P, which need them).
// Skipped, saying so, where Debian's PostgreSQL is not installed (hack/live-deps.sh installs it).
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { debianPgBin, parsePgbench, pgbenchManifest } from '../../bench/live-pgbench.ts'
import { manifest, runProcesses } from '../helpers.ts'
import { ensureLiveDeps } from './helpers.ts'

const pgBin = debianPgBin()
const isRoot = process.getuid?.() === 0

describe.skipIf(!pgBin)(`examples/postgres-pgbench.yaml, 40 transactions${pgBin ? '' : ' (skipped: PostgreSQL is not installed: /usr/lib/postgresql/<version>/bin; hack/live-deps.sh installs it)'}`, () => {
  let work = ''
  beforeAll(() => {
    ensureLiveDeps()
    work = mkdtempSync(path.join(tmpdir(), 'livesim-pg-'))
    chmodSync(work, 0o711) // PostgreSQL runs as postgres when we are root: it must pass
  })
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('loads the data at virtual time 0, runs TPC-B transactions that each take at least 7 round trips of virtual time, and removes the data directory at the end', async () => {
    // -t (a number of transactions), not -T: pgbench ends -T with alarm(), on the wall clock until the
    // shim's virtual timers land (postgres-timers.test.ts); a count does not depend on the wall.
    const m = manifest(pgbenchManifest({ latencyNs: 100_000, pgbenchArgs: '-t 40 -c 1 -j 1', endTimeNs: 600e6, clock: 'CpuTime', asRoot: isRoot, name: 'pg-short' }))
    const dir = path.join(work, 'short')
    const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: dir }) })
    const db = r.hosts['db-0']!.components.postgres as Record<string, unknown>
    const pg = r.hosts['bench-0']!.components.pgbench as Record<string, unknown>
    const text = readFileSync(String(pg.log), 'utf8')
    const dbLog = readFileSync(String(db.log), 'utf8')
    expect(pg.exitCode, text).toBe(0)
    expect(db.running, dbLog).toBe(true) // as root, it runs as postgres: PostgreSQL refuses root
    // The load (pgbench -i) ran at start-up, before the run: the clock stood at 0.
    expect(dbLog).toMatch(/100000 of 100000 tuples/)
    expect(dbLog).toMatch(/2024-01-01 00:00:00\.000 UTC \[\d+\] LOG: {2}database system is ready to accept connections/)
    const out = parsePgbench(text)
    expect(out.failed).toBe(0)
    expect(out.transactions).toBe(40)
    // A TPC-B transaction is 7 statements (BEGIN … END), each a round trip over 2 × 100 µs: ≥ 1.4 ms of virtual time.
    expect(out.latencyAvgMs).toBeGreaterThanOrEqual(1.4)
    expect(out.tps).toBeLessThanOrEqual(1000 / 1.4)
    // terminationGracePeriod: the db script stopped PostgreSQL and removed its data at the end.
    expect(existsSync(path.join(dir, 'db-0', 'pgdata'))).toBe(false)
    expect(dbLog).toMatch(/database system is shut down\s*$/)
  }, 300_000)
})

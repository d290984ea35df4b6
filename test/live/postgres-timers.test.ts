// pgbench's -T and -P in virtual time: examples/postgres-pgbench.yaml, shortened, must print one
// progress line per virtual second of -T, and its transaction count must be its tps × -T. pgbench
// ends -T with alarm() and paces -P with ppoll() timeouts: both follow the virtual clock through
// the shim (sim-runtime/live/shim/timers.c, waits.c). The run's slowdown is at least 2, so a timer
// on the wall clock would end -T 3 by 1.5 s of virtual time, with one progress line, not three:
// CpuTime cells are that slow by their freezes (4-5× here); the Cooperative run gives pgbench's host
// speed 4 (its clock runs at 1/4 of the wall), since Cooperative cells on 100 µs links run near 1×.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { dump, load } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { debianPgBin, parsePgbench, pgbenchManifest } from '../../bench/live-pgbench.ts'
import { manifest, runProcesses } from '../helpers.ts'
import { ensureLiveDeps } from './helpers.ts'

const pgBin = debianPgBin()
const why = !pgBin ? 'PostgreSQL is not installed: /usr/lib/postgresql/<version>/bin; hack/live-deps.sh installs it' : undefined

/** The manifest with pgbench's host at the given CPU speed (its clock runs at 1/speed of the wall). */
function withBenchSpeed(text: string, speed: number): string {
  const doc = load(text) as { spec: { hosts: { name: string; cell?: Record<string, unknown> }[] } }
  const bench = doc.spec.hosts.find((h) => h.name === 'bench')
  if (!bench) throw new Error('postgres-pgbench.yaml: no host "bench"')
  bench.cell = { ...bench.cell, speed }
  return dump(doc, { lineWidth: 200 })
}
const SECONDS = 3

describe.skipIf(why !== undefined)(`pgbench -T ${SECONDS} -P 1 in virtual time${why ? ` (skipped: ${why})` : ''}`, () => {
  let work = ''
  beforeAll(() => {
    ensureLiveDeps()
    work = mkdtempSync(path.join(tmpdir(), 'livesim-pg-timers-'))
    chmodSync(work, 0o711)
  })
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it.each(['CpuTime', 'Cooperative'])('prints one progress line per virtual second, and as many transactions as tps × duration (%s clocks)', async (clock) => {
    const text0 = pgbenchManifest({ latencyNs: 100_000, pgbenchArgs: `-T ${SECONDS} -P 1 -c 1 -j 1`, endTimeNs: (SECONDS + 1) * 1e9, clock, asRoot: process.getuid?.() === 0, name: `pg-timers-${clock.toLowerCase()}` })
    const m = manifest(clock === 'Cooperative' ? withBenchSpeed(text0, 4) : text0)
    // PostgreSQL's start-up (initdb, the load) happens before the gang start: ~1-2 s here alone, but
    // more than the default minute twice with another test worker running beside it.
    const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, clock) }), registerTimeoutMs: 300_000 })
    console.log(`pgbench -T ${SECONDS} under livesim, ${clock} clocks: slowdown ${r.wall.slowdown}`)
    // A property of the set-up (not a speed claim): wall time ran at least 2× faster than virtual time.
    expect(r.wall.slowdown).toBeGreaterThanOrEqual(2)
    const pg = r.hosts['bench-0']!.components.pgbench as Record<string, unknown>
    const text = readFileSync(String(pg.log), 'utf8')
    expect(pg.exitCode, text).toBe(0)
    const out = parsePgbench(text)
    // pgbench (14 and later) sets its -T alarm in main() just before thread 0 notes its start, from
    // which -P counts: the line at -T is printed only if the transaction in flight when the alarm
    // fires ends after that instant, natively too (a race the gap between the two decides). So the
    // lines of the first SECONDS − 1 seconds must be there, and the last may be.
    expect(out.progressLines, text).toBeGreaterThanOrEqual(SECONDS - 1)
    expect(out.progressLines, text).toBeLessThanOrEqual(SECONDS)
    // pgbench's tps excludes the connection time (~ms): its count over -T is tps × -T within a few %.
    expect(Math.abs(out.transactions - out.tps * SECONDS) / (out.tps * SECONDS), text).toBeLessThanOrEqual(0.05)
    // pgbench ended by its -T timer, in virtual time: before the run's end (-T + 1 s), not long before.
    expect(Number(pg.exitedAtNs)).toBeGreaterThanOrEqual(SECONDS * 1e9)
    expect(Number(pg.exitedAtNs)).toBeLessThan((SECONDS + 1) * 1e9)
  }, 600_000)
})

// Timed waits in a Cooperative cell that is otherwise idle (sim-runtime/live/coop.ts, deadlines.ts;
// the shim's deadline registry, shim/deadlines.c; docs/live.md, "Cooperative cells"). A program's
// timed wait waits on the real clock for what is left of its virtual deadline at the clock's rate;
// the cooperative driver moves an idle cell's clock without waiting, quantum after quantum, so without
// the registry the clock ran far ahead of the waiter, which woke long after its deadline (pgbench's
// -T alarm fired 0.87 s late in 3 s). test/live/coop-timers-probe.c sleeps, polls, reads a timerfd
// and waits on a condition variable, one kind per cell, each cell at speed 4 (its clock runs at a
// quarter of the wall), driven quantum by quantum as fast as the driver goes: each wait must end at
// or after its deadline and at most one quantum after it. (One kind per cell: in a cell where
// another program reads its clock meanwhile, the clock runs with the wall, and a waiter the machine
// keeps from a CPU after its wait ends is late by that delay at the clock's rate, as in a frozen
// cell; alone, it finds its cell's clock held at its deadline.)
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCell, detectCellMode, type Cell } from '../../sim-runtime/live/cell.ts'
import { createVirtualClock, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createCoopDriver } from '../../sim-runtime/live/coop.ts'
import { faketimeShim } from '../../sim-runtime/live/shim.ts'
import { baseEnv, ensureLiveDeps } from './helpers.ts'

const work = mkdtempSync(path.join(tmpdir(), 'livesim-coop-timers-'))
const clockRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-coop-timers-') : work
/**
 * The quantum, virtual ns: a wait may end up to this late. 40 ms of wall at speed 4, long beside the
 * scheduling delays of a loaded machine, which a program's own readings around its wait include.
 */
const Q = 10_000_000
/** The cells' speed: their clocks run at 1/SPEED of the wall while their programs run. */
const SPEED = 4
/** Each kind of wait, its length (virtual ns, off the quantum's grid) and count. */
const KINDS = { sleep: 23_300_000, poll: 17_000_000, timer: 21_700_000, cond: 14_900_000 } as const
type Kind = keyof typeof KINDS
const N = 8

interface Wait {
  i: number
  before: bigint
  after: bigint
  /** Real ns the wait took. */
  wallNs: number
}

const seen = new Map<Kind, { waits: Wait[]; failed: string[]; done: boolean }>()
const cells: Cell[] = []
const clocks: VirtualClock[] = []
let quanta = 0
let wallMs = 0

function parse(text: string): { waits: Wait[]; failed: string[]; done: boolean } {
  const lines = text.split('\n')
  return {
    waits: lines.filter((l) => l.startsWith('W ')).map((l) => {
      const [, , i, before, after, wall] = l.split(' ')
      return { i: Number(i), before: BigInt(before!), after: BigInt(after!), wallNs: Number(wall) }
    }),
    failed: lines.filter((l) => l.startsWith('X ')),
    done: lines.some((l) => /^[DX] /.test(l)),
  }
}

beforeAll(async () => {
  ensureLiveDeps()
  const shim = faketimeShim()
  if (!shim.path) throw new Error(`the clock shim is needed: ${shim.why}`)
  const probe = path.join(work, 'coop-timers-probe')
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', probe, path.join(import.meta.dirname, 'coop-timers-probe.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
  const { mode } = await detectCellMode()
  const logs = new Map((Object.keys(KINDS) as Kind[]).map((k) => [k, path.join(work, `${k}.log`)]))
  for (const [k, d] of Object.entries(KINDS)) {
    const cell = await createCell({ name: `coop-timers-${k}`, mode })
    const clock = createVirtualClock(path.join(clockRoot, k))
    cells.push(cell)
    clocks.push(clock)
    await cell.freeze() // the program starts with the first quantum (the driver thaws the cell)
    cell.spawn([probe, k, String(d), String(N)], { env: { ...baseEnv(), ...clock.env() }, cwd: work, logFile: logs.get(k as Kind)! })
  }
  const driver = createCoopDriver(cells.map((cell, i) => ({ cell, clock: clocks[i], clockMode: 'CpuTime' as const, speed: SPEED })))
  const read = () => {
    for (const [k, f] of logs) seen.set(k, parse(readFileSync(f, 'utf8')))
    return [...seen.values()].every((s) => s.done)
  }
  const t0 = Date.now()
  const wallLimit = t0 + 120_000
  let lookedAt = 0
  for (let T = 0; Date.now() < wallLimit; T += Q) {
    await driver.run(T, Q)
    quanta++
    // The logs at most every 20 ms of wall: the driver should run as fast as it can.
    if (Date.now() - lookedAt >= 20) {
      lookedAt = Date.now()
      if (read()) break
    }
  }
  read()
  wallMs = Date.now() - t0
  driver.close?.()
}, 180_000)

afterAll(async () => {
  for (const cell of cells) await cell.destroy()
  for (const clock of clocks) clock.close()
  rmSync(work, { recursive: true, force: true })
  rmSync(clockRoot, { recursive: true, force: true })
})

describe('timed waits in an otherwise idle Cooperative cell', () => {
  it.each(Object.keys(KINDS) as Kind[])('%s: every wait ends at or after its virtual deadline, at most one quantum after it', (kind) => {
    const s = seen.get(kind)
    expect(s?.failed, `${kind}: the probe failed`).toEqual([])
    expect(s?.waits, `${kind}: the probe did not finish in ${quanta} quanta`).toHaveLength(N)
    const d = BigInt(KINDS[kind])
    const late = s!.waits.map((w) => Number(w.after - w.before - d))
    const sorted = [...late].sort((a, b) => a - b)
    // Wall per wait against its virtual length at the cell's speed (1: the waiter woke once, at its deadline).
    const walls = s!.waits.map((w) => w.wallNs / (Number(d) * SPEED)).sort((a, b) => a - b)
    console.log(
      `[coop-timers ${kind}] ${N} waits of ${Number(d) / 1e6} ms, ${quanta} quanta of ${Q / 1e6} ms at speed ${SPEED} in ${wallMs} ms of wall: late by median ${(sorted[N >> 1]! / 1e3).toFixed(0)} µs, max ${(sorted.at(-1)! / 1e3).toFixed(0)} µs; wall per wait / (length × speed) median ${walls[N >> 1]!.toFixed(2)}, max ${walls.at(-1)!.toFixed(2)}`,
    )
    for (const [k, w] of s!.waits.entries()) {
      expect(late[k], `${kind} #${w.i}: ended ${-late[k]! / 1e6} ms before its deadline`).toBeGreaterThanOrEqual(0)
      expect(late[k], `${kind} #${w.i}: ended ${late[k]! / 1e6} ms after its deadline, more than a quantum`).toBeLessThanOrEqual(Q)
    }
  })
})

// Timers of live programs in virtual time (sim-runtime/live/shim/timers.c; docs/live.md, "The
// shim"): alarm and interval timers, POSIX timers, timerfds. test/live/timers-probe.c arms each kind
// and prints, for every expiry, the virtual deadline and the virtual time it saw the timer fire; for
// gettime-style calls, what they reported against what they should. Three probes (one per family)
// run together in one cell, driven quantum by quantum at speed 4 (the clock runs at a quarter of the
// wall while the cell is thawed) and frozen for 200 ms of wall after every third quantum: a timer
// the kernel ran on the real clock would fire early, at a quarter of its delay or during a freeze. Each must fire at or after its deadline and at most one quantum after it. The
// quantum is long (80 ms of wall) beside the scheduling delays of a loaded machine, which the
// program's own reading of the time it saw a timer fire includes.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCell, detectCellMode, type Cell } from '../../sim-runtime/live/cell.ts'
import { createVirtualClock, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createQuantumDriver } from '../../sim-runtime/live/quantum.ts'
import { faketimeShim } from '../../sim-runtime/live/shim.ts'
import { baseEnv, ensureLiveDeps, sleep } from './helpers.ts'

const work = mkdtempSync(path.join(tmpdir(), 'livesim-timers-test-'))
const clockRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-timers-test-') : work
/** The sync quantum, virtual ns: a timer may fire up to this late (frozen as it comes due, it fires at the thaw). */
const Q = 20_000_000
/** The cell's speed: its clock runs at 1/SPEED of the wall while it is thawed. */
const SPEED = 4
/** Wall ms the cell stays frozen after every third quantum: as long as the wall delay of most probe timers. */
const FROZEN_MS = 200
const FAMILIES = ['alarm', 'posix', 'timerfd'] as const
type Family = (typeof FAMILIES)[number]

/** One line of the probe: an expiry (E), a value in a range (R), an exact value (C), the end (D), a failure (X). */
interface Line {
  tag: string
  kind: string
  nums: bigint[]
}

const lines = new Map<Family, Line[]>()
let cell: Cell | undefined
let clock: VirtualClock | undefined
let quanta = 0

function parse(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => /^[ERCDX] /.test(l))
    .map((l) => {
      const [tag, kind, ...rest] = l.split(' ')
      return { tag: tag as string, kind: kind as string, nums: rest.filter((x) => /^-?\d+$/.test(x)).map((x) => BigInt(x)) }
    })
}

beforeAll(async () => {
  ensureLiveDeps()
  const shim = faketimeShim()
  if (!shim.path) throw new Error(`the clock shim is needed: ${shim.why}`)
  const probe = path.join(work, 'timers-probe')
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', probe, path.join(import.meta.dirname, 'timers-probe.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
  const { mode } = await detectCellMode()
  cell = await createCell({ name: 'timers', mode })
  clock = createVirtualClock(path.join(clockRoot, 'timers'))
  await cell.freeze()
  const logs = new Map(FAMILIES.map((f) => [f, path.join(work, `${f}.log`)]))
  const env = { ...baseEnv(), ...clock.env() }
  for (const f of FAMILIES) cell.spawn([probe, f, String(Q)], { env, cwd: work, logFile: logs.get(f) as string })
  const driver = createQuantumDriver([{ cell, clock, clockMode: 'CpuTime', speed: SPEED }])
  const done = () => FAMILIES.every((f) => /^(D|X) /m.test(readFileSync(logs.get(f) as string, 'utf8')))
  const wallLimit = Date.now() + 90_000
  for (let T = 0; !done() && Date.now() < wallLimit; T += Q) {
    await driver.run(T, Q)
    quanta++
    if (quanta % 3 === 0) await sleep(FROZEN_MS)
  }
  for (const f of FAMILIES) lines.set(f, parse(readFileSync(logs.get(f) as string, 'utf8')))
}, 180_000)

afterAll(async () => {
  await cell?.destroy()
  clock?.close()
  rmSync(work, { recursive: true, force: true })
  rmSync(clockRoot, { recursive: true, force: true })
})

/** The probe's number i of a line (it prints them all: a missing one is a malformed line). */
function num(l: Line, i: number): bigint {
  const n = l.nums[i]
  if (n === undefined) throw new Error(`malformed probe line: ${l.tag} ${l.kind} ${l.nums.join(' ')}`)
  return n
}

/** Judge one family's lines: every expiry in [deadline, deadline + Q], every range and value as the probe says. */
function judge(family: Family): { expiries: number; latenessNs: number[] } {
  const got = lines.get(family) ?? []
  expect(got.filter((l) => l.tag === 'X'), `${family}: the probe failed`).toEqual([])
  expect(got.at(-1)?.tag, `${family}: the probe did not finish in ${quanta} quanta`).toBe('D')
  const latenessNs: number[] = []
  for (const l of got) {
    if (l.tag === 'E') {
      const [i, lo, hi, seen] = [num(l, 0), num(l, 1), num(l, 2), num(l, 3)]
      expect(seen, `${l.kind} #${i}: fired ${Number(lo - seen) / 1e6} ms before its deadline`).toBeGreaterThanOrEqual(lo)
      expect(seen, `${l.kind} #${i}: fired ${Number(seen - hi) / 1e6} ms after its deadline, more than a quantum`).toBeLessThanOrEqual(hi + BigInt(Q))
      latenessNs.push(Number(seen - hi))
    } else if (l.tag === 'R') {
      const [lo, hi, value] = [num(l, 0), num(l, 1), num(l, 2)]
      expect(value >= lo && value <= hi, `${l.kind}: ${value} not in [${lo}, ${hi}]`).toBe(true)
    } else if (l.tag === 'C') {
      expect(num(l, 1), l.kind).toBe(num(l, 0))
    }
  }
  return { expiries: latenessNs.length, latenessNs }
}

function report(family: Family, r: { expiries: number; latenessNs: number[] }) {
  const s = [...r.latenessNs].sort((x, y) => x - y)
  console.log(`[timers ${family}] ${r.expiries} expiries over ${quanta} quanta of ${Q / 1e6} ms at speed ${SPEED}: lateness median ${((s[s.length >> 1] ?? 0) / 1e3).toFixed(0)} µs, max ${((s.at(-1) ?? 0) / 1e3).toFixed(0)} µs`)
}

describe('timers in virtual time, driven quantum by quantum with long freezes', () => {
  it('alarm and setitimer(ITIMER_REAL) fire at their virtual deadlines, periodic ones every interval; getitimer and alarm report virtual time left', () => {
    const r = judge('alarm')
    expect(r.expiries).toBe(7) // alarm, a one-shot interval timer, five periodic expiries
    report('alarm', r)
  })

  it('POSIX timers (SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_THREAD, SIGEV_NONE; relative and TIMER_ABSTIME) fire at their virtual deadlines; overruns, timer_gettime and fork as the kernel', () => {
    const r = judge('posix')
    expect(r.expiries).toBeGreaterThanOrEqual(9)
    const got = lines.get('posix') ?? []
    // Every expiry of the periodic timer was a signal or an overrun counted: five over five intervals.
    expect(got.filter((l) => l.tag === 'E' && l.kind === 'posix-periodic').at(-1)?.nums[0]).toBe(5n)
    report('posix', r)
  })

  it('timerfds fire at their virtual deadlines, read, in epoll beside a socket, in poll and select; periodic counts and timerfd_gettime are virtual', () => {
    const r = judge('timerfd')
    expect(r.expiries).toBe(10)
    report('timerfd', r)
  })
})

// Wait timeouts in virtual time (sim-runtime/live/shim/waits.c): a probe (waits-probe.c beside this
// file) makes every wait the shim takes over, once ended by its timeout and once by an event a helper
// thread makes first, in a cell driven quantum by quantum with freezes in between, its clock running
// at a quarter of the wall (speed 4: a timeout waited for on the real clock would end at a quarter of
// its virtual length, and one that spans a freeze earlier still). CpuTime cells: time the probe waits
// for a CPU on this shared machine is steal, not virtual time, so a late wake-up shows only if the
// shim woke it late. Each wait must end on the virtual clock:
// a timeout of d after at least d and at most d + one quantum; an event before the deadline at once
// (within a quantum of it); select's fd_sets intact across its retries.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCell, type Cell } from '../../sim-runtime/live/cell.ts'
import { createVirtualClock, DEFAULT_BASE_EPOCH_MS, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createQuantumDriver } from '../../sim-runtime/live/quantum.ts'
import { faketimeShim } from '../../sim-runtime/live/shim.ts'
import { baseEnv, ensureLiveDeps, sleep, strongestCellMode, waitFor } from './helpers.ts'

const work = mkdtempSync(path.join(tmpdir(), 'livesim-waits-test-'))
const clockRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-waits-test-') : work
let probe: string

/** The timeout each call is given (virtual ms). */
const D_MS = 20
/** The quantum (virtual ns) and the cell's speed (its clock runs at 1/SPEED of the wall while thawed). */
const Q = 4_000_000
const SPEED = 4
const D = D_MS * 1e6
const BASE = BigInt(DEFAULT_BASE_EPOCH_MS) * 1_000_000n
const mode = strongestCellMode()

beforeAll(() => {
  ensureLiveDeps()
  expect(faketimeShim().path, faketimeShim().why).toBeDefined()
  probe = path.join(work, 'waits-probe')
  execFileSync('cc', ['-O2', '-Wall', '-Werror', '-pthread', '-o', probe, path.join(import.meta.dirname, 'waits-probe.c'), '-lrt'], { stdio: ['ignore', 'ignore', 'pipe'] })
}, 600_000)

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
  rmSync(clockRoot, { recursive: true, force: true })
})

/** One wait the probe made (a line `R call variant start end event result extra`). */
interface Wait {
  call: string
  variant: 'T' | 'E'
  startNs: number
  endNs: number
  eventNs: number
  result: string
  extraNs: number
}

function parseWaits(text: string): Wait[] {
  const out: Wait[] = []
  for (const line of text.split('\n')) {
    const m = /^R (.+) ([TE]) (\d+) (\d+) (\d+) (\S+) (-?\d+)$/.exec(line)
    if (!m) continue
    const [, call, variant, start, end, event, result, extra] = m as unknown as [string, string, 'T' | 'E', string, string, string, string, string]
    // Epoch ns exceed 2^53: virtual ns since the clock's base, exact as numbers.
    const v = (ns: string) => Number(BigInt(ns) - BASE)
    out.push({ call, variant, startNs: v(start), endNs: v(end), eventNs: event === '0' ? 0 : v(event), result, extraNs: Number(extra) })
  }
  return out
}

/**
 * Run the probe on `calls` in a fresh cell, the helper's events eMs (virtual) into each wait, quantum
 * after quantum of Q at SPEED, frozen between quanta for gapMs(k) of wall (long gaps make real timers
 * expire while the cell is frozen), until it prints `done` (or 60 s of wall: a loaded machine may
 * starve it).
 */
async function runProbe(name: string, calls: string[], eMs: number, gapMs: (k: number) => number): Promise<Wait[]> {
  let cell: Cell | undefined
  let clock: VirtualClock | undefined
  try {
    cell = await createCell({ name, mode })
    clock = createVirtualClock(path.join(clockRoot, name))
    await cell.freeze()
    const log = path.join(work, `${name}.log`)
    cell.spawn([probe, String(D_MS), String(eMs), ...calls], { env: { ...baseEnv(), ...clock.env() }, cwd: work, logFile: log })
    const driver = createQuantumDriver([{ cell, clock, clockMode: 'CpuTime', speed: SPEED }])
    const deadline = Date.now() + 60_000
    let T = 0
    for (let k = 0; Date.now() < deadline; k++) {
      if (/^done$/m.test(readFileSync(log, 'utf8'))) break
      await driver.run(T, Q)
      T += Q
      await sleep(gapMs(k))
    }
    const text = readFileSync(log, 'utf8')
    expect(text, `the probe did not finish in 60 s of wall:\n${text}`).toMatch(/^done$/m)
    return parseWaits(text)
  } finally {
    await cell?.destroy()
    clock?.close()
  }
}

/** What is wrong with one wait, or undefined: the rules of the file's first comment. */
function judge(w: Wait): string | undefined {
  const took = w.endNs - w.startNs
  const ms = (ns: number) => `${(ns / 1e6).toFixed(3)} ms`
  if (w.variant === 'T') {
    if (w.result !== 'timeout') return `returned ${w.result}, not its timeout`
    if (took < D) return `timed out after ${ms(took)} of virtual time, before its ${ms(D)}`
    if (took > D + Q) return `timed out after ${ms(took)}, more than a quantum (${ms(Q)}) after its ${ms(D)}`
    return undefined
  }
  if (w.result !== 'event') return `returned ${w.result}, not the event`
  if (w.endNs < w.eventNs) return `returned ${ms(w.eventNs - w.endNs)} before the event`
  if (w.endNs - w.eventNs > Q) return `returned ${ms(w.endNs - w.eventNs)} after the event, more than a quantum`
  return undefined
}

function expectVirtual(group: string, waits: Wait[], calls: string[]) {
  for (const call of calls) for (const v of ['T', 'E']) expect(waits.some((w) => w.call === call && w.variant === v), `${call} ${v}: no result`).toBe(true)
  const late = (w: Wait) => (w.variant === 'T' ? w.endNs - w.startNs - D : w.endNs - w.eventNs)
  const worst = (v: string) => Math.max(...waits.filter((w) => w.variant === v).map(late)) / 1e6
  console.log(`[${group}] ${waits.length} waits; latest timeout ${worst('T').toFixed(3)} ms after its deadline, latest return ${worst('E').toFixed(3)} ms after its event (quantum ${Q / 1e6} ms)`)
  const wrong = waits.map((w) => ({ w, why: judge(w) })).filter((x) => x.why !== undefined)
  expect(wrong.map((x) => `${x.w.call} (${x.w.variant}): ${x.why}`)).toEqual([])
}

const POLLS = ['poll', '__poll_chk', 'ppoll', 'select', 'pselect', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2']
const LOCKS = [
  'pthread_mutex_timedlock',
  'pthread_mutex_clocklock(MONOTONIC)',
  'pthread_mutex_clocklock(REALTIME)',
  'pthread_rwlock_timedrdlock',
  'pthread_rwlock_timedwrlock',
  'pthread_rwlock_clockrdlock',
  'pthread_rwlock_clockwrlock',
  'sem_timedwait',
  'sem_clockwait(MONOTONIC)',
  'sem_clockwait(REALTIME)',
  'pthread_timedjoin_np',
  'pthread_clockjoin_np',
  'sigtimedwait',
  'mq_timedreceive',
  'mq_timedsend',
]
const FUTEXES = ['futex(FUTEX_WAIT)', 'futex(FUTEX_WAIT_BITSET,MONOTONIC)', 'futex(FUTEX_WAIT_BITSET,REALTIME)', 'futex(FUTEX_LOCK_PI)']
const RECEIVES = ['read(SO_RCVTIMEO)', 'recv(SO_RCVTIMEO)', 'recvfrom(SO_RCVTIMEO)', 'recvmsg(SO_RCVTIMEO)', 'accept(SO_RCVTIMEO)', 'accept4(SO_RCVTIMEO)']
const SENDS = ['write(SO_SNDTIMEO)', 'send(SO_SNDTIMEO)', 'sendto(SO_SNDTIMEO)', 'sendmsg(SO_SNDTIMEO)', 'writev(SO_SNDTIMEO)', 'connect(SO_SNDTIMEO)']

describe(`wait timeouts in virtual time (${mode} cell, CpuTime at speed ${SPEED}, quanta of ${Q / 1e6} ms)`, () => {
  it('poll, ppoll, select, pselect and the epoll waits time out on the virtual clock, and return at an event', async () => {
    const waits = await runProbe('polls', POLLS, 8, (k) => (k % 3 === 2 ? 30 : 1))
    expectVirtual('polls', waits, POLLS)
    // select writes back the time not slept: none after its timeout; after the event, what was left.
    for (const w of waits.filter((x) => x.call === 'select')) {
      if (w.variant === 'T') expect(w.extraNs).toBe(0)
      else {
        expect(w.extraNs).toBeGreaterThanOrEqual(D - (w.endNs - w.startNs) - 1000)
        expect(w.extraNs).toBeLessThanOrEqual(D - (w.eventNs - w.startNs) + 1000)
      }
    }
  }, 120_000)

  it('select and pselect put their fd_sets back before each retry: a pipe that becomes readable after retries is seen', async () => {
    // No cell: the clock runs with the wall and stands at 5 ms, short of the 20 ms deadline, so every
    // real wait times out and is retried (the kernel clears the sets of a select that times out);
    // the pipe becomes readable after 100 ms of real time. Sets not put back: the retries wait on
    // nothing, until a deadline that never comes.
    const clock = createVirtualClock(path.join(clockRoot, 'held'))
    clock.set(0, 1, { untilNs: 5_000_000 })
    const log = path.join(work, 'held.log')
    const child = spawn(probe, [String(D_MS), '0', 'E:select(real event)', 'E:pselect(real event)'], { env: { ...baseEnv(), ...clock.env() }, stdio: ['ignore', openSync(log, 'w'), 'inherit'] })
    try {
      await waitFor(() => /^done$/m.test(readFileSync(log, 'utf8')), 10_000, 'select and pselect to see the pipe')
      const waits = parseWaits(readFileSync(log, 'utf8'))
      expect(waits.map((w) => `${w.call} ${w.result}`)).toEqual(['select(real event) event', 'pselect(real event) event'])
      // The clock stood at the barrier: both returned there, and select wrote back what was left (µs),
      // from a deadline it took at or after the program's reading before the call.
      for (const w of waits) expect(w.endNs).toBe(5_000_000)
      const select = waits[0] as Wait
      expect(select.extraNs).toBeGreaterThanOrEqual(D - (5_000_000 - select.startNs) - 1000)
      expect(select.extraNs).toBeLessThanOrEqual(D)
    } finally {
      child.kill('SIGKILL')
      clock.close()
    }
  }, 60_000)

  it('timed locks, semaphores, joins, sigtimedwait and message queues wait until their virtual deadline', async () => {
    const waits = await runProbe('locks', LOCKS, 8, (k) => (k % 3 === 2 ? 30 : 1))
    expectVirtual('locks', waits, LOCKS)
  }, 120_000)

  it('futex waits made through syscall() wait until their virtual deadline', async () => {
    const waits = await runProbe('futexes', FUTEXES, 8, (k) => (k % 3 === 2 ? 30 : 1))
    expectVirtual('futexes', waits, FUTEXES)
  }, 120_000)

  it('SO_RCVTIMEO and SO_SNDTIMEO: receives, accepts, sends and connects time out on the virtual clock; getsockopt reports the timeout set', async () => {
    const waits = await runProbe('sockets', [...RECEIVES, ...SENDS], 8, (k) => (k % 3 === 2 ? 30 : 1))
    expectVirtual('sockets', waits, [...RECEIVES, ...SENDS])
    for (const w of waits) expect(w.extraNs, `${w.call}: getsockopt`).toBe(D)
  }, 120_000)
})

// The virtual clock with real programs: a C program that sleeps 10 ms of its own clock and prints it,
// driven barrier by barrier (freeze, set the clock, thaw, run, freeze), in each cell mode this machine
// permits (the others are skipped, with the reason in their name), and the other schemes in the
// strongest mode. Each line
// it prints carries two raw CLOCK_MONOTONIC readings (system calls libfaketime does not see) around
// its virtual readings, so every virtual reading can be checked against the driver's model exactly:
// in quantum k, clock = T_k + (raw − anchor_k), whatever the load of the machine.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCell, type Cell } from '../../sim-runtime/live/cell.ts'
import { clockCoverage, createVirtualClock, DEFAULT_BASE_EPOCH_MS, findLibfaketime, offsetText, startAtText, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createQuantumDriver, type QuantumResult } from '../../sim-runtime/live/quantum.ts'
import { faketimeShim } from '../../sim-runtime/live/shim.ts'
import { vexecSupport } from '../../sim-runtime/live/vexec.ts'
import { baseEnv, cellModesHere, compilePrograms, ensureLiveDeps, parseTicks, skipTitle, sleep, strongestCellMode, waitFor, type Programs, type Tick, recordingClock } from './helpers.ts'

const work = mkdtempSync(path.join(tmpdir(), 'livesim-clock-test-'))
// Clock files on tmpfs when there is one: writing them is on every barrier's path.
const clockRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-clock-test-') : work
const BASE = BigInt(DEFAULT_BASE_EPOCH_MS) * 1_000_000n
let progs: Programs

beforeAll(() => {
  ensureLiveDeps()
  progs = compilePrograms()
}, 600_000)

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
  rmSync(clockRoot, { recursive: true, force: true })
})

/** The mode of the tests that need one mode, not each. */
const strongest = strongestCellMode()

interface Quantum {
  startNs: number
  virtualNs: number
  rate: number
  anchor: bigint
  result: QuantumResult
}

/**
 * Run quanta of `virtualNs` until `until()` (or 40 s of wall time: a loaded machine may starve the
 * programs), frozen for `gapMs(k)` of wall time after quantum k.
 */
async function drive(cell: Cell, clock: VirtualClock, opts: { virtualNs: number; rate?: number; gapMs: (k: number) => number; until: () => boolean }) {
  const rec = recordingClock(clock)
  const driver = createQuantumDriver([cell], [rec.clock])
  const quanta: Quantum[] = []
  let T = 0
  const deadline = Date.now() + 40_000
  for (let k = 0; !opts.until() && Date.now() < deadline; k++) {
    const result = await driver.run(T, opts.virtualNs, opts.rate ?? 1)
    const set = rec.sets.at(-1) as { anchor: bigint }
    quanta.push({ startNs: T, virtualNs: opts.virtualNs, rate: opts.rate ?? 1, anchor: set.anchor, result })
    T += opts.virtualNs
    await sleep(opts.gapMs(k))
  }
  return quanta
}

/**
 * Between two readings of one process: the frozen wall time, the forward jumps (a quantum that ended
 * before its budget: the next starts at the granted time anyway) and whether a quantum overran.
 */
function between(quanta: Quantum[], a: Tick, b: Tick) {
  // a's reading is in the quantum of its rawBefore at the earliest, b's in that of its rawAfter at the latest.
  const qa = quanta.indexOf(quantumOf(quanta, a))
  const qb = quanta.findLastIndex((x) => x.anchor <= b.rawAfter)
  let frozenNs = 0
  let jumpNs = 0
  let overran = false
  for (let j = qa; j < qb; j++) {
    const q = quanta[j] as Quantum
    const next = quanta[j + 1] as Quantum
    frozenNs += Number(next.anchor - q.anchor) - q.result.spanNs
    jumpNs += Math.max(0, next.startNs - q.startNs - q.rate * q.result.spanNs)
    overran ||= q.result.overrunNs > 0
  }
  return { frozenNs, jumpNs, overran, crossed: qb - qa }
}

function quantumOf(quanta: Quantum[], t: Tick): Quantum {
  const q = quanta.findLast((x) => x.anchor <= t.rawBefore)
  if (!q) throw new Error(`tick ${t.tag}${t.i} read its clock before the first quantum`)
  return q
}

/**
 * Error of a virtual reading against the model, in ns: 0 when it lies between the model's values at
 * the two raw readings around it. The model at raw time r, in the quantum q that r falls in:
 * min(T_q + rate × (r − anchor_q), barrier_q) (`clamped`: the shim holds the clock at the barrier).
 * The two raw readings may fall in different quanta when the cell was frozen between them.
 */
function bracketError(quanta: Quantum[], t: Tick, value: bigint, clamped = true): number {
  const model = (raw: bigint) => {
    const q = quanta.findLast((x) => x.anchor <= raw) as Quantum
    const v = q.startNs + Math.round(q.rate * Number(raw - q.anchor))
    return BASE + BigInt(clamped ? Math.min(v, q.startNs + q.virtualNs) : v)
  }
  const lo = model(t.rawBefore)
  const hi = model(t.rawAfter)
  if (value < lo) return Number(value - lo)
  if (value > hi) return Number(value - hi)
  return 0
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return { n: s.length, min: s[0] ?? 0, median: s[s.length >> 1] ?? 0, max: s.at(-1) ?? 0 }
}

describe('virtual clock file', () => {
  it('finds libfaketime and builds the environment', () => {
    const lib = findLibfaketime()
    expect(lib).toMatch(/libfaketimeMT\.so\.1$/)
    const clock = createVirtualClock(path.join(work, 'env'))
    const env = clock.env()
    expect(env.LD_PRELOAD).toContain(lib)
    expect(env.FAKETIME_NO_CACHE).toBe('1')
    expect(env.FAKETIME_FMT).toBe('%s')
    expect(readFileSync(env.FAKETIME_TIMESTAMP_FILE as string, 'utf8')).toMatch(/^[+-]\d+\.\d{9} x1 #1\n$/)
    expect(() => clock.set(0, 0)).toThrow(/rate/)
    expect(() => clock.set(-1, 1)).toThrow(/virtualNs/)
    expect(() => clock.set(1.5, 1)).toThrow(/virtualNs/)
    clock.set(5, 2)
    expect(readFileSync(env.FAKETIME_TIMESTAMP_FILE as string, 'utf8')).toBe(`@${BASE / 1_000_000_000n}.0000000055 x2 #2\n`)
    clock.close()
    expect(existsSync(env.FAKETIME_TIMESTAMP_FILE as string)).toBe(false)
    expect(() => clock.set(0, 1)).toThrow(/closed/)
  })

  it('writes distinct texts at every set (libfaketime re-anchors only on a change)', () => {
    expect(offsetText(-1_500_000_001n, 3)).toBe('-1.500000001 x1 #3\n')
    expect(offsetText(42n, 4)).toBe('+0.000000042 x1 #4\n')
    expect(startAtText(1_704_067_200_123_456_789n, 0.5, 7)).toBe('@1704067200.1234567895 x0.5 #7\n')
    expect(startAtText(0n, 1, 1)).not.toBe(startAtText(0n, 1, 2))
  })

  it('builds the libfaketime shim with the C compiler', () => {
    const shim = faketimeShim()
    expect(shim.path, shim.why).toBeDefined()
    expect(createVirtualClock(path.join(work, 'shim')).env().LD_PRELOAD).toMatch(/shim-[0-9a-f]+\.so .*libfaketimeMT/)
  })
})

/** gofmt of the Go toolchain on PATH, or why there is none. */
function goBinary(): { path?: string; why?: string } {
  const go = spawnSync('go', ['env', 'GOROOT'], { encoding: 'utf8' })
  if (go.status !== 0) return { why: 'no Go toolchain on PATH' }
  const gofmt = path.join(go.stdout.trim(), 'bin', 'gofmt')
  return existsSync(gofmt) ? { path: gofmt } : { why: `no ${gofmt}` }
}

describe('clockCoverage', () => {
  it('accepts dynamically linked glibc programs and scripts run by one', () => {
    expect(clockCoverage(progs.tick)).toMatchObject({ covered: true, via: 'preload' })
    expect(clockCoverage('sh')).toMatchObject({ covered: true })
    const script = path.join(work, 'script.sh')
    writeFileSync(script, '#!/usr/bin/env sh\necho hi\n')
    chmodSync(script, 0o755)
    expect(clockCoverage(script)).toMatchObject({ covered: true, reason: expect.stringContaining('script run by sh') })
    expect(clockCoverage('redis-server').covered).toBe(true)
  })

  // Static and Go programs are covered by vexec where it works here (test/live/vexec.test.ts), else refused.
  const supervisor = vexecSupport().path ? { covered: true, via: 'supervisor' } : { covered: false }

  it('sends static binaries and Go programs to vexec; rejects set-ID programs, non-executables and missing files', () => {
    if (progs.tickStatic) expect(clockCoverage(progs.tickStatic)).toMatchObject({ ...supervisor, reason: expect.stringContaining('statically linked') })
    // A Go binary (dynamically linked through cgo or not) carries "\xff Go buildinf:".
    const fakeGo = path.join(work, 'fake-go')
    writeFileSync(fakeGo, Buffer.concat([readFileSync(progs.tick), Buffer.from('\xff Go buildinf:\x08\x02', 'latin1')]))
    chmodSync(fakeGo, 0o755)
    expect(clockCoverage(fakeGo)).toMatchObject({ ...supervisor, reason: expect.stringContaining('Go program') })
    const setuid = path.join(work, 'setuid-tick')
    copyFileSync(progs.tick, setuid)
    chmodSync(setuid, 0o4755)
    expect(clockCoverage(setuid)).toMatchObject({ covered: false, reason: expect.stringContaining('set-user/group-ID') })
    expect(clockCoverage('/etc/hostname').covered).toBe(false)
    expect(clockCoverage('no-such-program-here').reason).toContain('not found')
  })

  // A real Go binary where the Go toolchain is installed (without it, the fake above covers the detection).
  const gofmt = goBinary()
  it.skipIf(gofmt.path === undefined)(skipTitle('recognises a real Go binary (gofmt)', gofmt.why), () => {
    expect(clockCoverage(gofmt.path as string)).toMatchObject({ ...supervisor, reason: expect.stringContaining('Go program') })
  })
})

for (const { mode, skip } of cellModesHere()) describe.skipIf(skip !== undefined)(skipTitle(`virtual clock driven barrier by barrier, ${mode} cell`, skip), () => {
  let cell: Cell | undefined
  let clock: VirtualClock | undefined
  afterAll(async () => {
    await cell?.destroy()
    clock?.close()
  })

  it('reads exactly the granted virtual time, leaks no frozen wall time, and sleeps never end early', async () => {
    cell = await createCell({ name: 'clock', mode })
    clock = createVirtualClock(path.join(clockRoot, `${mode}-exact`))
    await cell.freeze()
    const log = path.join(work, `${mode}-exact.log`)
    // Two processes in the cell with different periods: both must agree with the same model.
    cell.spawn(['sh', '-c', `${progs.tick} 60 10 A & ${progs.tick} 45 13 B & wait`], { env: { ...baseEnv(), ...clock.env() }, cwd: work, logFile: log })
    const Q = 25_000_000
    const quanta = await drive(cell, clock, {
      virtualNs: Q,
      gapMs: (k) => (k % 4 === 3 ? 400 : 2), // every 4th barrier stays frozen for 400 ms
      until: () => parseTicks(readFileSync(log, 'utf8')).length >= 105,
    })
    const ticks = parseTicks(readFileSync(log, 'utf8'))
    expect(ticks.filter((t) => t.tag === 'A').length).toBe(60)
    expect(ticks.filter((t) => t.tag === 'B').length).toBe(45)

    const errors: number[] = []
    for (const t of ticks) {
      const q = quantumOf(quanta, t)
      const eRt = bracketError(quanta, t, t.realtime)
      const eMono = bracketError(quanta, t, t.monotonic)
      errors.push(Math.abs(eRt), Math.abs(eMono))
      const where = () =>
        `tick ${t.tag}${t.i} in quantum ${quanta.indexOf(q)} (${JSON.stringify(q.result)}), read ${Number(t.rawBefore - q.anchor)} ns after its anchor; ` +
        `previous quantum ${JSON.stringify(quanta[quanta.indexOf(q) - 1]?.result)}`
      // Exact up to the calibration of CLOCK_REALTIME against CLOCK_MONOTONIC (~0.2 µs) and
      // libfaketime's rounding of the offset (~10 ns).
      expect(Math.abs(eRt), `realtime: ${where()}`).toBeLessThan(50_000)
      expect(Math.abs(eMono), `monotonic: ${where()}`).toBeLessThan(50_000)
      // Never past the barrier, even when the freeze came late (the shim holds the clock there). (The
      // reading is in the quantum of rawAfter at the latest.)
      const last = quanta.findLast((x) => x.anchor <= t.rawAfter) as Quantum
      expect(Number(t.realtime - BASE), `past the barrier: ${where()}`).toBeLessThanOrEqual(last.startNs + Q)
    }
    let acrossFreezes = 0
    let longestFrozen = 0
    for (const tag of ['A', 'B']) {
      const mine = ticks.filter((t) => t.tag === tag)
      const period = tag === 'A' ? 10e6 : 13e6
      for (let i = 1; i < mine.length; i++) {
        const a = mine[i - 1] as Tick
        const b = mine[i] as Tick
        const dv = Number(b.realtime - a.realtime)
        const gap = between(quanta, a, b)
        // No frozen wall time leaks into the clock: across barriers the clock advances by the wall
        // time the cell was thawed plus the forward jumps, never by the time it was frozen.
        expect(dv, `${tag}${i}: frozen time leaked`).toBeLessThanOrEqual(Number(b.rawAfter - a.rawBefore) - gap.frozenNs + gap.jumpNs + 100_000)
        if (gap.crossed > 0) {
          acrossFreezes++
          longestFrozen = Math.max(longestFrozen, gap.frozenNs)
        }
        // The shim: a sleep interrupted by a freeze still lasts its full virtual duration.
        expect(dv, `${tag}${i}: sleep ended early`).toBeGreaterThanOrEqual(period)
      }
    }
    expect(acrossFreezes).toBeGreaterThan(10)
    expect(longestFrozen).toBeGreaterThan(350e6)
    const e = stats(errors)
    const spans = stats(quanta.map((q) => q.result.spanNs))
    const overruns = quanta.filter((q) => q.result.overrunNs > 0)
    const worst = Math.max(0, ...overruns.map((q) => q.result.overrunNs))
    console.log(
      `[${mode}] ${ticks.length} clock readings in ${quanta.length} quanta of ${Q / 1e6} ms: |error| vs model median ${e.median} ns, max ${e.max} ns ` +
        `(raw bracket median ${stats(ticks.map((t) => Number(t.rawAfter - t.rawBefore))).median} ns); ` +
        `quantum wall span median ${(spans.median / 1e6).toFixed(3)} ms (max ${(spans.max / 1e6).toFixed(3)}); overruns ${overruns.length} (worst ${(worst / 1e3).toFixed(0)} µs); ` +
        `freeze median ${stats(quanta.map((q) => q.result.freezeNs)).median} ns`,
    )
    const pids = cell.pids()
    await cell.destroy()
    clock.close()
    // libfaketime's per-process semaphores and shared memory of the killed processes are gone too.
    const leftovers = readdirSync('/dev/shm').filter((n) => pids.some((p) => n.endsWith(`faketime_shm_${p}`) || n.endsWith(`faketime_sem_${p}`)))
    expect(leftovers).toEqual([])
  })
})

describe(`virtual clock, other schemes, ${strongest} cell`, () => {
  const cells: Cell[] = []
  afterAll(async () => {
    for (const c of cells) await c.destroy()
  })

  it('without the sleep shim, a sleep spanning a freeze ends early (what the shim fixes)', async () => {
    const cell = await createCell({ name: 'noshim', mode: strongest })
    cells.push(cell)
    const clock = createVirtualClock(path.join(clockRoot, 'noshim'))
    await cell.freeze()
    const log = path.join(work, 'noshim.log')
    const env = { ...baseEnv(), ...clock.env(), LD_PRELOAD: findLibfaketime() as string }
    cell.spawn([progs.tick, '20', '10', 'A'], { env, cwd: work, logFile: log })
    const quanta = await drive(cell, clock, { virtualNs: 25_000_000, gapMs: () => 200, until: () => parseTicks(readFileSync(log, 'utf8')).length >= 20 })
    const ticks = parseTicks(readFileSync(log, 'utf8'))
    const short: number[] = []
    for (let i = 1; i < ticks.length; i++) {
      const dv = Number((ticks[i] as Tick).realtime - (ticks[i - 1] as Tick).realtime)
      if (dv < 10e6) short.push(dv)
    }
    // The clock itself is still exact.
    for (const t of ticks) {
      const q = quantumOf(quanta, t)
      expect(Math.abs(bracketError(quanta, t, t.realtime, false)), `tick ${t.i} in quantum ${quanta.indexOf(q)} ${JSON.stringify(q.result)}`).toBeLessThan(50_000)
    }
    expect(short.length).toBeGreaterThan(0)
    console.log(`[no shim] ${short.length} of ${ticks.length - 1} sleeps of 10 ms ended early, shortest ${(Math.min(...short) / 1e6).toFixed(3)} ms`)
    await cell.destroy()
    clock.close()
  })

  it('a clock reading never straddles a barrier (no reading mixes two quanta), even in a tight loop', async () => {
    // libfaketime reads the real clock, then the file: frozen in between, across a rewrite of the
    // file, it would combine the two. The shim re-reads such a reading. Many short quanta with long
    // and short frozen gaps, and a program that does nothing but read its clock.
    const run = async (name: string, preload: string | undefined) => {
      const cell = await createCell({ name, mode: strongest })
      cells.push(cell)
      const clock = createVirtualClock(path.join(clockRoot, name))
      await cell.freeze()
      const log = path.join(work, `${name}.log`)
      const env = { ...baseEnv(), ...clock.env(), ...(preload ? { LD_PRELOAD: preload } : {}) }
      cell.spawn([progs.spin, '400'], { env, cwd: work, logFile: log })
      const quanta = await drive(cell, clock, { virtualNs: 2_000_000, gapMs: (k) => (k % 10 === 9 ? 30 : 0), until: () => /^N /m.test(readFileSync(log, 'utf8')) })
      const text = readFileSync(log, 'utf8')
      const reads = Number(/^N (\d+)/m.exec(text)?.[1])
      const back = text
        .split('\n')
        .filter((l) => l.startsWith('B '))
        .map((l) => {
          const [, prev, v, raw] = l.split(' ')
          const q = quanta.findLastIndex((x) => x.anchor <= BigInt(raw as string))
          // The raw reading comes just before the clock reading; a freeze may fall between the two, so
          // the step may follow the overrun of the raw reading's quantum or of the one before.
          const overrun = Math.max(quanta[q - 1]?.result.overrunNs ?? 0, quanta[q]?.result.overrunNs ?? 0)
          const quantum = quanta[q] as Quantum
          return {
            stepNs: Number(BigInt(prev as string) - BigInt(v as string)),
            overrun,
            q,
            prevVsStart: Number(BigInt(prev as string) - BASE) - quantum.startNs,
            vVsStart: Number(BigInt(v as string) - BASE) - quantum.startNs,
            sinceAnchor: Number(BigInt(raw as string) - quantum.anchor),
            result: quantum.result,
          }
        })
      // A step back is legitimate only right after a quantum that overran its barrier by at least that much.
      const unexplained = back.filter((b) => b.stepNs > b.overrun + 1000)
      await cell.destroy()
      clock.close()
      return { reads, quanta: quanta.length, back: back.length, backs: back, unexplained }
    }
    const guarded = await run('straddle', undefined)
    const bare = await run('straddle-bare', findLibfaketime() as string)
    const worst = (u: { stepNs: number }[]) => Math.max(0, ...u.map((b) => b.stepNs)) / 1e6
    console.log(
      `[straddle] with the shim: ${guarded.reads} readings over ${guarded.quanta} quanta, ${guarded.back} went back; ` +
        `libfaketime alone: ${bare.back} of ${bare.reads} went back, ${bare.unexplained.length} of them by more than an overrun (up to ${worst(bare.unexplained).toFixed(3)} ms)`,
    )
    expect(guarded.reads).toBeGreaterThan(1000)
    // With the shim the clock never goes back at all: no straddling, and no overrun shows (the barrier holds it).
    expect(guarded.backs).toEqual([])
  })

  it('rate 2: the clock runs twice as fast, anchored at each process\'s first reading after a barrier', async () => {
    const cell = await createCell({ name: 'rate2', mode: strongest })
    cells.push(cell)
    const clock = createVirtualClock(path.join(clockRoot, 'rate2'))
    await cell.freeze()
    const log = path.join(work, 'rate2.log')
    cell.spawn([progs.tick, '30', '10', 'A'], { env: { ...baseEnv(), ...clock.env() }, cwd: work, logFile: log })
    const Q = 40_000_000 // 20 ms of wall at rate 2
    const quanta = await drive(cell, clock, { virtualNs: Q, rate: 2, gapMs: (k) => (k % 3 === 2 ? 300 : 2), until: () => parseTicks(readFileSync(log, 'utf8')).length >= 30 })
    const ticks = parseTicks(readFileSync(log, 'utf8'))
    expect(ticks.length).toBe(30)
    const slopes: number[] = []
    for (let i = 1; i < ticks.length; i++) {
      const a = ticks[i - 1] as Tick
      const b = ticks[i] as Tick
      const dv = Number(b.realtime - a.realtime)
      const gap = between(quanta, a, b)
      expect(dv).toBeGreaterThanOrEqual(10e6) // the shim, at rate 2 too
      // No frozen time leaks: at most twice the thawed wall time in between, plus forward jumps, plus
      // twice the lag of a's quantum (its clock started at the first reading, at the latest a's own).
      const lag = Number(a.rawAfter - quantumOf(quanta, a).anchor)
      expect(dv).toBeLessThanOrEqual(2 * (Number(b.rawAfter - a.rawBefore) - gap.frozenNs) + gap.jumpNs + 2 * lag + 1_000_000)
      // Rate within a quantum, from readings with a tight raw bracket (a freeze between the raw and
      // the virtual reading would put them in different quanta), and b short of the barrier (on a
      // loaded machine the freeze may come late: the clock then stands at the barrier, as designed).
      const tight = (t: Tick) => t.rawAfter - t.rawBefore < 50_000n
      const qa = quantumOf(quanta, a)
      const clamped = Number(b.realtime - BASE) >= qa.startNs + qa.virtualNs
      if (tight(a) && tight(b) && qa === quantumOf(quanta, b) && !clamped) slopes.push(dv / Number(b.rawBefore - a.rawBefore))
    }
    for (const t of ticks) {
      const q = quantumOf(quanta, t)
      const v = Number(t.realtime - BASE)
      // "@" semantics: the first reading after set() returns the start (less the ~60 µs re-parse),
      // so a reading is at least the start and at most the start + rate × time since the anchor.
      expect(v).toBeGreaterThanOrEqual(q.startNs - 500_000)
      expect(v).toBeLessThanOrEqual(q.startNs + 2 * Number(t.rawAfter - q.anchor) + 50_000)
    }
    const s = stats(slopes)
    expect(s.n).toBeGreaterThan(3)
    expect(s.min).toBeGreaterThan(1.95)
    expect(s.max).toBeLessThan(2.05)
    console.log(`[rate 2] clock rate within quanta: min ${s.min.toFixed(4)} median ${s.median.toFixed(4)} max ${s.max.toFixed(4)} over ${s.n} pairs`)
    await cell.destroy()
    clock.close()
  })

  it('a real redis-server reads the virtual time, and frozen time does not leak into it', async () => {
    const cell = await createCell({ name: 'redis', mode: strongest })
    cells.push(cell)
    const clock = createVirtualClock(path.join(clockRoot, 'redis'))
    const port = 20000 + (process.pid % 20000)
    cell.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      env: { ...baseEnv(), ...clock.env() },
      cwd: work,
      logFile: path.join(work, 'redis.log'),
    })
    const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' })
    const virtualSeconds = () => {
      const [s, us] = cli('TIME').trim().split('\n').map(Number) as [number, number]
      return s + us / 1e6 - DEFAULT_BASE_EPOCH_MS / 1000
    }
    await waitFor(() => spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG', 10_000, 'redis-server')
    expect(cli('INFO', 'server')).toMatch(/monotonic_clock:POSIX clock_gettime/)
    await cell.freeze()
    clock.set(5_000_000_000, 1)
    await cell.thaw()
    const t1 = virtualSeconds()
    expect(t1).toBeGreaterThanOrEqual(5)
    expect(t1).toBeLessThan(6)
    await cell.freeze()
    await sleep(1500) // frozen: redis must not see these 1.5 s
    clock.set(7_000_000_000, 1)
    await cell.thaw()
    const t2 = virtualSeconds()
    expect(t2).toBeGreaterThanOrEqual(7)
    expect(t2).toBeLessThan(7.5)
    console.log(`[redis] TIME read ${t1.toFixed(6)} s after set(5 s) and ${t2.toFixed(6)} s after 1.5 s frozen and set(7 s)`)
    await cell.destroy()
    clock.close()
  })
})

// The quantum driver (sim-runtime/live/quantum.ts) with real processes: clock modes, steal
// compensation against a CPU hog on the same core, and the hooks the runtime writes sockets from.
// The cells use the strongest mode this machine permits (the runtime's choice; named in each
// describe); LIVESIM_TEST_CELL_MODE=signals (or cgroup1, cgroup2) forces another.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IsolationRig, pinSelf, type IsolationSample } from '../../bench/live.ts'
import { createCell, type Cell } from '../../sim-runtime/live/cell.ts'
import { createVirtualClock, DEFAULT_BASE_EPOCH_MS, type VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createQuantumDriver, MAX_EXTRA_SLICES, type ClockMode, type QuantumResult } from '../../sim-runtime/live/quantum.ts'
import { baseEnv, compilePrograms, ensureLiveDeps, parseTicks, sleep, strongestCellMode, type Programs, type Tick, recordingClock, type ClockSet } from './helpers.ts'

const work = mkdtempSync(path.join(tmpdir(), 'livesim-quantum-test-'))
const clockRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/livesim-quantum-test-') : work
const BASE = BigInt(DEFAULT_BASE_EPOCH_MS) * 1_000_000n
const mode = strongestCellMode()
let progs: Programs

beforeAll(() => {
  ensureLiveDeps()
  progs = compilePrograms()
}, 600_000)

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
  rmSync(clockRoot, { recursive: true, force: true })
})


const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN

describe.each(['CpuTime', 'WallTime'] as const)(`idle sleeper, %s, ${mode} cell`, (clockMode: ClockMode) => {
  let cell: Cell | undefined
  let clock: VirtualClock | undefined
  afterAll(async () => {
    await cell?.destroy()
    clock?.close()
  })

  it('reads exactly the virtual time granted, slice by slice, across many quanta and long freezes', async () => {
    cell = await createCell({ name: `q-idle-${clockMode}`, mode })
    clock = createVirtualClock(path.join(clockRoot, `idle-${clockMode}`))
    const rec = recordingClock(clock)
    await cell.freeze()
    const log = path.join(work, `idle-${clockMode}.log`)
    cell.spawn([progs.tick, '1000', '10', 'A'], { env: { ...baseEnv(), ...clock.env() }, cwd: work, logFile: log })
    const driver = createQuantumDriver([{ cell, clock: rec.clock, clockMode, speed: 1 }])
    const Q = 10_000_000
    const quanta: { T: number; r: QuantumResult }[] = []
    let T = 0
    const deadline = Date.now() + 15_000
    while (parseTicks(readFileSync(log, 'utf8')).length < 40 && Date.now() < deadline) {
      expect(driver.virtualNowNs(0)).toBe(T) // between quanta: the end of the last one
      const r = await driver.run(T, Q)
      quanta.push({ T, r })
      T += Q
      if (quanta.length % 3 === 0) await sleep(100) // frozen: must not show
    }
    const ticks = parseTicks(readFileSync(log, 'utf8'))
    expect(ticks.length).toBeGreaterThanOrEqual(40)
    // The model, slice by slice: at raw time r in the slice whose anchor came last before r, the clock
    // reads min(v + (r − anchor), until). Every reading lies between the model's values at the two
    // raw readings the program took around it.
    const model = (raw: bigint) => {
      const s = rec.sets.findLast((x) => x.anchor <= raw)
      if (!s) throw new Error('reading before the first slice')
      return BASE + BigInt(Math.min(s.v + Number(raw - s.anchor), s.until))
    }
    const errors: number[] = []
    for (const t of ticks) {
      for (const value of [t.realtime, t.monotonic]) {
        const lo = model(t.rawBefore)
        const hi = model(t.rawAfter)
        const e = value < lo ? Number(value - lo) : value > hi ? Number(value - hi) : 0
        errors.push(Math.abs(e))
        expect(Math.abs(e), `tick ${t.i}: ${value - BASE} vs model [${lo - BASE}, ${hi - BASE}]`).toBeLessThan(50_000)
      }
    }
    // Sleeps never end early, the clock never goes back, and it advanced by what was granted only:
    // the last reading is inside the quantum it was taken in.
    for (let i = 1; i < ticks.length; i++) expect(Number((ticks[i] as Tick).realtime - (ticks[i - 1] as Tick).realtime)).toBeGreaterThanOrEqual(10e6)
    const last = ticks.at(-1) as Tick
    const lastSet = rec.sets.findLast((x) => x.anchor <= last.rawAfter) as ClockSet
    expect(Number(last.realtime - BASE)).toBeLessThanOrEqual(lastSet.until)
    expect(Number(last.realtime - BASE)).toBeGreaterThanOrEqual(lastSet.until - Q)
    // 40 sleeps of 10 ms: 400 ms of virtual time plus the program's start and its printing, in 40-45
    // quanta of 10 ms in CpuTime on a quiet machine; 46 was seen at load 15-25 (the start's CPU under
    // contention), so up to 47. (In WallTime a loaded machine shows more: a slow start takes virtual
    // time too.)
    expect(quanta.length).toBeGreaterThanOrEqual(40)
    expect(quanta.length).toBeLessThanOrEqual(clockMode === 'CpuTime' ? 47 : 60)
    const slices = quanta.reduce((a, q) => a + (q.r.slices[0] ?? 0), 0)
    if (clockMode === 'WallTime') expect(slices).toBe(quanta.length)
    else expect(slices).toBeGreaterThanOrEqual(quanta.length)
    for (const q of quanta) expect(q.r.capped).toEqual([])
    // Short quanta (a 200 µs link): the runtime often freezes the cell late by more than a quantum.
    // A sleeping program must still run in every quantum (what it slept past a barrier is no CPU to
    // carry over), and its clock must still follow the model. A quantum without a slice is by design
    // only after CPU the program used past the last barrier worth that quantum (it was running when
    // frozen late: a tick, or, in signals mode, the stop signal's own wake-up): that carry must be CPU.
    const fine: QuantumResult[] = []
    for (let k = 0; k < 200; k++, T += 200_000) fine.push(await driver.run(T, 200_000))
    const all = [...quanta.map((q) => q.r), ...fine]
    for (let k = quanta.length; k < all.length; k++) {
      const r = all[k] as QuantumResult
      expect(r.capped).toEqual([])
      if ((r.slices[0] as number) >= 1) continue
      const prev = all[k - 1] as QuantumResult
      const why = JSON.stringify({ before: all[k - 2], prev, quantum: r })
      expect(prev.carryNs[0], `no slice without a quantum's CPU carried: ${why}`).toBeGreaterThanOrEqual(200_000 * 0.75)
      expect(prev.cpuNs[0], `the carry was not CPU: ${why}`).toBeGreaterThanOrEqual((prev.carryNs[0] as number) - Math.max(0, all[k - 2]?.carryNs[0] ?? 0))
    }
    const more = parseTicks(readFileSync(log, 'utf8')).slice(40)
    for (const t of more) expect(Number(t.realtime - model(t.rawBefore))).toBeGreaterThanOrEqual(-50_000)
    for (const t of more) expect(Number(t.realtime - model(t.rawAfter))).toBeLessThanOrEqual(50_000)
    console.log(
      `[${mode}, ${clockMode}] ${ticks.length} readings over ${quanta.length} quanta (${slices} slices): |error| vs model max ${Math.max(...errors)} ns; ` +
        `span median ${(median(quanta.map((q) => q.r.spanNs)) / 1e6).toFixed(3)} ms, stolen total ${(quanta.reduce((a, q) => a + (q.r.stolenNs[0] ?? 0), 0) / 1e3).toFixed(0)} µs, ` +
        `overruns ${quanta.filter((q) => q.r.overrunNs > 0).length}`,
    )
  })
})

describe(`a CPU-bound program with a CPU-hog neighbour cell on its core, ${mode} cells`, () => {
  let rig: IsolationRig | undefined
  afterAll(async () => {
    await rig?.close()
  })

  it('CpuTime keeps its virtual run time within 10 % of solo; WallTime shows the hog', async () => {
    rig = await IsolationRig.create({ cellMode: mode, quantumNs: 2_000_000, workMs: 150, name: 'q-iso' })
    const runs: Record<string, IsolationSample[]> = { cpuSolo: [], cpuHog: [], wallSolo: [], wallHog: [] }
    for (let rep = 0; rep < 3; rep++) {
      if (rep < 2) runs.cpuSolo!.push(await rig.measure('CpuTime', 'none'))
      if (rep < 2) runs.cpuHog!.push(await rig.measure('CpuTime', 'driven'))
      runs.wallSolo!.push(await rig.measure('WallTime', 'none'))
      runs.wallHog!.push(await rig.measure('WallTime', 'driven'))
    }
    // The best (smallest) of two (WallTime: three): load from elsewhere on the core only ever adds
    // time in WallTime mode, to the solo run too (another busy task there makes the hog's effect
    // look smaller: 3/2 instead of 2/1).
    const v = (k: string) => Math.min(...runs[k]!.map((s) => s.virtualNs))
    const cpuRatio = v('cpuHog') / v('cpuSolo')
    const wallRatio = v('wallHog') / v('wallSolo')
    const line = (k: string) =>
      runs[k]!.map((s) => `${(s.virtualNs / 1e6).toFixed(1)} ms virtual / ${(s.cpuNs / 1e6).toFixed(1)} ms CPU / ${(s.wallNs / 1e6).toFixed(0)} ms wall, ${s.slices} slices in ${s.quanta} quanta`).join('; ')
    console.log(
      `[${mode}] CpuTime hog/solo ${cpuRatio.toFixed(3)}, WallTime hog/solo ${wallRatio.toFixed(3)}\n` + Object.keys(runs).map((k) => `  ${k}: ${line(k)}`).join('\n'),
    )
    expect(Math.abs(cpuRatio - 1)).toBeLessThanOrEqual(0.1)
    // WallTime shows the hog: ~2 alone on the core, less when other work shares it (1.45 at load
    // 15-25 on this 2-core VM), never near the CpuTime ratio of 1.
    expect(wallRatio).toBeGreaterThan(1.3)
    // The hog did get its share of the core: in CpuTime about as much CPU as the program (both cells
    // get a quantum's CPU per quantum), in WallTime at least as much. And the program's waits were
    // seen (how much of the waiting falls on the program rather than the hog depends on who gets the
    // core first after a thaw).
    for (const s of [...runs.cpuHog!, ...runs.wallHog!]) expect(s.hogCpuNs, JSON.stringify(s)).toBeGreaterThan(0.7 * s.cpuNs)
    for (const s of runs.cpuHog!) {
      expect(s.hogCpuNs, JSON.stringify(s)).toBeLessThan(1.3 * s.cpuNs)
      expect(s.stolenNs).toBeGreaterThan(0)
    }
    // And the virtual run time is the CPU time the work took (no speed factor).
    for (const s of [...runs.cpuSolo!, ...runs.cpuHog!]) expect(Math.abs(s.virtualNs / s.cpuNs - 1)).toBeLessThanOrEqual(0.1)
  })

  it('speed 2: the same work takes half the virtual time', async () => {
    const r = rig as IsolationRig
    const s = await r.measure('CpuTime', 'driven', 2)
    console.log(`[${mode}] speed 2 with the hog: ${(s.virtualNs / 1e6).toFixed(1)} ms virtual for ${(s.cpuNs / 1e6).toFixed(1)} ms CPU`)
    expect(Math.abs(s.virtualNs / s.cpuNs - 0.5)).toBeLessThanOrEqual(0.05)
  })
})

describe(`hooks, ${mode} cells`, () => {
  const cells: Cell[] = []
  afterAll(async () => {
    for (const c of cells) await c.destroy()
  })

  it('onStart comes once per run with every cell frozen; precise(i) gives cell i a precise slice; virtualNowNs is monotonic', async () => {
    // Two busy cells on one core, CpuTime: quanta take several slices. Cell 0 (with a clock) is asked
    // for a precise slice every fourth quantum; cell 1 has no clock, so it never gets one.
    const cpu = availableParallelism() - 1
    const unpin = pinSelf(cpu > 0 ? [0] : [])
    try {
      const a = await createCell({ name: 'q-hooks-a', mode, cpus: [cpu] })
      cells.push(a)
      const b = await createCell({ name: 'q-hooks-b', mode, cpus: [cpu] })
      cells.push(b)
      await a.freeze()
      await b.freeze()
      a.spawn([progs.burn, '1'], { env: baseEnv(), cwd: work, logFile: path.join(work, 'hooks-a.log') })
      b.spawn([progs.burn, '1'], { env: baseEnv(), cwd: work, logFile: path.join(work, 'hooks-b.log') })
      const rec = recordingClock(createVirtualClock(path.join(clockRoot, 'hooks')))
      const driver = createQuantumDriver([
        { cell: a, clock: rec.clock, clockMode: 'CpuTime', speed: 1 },
        { cell: b, clockMode: 'CpuTime', speed: 1 },
      ])
      const Q = 4_000_000
      const QUANTA = 20
      const starts: { quantum: number; frozen: boolean[]; sets: number }[] = []
      const samples: { i: number; v: number; quantum: number }[] = []
      let quantum = 0
      let running = false
      const sampler = () => {
        if (!running) return
        samples.push({ i: 0, v: driver.virtualNowNs(0), quantum }, { i: 1, v: driver.virtualNowNs(1), quantum })
        setImmediate(sampler)
      }
      const results: QuantumResult[] = []
      /** Per quantum: cell 0's first set() of the quantum. */
      const firstSets: ClockSet[] = []
      for (quantum = 0; quantum < QUANTA; quantum++) {
        const T = quantum * Q
        const setsBefore = rec.sets.length
        running = true
        setImmediate(sampler)
        results.push(
          await driver.run(T, Q, {
            onStart: () => starts.push({ quantum, frozen: [a.frozen, b.frozen], sets: rec.sets.length - setsBefore }),
            precise: (i) => i === 0 && quantum % 4 === 0,
          }),
        )
        running = false
        firstSets.push(rec.sets[setsBefore] as ClockSet)
        expect(driver.virtualNowNs(0)).toBe(T + Q)
        expect(driver.virtualNowNs(1)).toBe(T + Q)
      }
      rec.clock.close()
      // onStart: once per run, before any slice (no set() yet), every cell frozen.
      expect(starts.map((x) => x.quantum)).toEqual(Array.from({ length: QUANTA }, (_, q) => q))
      for (const x of starts) expect(x, JSON.stringify(x)).toEqual({ quantum: x.quantum, frozen: [true, true], sets: 0 })
      // precise(0): that quantum's first slice of cell 0 is precise (the clock starts at its first
      // reading). The burner never reads it, so the slice ends after PRECISE_WAIT_NS and the next
      // quantum carries it, once; the two after are ordinary. Cell 1 has no clock: never precise.
      for (let q = 0; q < QUANTA; q++) {
        const precise = q % 4 === 0 || q % 4 === 1
        if (firstSets[q] === undefined) {
          // Cell 0 ran past the last barrier by nearly a whole quantum (frozen milliseconds late: seen
          // once in about twenty runs): by design it gets no slice in this one, unless it is precise.
          expect(precise, `quantum ${q}: no slice`).toBe(false)
          expect(results[q]!.slices[0], `quantum ${q}`).toBe(0)
          expect(results[q - 1]!.carryNs[0], `quantum ${q - 1}'s carry`).toBeGreaterThan(Q / 2)
          continue
        }
        expect(firstSets[q]!.precise, `quantum ${q}`).toBe(precise)
        expect(results[q]!.preciseSlices[0], `quantum ${q}`).toBe(precise ? 1 : 0)
        expect(results[q]!.preciseSlices[1], `quantum ${q}`).toBe(0)
      }
      // virtualNowNs: never back, within the quantum.
      for (const i of [0, 1]) {
        const mine = samples.filter((x) => x.i === i)
        for (let k = 1; k < mine.length; k++) expect((mine[k] as { v: number }).v).toBeGreaterThanOrEqual((mine[k - 1] as { v: number }).v)
        for (const x of mine) {
          expect(x.v).toBeGreaterThanOrEqual(x.quantum * Q)
          expect(x.v).toBeLessThanOrEqual((x.quantum + 1) * Q)
        }
      }
      const extra = results.reduce((x, r) => x + r.extraSlices, 0)
      console.log(`[${mode}] ${QUANTA} quanta, ${extra} extra slices, ${samples.length} virtualNowNs samples`)
      expect(extra).toBeGreaterThan(0)
      expect(results.every((r) => r.extraSlices <= MAX_EXTRA_SLICES)).toBe(true)
    } finally {
      unpin()
    }
  })

  it('rejects bad cells and quanta', async () => {
    const c = await createCell({ name: 'q-bad', mode })
    cells.push(c)
    expect(() => createQuantumDriver([{ cell: c, clockMode: 'CpuTime', speed: 0 }])).toThrow(/speed/)
    expect(() => createQuantumDriver([{ cell: c, clockMode: 'Other' as ClockMode, speed: 1 }])).toThrow(/clockMode/)
    const driver = createQuantumDriver([{ cell: c, clockMode: 'WallTime', speed: 1 }])
    await expect(driver.run(0, 1_000_000)).rejects.toThrow(/frozen/) // a new cell runs
    await c.freeze()
    await expect(driver.run(0, 0)).rejects.toThrow(/virtualNs/)
    await expect(driver.run(-1, 10)).rejects.toThrow(/startNs/)
  })
})

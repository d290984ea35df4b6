// The cooperative quantum driver (sim-runtime/live/coop.ts) with fake cells and clocks: when does it
// take a cell to be at the barrier, and why (QuantumResult.finishedBy, in the runner's trace log)?
// A cell whose clock was read is there once its clock has had the quantum's wall time; one nobody
// read is there when no thread of it is runnable (idle) or when it has used the quantum's CPU time
// (computing); a reading that waited at the last barrier keeps its cell from counting as idle at once.
// Data due for a cell stops that cell only (hooks.nextDue, hooks.deliver): the others run the quantum
// in one stretch. The timed waits of an idle cell's programs (clock.waits(), the shim's deadline
// registry) hold it back: its clock goes no faster than the wall takes each waiter to its deadline,
// and stops at a deadline inside the quantum until its waiter's wait has ended. (The driver ignores
// clockMode: the runner hands it CpuTime for Cooperative hosts.)
import { describe, expect, it } from 'vitest'
import type { Cell } from '../../sim-runtime/live/cell.ts'
import type { VirtualClock } from '../../sim-runtime/live/clock.ts'
import { createCoopDriver } from '../../sim-runtime/live/coop.ts'
import { NO_WAITS, type ClockWaits } from '../../sim-runtime/live/deadlines.ts'

interface FakeClock extends VirtualClock {
  sets: { virtualNs: number; untilNs?: number; precise?: boolean }[]
}

/** A clock whose slice() says what `read` and `waited` say: read, the slice starts at the first slice() after a set; its registry holds `waits`. */
function fakeClock(o: { read: boolean; waited?: number; waits?: () => ClockWaits }): FakeClock {
  let startedAt: bigint | undefined
  const sets: FakeClock['sets'] = []
  return {
    sets,
    env: () => ({}),
    set(virtualNs, _rate, opts = {}) {
      sets.push({ virtualNs, untilNs: opts.untilNs, precise: opts.precise })
      startedAt = undefined
    },
    slice() {
      if (o.read && startedAt === undefined) startedAt = process.hrtime.bigint()
      return { startedAt: o.read ? startedAt : undefined, waited: o.waited ?? 0 }
    },
    waits: o.waits ?? (() => NO_WAITS),
    stampsFile: undefined,
    toVirtualNs: (ns) => Number(ns),
    close() {},
  }
}

/** A cell with the given processes (their threads' states are read from /proc) and CPU time. */
function fakeCell(name: string, pids: () => number[], cpuTimeNs: () => number): Cell {
  return {
    mode: 'signals',
    name,
    warnings: [],
    paths: [],
    spawn: () => {
      throw new Error('not in this test')
    },
    freeze: async () => {},
    thaw: async () => {},
    frozen: false,
    cpuTimeNs,
    pids,
    destroy: async () => {},
  }
}

const QUANTUM = 300_000

/** A driver for cells with no process and no CPU time, one per clock. */
function idleCells(...clocks: FakeClock[]) {
  return createCoopDriver(clocks.map((clock, i) => ({ cell: fakeCell(`cell-${i}`, () => [], () => 0), clock, clockMode: 'CpuTime' as const, speed: 1 })))
}

describe('cooperative driver', () => {
  it('a cell whose clock was read is at the barrier once its clock has had the quantum; a cell nobody read with no runnable thread is idle', async () => {
    const read = fakeClock({ read: true })
    const idle = fakeClock({ read: false })
    const driver = idleCells(read, idle)
    const r = await driver.run(1_000_000, QUANTUM)
    expect(r.finishedBy).toEqual(['read', 'idle'])
    // Its clock started at the first look, after the quantum's start: the quantum lasted at least that long.
    expect(r.spanNs).toBeGreaterThanOrEqual(QUANTUM)
    // Each clock was set to the quantum, as a precise slice that waits at the barrier.
    expect(read.sets.at(-1)).toEqual({ virtualNs: 1_000_000, untilNs: 1_000_000 + QUANTUM, precise: true })
    expect(idle.sets.at(-1)).toEqual({ virtualNs: 1_000_000, untilNs: 1_000_000 + QUANTUM, precise: true })
    expect(driver.virtualNowNs(0)).toBe(1_000_000 + QUANTUM)
  })

  it('a cell nobody read whose thread runs is at the barrier once it has used the quantum’s CPU time (computing)', async () => {
    let cpu = 0
    // This test's own process: its thread is running (R) whenever the driver looks.
    const cell = fakeCell('busy', () => [process.pid], () => (cpu += QUANTUM / 4))
    const driver = createCoopDriver([{ cell, clock: fakeClock({ read: false }), clockMode: 'CpuTime' as const, speed: 1 }])
    const before = cpu
    const r = await driver.run(0, QUANTUM)
    expect(r.finishedBy).toEqual(['computing'])
    expect(cpu - before).toBeGreaterThanOrEqual(QUANTUM)
  })

  it('stops a cell at its own deliveries only: data due for one cell does not split the other cell’s quantum', async () => {
    const c0 = fakeClock({ read: true })
    const c1 = fakeClock({ read: true })
    const driver = idleCells(c0, c1)
    expect(driver.splitsPerCell).toBe(true)
    const start = 1_000_000
    const due = start + 100_000
    const delivered: { i: number; atNs: number; clockAt: number | undefined }[] = []
    let pending = true
    const r = await driver.run(start, QUANTUM, {
      nextDue: (i, after) => (i === 0 && pending && after < due ? due : Infinity),
      deliver: (i, atNs) => {
        // The cell's clock stands at the delivery time when the data is written (set just before).
        delivered.push({ i, atNs, clockAt: (i === 0 ? c0 : c1).sets.at(-1)?.virtualNs })
        if (i !== 0 || atNs !== due || !pending) return false
        pending = false
        return true
      },
    })
    expect(delivered).toEqual([{ i: 0, atNs: due, clockAt: due }])
    // Cell 0: [start, due), then a precise slice [due, end) for the data; cell 1: the whole quantum at once.
    expect(c0.sets).toEqual([
      { virtualNs: start, untilNs: due, precise: true },
      { virtualNs: due, untilNs: start + QUANTUM, precise: true },
    ])
    expect(c1.sets).toEqual([{ virtualNs: start, untilNs: start + QUANTUM, precise: true }])
    expect(r.stretches).toEqual([2, 1])
    expect(r.slices).toEqual([2, 1])
    expect(r.preciseSlices).toEqual([1, 0])
    expect(r.finishedBy).toEqual(['read', 'read'])
    expect(driver.virtualNowNs(0)).toBe(start + QUANTUM)
  })

  it('counts a cell’s CPU time once per run, including what it used between runs (it is never frozen)', async () => {
    let cpu = 1_000_000
    const driver = createCoopDriver([{ cell: fakeCell('busy-between', () => [], () => cpu), clock: fakeClock({ read: true }), clockMode: 'CpuTime' as const, speed: 1 }])
    const r1 = await driver.run(0, QUANTUM)
    expect(r1.cpuNs).toEqual([0])
    cpu += 5_000_000 // waiting at its barrier between two runs, say
    const r2 = await driver.run(QUANTUM, QUANTUM)
    expect(r2.cpuNs).toEqual([5_000_000])
    cpu += 3_000_000
    const r3 = await driver.run(2 * QUANTUM, QUANTUM)
    expect(r3.cpuNs).toEqual([3_000_000])
  })

  it('an idle cell with a timed wait whose deadline lies inside the quantum stops there until the wait has ended (the stretch is split at it), then goes on', async () => {
    const hr = () => Number(process.hrtime.bigint())
    const start = 1_000_000
    const deadline = start + QUANTUM / 3
    // The waiter's real wait ends 3 ms of wall from now; it leaves its wait (clears its slot) 1 ms
    // after the clock came to its deadline (however late the driver looked: the test may be slow).
    const wake = hr() + 3_000_000
    let leaves = Infinity
    const clock = fakeClock({
      read: false,
      waits: () => {
        if (leaves === Infinity && clock.sets.some((s) => s.virtualNs >= deadline)) leaves = hr() + 1_000_000
        return hr() < leaves ? { ...NO_WAITS, deadlineNs: [deadline], wakeNs: [wake] } : NO_WAITS
      },
    })
    const driver = idleCells(clock)
    const r = await driver.run(start, QUANTUM)
    expect(clock.sets).toEqual([
      { virtualNs: start, untilNs: start + QUANTUM, precise: true },
      { virtualNs: deadline, untilNs: start + QUANTUM, precise: true },
    ])
    // The clock went to the deadline no sooner than the wait ended, and past it no sooner than the waiter left.
    expect(hr()).toBeGreaterThanOrEqual(wake + 1_000_000)
    expect(hr()).toBeGreaterThanOrEqual(leaves)
    expect(r.finishedBy).toEqual(['idle'])
    expect(r.stretches).toEqual([2])
    expect(driver.virtualNowNs(0)).toBe(start + QUANTUM)
  })

  it('an idle cell with a timed wait whose deadline lies beyond the quantum reaches the barrier no sooner than the wall, at the clock’s rate, takes the waiter to its deadline', async () => {
    const hr = () => Number(process.hrtime.bigint())
    const speed = 4
    const start = 5_000_000
    // Deadline one quantum past the barrier; its real wait ends in 3 quanta of wall at speed 4 (12 × QUANTUM ns):
    // the clock may reach the barrier once 2 quanta of virtual time (8 × QUANTUM ns of wall) are left to the wake.
    const deadline = start + 2 * QUANTUM
    const wake = hr() + 3 * QUANTUM * speed
    const clock = fakeClock({ read: false, waits: () => ({ ...NO_WAITS, deadlineNs: [deadline], wakeNs: [wake] }) })
    const driver = createCoopDriver([{ cell: fakeCell('waiting', () => [], () => 0), clock, clockMode: 'CpuTime' as const, speed }])
    await driver.run(start, QUANTUM)
    expect(hr()).toBeGreaterThanOrEqual(wake - (deadline - (start + QUANTUM)) * speed)
    expect(clock.sets).toEqual([{ virtualNs: start, untilNs: start + QUANTUM, precise: true }])
  })

  it('a reading that waited at the last barrier keeps its cell from counting as idle for up to 5 ms', async () => {
    const driver = idleCells(fakeClock({ read: false, waited: 1 }))
    const r = await driver.run(0, QUANTUM)
    expect(r.finishedBy).toEqual(['idle'])
    expect(r.spanNs).toBeGreaterThanOrEqual(5_000_000)
  })
})

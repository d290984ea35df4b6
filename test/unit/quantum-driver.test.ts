// The quantum driver (sim-runtime/live/quantum.ts) with cells that only pretend to freeze: its
// control flow and invariants, without processes or cgroups.
import { describe, expect, it } from 'vitest'
import type { Cell } from '../../sim-runtime/live/cell.ts'
import { createQuantumDriver } from '../../sim-runtime/live/quantum.ts'

/** A cell without processes; `failFreezes` of its freezes fail (after setting `frozen`, as a cgroup1 freezer that does not settle). */
function fakeCell(name: string, failFreezes = 0): Cell & { thaws: number } {
  let frozen = true
  let failures = failFreezes
  return {
    mode: 'cgroup1',
    name,
    warnings: [],
    paths: [],
    thaws: 0,
    get frozen() {
      return frozen
    },
    spawn() {
      throw new Error('a fake cell runs nothing')
    },
    async freeze() {
      frozen = true
      if (failures > 0) {
        failures--
        throw new Error(`cell ${name}: freezer still FREEZING after 10 s`)
      }
    },
    async thaw() {
      frozen = false
      this.thaws++
    },
    cpuTimeNs: () => 0,
    pids: () => [],
    destroy: async () => {},
  }
}

describe('quantum driver, fake cells', () => {
  it('runs a WallTime cell one slice per quantum and leaves it frozen', async () => {
    const cell = fakeCell('a')
    const driver = createQuantumDriver([{ cell, clockMode: 'WallTime', speed: 1 }])
    for (let k = 0; k < 3; k++) {
      const r = await driver.run(k * 200_000, 200_000)
      expect(r.slices).toEqual([1])
      expect(r.extraSlices).toBe(0)
      expect(cell.frozen).toBe(true)
      expect(driver.virtualNowNs(0)).toBe((k + 1) * 200_000)
    }
    expect(cell.thaws).toBe(3)
  })

  it('fails the run when the freeze of the last batch under way fails, with the freeze error, and refreezes', async () => {
    const cell = fakeCell('b', 1)
    const driver = createQuantumDriver([{ cell, clockMode: 'WallTime', speed: 1 }])
    await expect(driver.run(0, 200_000)).rejects.toThrow(/freezer still FREEZING/)
    expect(cell.frozen).toBe(true)
    // The next quantum runs: the driver is not left running.
    const r = await driver.run(200_000, 200_000)
    expect(r.slices).toEqual([1])
  })
})

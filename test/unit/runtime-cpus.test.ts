// Where a runtime and the cells without cell.cpus run (sim-runtime/live/runtime-cpus.ts, LIVESIM_RUNTIME_CPUS).
import { describe, expect, it } from 'vitest'
import { allowedCpus, parseRuntimeCpus, placeRuntime } from '../../sim-runtime/live/runtime-cpus.ts'

describe('runtime placement', () => {
  it('auto gives a runtime of Cooperative cells the last allowed CPU and the cells the others', () => {
    expect(placeRuntime('auto', [0, 1], true)).toMatchObject({ runtime: [1], cells: [0] })
    expect(placeRuntime('auto', [2, 3, 5], true)).toMatchObject({ runtime: [5], cells: [2, 3] })
  })

  it('auto leaves everything where it is without a Cooperative cell, with one CPU or with other live runtimes here, and says why', () => {
    const frozen = placeRuntime('auto', [0, 1], false)
    expect(frozen.runtime).toBeUndefined()
    expect(frozen.cells).toBeUndefined()
    expect(frozen.why).toMatch(/no Cooperative cell/)
    const one = placeRuntime('auto', [3], true)
    expect(one.runtime).toBeUndefined()
    expect(one.why).toBe('auto: one CPU allowed (3)')
    expect(placeRuntime('none', [0, 1], true)).toEqual({ why: 'LIVESIM_RUNTIME_CPUS=none' })
    const shared = placeRuntime('auto', [0, 1], true, 2)
    expect(shared).toEqual({ why: 'auto: 2 other live runtime(s) of this user running here (they would share the CPU)' })
  })

  it('a list pins the runtime there and gives the cells the rest, whatever the clocks', () => {
    expect(placeRuntime([0], [0, 1, 2, 3], false)).toMatchObject({ runtime: [0], cells: [1, 2, 3] })
    expect(() => placeRuntime([0, 1], [0, 1], true)).toThrow('LIVESIM_RUNTIME_CPUS=0-1 leaves no CPU for the cells (this process may run on 0-1); name fewer CPUs, or none')
  })

  it('parses LIVESIM_RUNTIME_CPUS and names the variable and what is allowed on bad input', () => {
    expect(parseRuntimeCpus(undefined, 'none')).toBe('none')
    expect(parseRuntimeCpus('', 'auto')).toBe('auto')
    expect(parseRuntimeCpus('auto', 'none')).toBe('auto')
    expect(parseRuntimeCpus('0', 'none')).toEqual([0])
    expect(() => parseRuntimeCpus('fast', 'none')).toThrow('LIVESIM_RUNTIME_CPUS=fast (none, auto or a cpuset list such as 1 or 2-3): "fast" is not a CPU or a range lo-hi')
    expect(() => parseRuntimeCpus('4096', 'none')).toThrow(/LIVESIM_RUNTIME_CPUS=4096 .*: CPU 4096 does not exist on this machine/)
  })

  it('reads the allowed CPUs from /proc/self/status', () => {
    expect(allowedCpus('Name:\tx\nCpus_allowed:\t2d\nCpus_allowed_list:\t0,2-3,5\n')).toEqual([0, 2, 3, 5])
    const here = allowedCpus()
    expect(here.length).toBeGreaterThan(0)
    expect(here.every((c) => Number.isInteger(c) && c >= 0)).toBe(true)
  })
})

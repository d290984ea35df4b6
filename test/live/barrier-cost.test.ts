// Freeze + thaw cost per barrier for 1, 4 and 16 cells (numbers printed; the benchmark reuses
// measureBarrierCost). Loose bounds only: the machine may be loaded by other work.
import { describe, expect, it } from 'vitest'
import { measureBarrierCost } from './barrier-cost.ts'

describe.each(['cgroup1', 'signals'] as const)('barrier cost, %s', (mode) => {
  it.each([1, 4, 16])('%i idle cells', async (cells) => {
    const r = await measureBarrierCost({ mode, cells, load: 'idle', barriers: 60 })
    console.log(
      `[${mode}] ${cells} idle cell(s): per barrier median ${r.perBarrier.medianUs} µs, p90 ${r.perBarrier.p90Us} µs ` +
        `(freeze ${r.freeze.medianUs} µs, thaw ${r.thaw.medianUs} µs)`,
    )
    expect(r.barriers).toBe(55)
    expect(r.perBarrier.medianUs).toBeLessThan(50_000)
  })
})

// Cost of freezing and thawing N cells at a barrier: the live-freeze-* benchmarks (bench/live.ts)
// and docs/live.md's table. Also a command of its own:
//   node bench/barrier-cost.ts [--modes cgroup1,signals] [--cells 1,4,16] [--load idle,busy] [--barriers 200]
// prints one JSON line per combination (modes: by default every mode this machine permits). `idle`
// cells hold a sleeping process, `busy` cells a spinning one (16 busy cells on 2 cores: every freeze
// has to wait for tasks that are not on a CPU).
import path from 'node:path'
import { availableCellModes, createCell, type Cell, type CellMode } from '../sim-runtime/live/cell.ts'
import { baseEnv, compilePrograms } from '../test/live/helpers.ts'

export interface CostStats {
  medianUs: number
  p90Us: number
  maxUs: number
}

export interface BarrierCost {
  mode: CellMode
  cells: number
  load: 'idle' | 'busy'
  barriers: number
  /** Wall time of Promise.all(cells.map(freeze)) (all stopped). */
  freeze: CostStats
  /** Wall time of Promise.all(cells.map(thaw)). */
  thaw: CostStats
  /** freeze + thaw: what a barrier costs on top of the quantum. */
  perBarrier: CostStats
}

function stats(us: number[]): CostStats {
  const s = [...us].sort((a, b) => a - b)
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0)
  return { medianUs: at(0.5), p90Us: at(0.9), maxUs: Math.round(s.at(-1) ?? 0) }
}

export async function measureBarrierCost(opts: { mode: CellMode; cells: number; load: 'idle' | 'busy'; barriers: number; runMs?: number }): Promise<BarrierCost> {
  const progs = compilePrograms()
  const cells: Cell[] = []
  try {
    for (let i = 0; i < opts.cells; i++) {
      const cell = await createCell({ name: `cost-${opts.load}-${i}`, mode: opts.mode })
      cells.push(cell)
      cell.spawn(opts.load === 'idle' ? ['sleep', '100000'] : [progs.burn, '1'], {
        env: baseEnv(),
        cwd: progs.dir,
        logFile: path.join(progs.dir, `cost-${i}.log`),
      })
    }
    await new Promise((r) => setTimeout(r, 50))
    await Promise.all(cells.map((c) => c.freeze()))
    const freeze: number[] = []
    const thaw: number[] = []
    const total: number[] = []
    for (let b = 0; b < opts.barriers; b++) {
      const t0 = performance.now()
      await Promise.all(cells.map((c) => c.thaw()))
      const t1 = performance.now()
      await new Promise((r) => setTimeout(r, opts.runMs ?? 2))
      const t2 = performance.now()
      await Promise.all(cells.map((c) => c.freeze()))
      const t3 = performance.now()
      if (b < 5) continue // warm-up
      thaw.push((t1 - t0) * 1000)
      freeze.push((t3 - t2) * 1000)
      total.push((t1 - t0 + t3 - t2) * 1000)
    }
    return { mode: opts.mode, cells: opts.cells, load: opts.load, barriers: freeze.length, freeze: stats(freeze), thaw: stats(thaw), perBarrier: stats(total) }
  } finally {
    for (const c of cells) await c.destroy()
  }
}

async function main() {
  const arg = (name: string, def: string) => {
    const i = process.argv.indexOf(`--${name}`)
    return (i > 0 ? process.argv[i + 1] : undefined) ?? def
  }
  const usable = availableCellModes()
    .filter((m) => m.usable)
    .map((m) => m.mode)
  const modes = arg('modes', usable.join(',')).split(',') as CellMode[]
  const counts = arg('cells', '1,4,16').split(',').map(Number)
  const loads = arg('load', 'idle,busy').split(',') as ('idle' | 'busy')[]
  const barriers = Number(arg('barriers', '200'))
  for (const mode of modes) for (const load of loads) for (const cells of counts) console.log(JSON.stringify(await measureBarrierCost({ mode, cells, load, barriers })))
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) await main()

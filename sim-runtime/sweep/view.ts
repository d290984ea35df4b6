// What `livesim sweep` shows a person: a progress bar on a TTY (trials done of total, running,
// failed, ETA), a line per finished trial otherwise, and a table of the points at the end.
import cliProgress from 'cli-progress'
import Table from 'cli-table3'
import { formatValue, type Grid } from './grid.ts'
import type { SweepProgress } from './run.ts'
import type { PointRow, SweepResults } from './summary.ts'

export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return '-'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

export class SweepProgressView {
  private readonly bar: cliProgress.SingleBar | undefined
  private readonly out: NodeJS.WriteStream
  private started = false
  private lastDone = 0

  constructor(out: NodeJS.WriteStream) {
    this.out = out
    if (out.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { stream: out, format: ' {bar} {value}/{total} trials | running {running} | failed {failed} | reused {reused} | ETA {left}', hideCursor: true, clearOnComplete: false, fps: 5 },
        cliProgress.Presets.shades_classic,
      )
    }
  }

  update(p: SweepProgress): void {
    const done = p.succeeded + p.failed
    const payload = { running: p.running, failed: p.failed, reused: p.reused, left: formatEta(p.etaSeconds) }
    if (this.bar) {
      if (!this.started) this.bar.start(p.total, done, payload)
      else this.bar.update(done, payload)
      this.started = true
      return
    }
    if (done === this.lastDone) return
    this.lastDone = done
    this.out.write(`livesim sweep: ${done}/${p.total} trials done, ${p.running} running, ${p.failed} failed, ETA ${payload.left}\n`)
  }

  stop(): void {
    if (this.bar && this.started) this.bar.stop()
    this.started = false
  }
}

/** A metric's value for a person: latencies (…Ns fields) in µs. */
export function scaled(field: string, v: number): { value: number; unit: string } {
  return field.endsWith('Ns') ? { value: v / 1000, unit: 'µs' } : { value: v, unit: '' }
}

function cell(field: string, m: PointRow['metrics'][number]): string {
  if (m.mean === undefined) return '-'
  const f = (v: number) => scaled(field, v).value.toPrecision(4)
  const ci = m.ciLow !== undefined && m.ciHigh !== undefined ? ` [${f(m.ciLow)}, ${f(m.ciHigh)}]` : ''
  return `${f(m.mean)}${ci}${m.distinctFromBest ? ' *' : ''}`
}

/** The points × metrics table printed at the end of a sweep. */
export function pointsTable(grid: Grid, r: SweepResults): string {
  const heads = grid.metrics.map((m) => {
    const unit = scaled(m.field, 0).unit
    return `${m.name}${unit ? ` ${unit}` : ''}`
  })
  const table = new Table({ head: ['point', ...grid.parameters.map((p) => p.name), 'trials', ...heads], style: { head: [], border: [], compact: true } })
  for (const row of r.points) {
    const mark = r.best?.point === row.point ? ' best' : ''
    table.push([`p${row.point}${mark}`, ...row.values.map(formatValue), `${row.trialsDone}/${grid.seeds}`, ...row.metrics.map((m, i) => cell(grid.metrics[i]!.field, m))])
  }
  return table.toString()
}

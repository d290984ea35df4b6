// What `livesim run` shows a person: a progress bar on a TTY (virtual time, % of endTime, slowdown),
// a line every few seconds otherwise, and a results table at the end: a row per host for groups of
// at most TABLE_REPLICAS_MAX replicas when the results hold every host, else a row per group, then
// the slowest replicas of those groups and the links with the most drops.
import cliProgress from 'cli-progress'
import Table from 'cli-table3'
import { formatDurationNs } from '../api/units.ts'
import type { LeaderStatus } from '../sync/leader.ts'
import type { SimResults } from '../sync/results.ts'

export class ProgressView {
  private readonly bar: cliProgress.SingleBar | undefined
  private readonly out: NodeJS.WriteStream
  private lastLineMs = 0
  private started = false

  constructor(out: NodeJS.WriteStream) {
    this.out = out
    if (out.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          stream: out,
          format: ' {bar} {percentage}% | virtual {vt} of {end} | {phase} | hosts {hosts} | slowdown {slowdown}x | {barriers} barriers',
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      )
    }
  }

  update(s: LeaderStatus): void {
    const payload = {
      vt: formatDurationNs(s.virtualTimeNs),
      end: formatDurationNs(s.endTimeNs),
      phase: s.phase,
      hosts: `${s.hosts.ready}/${s.hosts.total}`,
      slowdown: s.slowdown.toFixed(2),
      barriers: s.barriers,
    }
    const pct = Math.round(s.progress * 1000) / 10
    if (this.bar) {
      if (!this.started) this.bar.start(100, pct, payload)
      else this.bar.update(pct, payload)
      this.started = true
      return
    }
    const now = Date.now()
    if (now - this.lastLineMs < 5000 && s.phase !== 'Succeeded' && s.phase !== 'Failed') return
    this.lastLineMs = now
    this.out.write(`livesim: ${s.phase} ${pct}% virtual ${payload.vt}/${payload.end} hosts ${payload.hosts} slowdown ${payload.slowdown}x barriers ${s.barriers}\n`)
  }

  stop(): void {
    if (this.bar && this.started) this.bar.stop()
    this.started = false
  }
}

function us(ns: unknown): string {
  return typeof ns === 'number' ? (ns / 1000).toFixed(1) : '-'
}

interface Latency {
  meanNs: number
  p50Ns: number
  p99Ns: number
  p999Ns: number
}

/** Groups of more replicas than this get one row in the table, even when the results hold every host. */
export const TABLE_REPLICAS_MAX = 8

/** A row of the table: a host ("web-0") or a group ("web ×160"), and its components' results. */
interface Row {
  label: string
  /** "group/component" for a group's row: where its outliers are listed. */
  group?: string
  components: Record<string, unknown>
}

/**
 * The table's rows in plan order: each host of a group of at most TABLE_REPLICAS_MAX replicas when
 * the results hold every host, else each group; every host for results without groups.
 */
export function tableRows(r: SimResults): Row[] {
  if (!r.groups) return Object.entries(r.hosts).map(([label, h]) => ({ label, components: h.components }))
  const rows: Row[] = []
  for (const [name, g] of Object.entries(r.groups)) {
    const hosts = Array.from({ length: g.replicas }, (_, i) => `${name}-${i}`)
    if (g.replicas <= TABLE_REPLICAS_MAX && hosts.every((h) => r.hosts[h])) {
      for (const h of hosts) rows.push({ label: h, components: r.hosts[h]!.components })
    } else {
      rows.push({ label: `${name} ×${g.replicas}`, group: name, components: g.components })
    }
  }
  return rows
}

/** HTTP replies by status code: a line per component that counts them (HTTP clients, servers with HTTP calls). */
export function statusLines(r: SimResults): string[] {
  const lines: string[] = []
  const codes = (m: Record<string, number>) => Object.entries(m).map(([code, n]) => `${code}: ${n}`).join(', ')
  for (const { label: host, components } of tableRows(r)) {
    for (const [name, c] of Object.entries(components)) {
      const x = c as { status?: Record<string, number>; latencyByStatusClass?: Record<string, Latency>; callStatus?: Record<string, number> }
      if (x.status) {
        const p50 = Object.entries(x.latencyByStatusClass ?? {}).map(([cls, l]) => `${cls} ${us(l.p50Ns)} µs`).join(', ')
        lines.push(`${host}/${name}: HTTP status ${codes(x.status)}; p50 ${p50}`)
      }
      if (x.callStatus) lines.push(`${host}/${name}: HTTP calls, status ${codes(x.callStatus)}`)
    }
  }
  return lines
}

export function printResultsTable(r: SimResults, outFile: string, out: NodeJS.WritableStream = process.stdout): void {
  const t = new Table({
    head: ['host', 'component', 'kind', 'done', 'rate/s', 'errors', 'mean µs', 'p50 µs', 'p99 µs', 'p99.9 µs', 'util'],
    style: { head: [], border: [], compact: true },
  })
  const rows = tableRows(r)
  for (const { label: host, components } of rows) {
    for (const [name, c] of Object.entries(components)) {
      const x = c as Record<string, unknown>
      const lat = (x.latency ?? x.response) as Latency | undefined
      const errors = Number(x.errors ?? 0) + Number(x.timeouts ?? 0) + Number(x.rejected ?? 0)
      const done = x.kind === 'Live' ? (x.running ? 'running' : `exit ${x.exitCode ?? x.exitSignal}`) : String(x.completed ?? '-')
      t.push([
        host,
        name,
        String(x.kind),
        done,
        x.throughputPerSec !== undefined ? String(x.throughputPerSec) : '-',
        String(errors),
        us(lat?.meanNs),
        us(lat?.p50Ns),
        us(lat?.p99Ns),
        us(lat?.p999Ns),
        x.utilization !== undefined ? `${(Number(x.utilization) * 100).toFixed(1)}%` : '-',
      ])
    }
  }
  out.write(`${t.toString()}\n`)
  for (const line of statusLines(r)) out.write(`${line}\n`)
  for (const line of outlierLines(r, rows)) out.write(`${line}\n`)
  const s = r.sync
  out.write(
    `${r.cluster}: ${formatDurationNs(r.virtualTimeNs)} simulated in ${r.wall.seconds}s (slowdown ${r.wall.slowdown}x), ` +
      `${s.mode}, ${s.barriers} barriers, ${s.causalityViolations} causality violations` +
      (s.mode === 'Slack' ? ` (lateness total ${formatDurationNs(s.latenessTotalNs)}, max ${formatDurationNs(s.latenessMaxNs)})` : '') +
      `\nresults: ${outFile}  digest: ${r.digest}\n`,
  )
  const slowest = r.profile?.runtimes[0]
  if (slowest && !slowest.embedded && r.profile!.runtimes.length > 1) {
    out.write(
      `slowest runtime: ${slowest.runtime} (${slowest.hosts}), last to report ${slowest.lastToReport} of ${r.profile!.barriers} barriers, ` +
        `report p50 ${us(slowest.reportP50Ns)} µs, p99 ${us(slowest.reportP99Ns)} µs\n`,
    )
  }
  if (r.live) {
    out.write(`live: ${r.live.hosts} cell(s) in ${r.live.cellMode} mode, CPU time ${formatDurationNs(r.live.cpuTimeNs)}, stolen (compensated) ${formatDurationNs(r.live.stolenNs)}\n`)
  }
}

/** Outliers worth a line: the slowest replicas of the groups shown as one row, the links with the most drops. */
export function outlierLines(r: SimResults, rows: Row[] = tableRows(r)): string[] {
  if (!r.outliers) return []
  const lines: string[] = []
  for (const row of rows) {
    if (!row.group) continue
    for (const [key, o] of Object.entries(r.outliers.p99)) {
      if (!key.startsWith(`${row.group}/`)) continue
      const lat = (row.components[key.slice(row.group.length + 1)] as Record<string, Latency | undefined> | undefined)?.[o.field]
      const worst = o.hosts.slice(0, 3).map((h) => `${h.host} ${us(h.p99Ns)}`).join(', ')
      lines.push(`${key}: ${o.field} p99 ${us(lat?.p99Ns)} µs over the group; slowest replicas ${worst} µs`)
    }
  }
  if (r.outliers.drops.length) {
    lines.push(`most drops: ${r.outliers.drops.slice(0, 3).map((l) => `${l.from}->${l.to} ${l.drops} of ${l.messages + l.drops}`).join(', ')}`)
  }
  return lines
}

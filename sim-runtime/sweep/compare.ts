// `livesim compare A.json B.json`: two results documents side by side, per component: latency
// percentiles, throughput, errors (and a server's utilization and rejections), with B's relative
// difference from A.
import { readFileSync } from 'node:fs'
import Table from 'cli-table3'
import type { SimResults } from '../sync/results.ts'

export interface CompareRow {
  component: string
  metric: string
  a: number | null
  b: number | null
  /** (b − a) / a; null when a is 0 or either side is missing. */
  relative: number | null
}

/** Rows per component kind: label, field in the component's results, divisor for display. */
const LATENCY = (root: string) =>
  [
    ['p50 µs', `${root}.p50Ns`, 1000],
    ['p90 µs', `${root}.p90Ns`, 1000],
    ['p99 µs', `${root}.p99Ns`, 1000],
    ['p99.9 µs', `${root}.p999Ns`, 1000],
    ['mean µs', `${root}.meanNs`, 1000],
  ] as const
const ROWS: Record<string, readonly (readonly [string, string, number])[]> = {
  Client: [...LATENCY('latency'), ['throughput /s', 'throughputPerSec', 1], ['completed', 'completed', 1], ['errors', 'errors', 1], ['timeouts', 'timeouts', 1]],
  Server: [...LATENCY('response'), ['completed', 'completed', 1], ['errors', 'errors', 1], ['rejected', 'rejected', 1], ['utilization', 'utilization', 1]],
  Live: [...LATENCY('response'), ['requests', 'requests', 1], ['errors', 'errors', 1]],
}

export class CompareError extends Error {}

export function readResults(file: string): SimResults {
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new CompareError(`${file}: cannot read a results JSON: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const r = doc as Partial<SimResults>
  if (r === null || typeof r !== 'object' || r.kind !== 'SimResults' || typeof r.hosts !== 'object' || r.hosts === null) {
    throw new CompareError(`${file}: not a livesim results document (kind SimResults, as \`livesim run --out\` writes)`)
  }
  return r as SimResults
}

function field(c: unknown, path: string): number | null {
  let node = c
  for (const k of path.split('.')) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined
  return typeof node === 'number' && Number.isFinite(node) ? node : null
}

/** Results that hold groups only (spec.results.detail Groups): compared per group. */
const groupsOnly = (r: SimResults) => r.groups !== undefined && Object.keys(r.hosts).length === 0

/** host/component → its results, in document order; group/component with `byGroup`. */
function components(r: SimResults, byGroup: boolean): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>()
  if (byGroup) {
    for (const [group, g] of Object.entries(r.groups ?? {})) for (const [name, c] of Object.entries(g.components)) out.set(`${group}/${name}`, c)
    return out
  }
  for (const [host, h] of Object.entries(r.hosts)) for (const [name, c] of Object.entries(h.components)) out.set(`${host}/${name}`, c as Record<string, unknown>)
  return out
}

export function compareResults(a: SimResults, b: SimResults): CompareRow[] {
  const byGroup = groupsOnly(a) || groupsOnly(b)
  const ca = components(a, byGroup)
  const cb = components(b, byGroup)
  const keys = [...ca.keys(), ...[...cb.keys()].filter((k) => !ca.has(k))]
  const rows: CompareRow[] = []
  for (const key of keys) {
    const x = ca.get(key)
    const y = cb.get(key)
    const kind = String((x ?? y)!.kind ?? '')
    for (const [metric, path, div] of ROWS[kind] ?? []) {
      const va = x ? field(x, path) : null
      const vb = y ? field(y, path) : null
      if (va === null && vb === null) continue
      const relative = va !== null && vb !== null && va !== 0 ? (vb - va) / va : null
      rows.push({ component: key, metric, a: va === null ? null : va / div, b: vb === null ? null : vb / div, relative })
    }
  }
  return rows
}

function num(v: number | null): string {
  if (v === null) return '-'
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 3 : 1)
}

function pct(row: CompareRow): string {
  if (row.relative === null) return row.a === 0 && row.b === 0 ? '0%' : '-'
  const p = row.relative * 100
  return `${p > 0 ? '+' : ''}${p.toFixed(1)}%`
}

export function compareTable(a: { file: string; r: SimResults }, b: { file: string; r: SimResults }): string {
  const rows = compareResults(a.r, b.r)
  const table = new Table({ head: ['component', 'metric', `A ${a.r.cluster}`, `B ${b.r.cluster}`, 'B vs A'], style: { head: [], border: [], compact: true } })
  let last = ''
  for (const row of rows) {
    table.push([row.component === last ? '' : row.component, row.metric, num(row.a), num(row.b), pct(row)])
    last = row.component
  }
  const same = a.r.digest === b.r.digest ? 'the same digest: the same simulation' : 'different digests'
  return `A: ${a.file} (${a.r.cluster}, seed ${a.r.seed}, ${a.r.digest.slice(0, 19)}…)\nB: ${b.file} (${b.r.cluster}, seed ${b.r.seed}, ${b.r.digest.slice(0, 19)}…); ${same}\n${table.toString()}\n`
}

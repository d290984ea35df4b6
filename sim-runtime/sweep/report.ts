// report.html of a sweep: one self-contained page (Chart.js inlined, no network) with the points
// table, each metric against each parameter (a line per combination of the other parameters'
// values, its 95 % confidence interval as a band) and the latency percentiles of the best and the
// worst point. The chart data is computed here; the page only draws it. Once drawn, each canvas
// carries data-series (lines drawn), data-points (finite points drawn) and data-painted (pixels
// that are not transparent), and the body data-charts (charts drawn), so that a headless
// browser's DOM dump shows what rendered.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { describePoint, formatValue, pointValues, type Grid } from './grid.ts'
import { PERCENTILES, type PointRow, type SweepResults } from './summary.ts'
import { scaled } from './view.ts'

/** Lines per chart: more combinations of the other parameters than this are left out (and said so). */
export const MAX_LINES = 10

export interface ChartSeries {
  label: string
  mean: (number | null)[]
  low: (number | null)[]
  high: (number | null)[]
}

export interface ChartData {
  id: string
  title: string
  note?: string
  xLabel: string
  yLabel: string
  labels: string[]
  series: ChartSeries[]
}

function chartJsSource(): string {
  const main = createRequire(import.meta.url).resolve('chart.js')
  return readFileSync(path.join(path.dirname(main), 'chart.umd.min.js'), 'utf8')
}

/** Point index of `values` (one per parameter): the inverse of pointValues. */
function pointOf(grid: Grid, indices: number[]): number {
  return indices.reduce((acc, v, i) => acc * grid.parameters[i]!.values.length + v, 0)
}

/** Every combination of value indices of the parameters other than `skip`. */
function combinations(grid: Grid, skip: number): number[][] {
  let out: number[][] = [[]]
  grid.parameters.forEach((p, i) => {
    if (i === skip) return
    out = out.flatMap((c) => p.values.map((_, v) => [...c, v]))
  })
  return out
}

/** Metric `m` against parameter `p`: one series per combination of the other parameters. */
export function metricChart(grid: Grid, rows: PointRow[], m: number, p: number): ChartData {
  const metric = grid.metrics[m]!
  const unit = scaled(metric.field, 0).unit
  const value = (v: number | undefined) => (v === undefined ? null : scaled(metric.field, v).value)
  const combos = combinations(grid, p)
  const series = combos.slice(0, MAX_LINES).map((combo): ChartSeries => {
    const others = grid.parameters.map((q, i) => ({ q, i })).filter(({ i }) => i !== p)
    const label = others.map(({ q }, k) => `${q.name}=${formatValue(q.values[combo[k]!])}`).join(', ') || metric.name
    const at = grid.parameters[p]!.values.map((_, v) => {
      const indices = grid.parameters.map((_, i) => (i === p ? v : combo[others.findIndex((o) => o.i === i)]!))
      return rows[pointOf(grid, indices)]!.metrics[m]!
    })
    return { label, mean: at.map((s) => value(s.mean)), low: at.map((s) => value(s.ciLow)), high: at.map((s) => value(s.ciHigh)) }
  })
  return {
    id: `m${m}-p${p}`,
    title: `${metric.name} against ${grid.parameters[p]!.name}`,
    note: `${metric.field} of ${metric.component} (${metric.aggregate ?? 'Mean'} over its replicas)${combos.length > MAX_LINES ? `; the first ${MAX_LINES} of ${combos.length} combinations of the other parameters` : ''}`,
    xLabel: grid.parameters[p]!.name,
    yLabel: `${metric.name}${unit ? ` (${unit})` : ''}`,
    labels: grid.parameters[p]!.values.map(formatValue),
    series,
  }
}

/** Latency percentiles (µs) of the best and the worst point by the objective. */
export function latencyChart(grid: Grid, r: SweepResults): ChartData | undefined {
  if (!r.latency || !r.best) return undefined
  const objective = grid.metrics.findIndex((m) => m.name === grid.objective.metric)
  const ranked = r.points.filter((row) => row.metrics[objective]!.mean !== undefined && row.latency)
  if (ranked.length === 0) return undefined
  const sign = grid.objective.goal === 'Minimize' ? 1 : -1
  const worst = ranked.reduce((a, b) => (sign * b.metrics[objective]!.mean! > sign * a.metrics[objective]!.mean! ? b : a))
  const chosen = worst.point === r.best.point ? [r.best] : [r.best, worst]
  const us = (v: number | null) => (v === null ? null : v / 1000)
  return {
    id: 'latency',
    title: `Latency percentiles of ${r.latency.component}: the best and the worst point by ${grid.objective.metric}`,
    note: `${r.latency.field} of ${r.latency.component}; each percentile is the mean over the replicas, then over the seeds`,
    xLabel: 'percentile',
    yLabel: 'latency (µs)',
    labels: PERCENTILES.map((p) => (p === 'maxNs' ? 'max' : p === 'p999Ns' ? 'p99.9' : p.replace('Ns', ''))),
    series: chosen.map((row) => ({
      label: `${row.point === r.best!.point ? 'best' : 'worst'}: p${row.point} ${describePoint(grid.parameters, pointValues(grid.parameters, row.point))}`,
      mean: PERCENTILES.map((p) => us(row.latency![p].mean)),
      low: PERCENTILES.map((p) => us(row.latency![p].ciLow)),
      high: PERCENTILES.map((p) => us(row.latency![p].ciHigh)),
    })),
  }
}

export function reportCharts(grid: Grid, r: SweepResults): ChartData[] {
  const charts = grid.metrics.flatMap((_, m) => grid.parameters.map((_, p) => metricChart(grid, r.points, m, p)))
  const latency = latencyChart(grid, r)
  return latency ? [...charts, latency] : charts
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function bestLine(grid: Grid, r: SweepResults): string {
  if (!r.best) return 'No point has a value of the objective yet.'
  const m = grid.metrics.findIndex((x) => x.name === grid.objective.metric)
  const s = r.best.metrics[m]!
  const f = (v: number | undefined) => (v === undefined ? '-' : scaled(grid.metrics[m]!.field, v).value.toPrecision(4))
  const unit = scaled(grid.metrics[m]!.field, 0).unit
  const ci = s.ciLow !== undefined ? `, 95 % CI [${f(s.ciLow)}, ${f(s.ciHigh)}]` : ''
  return `Best point by ${grid.objective.goal === 'Minimize' ? 'lowest' : 'highest'} ${grid.objective.metric}: <b>p${r.best.point}</b> (${escapeHtml(describePoint(grid.parameters, r.best.values))}): ${f(s.mean)}${unit ? ` ${unit}` : ''}${ci}`
}

/** The whole page. */
export function renderReport(grid: Grid, r: SweepResults): string {
  const charts = reportCharts(grid, r)
  const done = r.trials.filter((t) => t.status === 'Succeeded').length
  const failed = r.trials.filter((t) => t.status === 'Failed').length
  const data = JSON.stringify({ charts }).replace(/</g, '\\u003c')
  const figures = charts
    .map((c) => `<figure class="${c.id === 'latency' ? 'wide' : ''}"><figcaption>${escapeHtml(c.title)}${c.note ? `<small>${escapeHtml(c.note)}</small>` : ''}</figcaption><div class="plot"><canvas id="${c.id}"></canvas></div></figure>`)
    .join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(grid.sweep)}: livesim sweep</title>
<style>${CSS}</style></head>
<body data-charts="0">
<header><h1>${escapeHtml(grid.sweep)}</h1>
<p>${grid.points} points × ${grid.seeds} seeds = ${r.trials.length} trials: ${done} succeeded, ${failed} failed · phase ${r.phase}${r.message ? ` (${escapeHtml(r.message)})` : ''} · means over seeds with 95 % confidence intervals (Student t)</p>
<p class="best">${bestLine(grid, r)}</p></header>
<section><h2>Points</h2>${pointsHtml(grid, r)}
<p class="note">Each cell: the mean over the point's seeds [95 % confidence interval]. <span class="distinct">Marked *</span>: the interval does not overlap the best point's, a difference that the seeds' noise does not explain.</p></section>
<section><h2>Metrics against parameters</h2><div class="figures">
${figures}
</div></section>
<script>${chartJsSource()}</script>
<script type="application/json" id="sweep-data">${data}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`
}

/** The points × metrics table: the best row highlighted, cells apart from the best point's marked. */
function pointsHtml(grid: Grid, r: SweepResults): string {
  const unit = (field: string) => scaled(field, 0).unit
  const head = ['point', ...grid.parameters.map((p) => p.name), 'trials', ...grid.metrics.map((m) => `${m.name}${unit(m.field) ? ` (${unit(m.field)})` : ''}`)]
  const f = (field: string, v: number | undefined) => (v === undefined ? '' : scaled(field, v).value.toPrecision(4))
  const rows = r.points.map((row) => {
    const cells = row.metrics.map((m, i) => {
      const field = grid.metrics[i]!.field
      const ci = m.ciLow !== undefined ? ` <small>[${f(field, m.ciLow)}, ${f(field, m.ciHigh)}]</small>` : ''
      return `<td class="${m.distinctFromBest ? 'distinct' : ''}">${m.mean === undefined ? '-' : f(field, m.mean)}${ci}${m.distinctFromBest ? ' *' : ''}</td>`
    })
    const best = r.best?.point === row.point
    return `<tr class="${best ? 'best' : ''}"><td>p${row.point}${best ? ' (best)' : ''}</td>${row.values.map((v) => `<td>${escapeHtml(formatValue(v))}</td>`).join('')}<td>${row.trialsDone}/${grid.seeds}</td>${cells.join('')}</tr>`
  })
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0 auto; max-width: 1240px; padding: 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
header p { margin: 4px 0; color: #57606a; } p.best { color: #1f2328; background: #f1f8ff; border-left: 4px solid #4e79a7; padding: 8px 12px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { border-bottom: 1px solid #d8dee4; padding: 4px 10px; text-align: right; white-space: nowrap; } th { background: #f6f8fa; }
td small { color: #57606a; } tr.best td { background: #e6f4ea; font-weight: 600; } .distinct { color: #9a3412; }
.note { color: #57606a; font-size: 13px; }
.figures { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 6px; } figcaption small { display: block; font-weight: 400; color: #57606a; }
.plot { position: relative; height: 280px; }
`

/** Draws data.charts with Chart.js; no animation, so a canvas is drawn when its chart is made. */
const PAGE_SCRIPT = `
(function () {
  var palette = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac'];
  function alpha(hex, a) { var n = parseInt(hex.slice(1), 16); return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')'; }
  function datasets(series) {
    var out = [];
    series.forEach(function (s, i) {
      var c = palette[i % palette.length];
      out.push({ label: '', band: true, data: s.high, fill: '+1', backgroundColor: alpha(c, 0.16), borderWidth: 0, pointRadius: 0 });
      out.push({ label: '', band: true, data: s.low, fill: false, borderWidth: 0, pointRadius: 0 });
      out.push({ label: s.label, data: s.mean, borderColor: c, backgroundColor: c, borderWidth: 2, pointRadius: 3, fill: false });
    });
    return out;
  }
  function draw(c) {
    var canvas = document.getElementById(c.id);
    var chart = new Chart(canvas, {
      type: 'line',
      data: { labels: c.labels, datasets: datasets(c.series) },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 12, filter: function (item, data) { return !data.datasets[item.datasetIndex].band; } } },
          tooltip: { filter: function (item) { return !item.dataset.band; } }
        },
        scales: { x: { title: { display: true, text: c.xLabel } }, y: { title: { display: true, text: c.yLabel } } }
      }
    });
    var lines = chart.data.datasets.filter(function (d) { return !d.band; });
    var points = 0;
    chart.data.datasets.forEach(function (d, i) {
      if (d.band) return;
      chart.getDatasetMeta(i).data.forEach(function (p) { if (isFinite(p.x) && isFinite(p.y) && !p.skip) points++; });
    });
    var pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data, painted = 0;
    for (var k = 3; k < pixels.length; k += 4) if (pixels[k] !== 0) painted++;
    canvas.setAttribute('data-series', String(lines.length));
    canvas.setAttribute('data-points', String(points));
    canvas.setAttribute('data-painted', String(painted));
    return chart;
  }
  var data = JSON.parse(document.getElementById('sweep-data').textContent);
  var drawn = 0;
  data.charts.forEach(function (c) {
    try { draw(c); drawn++; } catch (e) { document.getElementById(c.id).setAttribute('data-error', String(e)); }
  });
  document.body.setAttribute('data-charts', String(drawn));
})();
`

// report.html in a real browser: a small sweep's report opened in headless Chromium (Debian's
// package; hack/chromium.sh installs it, .ci/run calls it), its DOM dumped after the page's scripts
// ran, and a screenshot taken. Every chart must have drawn its series (the page writes what it drew
// into data-* attributes of each canvas), and the page must need no network.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { latencyComponent } from '../../sim-runtime/sweep/command.ts'
import { renderReport } from '../../sim-runtime/sweep/report.ts'
import { runSweep } from '../../sim-runtime/sweep/run.ts'
import { sweepResults } from '../../sim-runtime/sweep/summary.ts'
import { loadSimSweep } from '../../sim-runtime/sweep/validate.ts'
import { root } from '../helpers.ts'

const chromium = ['chromium', 'chromium-browser'].map((c) => spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim()).find(Boolean)
const skipped = chromium ? '' : ' (skipped: no Chromium on PATH; hack/chromium.sh installs Debian\'s package)'
const tmp = mkdtempSync(path.join(tmpdir(), 'livesim-report-'))

// 2 workers × 3 latencies, 2 seeds; 2 metrics: 4 metric charts and the latency chart.
const SWEEP = `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata: { name: report }
spec:
  template:
    endTime: 50ms
    network: { default: { latency: 100us } }
    hosts:
      - name: a
        replicas: 2
        components:
          - { name: c, model: { kind: Client, target: b/s, closedLoop: { users: 4, thinkTime: 1ms } } }
      - name: b
        components:
          - { name: s, model: { kind: Server, workers: 1, service: { distribution: Exponential, mean: 300us } } }
  parameters:
    - { name: workers, path: hosts.b.components.s.model.workers, values: [1, 2] }
    - { name: latency, path: network.default.latency, values: [50us, 100us, 400us] }
  seeds: 2
  metrics:
    - { name: p99, component: a/c, field: latency.p99Ns, aggregate: Max }
    - { name: util, component: b/s, field: utilization }
  objective: { metric: p99, goal: Minimize }
`

function browser(...args: string[]) {
  return spawnSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${path.join(tmp, 'profile')}`, '--window-size=1280,2400', '--virtual-time-budget=10000', '--host-resolver-rules=MAP * ~NOTFOUND', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  })
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const b = readFileSync(file)
  expect(b.subarray(1, 4).toString('latin1')).toBe('PNG')
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
}

describe.skipIf(!chromium)(`report.html in headless Chromium${skipped}`, () => {
  const html = path.join(tmp, 'report.html')
  beforeAll(async () => {
    const grid = loadSimSweep(SWEEP)
    const latency = latencyComponent(grid)
    const run = await runSweep({ grid, outDir: tmp, baseDir: root, parallel: 2, logLevel: 'silent', latency })
    writeFileSync(html, renderReport(grid, sweepResults(grid, run.records, { phase: 'Succeeded', latency })))
  }, 120_000)

  it('is self-contained: Chart.js inlined, no element loads anything (the browser runs with every host unresolvable)', () => {
    const text = readFileSync(html, 'utf8')
    expect(text).toContain('Chart.js v4')
    const markup = text.replace(/<script>[\s\S]*?<\/script>/g, '<script></script>')
    expect(markup.match(/<[a-z]+[^>]*\s(src|href)=[^>]*>|@import|url\(/gi) ?? []).toEqual([])
  })

  it('draws every chart with the expected series and points', () => {
    const dump = browser('--dump-dom', `file://${html}`)
    expect(dump.status, dump.stderr.slice(-2000)).toBe(0)
    expect(dump.stdout).toMatch(/<body[^>]* data-charts="5"/)
    const canvases = [...dump.stdout.matchAll(/<canvas id="([^"]+)"[^>]*>/g)].map(([tag, id]) => ({
      id,
      series: Number(/data-series="(\d+)"/.exec(tag)?.[1]),
      points: Number(/data-points="(\d+)"/.exec(tag)?.[1]),
      painted: Number(/data-painted="(\d+)"/.exec(tag)?.[1]),
      error: /data-error="([^"]*)"/.exec(tag)?.[1],
    }))
    // metric × parameter: a line per value of the other parameter, a point per value of this one.
    expect(canvases.map((c) => [c.id, c.series, c.points, c.error])).toEqual([
      ['m0-p0', 3, 6, undefined],
      ['m0-p1', 2, 6, undefined],
      ['m1-p0', 3, 6, undefined],
      ['m1-p1', 2, 6, undefined],
      ['latency', 2, 10, undefined],
    ])
    for (const c of canvases) expect(c.painted, `${c.id} painted nothing`).toBeGreaterThan(0)
  }, 120_000)

  it('takes a screenshot that shows far more than a blank page', () => {
    const shot = path.join(tmp, 'report.png')
    const blank = path.join(tmp, 'blank.png')
    writeFileSync(path.join(tmp, 'blank.html'), '<!doctype html><title>blank</title>')
    for (const [file, url] of [
      [shot, `file://${html}`],
      [blank, `file://${path.join(tmp, 'blank.html')}`],
    ] as const) {
      const r = browser(`--screenshot=${file}`, url)
      expect(r.status, r.stderr.slice(-2000)).toBe(0)
    }
    expect(pngSize(shot)).toEqual({ width: 1280, height: 2400 })
    expect(statSync(shot).size).toBeGreaterThan(10 * statSync(blank).size)
  }, 120_000)
})

// `livesim sweep` as a user meets it: the files it writes, a trial's digest against `livesim run` of
// the same point and seed, resume, maxFailedTrials, Ctrl-C, and `livesim validate` and
// `livesim compare` on its outputs.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { SweepResults } from '../../sim-runtime/sweep/summary.ts'
import { root } from '../helpers.ts'

const CLI = path.join(root, 'sim-runtime', 'cli', 'main.ts')
const tmp = mkdtempSync(path.join(tmpdir(), 'livesim-sweep-'))

function livesim(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp, timeout: 120_000 })
}

/** A two-host cluster: a closed-loop client on `a` calling a server on `b`; WORKERS and LATENCY are placeholders. */
const CLUSTER = `endTime: 50ms
    seed: 5
    network: { default: { latency: LATENCY } }
    hosts:
      - name: a
        replicas: 2
        components:
          - { name: c, model: { kind: Client, target: b/s, closedLoop: { users: 4, thinkTime: 1ms } } }
      - name: b
        components:
          - { name: s, model: { kind: Server, workers: WORKERS, service: { distribution: Exponential, mean: 500us } } }`

function sweepFile(name: string, opts: { workers?: string; extra?: string; endTime?: string } = {}): string {
  const file = path.join(tmp, `${name}.yaml`)
  const template = CLUSTER.replace('WORKERS', '1').replace('LATENCY', '100us').replace('endTime: 50ms', `endTime: ${opts.endTime ?? '50ms'}`)
  writeFileSync(
    file,
    `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata: { name: ${name} }
spec:
  template:
    ${template}
  parameters:
    - { name: workers, path: hosts.b.components.s.model.workers, values: ${opts.workers ?? '[1, 2]'} }
    - { name: latency, path: network.default.latency, values: [100us, 300us] }
  seeds: 2
  metrics:
    - { name: p99, component: a/c, field: latency.p99Ns, aggregate: Max }
    - { name: tput, component: a/c, field: throughputPerSec, aggregate: Sum }
    - { name: util, component: b-0/s, field: utilization }
  objective: { metric: p99, goal: Minimize }
${opts.extra ?? ''}`,
  )
  return file
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T
}

/** Every process below `pid`. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const line of spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).stdout.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number]
    children.set(pp, [...(children.get(pp) ?? []), p])
  }
  const all: number[] = []
  const walk = (p: number) => (children.get(p) ?? []).forEach((c) => (all.push(c), walk(c)))
  walk(pid)
  return all
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('livesim sweep', () => {
  const out = path.join(tmp, 'grid-out')
  let first: ReturnType<typeof livesim>
  beforeAll(() => {
    first = livesim('sweep', sweepFile('grid'), '--out', out, '--parallel', '2')
  }, 120_000)

  it('runs every trial and writes results.csv, results.json, each trial and report.html', () => {
    expect(first.stderr).toContain('grid: 4 points × 2 seeds = 8 trials, 2 at a time')
    expect(first.status, first.stderr).toBe(0)
    const csv = readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n')
    expect(csv[0]).toBe('trial,point,seed,workers,latency,p99,tput,util,status,digest')
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 5).join(','))).toEqual([
      'grid-p0-s0,0,5,1,100us',
      'grid-p0-s1,0,6,1,100us',
      'grid-p1-s0,1,5,1,300us',
      'grid-p1-s1,1,6,1,300us',
      'grid-p2-s0,2,5,2,100us',
      'grid-p2-s1,2,6,2,100us',
      'grid-p3-s0,3,5,2,300us',
      'grid-p3-s1,3,6,2,300us',
    ])
    for (const line of csv.slice(1)) expect(line).toMatch(/,Succeeded,sha256:[0-9a-f]{64}$/)
    const results = readJson<SweepResults>(path.join(out, 'results.json'))
    expect(results).toMatchObject({ kind: 'SimSweepResults', sweep: 'grid', phase: 'Succeeded', seeds: 2 })
    expect(results.points).toHaveLength(4)
    expect(results.best?.point).toBeDefined()
    expect(existsSync(path.join(out, 'report.html'))).toBe(true)
    expect(first.stdout).toContain('8 trials (0 reused from an earlier run, 0 failed)')
  })

  it("a trial's digest is the digest of `livesim run` of the same point and seed", () => {
    // Point 3 is workers=2, latency=300us; seed index 1 is seed 6. Built from the text, not from the sweep.
    const manual = path.join(tmp, 'grid-p3-s1.yaml')
    const spec = CLUSTER.replace('WORKERS', '2').replace('LATENCY', '300us').replace('seed: 5', 'seed: 6')
    writeFileSync(manual, `apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: grid-p3-s1 }\nspec:\n    ${spec}\n`)
    const run = livesim('run', manual, '--quiet', '--out', path.join(tmp, 'manual.json'))
    expect(run.status, run.stderr).toBe(0)
    const digest = readJson<{ digest: string }>(path.join(tmp, 'manual.json')).digest
    const trial = readJson<{ digest: string }>(path.join(out, 'trials', 'grid-p3-s1.json'))
    expect(trial.digest).toBe(digest)
    const row = readFileSync(path.join(out, 'results.csv'), 'utf8').split('\n').find((l) => l.startsWith('grid-p3-s1,'))
    expect(row?.endsWith(digest)).toBe(true)
    // The trial's own manifest, as the sweep wrote it, runs to the same digest too.
    const again = livesim('run', path.join(out, 'trials', 'grid-p3-s1.yaml'), '--quiet', '--out', path.join(tmp, 'again.json'))
    expect(again.status, again.stderr).toBe(0)
    expect(readJson<{ digest: string }>(path.join(tmp, 'again.json')).digest).toBe(digest)
  })

  it('resumes: trials with results and the same spec hash are reused, changed ones run again', () => {
    const kept = statSync(path.join(out, 'trials', 'grid-p0-s0.json')).mtimeMs
    const same = livesim('sweep', sweepFile('grid'), '--out', out)
    expect(same.status, same.stderr).toBe(0)
    expect(same.stdout).toContain('8 trials (8 reused from an earlier run, 0 failed)')
    expect(statSync(path.join(out, 'trials', 'grid-p0-s0.json')).mtimeMs).toBe(kept)
    // workers [1, 3]: points 0 and 1 (workers=1) are the same trials; points 2 and 3 change.
    const changed = livesim('sweep', sweepFile('grid', { workers: '[1, 3]' }), '--out', out)
    expect(changed.status, changed.stderr).toBe(0)
    expect(changed.stdout).toContain('8 trials (4 reused from an earlier run, 0 failed)')
    expect(readFileSync(path.join(out, 'trials', 'grid-p2-s0.yaml'), 'utf8')).toMatch(/workers: 3/)
  })

  it('stops starting trials past maxFailedTrials and exits 1 with the failures', () => {
    // A Custom component that throws when its parameter says so: the trials with fail=true fail.
    writeFileSync(path.join(tmp, 'flaky.mjs'), "export default function flaky(params) {\n  if (params.fail) throw new Error('flaky failed on purpose')\n  return { start() {}, onTimer() {}, onMessage() {}, results() { return {} } }\n}\n")
    const file = path.join(tmp, 'flaky.yaml')
    writeFileSync(
      file,
      readFileSync(sweepFile('flaky'), 'utf8')
        .replace("          - { name: s, model: { kind: Server", "          - { name: x, model: { kind: Custom, module: ./flaky.mjs, params: { fail: false } } }\n          - { name: s, model: { kind: Server")
        .replace('  parameters:\n', '  parameters:\n    - { name: fail, path: hosts.b.components.x.model.params.fail, values: [false, true] }\n'),
    )
    const r = livesim('sweep', file, '--out', path.join(tmp, 'flaky-out'), '--parallel', '1')
    expect(r.status).toBe(1)
    expect(r.stdout).toContain('failed: flaky-p4-s0: ')
    expect(r.stdout).toContain('flaky failed on purpose')
    expect(r.stdout).toContain('sweep failed: 1 trial failed, more than maxFailedTrials (0); no further trials were started')
    const results = readJson<SweepResults>(path.join(tmp, 'flaky-out', 'results.json'))
    expect(results.phase).toBe('Failed')
    expect(results.trials.map((t) => t.status)).toEqual([...Array<string>(8).fill('Succeeded'), 'Failed', ...Array<string>(7).fill('NotRun')])
  })

  it('Ctrl-C stops every trial: exit 130, no process left behind', async () => {
    const child = spawn(process.execPath, [CLI, 'sweep', sweepFile('long', { endTime: '10m' }), '--out', path.join(tmp, 'long-out'), '--parallel', '2'], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const started = path.join(tmp, 'long-out', 'trials', 'long-p0-s1.yaml')
    for (let i = 0; i < 300 && !existsSync(started); i++) await new Promise((r) => setTimeout(r, 100))
    expect(existsSync(started), 'the second trial never started').toBe(true)
    await new Promise((r) => setTimeout(r, 300))
    const below = descendants(child.pid!)
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
    child.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(stderr).toContain('interrupted; every trial was stopped')
    expect(existsSync(path.join(tmp, 'long-out', 'results.csv'))).toBe(false)
    expect(below.filter(alive)).toEqual([])
  }, 60_000)
})

describe('livesim validate and livesim compare', () => {
  it('validate accepts a SimSweep and refuses a bad one with its field path', () => {
    const ok = livesim('validate', path.join(root, 'examples', 'sweep-quickstart.yaml'))
    expect(ok.status).toBe(0)
    expect(ok.stdout).toContain('valid SimSweep sweep-quickstart (9 points × 3 seeds = 27 trials)')
    const bad = path.join(tmp, 'bad.yaml')
    writeFileSync(bad, readFileSync(sweepFile('bad'), 'utf8').replace('path: hosts.b.components.s.model.workers', 'path: hosts.bx.components.s.model.workers'))
    const r = livesim('validate', bad)
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('invalid SimSweep:\n  spec.parameters[0].path: no host group "bx" in template.hosts; groups are: a, b')
  })

  it('compare shows two trials side by side with the relative difference', () => {
    const trials = path.join(tmp, 'grid-out', 'trials')
    const a = path.join(trials, 'grid-p0-s0.json')
    const b = path.join(trials, 'grid-p1-s0.json')
    const r = livesim('compare', a, b)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('different digests')
    const rows = JSON.parse(livesim('compare', a, b, '--json').stdout) as { component: string; metric: string; a: number; b: number; relative: number }[]
    const p50 = rows.find((x) => x.component === 'a-0/c' && x.metric === 'p50 µs')!
    const ra = readJson<{ hosts: Record<string, { components: Record<string, { latency: { p50Ns: number } }> }> }>(a)
    const rb = readJson<{ hosts: Record<string, { components: Record<string, { latency: { p50Ns: number } }> }> }>(b)
    expect(p50.a).toBe(ra.hosts['a-0']!.components.c!.latency.p50Ns / 1000)
    expect(p50.relative).toBeCloseTo((rb.hosts['a-0']!.components.c!.latency.p50Ns - ra.hosts['a-0']!.components.c!.latency.p50Ns) / ra.hosts['a-0']!.components.c!.latency.p50Ns, 10)
    expect(rows.map((x) => x.metric)).toEqual(expect.arrayContaining(['p99 µs', 'throughput /s', 'errors', 'utilization']))
    const same = livesim('compare', a, a)
    expect(same.stdout).toContain('the same digest')
    const missing = livesim('compare', a, path.join(tmp, 'nope.json'))
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('nope.json: cannot read a results JSON: ENOENT')
  })
})

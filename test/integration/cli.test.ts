// The CLI as a user meets it: exit codes, the results file, and Ctrl-C stopping every child.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from '../helpers.ts'

const CLI = path.join(root, 'sim-runtime', 'cli', 'main.ts')
const tmp = mkdtempSync(path.join(tmpdir(), 'livesim-cli-'))

function livesim(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp, timeout: 60_000 })
}

/** A SimCluster of 10 ms with one host, `a`, carrying these components (YAML list items), written to tmp/NAME.yaml. */
function oneHost(name: string, components: string): string {
  const file = path.join(tmp, `${name}.yaml`)
  writeFileSync(file, `apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: ${name} }\nspec:\n  endTime: 10ms\n  hosts:\n    - name: a\n      components:\n${components}\n`)
  return file
}

function descendants(pid: number): number[] {
  const out = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).stdout
  const children = new Map<number, number[]>()
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number]
    children.set(pp, [...(children.get(pp) ?? []), p])
  }
  const all: number[] = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      all.push(c)
      walk(c)
    }
  }
  walk(pid)
  return all
}

describe('livesim run', () => {
  it('exits 0, prints the table and writes results JSON with the digest', () => {
    const out = path.join(tmp, 'r.json')
    const r = livesim('run', path.join(root, 'examples', 'sparse.yaml'), '--quiet', '--out', out)
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('sensor-0')
    expect(r.stdout).toContain('0 causality violations')
    const results = JSON.parse(readFileSync(out, 'utf8')) as { kind: string; digest: string }
    expect(results.kind).toBe('SimResults')
    expect(r.stdout).toContain(results.digest)
  })

  it('exits 1 with field-path errors on an invalid manifest, and 2 on a usage error', () => {
    const bad = path.join(tmp, 'bad.yaml')
    writeFileSync(bad, readFileSync(path.join(root, 'examples', 'quickstart.yaml'), 'utf8').replace('endTime: 2s', 'endTime: 0s'))
    const r = livesim('run', bad)
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('spec.endTime: must be greater than zero')
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(livesim('run', bad, '--partition', 'many').status).toBe(2)
    expect(livesim('frobnicate').status).toBe(2)
    expect(livesim('run', path.join(tmp, 'missing.yaml')).stderr).toContain('cannot read')
  })

  it('says a runtime\'s error once in plain words (and once in the leader\'s log), not again from the runtime process', () => {
    writeFileSync(path.join(tmp, 'broken.mjs'), "export default function broken() { throw new Error('the broken module refuses to start') }\n")
    const m = oneHost('broken', '        - name: x\n          model: { kind: Custom, module: ./broken.mjs }')
    const r = livesim('run', m, '--quiet', '--out', path.join(tmp, 'broken.json'))
    expect(r.status).toBe(1)
    const lines = r.stderr.split('\n').filter((l) => l.includes('the broken module refuses to start'))
    expect(lines.filter((l) => l.startsWith('livesim: run failed: runtime runtime-0 reported an error: '))).toHaveLength(1)
    expect(lines.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { role?: string }).role)).toEqual(['leader'])
    expect(lines).toHaveLength(2)
  })

  it('fails a model that loops at one instant of virtual time, naming its components, instead of hanging', () => {
    const m = oneHost(
      'instant',
      `        - name: c
          model: { kind: Client, target: a/s, closedLoop: { users: 1 } }
        - name: s
          model: { kind: Server, workers: 1, service: { distribution: Constant, mean: 0s } }`,
    )
    const r = livesim('run', m, '--quiet', '--out', path.join(tmp, 'instant.json'))
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/livesim: run failed: runtime runtime-0 reported an error: a-0: 10000000 events at virtual time 0ns without time advancing: a loop with no delay in it, through a-0\/[cs] .*, a-0\/[cs] .*; give it time/)
  })

  it('runs a cluster without live components in its own process, and Ctrl-C stops it with exit code 130', async () => {
    const long = path.join(tmp, 'long-embedded.yaml')
    writeFileSync(long, readFileSync(path.join(root, 'examples', 'quickstart.yaml'), 'utf8').replace('endTime: 2s', 'endTime: 10m'))
    const child = spawn(process.execPath, [CLI, 'run', long, '--out', path.join(tmp, 'long-embedded.json')], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    // Wait until the run is going: its progress lines come every 5 s off a TTY, its first at once.
    for (let i = 0; i < 100 && !stderr.includes('Running'); i++) await new Promise((r) => setTimeout(r, 100))
    expect(stderr).toContain('livesim: Running')
    expect(descendants(child.pid!)).toEqual([])
    child.kill('SIGINT')
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
    expect(code).toBe(130)
    expect(stderr).toContain('interrupted')
  }, 60_000)

  it('Ctrl-C stops the run and every runtime process, exit code 130', async () => {
    const long = path.join(tmp, 'long.yaml')
    writeFileSync(long, readFileSync(path.join(root, 'examples', 'quickstart.yaml'), 'utf8').replace('endTime: 2s', 'endTime: 10m'))
    const child = spawn(process.execPath, [CLI, 'run', long, '--partition', '3', '--out', path.join(tmp, 'long.json')], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    // Wait until the runtimes are up and the run is going.
    let runtimes: number[] = []
    for (let i = 0; i < 100 && runtimes.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100))
      runtimes = descendants(child.pid!)
    }
    expect(runtimes.length).toBe(3)
    await new Promise((r) => setTimeout(r, 500))
    child.kill('SIGINT')
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
    expect(code).toBe(130)
    expect(stderr).toContain('interrupted')
    await new Promise((r) => setTimeout(r, 300))
    for (const pid of runtimes) {
      expect(() => process.kill(pid, 0), `runtime ${pid} survived Ctrl-C`).toThrow()
    }
  }, 60_000)
})

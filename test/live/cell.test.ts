// Cells with real processes, in each mode: the modes this machine permits run (cgroup1 and cgroup2
// as root; cgroup2 also on a hybrid host without its controllers, where limits are reported, not
// applied; signals everywhere), the others are skipped with the reason in their name. And the
// detection's fallback order.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { availableCellModes, chooseCellMode, cpuList, createCell, detectCellMode, probeCgroup1, probeCgroup2, type Cell } from '../../sim-runtime/live/cell.ts'
import { releaseGate, spawnPlaced, spawnWithPrelude } from '../../sim-runtime/live/spawn.ts'
import { joinCgroup } from '../../sim-runtime/live/common.ts'
import { alive } from '../../sim-runtime/live/proc.ts'
import { baseEnv, cellModesHere, compilePrograms, processCpuNs, root, skipTitle, sleep, stillRunning, threadStates, waitFor, type Programs } from './helpers.ts'

const logDir = mkdtempSync(path.join(tmpdir(), 'livesim-cell-test-'))
let progs: Programs

beforeAll(() => {
  progs = compilePrograms()
}, 600_000)

afterAll(() => rmSync(logDir, { recursive: true, force: true }))

const v2 = probeCgroup2()
const signalsSkip = cellModesHere().find((m) => m.mode === 'signals')?.skip

/** uid 0 in the initial user namespace: the cgroup file systems are not denied to it. */
function realRoot(): boolean {
  if (process.getuid?.() !== 0) return false
  const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/)
  return map[0] === '0' && map[1] === '0'
}
const rootSkip = realRoot() ? undefined : `runs as uid ${process.getuid?.()}${process.getuid?.() === 0 ? ' in a user namespace' : ''}, not root`

function opts(name: string) {
  return { env: baseEnv(), cwd: logDir, logFile: path.join(logDir, `${name}.log`) }
}

describe('mode detection', () => {
  it('picks the strongest usable mode', async () => {
    const { mode, why } = await detectCellMode()
    const v1 = probeCgroup1()
    const expected = v2.usable && v2.limits ? 'cgroup2' : v1.usable ? 'cgroup1' : v2.usable ? 'cgroup2' : 'signals'
    expect(mode).toBe(expected)
    expect(why.length).toBeGreaterThan(10)
    if (mode !== 'cgroup2') expect(why).toMatch(/not cgroup2/)
    expect(await detectCellMode()).toBe(await detectCellMode()) // cached
    const available = availableCellModes()
    expect(available.map((m) => m.mode)).toEqual(['cgroup2', 'cgroup1', 'signals'])
    expect(available.find((m) => m.mode === mode)?.usable).toBe(true)
  })

  // What keeps the cgroup modes from being skipped where they can run (CI runs as root): a probe that
  // fails as root for want of permission is a bug here, not a machine without cgroups.
  it.skipIf(rootSkip !== undefined)(skipTitle('as root, no cgroup mode is refused for want of permission', rootSkip), () => {
    for (const m of availableCellModes()) {
      if (m.mode === 'signals') expect(m.usable, m.why).toBe(true)
      else expect(m.why).not.toMatch(/EACCES|EPERM/)
    }
  })

  it('falls back in the documented order', () => {
    const yes = { usable: true, limits: true, why: 'v2 ok' }
    const noLimits = { usable: true, limits: false, why: 'v2 without controllers' }
    const no = { usable: false, why: 'absent' }
    const v1 = { usable: true, why: 'v1 ok' }
    expect(chooseCellMode(yes, () => v1).mode).toBe('cgroup2')
    expect(chooseCellMode(noLimits, () => v1).mode).toBe('cgroup1')
    expect(chooseCellMode(no, () => v1).mode).toBe('cgroup1')
    expect(chooseCellMode(noLimits, () => no).mode).toBe('cgroup2')
    const s = chooseCellMode(no, () => no)
    expect(s.mode).toBe('signals')
    expect(s.why).toContain('absent')
  })

  it('formats CPU lists', () => {
    expect(cpuList([3, 0, 1, 2, 5, 5])).toBe('0-3,5')
    expect(cpuList([1])).toBe('1')
  })

  it('rejects bad options before touching the machine', async () => {
    await expect(createCell({ name: '../x', mode: 'signals' })).rejects.toThrow(/cell name/)
    await expect(createCell({ name: 'x', mode: 'signals', cpuQuota: 0 })).rejects.toThrow(/cpuQuota/)
    await expect(createCell({ name: 'x', mode: 'signals', cpus: [] })).rejects.toThrow(/cpus/)
  })
})

for (const { mode, skip } of cellModesHere()) describe.skipIf(skip !== undefined)(skipTitle(`${mode} cell`, skip), () => {
  const cells: Cell[] = []
  const make = async (name: string, extra: Partial<Parameters<typeof createCell>[0]> = {}) => {
    const c = await createCell({ name, mode, ...extra })
    cells.push(c)
    return c
  }
  afterAll(async () => {
    for (const c of cells) await c.destroy()
  })

  it('freezes every thread of a multi-threaded burner: no CPU time while frozen, CPU time again after thaw', async () => {
    const cell = await make('burn')
    expect(cell.mode).toBe(mode)
    const child = cell.spawn([progs.burn, '3'], opts(`${mode}-burn`))
    await waitFor(() => cell.cpuTimeNs() > 50e6, 10_000, 'the burner to use CPU')
    await cell.freeze()
    expect(cell.frozen).toBe(true)
    const pids = cell.pids()
    expect(pids).toContain(child.pid)
    if (mode === 'signals') expect(new Set(threadStates(pids))).toEqual(new Set(['T']))
    const a = cell.cpuTimeNs()
    const own = processCpuNs(child.pid as number)
    await sleep(500)
    const b = cell.cpuTimeNs()
    expect(Math.abs(b - a)).toBeLessThanOrEqual(1e6)
    expect(Math.abs(processCpuNs(child.pid as number) - own)).toBeLessThanOrEqual(1e6)
    await cell.thaw()
    expect(cell.frozen).toBe(false)
    await waitFor(() => cell.cpuTimeNs() - b > 20e6, 10_000, 'CPU time to rise after thaw')
    await cell.destroy()
    expect(stillRunning(pids)).toEqual([])
    for (const p of cell.paths) expect(existsSync(p)).toBe(false)
  })

  it('freezes the children a shell forks, and destroy() leaves no process and no cgroup behind', async () => {
    const cell = await make('fork')
    // The shell forks a burner in the background, then another one in the foreground.
    const child = cell.spawn(['sh', '-c', `${progs.burn} 2 & ${progs.burn} 1 & wait`], opts(`${mode}-fork`))
    await waitFor(() => cell.pids().length === 3, 10_000, 'the shell to fork two burners')
    const pids = cell.pids()
    expect(pids.length).toBe(3)
    expect(pids).toContain(child.pid)
    const burners = pids.filter((p) => p !== child.pid)
    await cell.freeze()
    const own = burners.map(processCpuNs)
    const a = cell.cpuTimeNs()
    await sleep(500)
    expect(Math.abs(cell.cpuTimeNs() - a)).toBeLessThanOrEqual(1e6)
    burners.forEach((p, i) => expect(Math.abs(processCpuNs(p) - (own[i] as number))).toBeLessThanOrEqual(1e6))
    await cell.thaw()
    await waitFor(() => burners.every((p, i) => processCpuNs(p) - (own[i] as number) > 1e6), 10_000, 'both burners to run again')
    for (const p of cell.paths) expect(existsSync(p)).toBe(true)
    await cell.destroy()
    await cell.destroy() // idempotent
    expect(stillRunning(pids)).toEqual([])
    expect(cell.pids()).toEqual([])
    for (const p of cell.paths) expect(existsSync(p)).toBe(false)
  })

  it('freezes and thaws 16 busy cells together, barrier after barrier: none gets CPU time while they are frozen', async () => {
    const many: Cell[] = []
    for (let i = 0; i < 16; i++) many.push(await make(`many-${i}`))
    many.forEach((c, i) => c.spawn([progs.burn, '1'], opts(`${mode}-many-${i}`)))
    const total = () => many.reduce((sum, c) => sum + c.cpuTimeNs(), 0)
    await waitFor(() => total() > 50e6, 10_000, 'the burners to run')
    for (let barrier = 0; barrier < 20; barrier++) {
      await Promise.all(many.map((c) => c.freeze()))
      expect(many.every((c) => c.frozen)).toBe(true)
      const frozenAt = many.map((c) => c.cpuTimeNs())
      await sleep(20)
      many.forEach((c, i) => expect(Math.abs(c.cpuTimeNs() - (frozenAt[i] as number)), `cell ${i}, barrier ${barrier}`).toBeLessThanOrEqual(1e6))
      await Promise.all(many.map((c) => c.thaw()))
      expect(many.some((c) => c.frozen)).toBe(false)
      await sleep(2)
    }
    const thawedAt = total()
    await waitFor(() => total() - thawedAt > 50e6, 10_000, 'the cells to run after the last thaw')
    const pids = many.flatMap((c) => c.pids())
    expect(pids.length).toBe(16)
    await Promise.all(many.map((c) => c.destroy()))
    expect(stillRunning(pids)).toEqual([])
  })

  it('destroys a frozen cell', async () => {
    const cell = await make('frozen-destroy')
    cell.spawn(['sh', '-c', `${progs.burn} 1 & sleep 1000`], opts(`${mode}-fd`))
    await waitFor(() => cell.pids().length === 3, 10_000, 'the shell to fork')
    await cell.freeze()
    const pids = cell.pids()
    expect(pids.length).toBe(3)
    await cell.destroy()
    expect(stillRunning(pids)).toEqual([])
  })

  it('starts a program spawned into a frozen cell only at thaw: nothing of the program runs before', async () => {
    const cell = await make('spawn-frozen')
    await cell.freeze()
    const marker = path.join(logDir, `${mode}-sf.ran`)
    const child = cell.spawn(['sh', '-c', `echo ran > ${marker}; exec ${progs.burn} 1`], opts(`${mode}-sf`))
    await sleep(300)
    // Only the shell prelude may have run (cgroup: until it joined; signals: until its gate).
    expect(existsSync(marker)).toBe(false)
    expect(cell.cpuTimeNs()).toBeLessThan(30e6)
    expect(cell.pids()).toContain(child.pid)
    await cell.thaw()
    await waitFor(() => existsSync(marker), 10_000, 'the program to start after thaw')
    await waitFor(() => cell.cpuTimeNs() > 50e6, 10_000, 'the program to run after thaw')
    await cell.destroy()
  })

  it('refuses a second cell with the same name in this runtime', async () => {
    await make('twin')
    await expect(createCell({ name: 'twin', mode })).rejects.toThrow(/already exists/)
  })

  it('applies or reports limits', async () => {
    const cell = await make('limits', { cpus: [0], cpuQuota: 0.5, memoryBytes: 256 * 1024 * 1024 })
    if (mode === 'cgroup1') {
      expect(cell.warnings).toEqual([])
      const dir = (ctl: string) => cell.paths.find((p) => p.includes(`/${ctl}/`)) as string
      expect(readFileSync(path.join(dir('cpuset'), 'cpuset.cpus'), 'utf8').trim()).toBe('0')
      expect(readFileSync(path.join(dir('cpu'), 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000')
      expect(readFileSync(path.join(dir('memory'), 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(256 * 1024 * 1024))
      // The quota holds: 2 spinning threads get about half a core.
      cell.spawn([progs.burn, '2'], opts(`${mode}-limits`))
      const a = cell.cpuTimeNs()
      await sleep(1000)
      const used = (cell.cpuTimeNs() - a) / 1e9
      // At most half a core (plus one period of slack); more than nothing even on a loaded machine.
      expect(used).toBeGreaterThan(0.02)
      expect(used).toBeLessThan(0.6)
    } else if (mode === 'signals') {
      expect(cell.warnings.join('\n')).toMatch(/cpuQuota 0.5 not applied/)
      expect(cell.warnings.join('\n')).toMatch(/RLIMIT_AS/)
      const child = cell.spawn(['sh', '-c', 'grep Cpus_allowed_list /proc/self/status; ulimit -v'], opts(`${mode}-limits`))
      await new Promise((resolve) => child.on('exit', resolve))
      const log = readFileSync(path.join(logDir, `${mode}-limits.log`), 'utf8')
      expect(log).toMatch(/Cpus_allowed_list:\s+0\n/)
      expect(log).toContain(String(256 * 1024))
    } else {
      // cgroup2 on a hybrid host: the controllers are not there, and the cell says so.
      if (!v2.limits) expect(cell.warnings.length).toBe(3)
    }
  })

  it('cleans up the cells of a runtime that died without destroying them', async () => {
    // A runtime (a separate Node process) creates a cell with a sleeping program and is SIGKILLed.
    const script = path.join(logDir, `${mode}-stale.ts`)
    writeFileSync(
      script,
      `import { createCell } from ${JSON.stringify(path.join(root, 'sim-runtime/live/cell.ts'))}
const cell = await createCell({ name: 'stale', mode: ${JSON.stringify(mode)} })
const child = cell.spawn(['sleep', '1000'], { env: { PATH: process.env.PATH }, cwd: '/', logFile: ${JSON.stringify(path.join(logDir, 'stale.log'))} })
console.log(JSON.stringify({ pid: child.pid, paths: cell.paths }))
setInterval(() => {}, 1000)
`,
    )
    const runtime = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const line = await new Promise<string>((resolve, reject) => {
      let buf = ''
      runtime.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        if (buf.includes('\n')) resolve(buf.split('\n')[0] as string)
      })
      runtime.on('exit', (code) => reject(new Error(`runtime exited ${code}`)))
    })
    const { pid, paths } = JSON.parse(line) as { pid: number; paths: string[] }
    runtime.kill('SIGKILL')
    await new Promise((resolve) => runtime.on('exit', resolve))
    expect(stillRunning([pid])).toEqual([pid])
    for (const p of paths) expect(existsSync(p)).toBe(true)
    // The next runtime's first cell of that mode cleans up.
    writeFileSync(
      script,
      `import { createCell } from ${JSON.stringify(path.join(root, 'sim-runtime/live/cell.ts'))}
const cell = await createCell({ name: 'next', mode: ${JSON.stringify(mode)} })
await cell.destroy()
`,
    )
    const next = spawn(process.execPath, [script], { stdio: 'inherit' })
    expect(await new Promise((resolve) => next.on('exit', resolve))).toBe(0)
    expect(stillRunning([pid])).toEqual([])
    for (const p of paths) expect(existsSync(p)).toBe(false)
  })
})

describe('spawnWithPrelude and its gate', () => {
  it('runs the prelude, then waits for releaseGate() before the exec; the program gets no fd 3', async () => {
    const dir = mkdtempSync(path.join(logDir, 'gate-'))
    const marker = path.join(dir, 'ran')
    const fds = path.join(dir, 'fds')
    const child = spawnWithPrelude(['sh', '-c', `ls /proc/$$/fd > ${fds}; echo ran > ${marker}`], opts('gate'), [`echo prelude > ${path.join(dir, 'prelude')}`])
    await waitFor(() => existsSync(path.join(dir, 'prelude')), 10_000, 'the prelude')
    await sleep(200)
    expect(existsSync(marker)).toBe(false)
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    releaseGate(child)
    expect(await exited).toBe(0)
    expect(readFileSync(marker, 'utf8')).toBe('ran\n')
    expect(readFileSync(fds, 'utf8').split('\n')).not.toContain('3')
  })

  it('spawnPlaced: a process that cannot be put into its cell is killed before its program runs, and the error names the cell', async () => {
    const marker = path.join(logDir, 'unplaced.ran')
    let pid = 0
    expect(() =>
      spawnPlaced(['sh', '-c', `echo ran > ${marker}`], opts('unplaced'), [], (p) => {
        pid = p
        joinCgroup('nowhere', path.join(logDir, 'no-such-cgroup'), p)
      }),
    ).toThrow(/^cell nowhere: cannot move process \d+ into .*no-such-cgroup: ENOENT/)
    await waitFor(() => !alive(pid), 10_000, 'the unplaced process to die')
    await sleep(100)
    expect(existsSync(marker)).toBe(false)
  })

  it('exits with 126, without running the program, when the gate closes unreleased', async () => {
    const marker = path.join(logDir, 'gate-closed.ran')
    const child = spawnWithPrelude(['sh', '-c', `echo ran > ${marker}`], opts('gate-closed'), [])
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    ;(child.stdio[3] as Writable).destroy()
    expect(await exited).toBe(126)
    expect(existsSync(marker)).toBe(false)
  })
})

describe.skipIf(signalsSkip !== undefined)(skipTitle('signals cell, escapes', signalsSkip), () => {
  it('reports and kills a child that escaped the process group with setsid', async () => {
    const cell = await createCell({ name: 'escape', mode: 'signals' })
    cell.spawn(['sh', '-c', `setsid ${progs.burn} 1 & sleep 1000`], opts('signals-escape'))
    await waitFor(() => cell.pids().length === 2, 10_000, 'the shell to fork')
    await sleep(100)
    await cell.freeze()
    expect(cell.warnings.join('\n')).toMatch(/left the cell's process group/)
    const escaped = Number(/process (\d+)/.exec(cell.warnings.join('\n'))?.[1])
    expect(stillRunning([escaped])).toEqual([escaped])
    await cell.thaw()
    await cell.destroy()
    expect(stillRunning([escaped])).toEqual([])
  })
})

// cgroup v1 cells: one directory per used hierarchy at <own cgroup>/livesim/<pid>.<start>/<name>.
// freezer (pause), cpuacct (CPU time) always; cpu (cfs quota), cpuset (CPUs) and memory only when the
// cell asks for that limit. Tasks cannot leave a v1 cgroup by themselves (only a privileged writer of
// cgroup.procs can move them), so forked children stay in the cell.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import type { Cell, CellOptions, ModeProbe } from './cell.ts'
import { cpuList, entries, errorText, isStaleRuntime, joinCgroup, LIVESIM_DIR, probeDenial, removeDir, runtimeDirName } from './common.ts'
import { cgroupDir, mounts, openKernelFile, pollUntil, readPidList, readText, selfCgroups, sendSignal, writeText, type KernelFile } from './proc.ts'
import { spawnPlaced, type SpawnOptions } from './spawn.ts'

const CONTROLLERS = ['freezer', 'cpuacct', 'cpu', 'cpuset', 'memory', 'pids'] as const
type Controller = (typeof CONTROLLERS)[number]

/** Our own cgroup directory in each mounted v1 hierarchy, by controller. */
function hierarchies(): Map<Controller, string> {
  const own = selfCgroups()
  const out = new Map<Controller, string>()
  for (const m of mounts()) {
    if (m.fsType !== 'cgroup') continue
    for (const c of CONTROLLERS) {
      if (!m.superOptions.includes(c) || out.has(c)) continue
      const dir = cgroupDir(m, own.get(c) ?? '/')
      if (dir) out.set(c, dir)
    }
  }
  return out
}

export function probeCgroup1(): ModeProbe {
  const h = hierarchies()
  const freezer = h.get('freezer')
  const cpuacct = h.get('cpuacct')
  if (!freezer || !cpuacct) return { usable: false, why: `no cgroup v1 ${!freezer ? 'freezer' : 'cpuacct'} hierarchy mounted` }
  const probe = path.join(LIVESIM_DIR, `.probe-${process.pid}`)
  const made: string[] = []
  try {
    for (const base of new Set([freezer, cpuacct])) {
      const dir = path.join(base, probe)
      mkdirSync(dir, { recursive: true })
      made.push(dir)
    }
    writeText(path.join(freezer, probe, 'freezer.state'), 'THAWED')
    if (readText(path.join(cpuacct, probe, 'cpuacct.usage')) === undefined) return { usable: false, why: `cannot read cpuacct.usage under ${cpuacct}` }
    const extra = (['cpu', 'cpuset', 'memory'] as const).filter((c) => !h.has(c))
    return {
      usable: true,
      why: `cgroup v1 freezer and cpuacct writable under ${freezer}${extra.length ? `; no ${extra.join(', ')} hierarchy, so those limits are not available` : ''}`,
    }
  } catch (e) {
    return { usable: false, why: `cgroup v1 freezer/cpuacct under ${freezer} not writable (${probeDenial(e)})` }
  } finally {
    for (const dir of made.reverse()) void removeDir(dir, 0)
  }
}

let staleCleaned: Promise<void> | undefined

/**
 * An empty cgroup of this runtime kept FROZEN while any of its cgroup1 cells lives. The v1 freezer
 * flips a kernel static key (freezer_active) when the first cgroup of the machine starts freezing and
 * when the last one thaws; flipping it patches kernel text, ~150 µs per freeze and per thaw here. With
 * one cgroup always frozen the key stays on: freeze writes took 20 µs instead of 200, thaws 4 µs
 * instead of 130. Names of cells cannot start with a dot, so it cannot collide with one.
 */
const KEEP_FROZEN = '.keep-frozen'
let liveCells = 0

/** Remove the cells of runtimes that are no longer running (their processes are killed first). */
async function cleanStale(h: Map<Controller, string>): Promise<void> {
  const bases = [...new Set(h.values())].map((d) => path.join(d, LIVESIM_DIR))
  const freezerBase = h.get('freezer') ? path.join(h.get('freezer') as string, LIVESIM_DIR) : undefined
  for (const base of bases) {
    for (const rt of entries(base)) {
      if (!isStaleRuntime(rt)) continue
      for (const cell of entries(path.join(base, rt))) {
        const freezerDir = freezerBase ? path.join(freezerBase, rt, cell) : undefined
        await killAll(path.join(base, rt, cell), freezerDir, 5000).catch(() => undefined)
        await removeDir(path.join(base, rt, cell))
      }
      await removeDir(path.join(base, rt))
    }
  }
}

/**
 * Kill every process of a cgroup: freeze so nothing forks, SIGKILL each, thaw so the kills land,
 * repeat until the cgroup is empty.
 */
async function killAll(dir: string, freezerDir: string | undefined, timeoutMs: number): Promise<void> {
  const procs = path.join(dir, 'cgroup.procs')
  if (!existsSync(procs)) return
  const freezerState = freezerDir ? path.join(freezerDir, 'freezer.state') : undefined
  if (freezerState && existsSync(freezerState)) {
    try {
      writeText(freezerState, 'FROZEN')
      await pollUntil(() => readText(freezerState)?.trim() === 'FROZEN', 1000, () => 'freeze before kill timed out')
    } catch {
      // Kill anyway: a task stuck in uninterruptible sleep must not block the clean-up.
    }
  }
  for (const pid of readPidList(procs)) sendSignal(pid, 'SIGKILL')
  if (freezerState && existsSync(freezerState)) writeText(freezerState, 'THAWED')
  await pollUntil(
    () => {
      const left = readPidList(procs)
      for (const pid of left) sendSignal(pid, 'SIGKILL')
      return left.length === 0
    },
    timeoutMs,
    () => `processes still in ${dir} after SIGKILL: ${readPidList(procs).join(' ')}`,
  )
}

export async function createCgroup1Cell(opts: CellOptions): Promise<Cell> {
  const h = hierarchies()
  const freezer = h.get('freezer')
  const cpuacct = h.get('cpuacct')
  if (!freezer || !cpuacct) throw new Error(`cell ${opts.name}: cgroup1 mode needs the freezer and cpuacct hierarchies (${probeCgroup1().why})`)
  staleCleaned ??= cleanStale(h)
  await staleCleaned

  const { wanted, warnings } = wantedControllers(h, opts)
  const rel = path.join(LIVESIM_DIR, runtimeDirName(), opts.name)
  const dirOf = (c: Controller) => path.join(h.get(c) as string, rel)
  await makeCellDirs(opts, h, wanted, rel)

  const freezerDir = dirOf('freezer')
  const keepDir = path.join(path.dirname(freezerDir), KEEP_FROZEN)
  try {
    mkdirSync(keepDir, { recursive: true })
    writeText(path.join(keepDir, 'freezer.state'), 'FROZEN')
  } catch {
    // only an optimisation
  }
  liveCells++
  return new Cgroup1Cell(opts.name, warnings, [...new Set([...wanted].map(dirOf))], freezerDir, dirOf('cpuacct'), keepDir)
}

/** The hierarchies a cell uses: freezer and cpuacct, and those of the limits it asks for, if mounted (else a warning). */
function wantedControllers(h: Map<Controller, string>, opts: CellOptions): { wanted: Set<Controller>; warnings: string[] } {
  const warnings: string[] = []
  const wanted = new Set<Controller>(['freezer', 'cpuacct'])
  const limit = (c: Controller, what: string) => {
    if (h.has(c)) wanted.add(c)
    else warnings.push(`${what} not applied: no cgroup v1 ${c} hierarchy`)
  }
  if (opts.cpuQuota !== undefined) limit('cpu', `cpuQuota ${opts.cpuQuota}`)
  if (opts.cpus !== undefined) limit('cpuset', `cpus ${cpuList(opts.cpus)}`)
  if (opts.memoryBytes !== undefined) limit('memory', `memoryBytes ${opts.memoryBytes}`)
  return { wanted, warnings }
}

/** The cell's directory `rel` in every wanted hierarchy, with its limits; on failure the directories made are removed. */
async function makeCellDirs(opts: CellOptions, h: Map<Controller, string>, wanted: Set<Controller>, rel: string): Promise<void> {
  const dirOf = (c: Controller) => path.join(h.get(c) as string, rel)
  const created: string[] = []
  try {
    for (const c of wanted) makeLevels(opts.name, c, h.get(c) as string, rel, created)
    if (wanted.has('cpu') && opts.cpuQuota !== undefined) {
      const period = 100_000
      writeText(path.join(dirOf('cpu'), 'cpu.cfs_period_us'), String(period))
      writeText(path.join(dirOf('cpu'), 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(opts.cpuQuota * period))))
    }
    if (wanted.has('cpuset') && opts.cpus !== undefined) writeText(path.join(dirOf('cpuset'), 'cpuset.cpus'), cpuList(opts.cpus))
    if (wanted.has('memory') && opts.memoryBytes !== undefined) writeText(path.join(dirOf('memory'), 'memory.limit_in_bytes'), String(opts.memoryBytes))
  } catch (e) {
    for (const dir of created) await removeDir(dir, 0)
    throw new Error(`cell ${opts.name}: cannot set up cgroup v1 directories: ${errorText(e)}`, { cause: e })
  }
}

/** `base`/`rel`, level by level; the cell's own directory (the last level) goes into `created`, and must not exist already. */
function makeLevels(name: string, c: Controller, base: string, rel: string, created: string[]): void {
  const target = path.join(base, rel)
  // Create level by level: a new cpuset cgroup starts with no CPUs and no memory nodes, and
  // takes no task until both are set; copy them from the parent for the intermediate levels.
  let dir = base
  for (const part of rel.split('/')) {
    const parent = dir
    dir = path.join(dir, part)
    if (existsSync(dir)) {
      if (dir === target && !created.includes(dir)) throw new Error(`a live cell named ${name} already exists in this runtime (${dir})`)
      continue
    }
    mkdirSync(dir)
    if (dir === target) created.push(dir)
    if (c === 'cpuset') {
      writeText(path.join(dir, 'cpuset.mems'), readText(path.join(parent, 'cpuset.mems'))?.trim() ?? '0')
      writeText(path.join(dir, 'cpuset.cpus'), readText(path.join(parent, 'cpuset.cpus'))?.trim() ?? '0')
    }
  }
}

class Cgroup1Cell implements Cell {
  readonly mode = 'cgroup1' as const
  readonly name: string
  readonly warnings: string[]
  readonly paths: string[]
  private readonly freezerDir: string
  private readonly keepDir: string
  private readonly procsFile: string
  private readonly state: KernelFile
  private readonly usage: KernelFile
  private isFrozen = false
  private lastUsage = 0
  private destroyed: Promise<void> | undefined

  constructor(name: string, warnings: string[], dirs: string[], freezerDir: string, cpuacctDir: string, keepDir: string) {
    this.name = name
    this.warnings = warnings
    this.paths = dirs
    this.freezerDir = freezerDir
    this.keepDir = keepDir
    this.state = openKernelFile(path.join(freezerDir, 'freezer.state'), true)
    this.usage = openKernelFile(path.join(cpuacctDir, 'cpuacct.usage'), false)
    this.procsFile = path.join(freezerDir, 'cgroup.procs')
  }

  get frozen(): boolean {
    return this.isFrozen
  }

  spawn(command: string[], sopts: SpawnOptions): ChildProcess {
    if (this.destroyed) throw new Error(`cell ${this.name} is destroyed`)
    // Into every hierarchy before the exec, the freezer first (joining a frozen freezer cgroup
    // freezes the newcomer); when spawn() returns, the process is in the cell.
    return spawnPlaced(command, sopts, [], (pid) => {
      for (const d of this.paths) joinCgroup(this.name, d, pid)
    })
  }

  async freeze(): Promise<void> {
    if (this.destroyed) return
    this.state.write('FROZEN')
    this.isFrozen = true
    // Reading freezer.state re-checks the tasks: FREEZING until every one is in the refrigerator.
    await pollUntil(
      () => this.state.read() === 'FROZEN\n',
      10_000,
      () => `cell ${this.name}: freezer still ${this.state.read()?.trim()} after 10 s (a task in uninterruptible sleep?)`,
    )
  }

  async thaw(): Promise<void> {
    if (this.destroyed) return
    this.state.write('THAWED')
    this.isFrozen = false
    await pollUntil(() => this.state.read() === 'THAWED\n', 10_000, () => `cell ${this.name}: freezer did not thaw`)
  }

  cpuTimeNs(): number {
    const text = this.usage.read()
    if (text !== undefined) this.lastUsage = Number(text)
    return this.lastUsage
  }

  pids(): number[] {
    return readPidList(this.procsFile)
  }

  destroy(): Promise<void> {
    this.destroyed ??= this.teardown()
    return this.destroyed
  }

  private async teardown(): Promise<void> {
    this.cpuTimeNs()
    this.state.close()
    this.usage.close()
    await killAll(this.freezerDir, this.freezerDir, 10_000)
    this.isFrozen = false
    if (--liveCells === 0) {
      try {
        writeText(path.join(this.keepDir, 'freezer.state'), 'THAWED')
      } catch {
        // gone already
      }
      await removeDir(this.keepDir, 0)
    }
    for (const d of this.paths) {
      // Other hierarchies hold the same processes; they are gone now, but wait until each is empty.
      await pollUntil(() => readPidList(path.join(d, 'cgroup.procs')).length === 0, 5000, () => `${d} not empty`).catch(() => undefined)
      if (!(await removeDir(d))) throw new Error(`cell ${this.name}: cannot remove ${d}: ${readdirSync(d).length} entries, procs ${readPidList(path.join(d, 'cgroup.procs')).join(' ')}`)
      await removeDir(path.dirname(d), 0) // the runtime's directory, once its last cell is gone
    }
  }
}

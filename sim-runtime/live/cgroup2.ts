// cgroup v2 cells: <own cgroup>/livesim/<pid>.<start>/<name> in the unified hierarchy.
// cgroup.freeze + cgroup.events (pause), cpu.stat usage_usec (CPU time, core file, no controller
// needed), cgroup.kill (teardown, kernel ≥ 5.14; freeze + SIGKILL otherwise), and, when the cpu,
// cpuset and memory controllers can be delegated down to the cell, cpu.max, cpuset.cpus and
// memory.max. Processes cannot leave a cgroup without write access to another one's cgroup.procs,
// so forked children stay in the cell.
//
// Controllers: "no internal processes" means a cgroup with processes of its own cannot enable
// controllers for its children (EBUSY), unless it is the root. When the runtime's own cgroup holds
// processes (its own, usually), limits are not applied and the cell says so in `warnings`; pause,
// CPU time and teardown work all the same. A hybrid host (v1 controllers plus a v2 mount without
// controllers, e.g. /sys/fs/cgroup/unified) is such a case: detection prefers cgroup1 there.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import type { Cell, CellOptions, ModeProbe } from './cell.ts'
import { cpuList, entries, errorText, isStaleRuntime, joinCgroup, LIVESIM_DIR, probeDenial, removeDir, runtimeDirName } from './common.ts'
import { cgroupDir, mounts, openKernelFile, pollUntil, readPidList, readText, selfCgroups, sendSignal, writeText, type KernelFile } from './proc.ts'
import { spawnPlaced, type SpawnOptions } from './spawn.ts'

/** Our own cgroup directory in the v2 hierarchy, or undefined (no v2 mount, or our cgroup is not visible in it). */
function ownDir(): string | undefined {
  const own = selfCgroups().get('')
  if (own === undefined) return undefined
  // Prefer the mount at /sys/fs/cgroup (unified), else any cgroup2 mount (hybrid).
  const candidates = mounts()
    .filter((m) => m.fsType === 'cgroup2')
    .sort((a, b) => Number(b.mountPoint === '/sys/fs/cgroup') - Number(a.mountPoint === '/sys/fs/cgroup'))
  for (const m of candidates) {
    const dir = cgroupDir(m, own)
    if (dir && existsSync(path.join(dir, 'cgroup.procs'))) return dir
  }
  return undefined
}

function events(dir: string): Map<string, string> {
  return parseEvents(readText(path.join(dir, 'cgroup.events')) ?? '')
}

function parseEvents(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ')
    if (sp > 0) out.set(line.slice(0, sp), line.slice(sp + 1))
  }
  return out
}

const LIMIT_CONTROLLERS = ['cpu', 'cpuset', 'memory'] as const

export function probeCgroup2(): ModeProbe {
  const own = ownDir()
  if (!own) return { usable: false, why: 'no cgroup2 hierarchy mounted (or our cgroup is not visible in it)' }
  const probe = path.join(own, LIVESIM_DIR, `.probe-${process.pid}`)
  try {
    mkdirSync(probe, { recursive: true })
    if (!existsSync(path.join(probe, 'cgroup.freeze'))) return { usable: false, why: `no cgroup.freeze under ${own} (kernel < 5.2)` }
    writeText(path.join(probe, 'cgroup.freeze'), '0')
    if (!events(probe).has('frozen')) return { usable: false, why: `cgroup.events under ${own} has no "frozen" key` }
    const available = (readText(path.join(own, 'cgroup.controllers')) ?? '').trim().split(/\s+/)
    const missing = LIMIT_CONTROLLERS.filter((c) => !available.includes(c))
    if (missing.length > 0) {
      return {
        usable: true,
        limits: false,
        why: `cgroup2 at ${own} freezes, but the ${missing.join(', ')} controller${missing.length > 1 ? 's are' : ' is'} not available there (hybrid or undelegated hierarchy), so limits cannot be applied`,
      }
    }
    return { usable: true, limits: true, why: `cgroup2 at ${own}: cgroup.freeze writable, controllers ${available.join(' ')}` }
  } catch (e) {
    return { usable: false, why: `cgroup2 at ${own} not writable (${probeDenial(e)})` }
  } finally {
    void removeDir(probe, 0)
  }
}

let staleCleaned: Promise<void> | undefined

async function cleanStale(base: string): Promise<void> {
  for (const rt of entries(base)) {
    if (!isStaleRuntime(rt)) continue
    for (const cell of entries(path.join(base, rt))) {
      await killAll(path.join(base, rt, cell), 5000).catch(() => undefined)
      await removeDir(path.join(base, rt, cell))
    }
    await removeDir(path.join(base, rt))
  }
}

/** Every pid in a cgroup and the cgroups below it (a program may create sub-cgroups if delegated). */
function treePids(dir: string): number[] {
  const out = readPidList(path.join(dir, 'cgroup.procs'))
  for (const sub of entries(dir)) out.push(...treePids(path.join(dir, sub)))
  return out
}

async function killAll(dir: string, timeoutMs: number): Promise<void> {
  if (!existsSync(path.join(dir, 'cgroup.procs'))) return
  const killFile = path.join(dir, 'cgroup.kill')
  if (existsSync(killFile)) {
    // Kills every process of the subtree, frozen or not, and races with forks correctly.
    writeText(killFile, '1')
  } else {
    writeText(path.join(dir, 'cgroup.freeze'), '1')
    await pollUntil(() => events(dir).get('frozen') === '1', 1000, () => 'freeze before kill timed out').catch(() => undefined)
    for (const pid of treePids(dir)) sendSignal(pid, 'SIGKILL')
    // SIGKILL wakes frozen v2 tasks, thawing is not needed; do it anyway for older kernels.
    writeText(path.join(dir, 'cgroup.freeze'), '0')
  }
  await pollUntil(
    () => {
      if (events(dir).get('populated') === '0') return true
      for (const pid of treePids(dir)) sendSignal(pid, 'SIGKILL')
      return false
    },
    timeoutMs,
    () => `processes still in ${dir} after SIGKILL: ${treePids(dir).join(' ')}`,
  )
  // Sub-cgroups a program created.
  const removeTree = async (d: string) => {
    for (const sub of entries(d)) {
      await removeTree(path.join(d, sub))
      await removeDir(path.join(d, sub))
    }
  }
  await removeTree(dir)
}

export async function createCgroup2Cell(opts: CellOptions): Promise<Cell> {
  const own = ownDir()
  if (!own) throw new Error(`cell ${opts.name}: cgroup2 mode needs a cgroup2 hierarchy (${probeCgroup2().why})`)
  const base = path.join(own, LIVESIM_DIR)
  staleCleaned ??= cleanStale(base)
  await staleCleaned

  const rtDir = path.join(base, runtimeDirName())
  const dir = path.join(rtDir, opts.name)
  if (existsSync(dir)) throw new Error(`a live cell named ${opts.name} already exists in this runtime (${dir})`)
  const warnings: string[] = []
  try {
    mkdirSync(dir, { recursive: true })
  } catch (e) {
    throw new Error(`cell ${opts.name}: cannot create ${dir}: ${errorText(e)}`, { cause: e })
  }
  applyLimits(opts, own, base, dir, warnings)
  return new Cgroup2Cell(opts.name, warnings, dir)
}

/** Limits: enable each needed controller from our own cgroup down to the runtime's directory, then write the cell's; what cannot be applied goes into `warnings`. */
function applyLimits(opts: CellOptions, own: string, base: string, dir: string, warnings: string[]): void {
  const rtDir = path.dirname(dir)
  const needed: { controller: (typeof LIMIT_CONTROLLERS)[number]; what: string; apply: () => void }[] = []
  if (opts.cpuQuota !== undefined) {
    const quota = opts.cpuQuota
    needed.push({
      controller: 'cpu',
      what: `cpuQuota ${quota}`,
      apply: () => writeText(path.join(dir, 'cpu.max'), `${Math.max(1000, Math.round(quota * 100_000))} 100000`),
    })
  }
  if (opts.cpus !== undefined) {
    const list = cpuList(opts.cpus)
    needed.push({ controller: 'cpuset', what: `cpus ${list}`, apply: () => writeText(path.join(dir, 'cpuset.cpus'), list) })
  }
  if (opts.memoryBytes !== undefined) {
    const bytes = opts.memoryBytes
    needed.push({ controller: 'memory', what: `memoryBytes ${bytes}`, apply: () => writeText(path.join(dir, 'memory.max'), String(bytes)) })
  }
  const available = (readText(path.join(own, 'cgroup.controllers')) ?? '').trim().split(/\s+/)
  for (const n of needed) {
    if (!available.includes(n.controller)) {
      warnings.push(`${n.what} not applied: the cgroup2 ${n.controller} controller is not available in ${own} (hybrid or undelegated hierarchy)`)
      continue
    }
    try {
      for (const d of [own, base, rtDir]) {
        const current = (readText(path.join(d, 'cgroup.subtree_control')) ?? '').split(/\s+/)
        if (!current.includes(n.controller)) writeText(path.join(d, 'cgroup.subtree_control'), `+${n.controller}`)
      }
      n.apply()
    } catch (e) {
      warnings.push(`${n.what} not applied: cannot enable the cgroup2 ${n.controller} controller down to ${rtDir} (${errorText(e)})`)
    }
  }
}

class Cgroup2Cell implements Cell {
  readonly mode = 'cgroup2' as const
  readonly name: string
  readonly warnings: string[]
  readonly paths: string[]
  private readonly dir: string
  private readonly freezeFile: KernelFile
  private readonly eventsFile: KernelFile
  private readonly statFile: KernelFile
  private isFrozen = false
  private lastUsage = 0
  private destroyed: Promise<void> | undefined

  constructor(name: string, warnings: string[], dir: string) {
    this.name = name
    this.warnings = warnings
    this.paths = [dir]
    this.dir = dir
    this.freezeFile = openKernelFile(path.join(dir, 'cgroup.freeze'), true)
    this.eventsFile = openKernelFile(path.join(dir, 'cgroup.events'), false)
    this.statFile = openKernelFile(path.join(dir, 'cpu.stat'), false)
  }

  get frozen(): boolean {
    return this.isFrozen
  }

  spawn(command: string[], sopts: SpawnOptions): ChildProcess {
    if (this.destroyed) throw new Error(`cell ${this.name} is destroyed`)
    return spawnPlaced(command, sopts, [], (pid) => joinCgroup(this.name, this.dir, pid))
  }

  async freeze(): Promise<void> {
    if (this.destroyed) return
    this.freezeFile.write('1')
    this.isFrozen = true
    await pollUntil(() => this.frozenNow() === '1', 10_000, () => `cell ${this.name}: cgroup.events not frozen after 10 s`)
  }

  async thaw(): Promise<void> {
    if (this.destroyed) return
    this.freezeFile.write('0')
    this.isFrozen = false
    await pollUntil(() => this.frozenNow() === '0', 10_000, () => `cell ${this.name}: cgroup.events still frozen after thaw`)
  }

  cpuTimeNs(): number {
    const text = this.statFile.read()
    const m = text ? /^usage_usec (\d+)$/m.exec(text) : null
    if (m) this.lastUsage = Number(m[1]) * 1000
    return this.lastUsage
  }

  pids(): number[] {
    return existsSync(this.dir) ? treePids(this.dir) : []
  }

  destroy(): Promise<void> {
    this.destroyed ??= this.teardown()
    return this.destroyed
  }

  private frozenNow(): string | undefined {
    return parseEvents(this.eventsFile.read() ?? '').get('frozen')
  }

  private async teardown(): Promise<void> {
    this.cpuTimeNs()
    for (const f of [this.freezeFile, this.eventsFile, this.statFile]) f.close()
    await killAll(this.dir, 10_000)
    this.isFrozen = false
    if (!(await removeDir(this.dir))) throw new Error(`cell ${this.name}: cannot remove ${this.dir}`)
    await removeDir(path.dirname(this.dir), 0)
  }
}

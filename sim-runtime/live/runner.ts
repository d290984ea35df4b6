// Live components in a sim-runtime: one cell and one virtual clock per host that runs live
// programs, the programs themselves, and the simulation-aware network path (net.ts) between them and
// the rest of the simulation. The runtime calls, in order:
//
//   new LiveRunner(plan, hosts, opts)   before the HostGroup: `factory` builds the live components
//   await start()                       cells, clocks, programs, readiness; every cell is left frozen
//   per window [T, E):  group.runUntil(E) (modelled events; messages to live components are queued at
//                       their virtual times), then await runQuantum(T, E): the cells run from T to E
//                       (quantum.ts), queued bytes are written when each cell's clock reaches their
//                       time, and what the programs write is stamped with the cell's virtual time
//   hostResults(i), results()
//   await stop()                        everything torn down: sockets, programs, cells, clocks
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from 'pino'
import type { PlanComponent, RunPlan } from '../api/plan.ts'
import { parseCpuCores, parseDurationNs, parseMemoryBytes } from '../api/units.ts'
import type { Component } from '../components/component.ts'
import { round } from '../components/component.ts'
import type { LiveContext } from '../engine/host.ts'
import type { Message } from '../engine/message.ts'
import { createCell, detectCellMode, CELL_MODES, type Cell, type CellMode } from './cell.ts'
import { clockCoverage, createVirtualClock, findLibfaketime, type VirtualClock } from './clock.ts'
import { AddressBlock, LiveNet, type NetHost } from './net.ts'
import { createCoopDriver } from './coop.ts'
import { createQuantumDriver, type QuantumDriver, type QuantumResult } from './quantum.ts'
import { which } from './spawn.ts'
import { faketimeShim } from './shim.ts'
import { StampReader } from './stamps.ts'
import { vexecCommand, vexecOptions } from './vexec.ts'
import { KIT_FILES, launcherPid, launchThrough, type LaunchRequest } from './launcher.ts'
import { handOver, openPathTo, resolveRunAs, userEnv, type RunAs } from './user.ts'
import { cpuList, entries, isStaleRuntime, runtimeDirName } from './common.ts'
import { allowedCpus, otherLiveRuntimes, parseCpuList, parseRuntimeCpus, pinThisProcess, placeRuntime, type Placement, type RuntimeCpus } from './runtime-cpus.ts'
import { userShmDir } from './dirs.ts'
export { hostVar } from './net.ts'

/** A cell's clock mode: CpuTime and WallTime cells are frozen between quanta (quantum.ts), Cooperative ones stop at barriers by themselves (coop.ts). */
export type LiveClockMode = 'CpuTime' | 'WallTime' | 'Cooperative'

export interface LiveRunnerOptions {
  /** Where the programs' logs go (<workDir>/<host>/<component>.log), and their working directory. */
  workDir: string
  logger: Logger
  /** Force a cell mode (env LIVESIM_CELL_MODE); default: the strongest the machine permits. */
  cellMode?: CellMode
  /** Second octet of this runtime's loopback block 127.<octet>.0.0/16 (env LIVESIM_NET_OCTET); default: the first free one. */
  netOctet?: number
  /** Where this runtime and the cells without cell.cpus run (env LIVESIM_RUNTIME_CPUS, runtime-cpus.ts); default: none. */
  runtimeCpus?: RuntimeCpus
}

/**
 * Where this runner's clocks go, one directory per host: libfaketime's file is rewritten at every
 * non-precise slice, so a tmpfs (a write and rename took ~17 µs on /dev/shm here against ~184 µs on
 * ext4). /dev/shm/livesim-<uid>/clock/<runtime pid.start time>/<fresh> (this user's, dirs.ts), after
 * removing the directories of this user's runtimes no longer running (common.ts, the cgroups'
 * naming); undefined where /dev/shm is not writable (the clocks then go to <workDir>/<host>/.clock).
 */
function shmClockRoot(log: Logger): string | undefined {
  try {
    const top = path.join(userShmDir(), 'clock')
    for (const d of entries(top)) if (isStaleRuntime(d)) rmSync(path.join(top, d), { recursive: true, force: true })
    const mine = path.join(top, runtimeDirName())
    mkdirSync(mine, { recursive: true })
    return mkdtempSync(path.join(mine, 'run-'))
  } catch (err) {
    // No /dev/shm is an ordinary set-up; one this user cannot use (another user's directory) is worth a word.
    const level = existsSync('/dev/shm') ? 'warn' : 'debug'
    log[level]({ err: (err as Error).message }, 'no clock directory on /dev/shm: clocks go to the work directory')
    return undefined
  }
}

/** Options from the environment of a runtime process (LIVESIM_WORK_DIR, LIVESIM_CELL_MODE, LIVESIM_NET_OCTET, LIVESIM_RUNTIME_CPUS). */
export function liveOptionsFromEnv(env: NodeJS.ProcessEnv, logger: Logger, fallbackWorkDir: string): LiveRunnerOptions {
  const mode = env.LIVESIM_CELL_MODE
  if (mode && mode !== 'auto' && !(CELL_MODES as readonly string[]).includes(mode)) {
    throw new Error(`LIVESIM_CELL_MODE=${mode}: use auto, ${CELL_MODES.join(', ')}`)
  }
  const octet = env.LIVESIM_NET_OCTET ? Number(env.LIVESIM_NET_OCTET) : undefined
  if (octet !== undefined && !(Number.isInteger(octet) && octet >= 1 && octet <= 254)) throw new Error(`LIVESIM_NET_OCTET=${env.LIVESIM_NET_OCTET}: use 1-254`)
  return {
    workDir: env.LIVESIM_WORK_DIR || fallbackWorkDir,
    logger,
    cellMode: mode && mode !== 'auto' ? (mode as CellMode) : undefined,
    netOctet: octet,
    runtimeCpus: parseRuntimeCpus(env.LIVESIM_RUNTIME_CPUS, 'none'),
  }
}

/** A delivery due this close (virtual ns) after the cells' current time is written at once, not after a stretch of its own. */
const DELIVERY_EARLY_NS = 300

/** Kubernetes-style $(VAR) expansion: defined variables are replaced, $$ escapes, the rest is left. */
export function expandVars(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$'
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : m
  })
}


/** Environment a live program inherits from the runtime: not its secrets, not our preloads. */
function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue
    if (k === 'LIVESIM_TOKEN' || k === 'LD_PRELOAD' || k.startsWith('FAKETIME') || k.startsWith('NODE_') || k.startsWith('npm_')) continue
    out[k] = v
  }
  return out
}

/** A live component: the HostSim sees a Component; messages to it are queued for its host's cell. */
export class LiveComponent implements Component {
  readonly plan: PlanComponent
  readonly ctx: LiveContext
  readonly host: LiveHost
  command: string[] = []
  env: Record<string, string> = {}
  pid: number | undefined
  exitCode: number | null = null
  exitSignal: string | null = null
  exitedAtNs: number | null = null
  log = ''
  clockNote = ''
  /** The user it runs as (securityContext), when not the runtime's. */
  runAs: RunAs | undefined
  /** It runs in its own image's container (live.image, started through the launcher). */
  imageUsed = false
  /** Resolves when the program has exited (its 'exit' event). */
  exited: Promise<void> = Promise.resolve()

  constructor(plan: PlanComponent, ctx: LiveContext, host: LiveHost) {
    this.plan = plan
    this.ctx = ctx
    this.host = host
  }

  start(): void {}
  onTimer(): void {}

  onMessage(msg: Message): void {
    this.host.net.receive(this.host, this, msg, this.ctx.now())
  }

  results(): Record<string, unknown> {
    const live = this.plan.spec.live!
    return {
      command: this.command,
      pid: this.pid,
      clock: live.clock ?? 'CpuTime',
      clockCoverage: this.clockNote,
      ports: (live.ports ?? []).map((p) => ({ ...p, address: `${this.host.bindAddr}:${p.port}` })),
      exitCode: this.exitCode,
      exitSignal: this.exitSignal,
      exitedAtNs: this.exitedAtNs,
      running: this.exitedAtNs === null,
      log: this.log,
      // live.image: livesim run (and any runtime not given LIVESIM_LAUNCH_DIR) runs command from its own machine.
      ...(live.image !== undefined ? { image: live.image, imageUsed: this.imageUsed } : {}),
      ...this.host.net.componentStats(this),
    }
  }
}

/** One simulated host with live components: its cell, clock, address and components. */
export class LiveHost implements NetHost {
  readonly index: number
  readonly name: string
  readonly comps: LiveComponent[] = []
  readonly dir: string
  bindAddr = ''
  cell: Cell | undefined
  clock: VirtualClock | undefined
  clockMode: LiveClockMode = 'CpuTime'
  /** CPUs of its cell (cell.cpus, else the placement's); undefined: any. */
  cpus: number[] | undefined
  /** The driver of its cell and the cell's index there. */
  driver: QuantumDriver | undefined
  local = 0
  speed = 1
  net!: LiveNet
  /** Actions at virtual times, in time order (messages arrive in heap order). */
  queue: { at: number; fn: () => void }[] = []
  head = 0
  /** The write stamps of the cell's programs (stamps.ts), when the shim is there. */
  stamps: StampReader | undefined
  /** The runtime wrote data into the cell: its next slice is precise (quantum.ts). */
  woken = false
  cpuTimeNs = 0
  stolenNs = 0
  slices = 0
  quanta = 0
  /** Stretches a quantum was split into (at delivery times). */
  runs = 0
  /** Precise slices (quantum.ts). */
  preciseSlices = 0
  /** Components whose live.image this runtime does not use (LiveRunner.noteImages). */
  readonly imageWarnings: string[] = []

  constructor(index: number, name: string, dir: string) {
    this.index = index
    this.name = name
    this.dir = dir
  }

  enqueue(at: number, fn: () => void): void {
    this.queue.push({ at, fn })
  }


  virtualNowNs(): number {
    return this.driver?.virtualNowNs(this.local) ?? 0
  }

  /** Where the cell must stop next after t: the first due time later than what goes at t (due within DELIVERY_EARLY_NS), in whole ns, or Infinity. */
  nextStop(t: number): number {
    for (let k = this.head; k < this.queue.length; k++) if (this.queue[k]!.at > t + DELIVERY_EARLY_NS) return Math.ceil(this.queue[k]!.at)
    return Infinity
  }

  /** Run what is due by t (+ DELIVERY_EARLY_NS): write it into the programs (their cell frozen, or cooperative and at t). Whether anything was due. */
  deliver(t: number): boolean {
    const q = this.queue
    if (this.head >= q.length || q[this.head]!.at > t + DELIVERY_EARLY_NS) return false
    while (this.head < q.length && q[this.head]!.at <= t + DELIVERY_EARLY_NS) q[this.head++]!.fn()
    if (this.head === q.length) {
      q.length = 0
      this.head = 0
    } else if (this.head > 1024) {
      q.splice(0, this.head)
      this.head = 0
    }
    return true
  }
}

export class LiveRunner {
  readonly plan: RunPlan
  readonly hosts: LiveHost[] = []
  private readonly byIndex = new Map<number, LiveHost>()
  private readonly opts: LiveRunnerOptions
  private readonly log: Logger
  private readonly addresses: AddressBlock
  private readonly net: LiveNet
  /** The drivers of this runtime's cells: frozen (CpuTime, WallTime) and cooperative, with their hosts. */
  private groups: { driver: QuantumDriver; hosts: LiveHost[] }[] = []
  cellMode: CellMode | undefined
  cellModeWhy = ''
  /** Where this runtime and the cells without cell.cpus run (place()). */
  private placement: Placement | undefined
  /** The CPUs this runtime process may run on once placed, as the kernel says (/proc/self/status). */
  private runtimeCpus = ''
  /** The clock shim in use ("built …", "cached …", "LIVESIM_FAKETIME_SHIM=…") or "none: why". */
  clockShim = ''
  private overrunMaxNs = 0
  /** The end of the last quantum run: the next may not start before it. */
  private lastQuantumEndNs = 0
  private overrunTotalNs = 0
  private stopped = false
  private stopping: Promise<void> | undefined
  /** Resolved by stop({ hurry }): graceful terminations stop waiting (their programs die with the cells). */
  private hurry: () => void = () => {}
  private readonly hurried = new Promise<void>((resolve) => (this.hurry = resolve))
  /** LIVESIM_LAUNCH_DIR and LIVESIM_KIT_DIR: image components start through their launchers. */
  private readonly launch: { dir: string; kit: string } | undefined
  private readonly trace: boolean
  /** The parent of the hosts' clock directories on /dev/shm (shmClockRoot), removed at teardown. */
  private clockRoot: string | undefined

  constructor(plan: RunPlan, hostIndices: number[], opts: LiveRunnerOptions) {
    this.plan = plan
    this.opts = opts
    this.log = opts.logger.child({ part: 'live' })
    this.trace = this.log.isLevelEnabled('trace')
    this.addresses = new AddressBlock(opts.netOctet)
    const launchDir = process.env.LIVESIM_LAUNCH_DIR
    if (launchDir) {
      const kit = process.env.LIVESIM_KIT_DIR
      if (!kit) throw new Error('LIVESIM_LAUNCH_DIR is set but LIVESIM_KIT_DIR is not: the image containers\' clock shim, libfaketime and vexec are there')
      this.launch = { dir: launchDir, kit }
    }
    for (const i of hostIndices) {
      const h = plan.hosts[i]!
      if (!h.components.some((c) => c.spec.live)) continue
      const lh = new LiveHost(i, h.name, path.join(opts.workDir, h.name))
      this.hosts.push(lh)
      this.byIndex.set(i, lh)
    }
    this.net = new LiveNet(plan, this.byIndex, this.addresses, this.log)
    for (const h of this.hosts) h.net = this.net
  }

  get active(): boolean {
    return this.hosts.length > 0
  }

  /** The HostSim factory for live components. */
  readonly factory = (c: PlanComponent, ctx: LiveContext): Component => {
    const host = this.byIndex.get(ctx.hostIndex)
    if (!host) throw new Error(`${c.path}: host ${ctx.hostIndex} is not carried by this runtime`)
    const comp = new LiveComponent(c, ctx, host)
    host.comps.push(comp)
    return comp
  }

  /** Start every live program in its host's cell and wait until their ports accept; cells end frozen. */
  async start(): Promise<void> {
    if (!this.active) return
    if (!findLibfaketime()) throw new Error('live components need libfaketime (libfaketimeMT.so.1) for their virtual clock: run hack/live-deps.sh, or apt-get install libfaketime')
    // A host's cell is Cooperative if any of its programs is, else WallTime if any is, else CpuTime.
    for (const h of this.hosts) {
      const modes = new Set(h.comps.map((c) => c.plan.spec.live!.clock ?? 'CpuTime'))
      h.clockMode = modes.has('Cooperative') ? 'Cooperative' : modes.has('WallTime') ? 'WallTime' : 'CpuTime'
    }
    // The clock shim (shim.ts): Cooperative cells cannot work without it (their programs stop at the
    // barrier in its clock readings); the other modes run with plain libfaketime and its problems
    // (docs/live.md, "The shim"), which the run says (log, results) instead of leaving users to guess
    // from a program's "Unexpected recursive calls to clock_gettime()".
    const shim = faketimeShim()
    this.clockShim = shim.path ? shim.why : `none: ${shim.why}`
    if (!shim.path) {
      const coop = this.hosts.find((h) => h.clockMode === 'Cooperative')?.comps.find((c) => c.plan.spec.live!.clock === 'Cooperative')
      if (coop) throw new Error(`${coop.plan.path}: clock: Cooperative needs livesim's clock shim, which is not available (${shim.why}); install a C compiler (hack/live-deps.sh) or set LIVESIM_FAKETIME_SHIM to a shim built with \`node sim-runtime/live/shim.ts OUT.so\`, or use clock: CpuTime or WallTime`)
      this.log.warn({ why: shim.why }, 'live components: no clock shim; running with plain libfaketime (sleeps may end early, readings may straddle a barrier, programs that use jemalloc such as redis-server may fail to start: docs/live.md, "The shim")')
    }
    this.noteImages()
    const detected = await detectCellMode()
    this.cellMode = this.opts.cellMode ?? detected.mode
    this.cellModeWhy = this.opts.cellMode ? `forced by LIVESIM_CELL_MODE (detected: ${detected.mode})` : detected.why
    this.place()
    await this.addresses.acquire()
    this.log.info({ cellMode: this.cellMode, why: this.cellModeWhy, net: `${this.addresses.prefix}.0.0/16`, hosts: this.hosts.map((h) => h.name) }, 'live components: starting cells')
    for (const h of this.hosts) h.bindAddr = this.addresses.alloc()
    // Programs in image containers read their clock files from the volume they share with the
    // runtime (the work dir), not from this container's /dev/shm.
    this.clockRoot = this.launch ? undefined : shmClockRoot(this.log)
    await this.net.listen(this.hosts)
    const cluster = this.plan.cluster.replace(/[^A-Za-z0-9_.-]/g, '_')
    await Promise.all(this.hosts.map((h) => this.startHost(h, cluster)))
    const frozen = this.hosts.filter((h) => h.clockMode !== 'Cooperative')
    const coop = this.hosts.filter((h) => h.clockMode === 'Cooperative')
    const driven = (hs: LiveHost[]) => hs.map((h) => ({ cell: h.cell!, clock: h.clock, clockMode: h.clockMode === 'WallTime' ? ('WallTime' as const) : ('CpuTime' as const), speed: h.speed }))
    if (frozen.length) this.groups.push({ driver: createQuantumDriver(driven(frozen)), hosts: frozen })
    if (coop.length) this.groups.push({ driver: createCoopDriver(driven(coop)), hosts: coop })
    for (const g of this.groups) {
      g.hosts.forEach((h, i) => {
        h.driver = g.driver
        h.local = i
      })
    }
  }

  /** Pin this runtime and choose the CPUs of cells without cell.cpus (runtime-cpus.ts), before any cell starts. */
  private place(): void {
    const setting = this.opts.runtimeCpus ?? 'none'
    const others = setting === 'auto' ? otherLiveRuntimes((d) => d === runtimeDirName()) : 0
    const p = placeRuntime(setting, allowedCpus(), this.hosts.some((h) => h.clockMode === 'Cooperative'), others)
    const notPinned = p.runtime ? pinThisProcess(p.runtime) : undefined
    this.placement = notPinned ? { why: `${p.why}; not applied: ${notPinned}` } : p
    this.runtimeCpus = cpuList(allowedCpus())
    this.log[notPinned ? 'warn' : 'info']({ runtimeCpus: p.runtime && cpuList(p.runtime), cellCpus: p.cells && cpuList(p.cells), why: this.placement.why }, 'live components: placement')
  }

  private async startHost(h: LiveHost, cluster: string): Promise<void> {
    const spec = this.plan.hosts[h.index]!.spec
    mkdirSync(h.dir, { recursive: true })
    h.speed = spec.cell?.speed ?? 1
    h.cpus = spec.cell?.cpus ? parseCpuList(spec.cell.cpus, `host ${h.name}: cell.cpus`) : this.placement?.cells
    let name = `${cluster}.${h.name}`
    if (name.length > 64) name = `${cluster.slice(0, 63 - h.name.length)}.${h.name}`.slice(-64).replace(/^[.-]+/, '')
    h.cell = await createCell({
      name,
      mode: this.cellMode,
      cpuQuota: spec.cell?.cpu ? parseCpuCores(spec.cell.cpu) : undefined,
      memoryBytes: spec.cell?.memory ? parseMemoryBytes(spec.cell.memory) : undefined,
      cpus: h.cpus,
    })
    const clockDir = this.clockRoot ? path.join(this.clockRoot, h.name) : path.join(h.dir, '.clock')
    h.clock = createVirtualClock(clockDir)
    this.openToUsers(h, clockDir)
    if (h.clock.stampsFile) h.stamps = new StampReader(h.clock.stampsFile, h.clock.toVirtualNs)
    // Start-up happens at virtual time 0: the clock stands still there until the first quantum.
    h.clock.set(0, 1 / h.speed, { untilNs: 0, standing: true })
    await h.cell.freeze()
    const own: Record<string, string> = { ...h.clock.env(), LIVESIM_HOST: h.name, LIVESIM_BIND_ADDR: h.bindAddr, ...this.net.hostVars(h) }
    const vars: Record<string, string> = { ...baseEnv(), ...own }
    for (const c of h.comps) {
      const live = c.plan.spec.live!
      // live.image with a launcher (Kubernetes): the program runs in its own container (launcher.ts).
      const image = this.launch && live.image !== undefined ? await this.imageSide(h, c, this.launch) : undefined
      const env = image ? { ...image.env, ...kitPreload(own, this.launch!.kit) } : { ...vars, ...(c.runAs ? userEnv(c.runAs) : {}) }
      for (const e of live.env ?? []) env[e.name] = expandVars(e.value, env)
      c.env = env
      c.command = live.command.map((a) => expandVars(a, env))
      c.log = path.join(h.dir, `${c.plan.name}.log`)
      const cwd = live.workingDir ? path.resolve(h.dir, expandVars(live.workingDir, env)) : h.dir
      const root = image?.root ?? ''
      if (!isDirectory(root + cwd)) throw new Error(`${c.plan.path}: workingDir ${JSON.stringify(live.workingDir)} is not a directory (${cwd}; a relative one is taken from the host's work directory ${h.dir})`)
      const program = c.command[0]!
      // In an image, the program is looked up in that container's file system (/proc/<launcher>/root).
      const exe = root ? (program.startsWith('/') ? which(root + program) : which(program, (env.PATH ?? '').split(':').map((d) => root + d).join(':'), root + cwd)) : which(program, env.PATH, cwd)
      if (!exe) {
        throw new Error(
          program.includes('/')
            ? `${c.plan.path}: live command ${JSON.stringify(program)} is not an executable file (${path.resolve(cwd, program)})`
            : `${c.plan.path}: live command ${JSON.stringify(program)} not found (PATH=${env.PATH ?? ''})`,
        )
      }
      const cov = clockCoverage(exe)
      c.clockNote = cov.reason
      if (!cov.covered) this.log.warn({ component: c.plan.path, reason: cov.reason }, 'this program does not read the virtual clock')
      else if (cov.warning) this.log.warn({ component: c.plan.path, reason: cov.reason }, `this program reads the virtual clock, but not everywhere: ${cov.warning}`)
      // Go and static programs run under vexec, which stands in for them (signals, exit status).
      const run = cov.via === 'supervisor' ? vexecCommand(c.command, env, vexecOptions(cov.kind ?? 'c', 1 / h.speed)) : { command: c.command, env }
      if (image) {
        if (cov.via === 'supervisor') run.command[0] = path.join(this.launch!.kit, KIT_FILES.vexec)
        await this.startInImage(h, c, image.dir, { command: run.command, env: run.env, cwd, logFile: c.log })
        continue
      }
      const child = h.cell.spawn(run.command, { env: run.env, cwd, logFile: c.log, uid: c.runAs?.uid, gid: c.runAs?.gid })
      c.pid = child.pid
      c.exited = new Promise((res) => child.once('exit', () => res()))
      child.on('exit', (code, signal) => {
        c.exitCode = code
        c.exitSignal = signal
        c.exitedAtNs = h.virtualNowNs()
        if (!this.stopped) this.log.info({ component: c.plan.path, code, signal, atNs: c.exitedAtNs }, 'live program exited')
      })
      child.on('error', (err) => this.log.error({ component: c.plan.path, err: err.message }, 'live program failed to start'))
    }
    await h.cell.thaw()
    try {
      await Promise.all(h.comps.map((c) => this.ready(h, c)))
    } finally {
      await h.cell.freeze()
    }
    this.log.info({ host: h.name, cell: h.cell.name, mode: h.cell.mode, address: h.bindAddr, warnings: h.cell.warnings }, 'live host ready')
  }

  /**
   * live.image names the image that holds a program on Kubernetes, where the operator runs it as a
   * container of the host's pod and hands this runtime LIVESIM_LAUNCH_DIR and LIVESIM_KIT_DIR
   * (docs/kubernetes.md): then imageSide and startInImage start it there. Without them, every
   * program runs from this machine: said once in the log, and in each such host's results
   * (hosts.<host>.live.warnings; the component's results say imageUsed: false).
   */
  private noteImages(): void {
    const imaged = this.hosts.flatMap((h) => h.comps.filter((c) => c.plan.spec.live!.image !== undefined).map((c) => ({ h, c, image: c.plan.spec.live!.image! })))
    if (!imaged.length || this.launch) return
    for (const { h, c, image } of imaged) h.imageWarnings.push(`${c.plan.path}: live.image ${image} is not used here: ${c.plan.spec.live!.command[0]} runs from this machine`)
    this.log.warn({ components: imaged.map(({ c, image }) => `${c.plan.path} (${image})`) }, 'live.image is not used by livesim run: each program runs from this machine (command on its PATH); images are for Kubernetes')
  }

  /**
   * An image component's side of the pod (operator/simcluster/objects.ts): its launcher's directory,
   * the launcher's root (/proc/<pid>/root: the image's file system, through the shared process
   * namespace) and the image's environment (/proc/<pid>/environ, when this runtime may read it),
   * under which livesim's variables and live.env are set. Waits for the launcher: the image may still
   * be pulled.
   */
  private async imageSide(h: LiveHost, c: LiveComponent, launch: { dir: string; kit: string }): Promise<{ dir: string; root: string; env: Record<string, string> }> {
    if (!h.cell?.adopt) throw new Error(`${c.plan.path}: a program in its own image (live.image) needs a signals cell; this host's cell is ${h.cell?.mode} (set LIVESIM_CELL_MODE=signals)`)
    const dir = path.join(launch.dir, c.plan.name)
    const pid = await launcherPid(dir, LAUNCH_TIMEOUT_MS)
    const env: Record<string, string> = {}
    try {
      for (const entry of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
        const eq = entry.indexOf('=')
        if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
      }
    } catch {
      // not ours to read: the launcher adds the image's environment under the request's
    }
    env.PATH ??= DEFAULT_PATH
    return { dir, root: `/proc/${pid}/root`, env }
  }

  /** Hand the program to its launcher and take it into the host's cell (signals: its own process group). */
  private async startInImage(h: LiveHost, c: LiveComponent, dir: string, req: LaunchRequest): Promise<void> {
    const launched = await launchThrough(dir, req, { timeoutMs: LAUNCH_TIMEOUT_MS })
    h.cell!.adopt!(launched.pid)
    c.pid = launched.pid
    c.imageUsed = true
    c.exited = launched.exited.then(() => undefined)
    void launched.exited.then(({ code, signal }) => {
      c.exitCode = code
      c.exitSignal = signal === null ? null : (signalNames.get(signal) ?? String(signal))
      c.exitedAtNs = h.virtualNowNs()
      if (!this.stopped) this.log.info({ component: c.plan.path, code, signal: c.exitSignal, atNs: c.exitedAtNs }, 'live program exited')
    })
    this.log.info({ component: c.plan.path, image: c.plan.spec.live!.image, pid: launched.pid }, 'live program started in its own image')
  }

  /**
   * Programs that run as another user (securityContext) must reach their host's work directory (and
   * write there: it is their working directory by default) and their cell's clock files (the shim
   * maps them read-write): the directories livesim made on the way get o+x (search only), and the
   * host's work and clock directories are handed to that user. One such user per host: the clock files
   * are the cell's, shared by all its programs.
   */
  private openToUsers(h: LiveHost, clockDir: string): void {
    const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
    for (const c of h.comps) c.runAs = resolveRunAs(c.plan.spec.live!.securityContext, `${c.plan.path}: live.securityContext`, self)
    const users = [...new Map(h.comps.flatMap((c) => (c.runAs ? [[`${c.runAs.uid}:${c.runAs.gid}`, c.runAs] as const] : []))).values()]
    if (users.length === 0) return
    if (users.length > 1) throw new Error(`host ${h.name}: its live programs run as ${users.map((u) => `${u.uid}:${u.gid}`).join(' and ')}; the programs of one host may run as one user besides the runtime's (they share the cell's clock files)`)
    const who = users[0]!
    openPathTo(h.dir, this.opts.workDir, who)
    handOver(h.dir, who)
    // The clock directories on /dev/shm are this runtime's user's: from its own top directory down.
    const shm = '/dev/shm/'
    const top = this.clockRoot?.startsWith(shm) ? shm + this.clockRoot.slice(shm.length).split('/')[0] : h.dir
    openPathTo(clockDir, top, who)
    handOver(clockDir, who)
  }

  /**
   * The end of a run for programs with a terminationGracePeriod (Kubernetes' order): SIGTERM to each
   * that still runs, then up to its grace period (wall time) to exit, in a thawed cell whose clock
   * stands at the last barrier, as at start-up (a program shuts down and cleans up, e.g. removes its
   * data directory); whatever is left is killed with the cell. Nothing of this is in the results.
   */
  private async terminate(h: LiveHost): Promise<void> {
    const graceful = h.comps.filter((c) => c.pid !== undefined && c.exitedAtNs === null && c.plan.spec.live!.terminationGracePeriod)
    if (!graceful.length || !h.cell || !h.clock) return
    const t = Math.max(0, Math.floor(h.virtualNowNs()))
    h.clock.set(t, 1 / h.speed, { untilNs: t, standing: true })
    if (h.cell.frozen) await h.cell.thaw()
    for (const c of graceful) {
      try {
        process.kill(c.pid!, 'SIGTERM')
      } catch {
        // gone already
      }
    }
    await Promise.race([Promise.all(graceful.map((c) => within(c.exited, parseDurationNs(c.plan.spec.live!.terminationGracePeriod!) / 1e6))), this.hurried])
  }

  /** Readiness: every served port accepts a TCP connection on the host's address. */
  private async ready(h: LiveHost, c: LiveComponent): Promise<void> {
    const live = c.plan.spec.live!
    const timeoutMs = live.readinessTimeout ? parseDurationNs(live.readinessTimeout) / 1e6 : 10_000
    const deadline = Date.now() + timeoutMs
    for (const p of live.ports ?? []) {
      while (true) {
        if (c.exitedAtNs !== null) throw new Error(`${c.plan.path}: ${c.command.join(' ')} exited (${c.exitCode ?? c.exitSignal}) before port ${p.name} (${p.port}) accepted connections${logTail(c.log)}`)
        if (await accepts(h.bindAddr, p.port)) break
        if (Date.now() > deadline) {
          throw new Error(`${c.plan.path}: port ${p.name} (${h.bindAddr}:${p.port}) did not accept connections within ${timeoutMs / 1000}s; the program must listen on $(LIVESIM_BIND_ADDR) (${h.bindAddr})${logTail(c.log)}`)
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }

  /**
   * Run every cell from startNs to endNs, delivering queued bytes at their virtual times. Frozen cells
   * (CpuTime, WallTime): the quantum is split at their delivery times; they run to the next one,
   * frozen; the bytes due are written while they are frozen, and the cells they went to continue with a
   * precise slice (quantum.ts), whose clock starts when the woken program first reads it. Cooperative
   * cells: each stops at its own deliveries only (coop.ts, hooks.nextDue and hooks.deliver). What the
   * programs wrote is handed to the network at the end, stamped with the virtual time of each write
   * (stamps.ts).
   */
  async runQuantum(startNs: number, endNs: number): Promise<void> {
    if (this.groups.length === 0 || endNs <= startNs) return
    // The programs' clocks never go back: each quantum starts where the last one ended, or later.
    assert(startNs >= this.lastQuantumEndNs, `quantum [${startNs}, ${endNs}) starts before the last one ended (${this.lastQuantumEndNs}ns)`)
    this.lastQuantumEndNs = endNs
    const hosts = this.hosts
    // Cooperative cells stop at their own deliveries only (coop.ts): the driver splits the run.
    for (const g of this.groups) {
      if (!g.driver.splitsPerCell) continue
      const at = startNs
      const r = await g.driver.run(startNs, endNs - startNs, {
        onStart: () => this.deliverDue(g.hosts, at),
        precise: (i) => g.hosts[i]!.woken,
        nextDue: (i, t) => g.hosts[i]!.nextStop(t),
        deliver: (i, t) => g.hosts[i]!.deliver(t),
      })
      for (const h of g.hosts) h.woken = false
      this.account(g, startNs, endNs, r)
    }
    const split = this.groups.filter((g) => !g.driver.splitsPerCell)
    let t = startNs
    while (split.length > 0 && t < endNs) {
      // The next delivery after what goes now (due within DELIVERY_EARLY_NS) ends this stretch.
      let next = endNs
      for (const g of split) for (const h of g.hosts) next = Math.min(next, h.nextStop(t))
      for (const g of split) {
        const at = t
        const r = await g.driver.run(t, next - t, {
          onStart: () => this.deliverDue(g.hosts, at),
          precise: (i) => g.hosts[i]!.woken,
        })
        for (const h of g.hosts) h.woken = false
        this.account(g, t, next, r)
      }
      t = next
    }
    // Due exactly at the barrier: written now, read in the next quantum (its first slice is precise).
    this.deliverDue(hosts, endNs)
    for (const h of hosts) h.quanta++
    // Let the reads the programs' last writes caused reach us, then hand them to the network.
    await new Promise((res) => setImmediate(res))
    await new Promise((res) => setImmediate(res))
    for (const h of hosts) this.net.flush(h, startNs)
  }

  /** Trace a driver's run and add it to its hosts' counts. */
  private account(g: { hosts: LiveHost[] }, startNs: number, endNs: number, r: QuantumResult): void {
    if (this.trace) this.log.trace({ startNs, endNs, spanNs: r.spanNs, lateThawNs: r.lateThawNs, freezeNs: r.freezeNs, overrunNs: Math.round(r.overrunNs), slices: r.slices, stolenNs: r.stolenNs.map(Math.round), precise: r.preciseSlices, ...(r.finishedBy ? { finishedBy: r.finishedBy } : {}), ...(r.stretches ? { stretches: r.stretches } : {}) }, 'quantum')
    g.hosts.forEach((h, i) => {
      h.cpuTimeNs += r.cpuNs[i] ?? 0
      h.stolenNs += r.stolenNs?.[i] ?? 0
      h.slices += r.slices?.[i] ?? 1
      h.preciseSlices += r.preciseSlices[i] ?? 0
      h.runs += r.stretches?.[i] ?? 1
    })
    this.overrunTotalNs += r.overrunNs
    if (r.overrunNs > this.overrunMaxNs) this.overrunMaxNs = r.overrunNs
  }

  /** Write what is due by `t` (+ DELIVERY_EARLY_NS) into the hosts' programs (their cells frozen, or cooperative and at t). */
  private deliverDue(hosts: LiveHost[], t: number): void {
    for (const h of hosts) if (h.deliver(t)) h.woken = true
  }

  /** Per-host live results (HostResults.live). */
  hostResults(hostIndex: number): Record<string, unknown> | undefined {
    const h = this.byIndex.get(hostIndex)
    if (!h) return undefined
    return {
      cellMode: h.cell?.mode ?? this.cellMode,
      cell: h.cell?.name,
      address: h.bindAddr,
      clockMode: h.clockMode,
      speed: h.speed,
      cpuTimeNs: h.cpuTimeNs,
      stolenNs: h.stolenNs,
      quanta: h.quanta,
      runs: h.runs,
      preciseSlices: h.preciseSlices,
      slices: h.slices,
      stampsLost: h.stamps?.lost ?? 0,
      warnings: [...h.imageWarnings, ...(h.cell?.warnings ?? [])],
      cellModeWhy: this.cellModeWhy,
      cpus: h.cpus ? cpuList(h.cpus) : 'any',
      cpusWhy: this.placement?.why,
      runtimeCpus: this.runtimeCpus,
      clockShim: this.clockShim,
      overrunMaxNs: round(this.overrunMaxNs, 0),
      overrunTotalNs: round(this.overrunTotalNs, 0),
    }
  }

  /**
   * Tear everything down: sockets and listeners, every process of every cell, the cgroups, the clocks.
   * Idempotent, and every caller waits for the same teardown: a runtime whose run failed may be
   * stopping its cells when the SIGTERM that ends it arrives, and its signal handler, which exits once
   * stop() returns, must not exit in the middle of that teardown with programs not yet killed.
   */
  stop(opts: { hurry?: boolean } = {}): Promise<void> {
    if (opts.hurry) this.hurry()
    this.stopping ??= this.teardown()
    return this.stopping
  }

  private async teardown(): Promise<void> {
    this.stopped = true
    for (const g of this.groups) g.driver.close?.()
    this.net.close()
    await Promise.all(
      this.hosts.map(async (h) => {
        try {
          await this.terminate(h)
        } catch (err) {
          this.log.warn({ host: h.name, err: (err as Error).message }, 'graceful termination failed: killing the cell')
        }
        try {
          await h.cell?.destroy()
        } catch (err) {
          this.log.error({ host: h.name, err: (err as Error).message }, 'cell teardown failed')
        }
        h.stamps?.close()
        h.clock?.close()
      }),
    )
    if (this.clockRoot) {
      rmSync(this.clockRoot, { recursive: true, force: true })
      try {
        rmdirSync(path.dirname(this.clockRoot)) // this runtime's directory, once no other runner of it uses it
      } catch {
        // another runner of this process still has its clocks there
      }
    }
    this.addresses.release()
  }
}

/** Wall time to wait for an image component's launcher: its container may start after the runtime's, once its image is pulled. */
const LAUNCH_TIMEOUT_MS = 300_000
/** PATH for an image whose environment this runtime cannot read (the usual default of images). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const signalNames = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name]))

/** The clock's variables with its preloads taken from the kit (their paths in the image containers). */
function kitPreload(vars: Record<string, string>, kit: string): Record<string, string> {
  if (!vars.LD_PRELOAD) return vars
  const preload = vars.LD_PRELOAD.split(' ').map((p) => path.join(kit, path.basename(p).startsWith('libfaketime') ? KIT_FILES.libfaketime : KIT_FILES.shim))
  return { ...vars, LD_PRELOAD: preload.join(' ') }
}

/** Wait for `p`, at most `ms` (wall). */
async function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p, new Promise<void>((res) => (timer = setTimeout(res, ms)))])
  clearTimeout(timer)
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    const done = (ok: boolean) => {
      s.destroy()
      resolve(ok)
    }
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
    s.setTimeout(1000, () => done(false))
  })
}

function logTail(file: string): string {
  if (!existsSync(file)) return ''
  const text = readFileSync(file, 'utf8').trim()
  if (!text) return `; its log ${file} is empty`
  return `; last lines of ${file}:\n${text.split('\n').slice(-5).join('\n')}`
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory()
  } catch {
    return false
  }
}

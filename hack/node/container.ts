// One container of a pod as a local process: spawned in its own process group (so signals reach
// everything it starts), stdout and stderr appended to its log file, its pid recorded in a pid
// file so that a later node process can clean up after a crash.
import { spawn } from 'node:child_process'
import { appendFileSync, closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import type { Logger } from 'pino'
import type { Prober } from './probes.ts'
import { now, type Container, type ContainerState, type ContainerStatus } from './types.ts'

export interface SpawnSpec {
  file: string
  args: string[]
  env: Record<string, string>
  cwd: string
}

export interface Exit {
  exitCode: number
  signal?: number
  /** Set when the program could not be started at all. */
  startError?: string
}

/** idle: never tried; starting: resolving env/credentials; backoff: waiting to (re)start. */
export type RunStatus = 'idle' | 'starting' | 'running' | 'backoff' | 'exited'

/** A process's start time in clock ticks since boot (field 22 of /proc/PID/stat): tells a recycled pid apart. */
function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Signal a process group; false if it no longer exists. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * Kill the process groups a previous node process left behind (it was SIGKILLed or crashed):
 * every <podsDir>/<pod>/<container>.pid whose process is still the one recorded.
 */
export function reapOrphans(podsDir: string, log: Logger): void {
  let pods: string[]
  try {
    pods = readdirSync(podsDir)
  } catch {
    return
  }
  for (const pod of pods) {
    let files: string[]
    try {
      files = readdirSync(path.join(podsDir, pod)).filter((f) => f.endsWith('.pid'))
    } catch {
      continue
    }
    for (const f of files) {
      const file = path.join(podsDir, pod, f)
      const [pid, start] = readFileSync(file, 'utf8').trim().split(' ')
      if (pid && start && procStartTime(Number(pid)) === start) {
        log.warn({ pod, container: f.slice(0, -4), pid: Number(pid) }, 'killing a container left behind by an earlier node process')
        signalGroup(Number(pid), 'SIGKILL')
      }
      rmSync(file, { force: true })
    }
  }
}

export class ContainerRun {
  readonly spec: Container
  readonly logPath: string
  private readonly pidPath: string
  status: RunStatus = 'idle'
  state: ContainerState = { waiting: { reason: 'ContainerCreating' } }
  lastState: ContainerState = {}
  restartCount = 0
  ready = false
  started = false
  pid: number | undefined
  startedAtMs = 0
  /** The delay before the last restart (exponential backoff). */
  backoffMs = 0
  timer: NodeJS.Timeout | undefined
  probers: Prober[] = []
  private exitWaiters: (() => void)[] = []

  constructor(spec: Container, podDir: string) {
    this.spec = spec
    this.logPath = path.join(podDir, `${spec.name}.log`)
    this.pidPath = path.join(podDir, `${spec.name}.pid`)
  }

  get isSidecar(): boolean {
    return this.spec.restartPolicy === 'Always'
  }

  /** Start the program; onExit is called exactly once, also when it cannot be started. */
  spawn(s: SpawnSpec, onExit: (e: Exit) => void): void {
    const fd = openSync(this.logPath, 'a')
    const startedAt = now()
    let done = false
    const finish = (e: Exit) => {
      if (done) return
      done = true
      const pid = this.pid
      this.pid = undefined
      // The main process is gone: as in a container, nothing else of it may stay.
      if (pid) signalGroup(pid, 'SIGKILL')
      rmSync(this.pidPath, { force: true })
      this.state = {
        terminated: {
          exitCode: e.exitCode,
          ...(e.signal ? { signal: e.signal } : {}),
          reason: e.startError ? 'StartError' : e.exitCode === 0 ? 'Completed' : 'Error',
          ...(e.startError ? { message: e.startError } : {}),
          startedAt,
          finishedAt: now(),
          ...(pid ? { containerID: `process://${pid}` } : {}),
        },
      }
      for (const w of this.exitWaiters.splice(0)) w()
      onExit(e)
    }
    try {
      const child = spawn(s.file, s.args, { env: s.env, cwd: s.cwd, detached: true, stdio: ['ignore', fd, fd] })
      this.pid = child.pid
      child.on('error', (err) => {
        if (this.pid !== undefined) return // an error after a successful start (a failed kill): 'exit' follows
        appendFileSync(this.logPath, `livesim-node: cannot start ${s.file}: ${err.message}\n`)
        finish({ exitCode: 128, startError: err.message })
      })
      child.on('exit', (code, signal) => {
        finish(code !== null ? { exitCode: code } : { exitCode: 128 + (constants.signals[signal!] ?? 0), signal: constants.signals[signal!] })
      })
    } finally {
      closeSync(fd)
    }
    if (this.pid !== undefined) {
      this.state = { running: { startedAt } }
      this.status = 'running'
      this.startedAtMs = Date.now()
      const start = procStartTime(this.pid)
      if (start) appendFileSync(this.pidPath, `${this.pid} ${start}\n`, { flag: 'w' })
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.pid !== undefined) signalGroup(this.pid, sig)
  }

  /** Resolves when no process of this container runs. */
  exited(): Promise<void> {
    return this.pid === undefined ? Promise.resolve() : new Promise((r) => this.exitWaiters.push(r))
  }

  stopProbes(): void {
    for (const p of this.probers) p.stop()
    this.probers = []
  }

  toStatus(): ContainerStatus {
    const image = this.spec.image ?? ''
    return {
      name: this.spec.name,
      image,
      imageID: image,
      ...(this.pid !== undefined ? { containerID: `process://${this.pid}` } : {}),
      ready: this.ready,
      started: this.started,
      restartCount: this.restartCount,
      state: this.state,
      lastState: this.lastState,
    }
  }
}

// The image launcher (launcher/launcher.c): how the runtime starts a live program inside another
// container of its pod (live.image on Kubernetes; docs/kubernetes.md, "Live components in their own
// images"). That container's command is `livesim-launcher DIR`, from the volume the runtime's pod
// shares with it; the launcher waits there until the runtime writes a request into the FIFO
// DIR/request, forks, execs the program in a new session and process group, writes its pid to
// DIR/pid and, when it ends, its status to DIR/status. The pod shares its process namespace, so the
// runtime sees that pid and can stop, continue and kill the program's process group as it does its
// own children's (a signals cell).
//
// Compiled statically (it must run in any image) with the machine's C compiler on first use and
// cached by the hash of its source in this user's directory, as vexec is; LIVESIM_LAUNCHER names a
// prebuilt one (the livesim image has it). To prebuild it:
//   node sim-runtime/live/launcher.ts [OUTPUT]
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, constants as fsc } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateDir, userStateDir } from './dirs.ts'
import { which } from './spawn.ts'

export const LAUNCHER_SOURCE = fileURLToPath(new URL('./launcher/launcher.c', import.meta.url))
export const LAUNCHER_CFLAGS = ['-O2', '-static', '-Wall', '-Wextra', '-Werror']
/** The first field of a request: the protocol's version. */
export const LAUNCH_MAGIC = 'livesim-launch/1'

/**
 * The kit: what the init container of a pod with image components copies from the livesim image
 * into LIVESIM_KIT_DIR (operator/simcluster/objects.ts), under these names, for the image containers.
 */
export const KIT_FILES = { shim: 'faketime-shim.so', libfaketime: 'libfaketimeMT.so.1', vexec: 'vexec', launcher: 'livesim-launcher' } as const

/** Compile the launcher to `output` (atomically); returns `output`. */
export function buildLauncher(output: string): string {
  const cc = which('cc') ?? which('gcc') ?? which('clang')
  if (!cc) throw new Error('no C compiler (cc) to build the image launcher')
  mkdirSync(path.dirname(output), { recursive: true })
  const tmp = `${output}.${process.pid}.tmp`
  try {
    execFileSync(cc, [...LAUNCHER_CFLAGS, '-o', tmp, LAUNCHER_SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] })
    renameSync(tmp, output)
    return output
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string }
    throw new Error(`building the image launcher failed: ${err.stderr?.toString().trim() || err.message}`, { cause: e })
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** The launcher: LIVESIM_LAUNCHER, else built once per source hash in this user's directory. */
export function launcherBinary(): string {
  const override = process.env.LIVESIM_LAUNCHER
  if (override) {
    if (!existsSync(override)) throw new Error(`LIVESIM_LAUNCHER=${override} does not exist`)
    return override
  }
  const hash = createHash('sha256').update(LAUNCHER_CFLAGS.join(' ')).update(readFileSync(LAUNCHER_SOURCE)).digest('hex').slice(0, 16)
  const file = path.join(privateDir(userStateDir(), 'launcher'), `livesim-launcher-${hash}`)
  return existsSync(file) ? file : buildLauncher(file)
}

export interface LaunchRequest {
  command: string[]
  env: Record<string, string>
  cwd: string
  /** stdout and stderr are appended to it (a path the launcher's container sees). */
  logFile: string
}

/** The bytes of a request (launcher.c, step 2). */
export function encodeRequest(req: LaunchRequest): Buffer {
  if (req.command.length === 0 || !req.command[0]) throw new Error('launch request: the program is empty')
  const fields = [LAUNCH_MAGIC, req.cwd, req.logFile, String(req.command.length), ...req.command]
  const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`)
  fields.push(String(env.length), ...env)
  for (const f of fields) if (f.includes('\0')) throw new Error(`launch request: ${JSON.stringify(f.slice(0, 40))} contains a NUL byte`)
  return Buffer.from(fields.map((f) => `${f}\0`).join(''))
}

export interface Launched {
  /** The program's pid (in the pod's shared process namespace); it leads its own process group. */
  pid: number
  /** Resolves when the program has ended: the exit code, or the signal number that ended it. */
  exited: Promise<{ code: number | null; signal: number | null }>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The pid of the launcher waiting in `dir` (its launcher.pid), once it has started; waits up to `timeoutMs` (wall). */
export async function launcherPid(dir: string, timeoutMs: number): Promise<number> {
  const file = path.join(dir, 'launcher.pid')
  const deadline = Date.now() + timeoutMs
  while (true) {
    try {
      const text = readFileSync(file, 'utf8').trim()
      if (/^[0-9]+$/.test(text)) return Number(text)
      throw new Error(`${file}: unexpected ${JSON.stringify(text)}`)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
    if (Date.now() > deadline) throw new Error(`image launcher in ${dir}: no launcher started within ${timeoutMs / 1000}s (is the component's container running livesim-launcher ${dir}?)`)
    await sleep(20)
  }
}

/** The status the launcher wrote (launcher.c, step 4), if it has. */
export function readStatus(dir: string): { code: number | null; signal: number | null } | undefined {
  let text: string
  try {
    text = readFileSync(path.join(dir, 'status'), 'utf8').trim()
  } catch {
    return undefined
  }
  const m = /^(exit|signal) ([0-9]+)$/.exec(text)
  if (!m) throw new Error(`${path.join(dir, 'status')}: unexpected ${JSON.stringify(text)}`)
  return m[1] === 'exit' ? { code: Number(m[2]), signal: null } : { code: null, signal: Number(m[2]) }
}

/**
 * Hand `req` to the launcher waiting in `dir` and return the program's pid once it runs. Waits up to
 * `timeoutMs` (wall) for the launcher's FIFO to accept (its container may start after the runtime's)
 * and for its pid file. `pollMs`: how often the status file is read for `exited`.
 */
export async function launchThrough(dir: string, req: LaunchRequest, opts: { timeoutMs: number; pollMs?: number }): Promise<Launched> {
  const bytes = encodeRequest(req)
  const fifo = path.join(dir, 'request')
  const deadline = Date.now() + opts.timeoutMs
  const late = (what: string) => new Error(`image launcher in ${dir}: ${what} within ${opts.timeoutMs / 1000}s (is the component's container running livesim-launcher ${dir}?)`)
  // O_NONBLOCK: opening a FIFO without a reader fails with ENXIO instead of blocking this thread.
  let fd: number | undefined
  while (fd === undefined) {
    try {
      fd = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENXIO') throw new Error(`image launcher: open ${fifo}: ${(e as Error).message}`, { cause: e })
      if (Date.now() > deadline) throw late('no launcher read its request FIFO')
      await sleep(10)
    }
  }
  try {
    let off = 0
    while (off < bytes.length) {
      try {
        off += writeSync(fd, bytes, off)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e
        if (Date.now() > deadline) throw late('the launcher did not read its request')
        await sleep(1)
      }
    }
  } finally {
    closeSync(fd)
  }
  let pid: number | undefined
  while (pid === undefined) {
    try {
      const text = readFileSync(path.join(dir, 'pid'), 'utf8').trim()
      if (!/^[0-9]+$/.test(text)) throw new Error(`${path.join(dir, 'pid')}: unexpected ${JSON.stringify(text)}`)
      pid = Number(text)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      if (Date.now() > deadline) throw late('the launcher wrote no pid')
      await sleep(5)
    }
  }
  const launcherPid = Number(readFileSync(path.join(dir, 'launcher.pid'), 'utf8').trim()) || undefined
  const pollMs = opts.pollMs ?? 50
  const exited = (async () => {
    while (true) {
      const s = readStatus(dir)
      if (s) return s
      // A launcher killed before it could write the status (SIGKILL) leaves none: gone is ended.
      if (!existsSync(`/proc/${pid}`) && !(launcherPid && existsSync(`/proc/${launcherPid}`))) return readStatus(dir) ?? { code: null, signal: null }
      await new Promise((r) => setTimeout(r, pollMs).unref())
    }
  })()
  return { pid, exited }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2]
  console.log(out ? buildLauncher(path.resolve(out)) : launcherBinary())
}

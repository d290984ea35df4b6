// Starting a program inside a cell. Node cannot run code between fork and exec, so a tiny /bin/sh
// prelude does what must happen before the program's first instruction (set the CPU affinity, set
// rlimits), then waits at a gate while the runtime puts it into its cell (spawnPlaced), and then
// execs the program in place: the pid the caller gets is the program's, and nothing of the program
// runs outside its cell.
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, closeSync, constants, mkdirSync, openSync, statSync } from 'node:fs'
import path from 'node:path'
import type { Writable } from 'node:stream'

export interface SpawnOptions {
  env: Record<string, string>
  cwd: string
  logFile: string
  /** Run as this user and group (the caller must be root; the supplementary groups are dropped). */
  uid?: number
  gid?: number
}

/**
 * Resolve a program name the way execvp would: a name with a slash is a path (relative ones from
 * `cwd`, the directory the program will run in), any other is looked up in `pathVar`. Returns the
 * executable regular file's path, or undefined.
 */
export function which(name: string, pathVar = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', cwd = process.cwd()): string | undefined {
  if (name.includes('/')) {
    const full = path.resolve(cwd, name)
    return isExecutableFile(full) ? full : undefined
  }
  for (const dir of pathVar.split(':')) {
    if (!dir) continue
    const full = path.join(dir, name)
    if (isExecutableFile(full)) return full
  }
  return undefined
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/**
 * Spawn `command` in its own session and process group (detached), stdout and stderr appended to
 * `logFile`, after the shell lines of `prelude` have run in the same process. A failing prelude
 * line exits with 126 before the program starts. After its prelude the shell waits, before the
 * exec, until the caller calls `releaseGate(child)`: it reads a line from fd 3, which it closes
 * before the exec; if the gate closes unreleased (the caller died), the shell exits with 126.
 * `spawnPlaced` uses the gate to put the process into its cell before the program starts.
 */
export function spawnWithPrelude(command: string[], opts: SpawnOptions, prelude: string[]): ChildProcess {
  if (command.length === 0 || !command[0]) throw new Error('live command is empty')
  const program = command[0]
  if (!which(program, opts.env.PATH ?? process.env.PATH, opts.cwd)) {
    throw new Error(`live command ${JSON.stringify(program)} not found (PATH=${opts.env.PATH ?? process.env.PATH ?? ''})`)
  }
  mkdirSync(path.dirname(opts.logFile), { recursive: true })
  const fd = openSync(opts.logFile, 'a')
  try {
    const gate = ['read -r _ <&3 || exit 126', 'exec 3<&-']
    const script = [...prelude.map((line) => `${line} || exit 126`), ...gate, 'exec "$@"'].join('\n')
    return spawn('/bin/sh', ['-c', script, 'livesim-cell', ...command], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', fd, fd, 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    })
  } finally {
    closeSync(fd)
  }
}

/**
 * Spawn `command` (after `prelude`) and hold it at its gate while `place(pid)` puts it into its cell
 * (joins the cgroups, or stops it in a frozen signals cell); then let it go on. So when this returns
 * the process is in the cell, and nothing of the program has run outside it or before a frozen cell's
 * thaw. If `place` throws, the child is killed (it never execs) and the error is thrown.
 */
export function spawnPlaced(command: string[], opts: SpawnOptions, prelude: string[], place: (pid: number) => void): ChildProcess {
  const child = spawnWithPrelude(command, opts, prelude)
  if (child.pid === undefined) return child // spawn failed; the 'error' event tells why
  try {
    place(child.pid)
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  releaseGate(child)
  return child
}

/** Let a child of spawnWithPrelude go on to exec its program. */
export function releaseGate(child: ChildProcess): void {
  const gate = child.stdio[3] as Writable | null | undefined
  if (!gate) throw new Error('releaseGate: the child has no gate (not spawned by spawnWithPrelude)')
  gate.on('error', () => undefined) // a child that died already: nothing to release
  gate.end('go\n')
}

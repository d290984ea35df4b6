// Starting a program inside a cell. Node cannot run code between fork and exec, so a tiny /bin/sh
// prelude does what must happen before the program's first instruction (join the cgroups, set the
// CPU affinity, set rlimits) and then execs the program in place: the pid the caller gets is the
// program's, and nothing of the program runs outside its cell.
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, closeSync, constants, mkdirSync, openSync } from 'node:fs'
import path from 'node:path'

export interface SpawnOptions {
  env: Record<string, string>
  cwd: string
  logFile: string
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** Resolve a program name the way execvp would, or undefined. */
export function which(name: string, pathVar = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string | undefined {
  if (name.includes('/')) return name
  for (const dir of pathVar.split(':')) {
    if (!dir) continue
    const full = path.join(dir, name)
    try {
      accessSync(full, constants.X_OK)
      return full
    } catch {
      // next
    }
  }
  return undefined
}

/**
 * Spawn `command` in its own session and process group (detached), stdout and stderr appended to
 * `logFile`, after the shell lines of `prelude` have run in the same process. A failing prelude
 * line exits with 126 before the program starts.
 */
export function spawnWithPrelude(command: string[], opts: SpawnOptions, prelude: string[]): ChildProcess {
  if (command.length === 0 || !command[0]) throw new Error('live command is empty')
  const program = command[0]
  if (!which(program, opts.env.PATH ?? process.env.PATH)) {
    throw new Error(`live command ${JSON.stringify(program)} not found (PATH=${opts.env.PATH ?? process.env.PATH ?? ''})`)
  }
  mkdirSync(path.dirname(opts.logFile), { recursive: true })
  const fd = openSync(opts.logFile, 'a')
  try {
    const script = [...prelude.map((line) => `${line} || exit 126`), 'exec "$@"'].join('\n')
    return spawn('/bin/sh', ['-c', script, 'livesim-cell', ...command], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    })
  } finally {
    closeSync(fd)
  }
}

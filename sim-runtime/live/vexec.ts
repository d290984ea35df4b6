// vexec: the supervisor that runs programs LD_PRELOAD cannot reach (Go programs, statically linked
// ones, musl) on their cell's virtual clock. It is a small C program (vexec/*.c): at the program's
// exec (ptrace) it makes the vDSO's clock functions a fast clock that reads the cell's clock state
// (the same as the shim's, shim/layout.ts) in the program, or, where it cannot, hides the vDSO so
// that the program reads its clock with system calls; a seccomp filter hands those (and the fast
// clock's hard cases) to vexec, which answers them from the clock state and holds sleeps and timed
// waits to their virtual deadline. The runtime spawns `vexec -- PROGRAM ARGS` in the program's place (runner.ts); vexec
// passes signals on and exits as the program does (docs/live.md, "Go and static programs: vexec").
//
// Compiled with the machine's C compiler on first use (-Wall -Wextra -Werror) and cached by the
// hash of its sources in this user's directory (LIVESIM_VEXEC names a prebuilt one; LIVESIM_VEXEC=off
// disables it). Whether
// it works here (seccomp user notification, ptrace: a container's seccomp profile may forbid them)
// is probed once per process with `vexec --check`. To prebuild it (for an image without a compiler):
//   node sim-runtime/live/vexec.ts [OUTPUT]
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateDir, userStateDir } from './dirs.ts'
import { SHIM_DIR } from './shim.ts'
import { which } from './spawn.ts'

/** vexec's sources: vexec/*.c and *.h, and the clock state's layout it includes (shim/layout.h). */
export const VEXEC_DIR = fileURLToPath(new URL('./vexec/', import.meta.url))

/** The C compiler's flags for vexec: warnings are errors. */
export const VEXEC_CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror']

function vexecSources(): { c: string[]; all: string[] } {
  const names = readdirSync(VEXEC_DIR).filter((n) => n.endsWith('.c') || n.endsWith('.h')).sort()
  const all = names.map((n) => path.join(VEXEC_DIR, n))
  return { c: all.filter((f) => f.endsWith('.c')), all: [...all, path.join(SHIM_DIR, 'layout.h')] }
}

/** The build cache's key: the flags and every source file. */
function vexecHash(): string {
  const h = createHash('sha256').update(VEXEC_CFLAGS.join(' '))
  for (const f of vexecSources().all) h.update(path.basename(f)).update(readFileSync(f))
  return h.digest('hex').slice(0, 16)
}

/** Compile vexec to `output` (atomically); returns `output`. */
export function buildVexec(output: string): string {
  const cc = which('cc') ?? which('gcc') ?? which('clang')
  if (!cc) throw new Error('no C compiler (cc) to build vexec')
  mkdirSync(path.dirname(output), { recursive: true })
  const tmp = `${output}.${process.pid}.tmp`
  try {
    execFileSync(cc, [...VEXEC_CFLAGS, '-o', tmp, ...vexecSources().c], { stdio: ['ignore', 'ignore', 'pipe'] })
    renameSync(tmp, output)
    return output
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string }
    throw new Error(`building vexec failed: ${err.stderr?.toString().trim() || err.message}`, { cause: e })
  } finally {
    rmSync(tmp, { force: true })
  }
}

let binary: { path?: string; why: string } | undefined

/** The compiled vexec, or why there is none. Compiles once per process (and once per machine: cached by source hash). */
export function vexecBinary(): { path?: string; why: string } {
  if (binary) return binary
  const override = process.env.LIVESIM_VEXEC
  if (override === 'off' || override === '0') return (binary = { why: 'disabled by LIVESIM_VEXEC' })
  if (override) return (binary = existsSync(override) ? { path: override, why: `LIVESIM_VEXEC=${override}` } : { why: `LIVESIM_VEXEC=${override} does not exist` })
  try {
    const file = path.join(vexecCacheDir(), `vexec-${vexecHash()}`)
    if (existsSync(file)) return (binary = { path: file, why: `cached ${file}` })
    return (binary = { path: buildVexec(file), why: `built ${file}` })
  } catch (e) {
    return (binary = { why: (e as Error).message })
  }
}

/**
 * Where built vexecs are cached: this user's private directory (dirs.ts), so that no other user can
 * plant a program there that the runtime would run in place of every Go program; searchable by others
 * (0711), for programs that run as another user (securityContext.runAsUser), as the shim's.
 */
function vexecCacheDir(): string {
  const parent = userStateDir()
  const dir = privateDir(parent, 'vexec')
  for (const d of [parent, dir]) chmodSync(d, (statSync(d).mode & 0o7777) | 0o011)
  return dir
}

/** Whether vexec works here, and its fast clock (vexecSupport). */
export interface VexecSupport {
  /** vexec, when it works here. */
  path?: string
  /** How it was found or built, or why it does not work. */
  why: string
  /** Its fast clock works here: the vDSO's clock functions read the virtual clock in the program (vexec/fast.c). */
  fast: boolean
  /** Why not, when it does not. */
  fastWhy?: string
}

let support: VexecSupport | undefined

/**
 * vexec, if it works on this machine (`vexec --check` ran a probe under it: the probe's vDSO was
 * hidden and its clock answered), or why not: no compiler, no seccomp user notification (Linux
 * < 5.5, or a seccomp profile that forbids it), ptrace not permitted; and whether its fast clock
 * works (a second probe read the virtual clock through its vDSO without a system call). Probed once
 * per process.
 */
export function vexecSupport(): VexecSupport {
  if (support) return support
  const bin = vexecBinary()
  if (!bin.path) return (support = { why: bin.why, fast: false, fastWhy: bin.why })
  const r = spawnSync(bin.path, ['--check'], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  const lines = (r.stdout ?? '').trim().split('\n')
  if (r.status === 0 && lines[0] === 'ok') {
    const fast = lines[1] === 'fast'
    return (support = { path: bin.path, why: bin.why, fast, ...(fast ? {} : { fastWhy: lines[1] ?? 'vexec --check said nothing of the fast clock' }) })
  }
  const said = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().replace(/\s+/g, ' ')
  const why = `vexec --check: ${said || r.error?.message || `exit ${r.status ?? r.signal}`}`
  return (support = { why, fast: false, fastWhy: why })
}

/** What a program needs from vexec besides its clock readings (vexecOptions). */
export interface VexecOptions {
  /** Hold nanosleep and clock_nanosleep to their virtual deadline (C programs; Go re-derives its timers from its clock). */
  sleeps: boolean
  /**
   * Hold epoll waits and futex waits with a timeout to their virtual deadline: for C programs, whose
   * glibc hands the kernel absolute deadlines on the virtual clock; for Go programs on a clock that
   * runs faster than the wall (speed < 1), whose real waits for a virtual duration would end late.
   */
  waits: boolean
  /**
   * The fast clock (where vexecSupport() says it works): the vDSO's clock functions read the virtual
   * clock in the program. Otherwise every clock reading is a system call vexec answers (~8 µs).
   */
  fast: boolean
}

/** What vexec must hold for a program of this kind (clockCoverage) on a clock of this rate (virtual ns per real ns: 1 / speed). */
export function vexecOptions(kind: 'go' | 'c', rate: number): VexecOptions {
  return { sleeps: kind === 'c', waits: kind === 'c' || rate > 1, fast: true }
}

/**
 * The command and environment that run `command` under vexec: `vexec [--sleeps] [--waits] [--no-fast] -- command…`, with
 * env's LD_PRELOAD (the shim and libfaketime) moved to LIVESIM_VEXEC_PRELOAD. vexec must read the
 * real clock itself; it hands the value on as LD_PRELOAD to a statically linked program, whose own
 * dynamically linked children then read the clock through the shim. env must carry the cell's
 * LIVESIM_CLOCK_LIMIT (VirtualClock.env()). Throws when vexec does not work here (vexecSupport()).
 */
export function vexecCommand(command: string[], env: Record<string, string>, opts: VexecOptions): { command: string[]; env: Record<string, string> } {
  const vexec = vexecSupport()
  if (!vexec.path) throw new Error(`vexec is not available: ${vexec.why}`)
  if (!env.LIVESIM_CLOCK_LIMIT) throw new Error('vexecCommand: env has no LIVESIM_CLOCK_LIMIT (the cell clock\'s env())')
  const { LD_PRELOAD: preload, ...rest } = env
  return {
    command: [vexec.path, ...(opts.sleeps ? ['--sleeps'] : []), ...(opts.waits ? ['--waits'] : []), ...(opts.fast && vexec.fast ? [] : ['--no-fast']), '--', ...command],
    env: preload ? { ...rest, LIVESIM_VEXEC_PRELOAD: preload } : rest,
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2]
  console.log(out ? buildVexec(path.resolve(out)) : (vexecBinary().path ?? vexecBinary().why))
}

// The clock shim: a small LD_PRELOAD library loaded in front of libfaketime (clock.env() puts it
// first in LD_PRELOAD), written in C in shim/ and split by concern: clock.c (the fast virtual clock,
// readings that never straddle a barrier and stop at it, libfaketime's start-up beside jemalloc),
// sleep.c (sleeps and timed condition waits end at their virtual deadline across freezes), block.c
// (calls that may block: the barrier first, blocked time kept apart from work and steal),
// stamps.c (the virtual time of every socket write), timers.c (timers), waits.c (the timeouts of
// poll, select, epoll, timed locks, futexes and sockets end at their virtual deadline) and handlers.c
// (the program's signal handlers counted, so that a wait tells a freeze's EINTR from a signal's).
// The memory it shares with the runtime is
// defined once in shim/layout.ts (layout.h is generated from it). Each concern is found by a test in
// test/live/ (docs/live.md, "The shim").
//
// The shim is compiled with the machine's C compiler on first use (-Wall -Wextra -Werror) and cached
// by the hash of its sources in this user's directory (LIVESIM_FAKETIME_SHIM names a prebuilt one; LIVESIM_FAKETIME_SHIM=off
// disables it). Without it, the problems above are back (docs/live.md). To prebuild it (for an image
// without a compiler):
//   node sim-runtime/live/shim.ts [OUTPUT.so]
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateDir, userStateDir } from './dirs.ts'
import { which } from './spawn.ts'

let cached: { path?: string; why: string } | undefined

/** The compiled shim, or why there is none. Compiles once per process (and once per machine: cached by source hash). */
export function faketimeShim(): { path?: string; why: string } {
  if (cached) return cached
  const override = process.env.LIVESIM_FAKETIME_SHIM
  if (override === 'off' || override === '0') return (cached = { why: 'disabled by LIVESIM_FAKETIME_SHIM' })
  if (override) {
    return (cached = existsSync(override) ? { path: override, why: `LIVESIM_FAKETIME_SHIM=${override}` } : { why: `LIVESIM_FAKETIME_SHIM=${override} does not exist` })
  }
  const so = path.join(shimCacheDir(), `shim-${shimHash()}.so`)
  if (existsSync(so)) return (cached = { path: so, why: `cached ${so}` })
  try {
    return (cached = { path: buildShim(so), why: `built ${so}` })
  } catch (e) {
    return (cached = { why: (e as Error).message })
  }
}

/**
 * Where built shims are cached: this user's private directory (dirs.ts), so no other user can plant
 * a library there that every live program would preload. It and its parent are searchable by others
 * (0711: no listing, no writing), because a live program may run as another user
 * (securityContext.runAsUser) and must be able to load the shim.
 */
function shimCacheDir(): string {
  const parent = userStateDir()
  const dir = privateDir(parent, 'shim')
  for (const d of [parent, dir]) chmodSync(d, (statSync(d).mode & 0o7777) | 0o011)
  return dir
}

/** The shim's sources: shim/*.c and the headers they include. */
export const SHIM_DIR = fileURLToPath(new URL('./shim/', import.meta.url))

function shimSources(): { c: string[]; all: string[] } {
  const names = readdirSync(SHIM_DIR).filter((n) => n.endsWith('.c') || n.endsWith('.h')).sort()
  const all = names.map((n) => path.join(SHIM_DIR, n))
  return { c: all.filter((f) => f.endsWith('.c')), all }
}

/** The C compiler's flags for the shim: warnings are errors; only the interposed calls are exported. */
export const SHIM_CFLAGS = ['-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror']

/** The build cache's key: the flags and every source file. */
function shimHash(): string {
  const h = createHash('sha256').update(SHIM_CFLAGS.join(' '))
  for (const f of shimSources().all) h.update(path.basename(f)).update(readFileSync(f))
  return h.digest('hex').slice(0, 16)
}

/** Compile the shim to `output` (atomically); returns `output`. */
export function buildShim(output: string): string {
  const cc = which('cc') ?? which('gcc') ?? which('clang')
  if (!cc) throw new Error('no C compiler (cc) to build the libfaketime shim')
  mkdirSync(path.dirname(output), { recursive: true })
  const tmp = `${output}.${process.pid}.tmp`
  try {
    execFileSync(cc, [...SHIM_CFLAGS, '-o', tmp, ...shimSources().c, '-ldl', '-lpthread'], { stdio: ['ignore', 'ignore', 'pipe'] })
    renameSync(tmp, output)
    return output
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string }
    throw new Error(`building the libfaketime shim failed: ${err.stderr?.toString().trim() || err.message}`, { cause: e })
  } finally {
    rmSync(tmp, { force: true })
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2]
  console.log(out ? buildShim(path.resolve(out)) : (faketimeShim().path ?? faketimeShim().why))
}

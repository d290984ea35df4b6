// Go programs for the live tests (vexec.test.ts, the conformance suite): find the machine's Go
// toolchain and build a one-file, standard-library-only program, statically (CGO_ENABLED=0) or
// linked through cgo against glibc (CGO_ENABLED=1). No network: GOPROXY=off, GOTOOLCHAIN=local.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { which } from '../../sim-runtime/live/spawn.ts'

/** Where Go is looked for besides PATH: the official tarball's place (CI images may have neither). */
const GO_PLACES = ['/usr/local/go/bin/go', '/usr/lib/go/bin/go']

/** The `go` command (PATH first, then GO_PLACES), or why there is none (for skipTitle). */
export function goToolchain(): { go?: string; why?: string } {
  const go = which('go') ?? GO_PLACES.find((p) => existsSync(p))
  if (!go) return { why: `no Go toolchain (go on PATH, ${GO_PLACES.join(', ')})` }
  const v = spawnSync(go, ['version'], { encoding: 'utf8' })
  if (v.status !== 0) return { why: `${go} version failed: ${(v.stderr || v.error?.message || '').trim()}` }
  return { go }
}

/** Why cgo cannot link here (Go needs a C compiler for CGO_ENABLED=1), or undefined: it can. */
export function cgoMissing(): string | undefined {
  return which('gcc') || which('clang') || which('cc') ? undefined : 'no C compiler for cgo'
}

/**
 * Build `source` (a main package using the standard library only) to `dir/name`; returns the path.
 * cgo: link through cgo against glibc (a dynamically linked Go program) instead of statically.
 * Go's build cache is its default (~/.cache/go-build), or a directory under tmp without a HOME.
 */
export function buildGo(go: string, dir: string, name: string, source: string, opts: { cgo: boolean }): string {
  const src = mkdtempSync(path.join(dir, `${name}-src-`))
  writeFileSync(path.join(src, 'main.go'), source)
  writeFileSync(path.join(src, 'go.mod'), `module ${name.replace(/[^A-Za-z0-9]/g, '')}\n\ngo 1.21\n`)
  const out = path.join(dir, name)
  const home = process.env.HOME && existsSync(process.env.HOME) ? process.env.HOME : undefined
  const cache = process.env.GOCACHE ?? (home ? undefined : path.join(os.tmpdir(), 'livesim-go-cache'))
  if (cache) mkdirSync(cache, { recursive: true })
  execFileSync(go, ['build', '-o', out, '.'], {
    cwd: src,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(home ? { HOME: home } : {}),
      ...(cache ? { GOCACHE: cache } : {}),
      GOPATH: process.env.GOPATH ?? path.join(home ?? os.tmpdir(), 'go'),
      CGO_ENABLED: opts.cgo ? '1' : '0',
      GOFLAGS: '-mod=mod',
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 600_000,
  })
  return out
}

// The conformance suite, Go (README.md beside this file): timers.go built by the test with the
// machine's Go toolchain, statically (CGO_ENABLED=0) and linked with glibc (CGO_ENABLED=1), both
// running in one cell of a `livesim run` at cell.speed 4. The Go runtime reads its clock through
// the vDSO or raw system calls, never through glibc: the programs are virtual only under the
// supervisor of sim-runtime/live/vexec, which the runtime starts them with.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import { afterAll, describe } from 'vitest'
import { which } from '../../../sim-runtime/live/spawn.ts'
import { skipTitle } from '../helpers.ts'
import { conformanceTests, type Program } from './harness.ts'

const CHECKS = ['time.Sleep', 'time.Sleep x5', 'time.After', 'time.Ticker x5', 'context.WithTimeout', 'net.Conn.SetReadDeadline', 'net.Conn.SetWriteDeadline']
const CALLS: Record<string, string[]> = { 'go-static': CHECKS, 'go-cgo': CHECKS }
const GO = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : which('go')
const missing = GO ? undefined : 'no Go toolchain (/usr/local/go/bin/go, or go on PATH)'

describe.skipIf(missing !== undefined)(skipTitle('conformance, Go: timers and deadlines of Go programs in virtual time', missing), () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'livesim-conformance-go-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  // The build cache in the temp directory, kept between runs like the shim's (a cold build of the
  // standard library takes a minute on two busy cores); never the user's.
  const cache = path.join(tmpdir(), `livesim-go-cache-${userInfo().uid}`)
  const build = (name: string, cgo: string): Program => {
    const out = path.join(dir, name)
    mkdirSync(cache, { recursive: true })
    execFileSync(GO!, ['build', '-o', out, path.join(import.meta.dirname, 'timers.go')], {
      env: { ...process.env, CGO_ENABLED: cgo, GOCACHE: cache, GOFLAGS: '', GO111MODULE: 'off', GOTOOLCHAIN: 'local' },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 600_000,
    })
    return { name, command: [out] }
  }
  conformanceTests('conformance-go', '1500ms', CALLS, () => [build('go-static', '0'), build('go-cgo', '1')])
})

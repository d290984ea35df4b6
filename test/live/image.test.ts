// live.image: the launcher handshake that starts a program in another container of the pod (two
// processes and a FIFO, as the sim-runtime and the image's container are on Kubernetes), and
// livesim run, which uses no images and says so once; and a runtime that starts its program through
// a launcher, as in the pod the operator builds (two processes on this machine stand for the
// runtime's and the image's containers).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findLibfaketime } from '../../sim-runtime/live/clock.ts'
import { encodeRequest, KIT_FILES, launcherBinary, launchThrough, LAUNCH_MAGIC } from '../../sim-runtime/live/launcher.ts'
import { faketimeShim } from '../../sim-runtime/live/shim.ts'
import { vexecBinary } from '../../sim-runtime/live/vexec.ts'
import { ensureLiveDeps, root } from './helpers.ts'

const work = mkdtempSync(path.join(tmpdir(), 'livesim-launcher-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

let launcher: string
beforeAll(() => {
  launcher = launcherBinary()
})

/** The launcher, started on its own in `dir` (as the image's container would start it). */
function startLauncher(dir: string, env: Record<string, string> = {}): { proc: ChildProcess; ended: Promise<{ code: number | null; stderr: string }> } {
  const proc = spawn(launcher, [dir], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  let stderr = ''
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const ended = new Promise<{ code: number | null; stderr: string }>((res) => proc.on('exit', (code) => res({ code, stderr })))
  return { proc, ended }
}

function procStat(pid: number): { state: string; pgrp: number; sid: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { state: f[0]!, pgrp: Number(f[2]), sid: Number(f[3]) }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (ok()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('image launcher handshake (two processes, a FIFO)', () => {
  it('is a static executable, so that it runs in any image', () => {
    const r = spawnSync('file', ['-L', launcher], { encoding: 'utf8' })
    if (r.status === 0) expect(r.stdout).toMatch(/statically linked|static-pie/)
    expect(readFileSync(launcher).subarray(0, 4).toString('latin1')).toBe('\x7fELF')
  })

  it('starts the program with the request\'s argv, env (over the container\'s own) and working directory, reports its pid and exit code', async () => {
    const dir = path.join(work, 'pod', '.launch', 'run1') // parents made by the launcher
    const cwd = path.join(work, 'cwd1')
    mkdirSync(cwd)
    const log = path.join(work, 'run1.log')
    // The runtime may ask before the launcher's container has started: the launcher comes second here.
    const asking = launchThrough(dir, { command: ['sh', '-c', 'echo "$1 $GREETING $(pwd) $IMAGE_ONLY"; exit 3', 'sh', 'two words'], env: { PATH: process.env.PATH!, GREETING: 'hello\nthere' }, cwd, logFile: log }, { timeoutMs: 10_000, pollMs: 5 })
    await new Promise((r) => setTimeout(r, 50))
    const l = startLauncher(dir, { IMAGE_ONLY: 'kept', GREETING: 'the request wins' })
    const launched = await asking
    expect(launched.pid).toBeGreaterThan(0)
    expect(launched.pid).not.toBe(l.proc.pid)
    expect(await launched.exited).toEqual({ code: 3, signal: null })
    expect(readFileSync(log, 'utf8')).toBe(`two words hello\nthere ${cwd} kept\n`)
    const end = await l.ended
    expect(end.code).toBe(3)
    expect(readFileSync(path.join(dir, 'launcher.pid'), 'utf8').trim()).toBe(String(l.proc.pid))
    expect(readFileSync(path.join(dir, 'status'), 'utf8')).toBe('exit 3\n')
    expect(existsSync(path.join(dir, 'request'))).toBe(false)
  })

  it('the program leads its own session and process group: SIGSTOP and SIGCONT to the group freeze and thaw it, as in a signals cell', async () => {
    const dir = path.join(work, 'run2')
    const l = startLauncher(dir)
    const launched = await launchThrough(dir, { command: ['sleep', '60'], env: { PATH: process.env.PATH! }, cwd: work, logFile: path.join(work, 'run2.log') }, { timeoutMs: 10_000, pollMs: 5 })
    const st = procStat(launched.pid)
    expect(st.pgrp).toBe(launched.pid)
    expect(st.sid).toBe(launched.pid)
    process.kill(-launched.pid, 'SIGSTOP')
    await until('the program to stop', () => procStat(launched.pid).state === 'T')
    expect(procStat(l.proc.pid!).state).not.toBe('T') // the launcher is outside the group
    process.kill(-launched.pid, 'SIGCONT')
    await until('the program to continue', () => procStat(launched.pid).state !== 'T')
    // The kubelet stopping the container signals the launcher, which passes it on to the program.
    l.proc.kill('SIGTERM')
    expect(await launched.exited).toEqual({ code: null, signal: 15 })
    expect((await l.ended).code).toBe(128 + 15)
  })

  it('a program that cannot be executed: exit 127 and the reason in its log', async () => {
    const dir = path.join(work, 'run3')
    const log = path.join(work, 'run3.log')
    const l = startLauncher(dir)
    const launched = await launchThrough(dir, { command: ['no-such-program-here'], env: { PATH: '/nonexistent' }, cwd: work, logFile: log }, { timeoutMs: 10_000, pollMs: 5 })
    expect(await launched.exited).toEqual({ code: 127, signal: null })
    expect(readFileSync(log, 'utf8')).toContain('cannot execute no-such-program-here: No such file or directory')
    expect((await l.ended).code).toBe(127)
  })

  it('refuses a malformed request with a message and exit code 125', async () => {
    const dir = path.join(work, 'run4')
    const l = startLauncher(dir)
    await until('the FIFO', () => existsSync(path.join(dir, 'request')))
    writeFileSync(path.join(dir, 'request'), `${LAUNCH_MAGIC}\0/\0/dev/null\0two\0`)
    const end = await l.ended
    expect(end.code).toBe(125)
    expect(end.stderr).toContain('livesim-launcher: request: bad argument count two')
  })

  it('no launcher: the runtime gives up after its timeout and says what it waited for', async () => {
    const dir = path.join(work, 'run5')
    await expect(launchThrough(dir, { command: ['true'], env: {}, cwd: work, logFile: '/dev/null' }, { timeoutMs: 200 })).rejects.toThrow(/no launcher read its request FIFO within 0\.2s \(is the component's container running livesim-launcher/)
  })

  it('encodes requests as NUL-separated fields and refuses NUL bytes and an empty program', () => {
    expect(encodeRequest({ command: ['a', ''], env: { X: '1' }, cwd: '/w', logFile: '/l' }).toString('latin1')).toBe(`${LAUNCH_MAGIC}\0/w\0/l\x002\0a\0\0${'1'}\0X=1\0`)
    expect(() => encodeRequest({ command: ['a\0b'], env: {}, cwd: '/', logFile: '/l' })).toThrow(/contains a NUL byte/)
    expect(() => encodeRequest({ command: [''], env: {}, cwd: '/', logFile: '/l' })).toThrow(/the program is empty/)
  })
})

describe('livesim run with live.image', () => {
  it('runs command from this machine and says once, in the log and in the results, that the image is not used', () => {
    ensureLiveDeps()
    const file = path.join(work, 'image-local.yaml')
    const out = path.join(work, 'image-local.json')
    writeFileSync(
      file,
      `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: image-local }
spec:
  endTime: 20ms
  hosts:
    - name: app
      components:
        - name: idle
          live: { image: "registry.example/tools/idle:1.0", command: [sleep, "1000"] }
        - name: idle2
          live: { image: "registry.example/tools/idle:1.0", command: [sleep, "1000"] }
`,
    )
    const r = spawnSync(process.execPath, [path.join(root, 'sim-runtime/cli/main.ts'), 'run', file, '--out', out], { cwd: work, encoding: 'utf8', timeout: 120_000 })
    expect(r.status, r.stderr).toBe(0)
    const said = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('live.image is not used by livesim run'))
    expect(said).toHaveLength(1)
    expect(said[0]).toContain('"app-0/idle (registry.example/tools/idle:1.0)","app-0/idle2 (registry.example/tools/idle:1.0)"')
    const results = JSON.parse(readFileSync(out, 'utf8')) as { hosts: Record<string, { components: Record<string, { image?: string; imageUsed?: boolean; command: string[] }>; live: { warnings: string[] } }> }
    const host = results.hosts['app-0']!
    expect(host.components.idle).toMatchObject({ image: 'registry.example/tools/idle:1.0', imageUsed: false, command: ['sleep', '1000'] })
    expect(host.live.warnings.filter((w) => w.includes('is not used here'))).toHaveLength(2)
  })
})

describe('a runtime with LIVESIM_LAUNCH_DIR: programs start through their launchers', () => {
  it('redis-server started by a launcher (the image container\'s role) is adopted into a signals cell, serves a modelled client, and is killed at the end', async () => {
    ensureLiveDeps()
    // The kit, as the pod's init container copies it (operator/simcluster/objects.ts).
    const kit = path.join(work, 'kit')
    mkdirSync(kit)
    const shim = faketimeShim().path
    const vexec = vexecBinary().path
    expect(shim, 'the clock shim').toBeDefined()
    copyFileSync(shim!, path.join(kit, KIT_FILES.shim))
    copyFileSync(findLibfaketime()!, path.join(kit, KIT_FILES.libfaketime))
    if (vexec) copyFileSync(vexec, path.join(kit, KIT_FILES.vexec))
    copyFileSync(launcher, path.join(kit, KIT_FILES.launcher))
    const launchDir = path.join(work, 'launch')
    const l = startLauncher(path.join(launchDir, 'redis'))

    const file = path.join(work, 'image-launch.yaml')
    const out = path.join(work, 'image-launch.json')
    writeFileSync(
      file,
      `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: image-launch }
spec:
  endTime: 50ms
  seed: 7
  network:
    default: { latency: 100us, bandwidth: 10Gbps }
  hosts:
    - name: db
      components:
        - name: redis
          live:
            image: "redis:7.2-bookworm"
            command: [redis-server, --bind, $(LIVESIM_BIND_ADDR), --port, "6379", --save, "", --appendonly, "no", --protected-mode, "no"]
            ports: [{ name: redis, port: 6379 }]
    - name: client
      components:
        - name: load
          model: { kind: Client, target: db/redis:redis, closedLoop: { users: 2, thinkTime: 200us }, redis: { setRatio: 0.2, keys: 100 }, timeout: 50ms }
`,
    )
    const env = { ...process.env, LIVESIM_LAUNCH_DIR: launchDir, LIVESIM_KIT_DIR: kit, LIVESIM_CELL_MODE: 'signals' }
    const r = spawnSync(process.execPath, [path.join(root, 'sim-runtime/cli/main.ts'), 'run', file, '--out', out], { cwd: work, env, encoding: 'utf8', timeout: 180_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).not.toContain('is not used by livesim run')
    const results = JSON.parse(readFileSync(out, 'utf8')) as { hosts: Record<string, { components: Record<string, Record<string, unknown>>; live?: Record<string, unknown> }> }
    const redis = results.hosts['db-0']!.components.redis!
    const pid = Number(readFileSync(path.join(launchDir, 'redis', 'pid'), 'utf8'))
    expect(redis).toMatchObject({ image: 'redis:7.2-bookworm', imageUsed: true, pid })
    expect(String(redis.clockCoverage)).toContain('dynamically linked against glibc')
    const live = results.hosts['db-0']!.live!
    expect(live.cellMode).toBe('signals')
    expect(Number(live.quanta)).toBeGreaterThan(10)
    expect(Number(live.cpuTimeNs)).toBeGreaterThan(0) // the adopted group's CPU time, from /proc
    const load = results.hosts['client-0']!.components.load as { completed?: number; errors?: number; timeouts?: number }
    expect(load.completed).toBeGreaterThan(10)
    expect(load.timeouts ?? 0).toBe(0)
    // Killed with its cell at the end of the run; the launcher ends the same way.
    expect(readFileSync(path.join(launchDir, 'redis', 'status'), 'utf8')).toBe('signal 9\n')
    expect((await l.ended).code).toBe(128 + 9)
  }, 180_000)
})

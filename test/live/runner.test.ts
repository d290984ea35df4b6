// Live components in a whole run: real redis-server and redis-benchmark processes in cells, traffic
// through the simulated network, modelled clients speaking Redis to a live server, readiness, and
// teardown. Needs libfaketime, redis-server, redis-benchmark (hack/live-deps.sh; ensureLiveDeps
// installs them when missing).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSimCluster, ValidationError } from '../../sim-runtime/api/validate.ts'
import { parseCpuCores, parseMemoryBytes } from '../../sim-runtime/api/units.ts'
import { expandVars, hostVar, LiveRunner } from '../../sim-runtime/live/runner.ts'
import { allowedCpus, parseCpuList } from '../../sim-runtime/live/runtime-cpus.ts'
import { cpuList as cpuListText } from '../../sim-runtime/live/common.ts'
import { availableParallelism } from 'node:os'
import { alive } from '../../sim-runtime/live/proc.ts'
import { userShmDir } from '../../sim-runtime/live/dirs.ts'
import { HostGroup } from '../../sim-runtime/engine/group.ts'
import type { Component } from '../../sim-runtime/components/component.ts'
import { RunFailed } from '../../sim-runtime/sync/leader.ts'
import { manifest, runProcesses, silent } from '../helpers.ts'
import { which } from '../../sim-runtime/live/spawn.ts'
import { ensureLiveDeps, skipTitle } from './helpers.ts'

const REDIS = '[redis-server, --bind, $(LIVESIM_BIND_ADDR), --port, "6379", --save, "", --appendonly, "no", --protected-mode, "no"]'
/** Host group db: a live redis-server serving port redis (6379). */
const DB = `    - name: db
      components:
        - name: redis
          live: { command: ${REDIS}, ports: [{ name: redis, port: 6379 }] }`
const header = (name: string) => `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: ${name} }
spec:`
/** A SimCluster named `name` whose spec is `spec` (YAML indented by two, starting on a new line). */
const liveCluster = (name: string, spec: string) => manifest(`${header(name)}${spec}`)
/** What a run of `m` fails with (undefined when it succeeds), its runtimes' environment from `childEnv`. */
const failureOf = (m: ReturnType<typeof liveCluster>, childEnv: () => Record<string, string>, more: Parameters<typeof runProcesses>[1] = {}) =>
  runProcesses(m, { childEnv, ...more }).then(
    () => undefined,
    (e: unknown) => e,
  )
/** Processes whose command line is exactly `args`: a teardown must leave none. */
const processesNamed = (args: string) => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() === args)

describe('live component helpers', () => {
  it('resolves commands as execvp would: names on PATH, paths from the working directory, executable regular files only', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'livesim-which-'))
    try {
      writeFileSync(path.join(dir, 'prog'), '#!/bin/sh\n', { mode: 0o755 })
      writeFileSync(path.join(dir, 'data'), 'x', { mode: 0o644 })
      mkdirSync(path.join(dir, 'sub'))
      expect(which('sh')).toMatch(/\/sh$/)
      expect(which('prog', dir)).toBe(path.join(dir, 'prog'))
      expect(which('data', dir)).toBeUndefined()
      expect(which('sub', dir)).toBeUndefined()
      expect(which('./prog', '/usr/bin', dir)).toBe(path.join(dir, 'prog'))
      expect(which('prog', '/usr/bin', dir)).toBeUndefined()
      expect(which(path.join(dir, 'data'))).toBeUndefined()
      expect(which(path.join(dir, 'sub'))).toBeUndefined()
      expect(which('/no/such/program')).toBeUndefined()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('expands $(VAR) like Kubernetes: known names, $$ escapes, unknown names stay', () => {
    const vars = { LIVESIM_BIND_ADDR: '127.100.0.1', A: 'x' }
    expect(expandVars('--bind=$(LIVESIM_BIND_ADDR)', vars)).toBe('--bind=127.100.0.1')
    expect(expandVars('$(A)$(A)-$(NOPE)-$$(A)-$$', vars)).toBe('xx-$(NOPE)-$(A)-$')
    expect(hostVar('db-0')).toBe('LIVESIM_HOST_DB_0')
    expect(hostVar('web.front-12')).toBe('LIVESIM_HOST_WEB_FRONT_12')
  })
  it('parses cell.cpus cpuset lists, and refuses CPUs this machine does not have, naming the field', () => {
    expect(parseCpuList('0', 'host db-0: cell.cpus')).toEqual([0])
    expect(parseCpuList('0-0,0', 'f')).toEqual([0])
    const last = availableParallelism() - 1
    expect(parseCpuList(`0-${last}`, 'f')).toEqual(Array.from({ length: last + 1 }, (_, i) => i))
    expect(() => parseCpuList('4096', 'host db-0: cell.cpus')).toThrow(/host db-0: cell\.cpus: CPU 4096 does not exist on this machine \(CPUs 0-\d+\)/)
    expect(() => parseCpuList('3-1', 'f')).toThrow(/"3-1" is not a CPU or a range/)
  })

  it('parses cell quantities', () => {
    expect(parseCpuCores('500m')).toBe(0.5)
    expect(parseCpuCores('2')).toBe(2)
    expect(parseCpuCores('1.5')).toBe(1.5)
    expect(parseMemoryBytes('512Mi')).toBe(512 * 1024 * 1024)
    expect(parseMemoryBytes('1G')).toBe(1e9)
    expect(() => parseMemoryBytes('lots')).toThrow(/not a memory quantity/)
    expect(() => parseMemoryBytes('1Qi')).toThrow(/unknown unit "Qi"/)
  })
  it('refuses a Client that sends to a live component without a protocol, or to a port it does not serve', () => {
    const doc = (client: string) => `${header('bad')}
  endTime: 10ms
  hosts:
${DB}
    - name: c
      components:
        - name: load
          model: { kind: Client, closedLoop: { users: 1 }, ${client} }
`
    const errors = (client: string) => {
      try {
        loadSimCluster(doc(client))
        return []
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e
        return e.issues.map((i) => `${i.path}: ${i.message}`)
      }
    }
    expect(errors('target: db/redis')).toEqual([expect.stringMatching(/^spec\.hosts\[1\]\.components\[0\]\.model\.target: .*set redis:/)])
    expect(errors('target: db/redis:memcache, redis: {}')).toEqual([expect.stringMatching(/^spec\.hosts\[1\]\.components\[0\]\.model\.target: .*no port named "memcache"; its ports are: redis/)])
    expect(errors('target: db/redis:redis, redis: { setRatio: 0.1 }')).toEqual([])
  })
})

describe('live components in a run', () => {
  let work: string
  beforeAll(() => {
    ensureLiveDeps()
    work = mkdtempSync(path.join(tmpdir(), 'livesim-runner-test-'))
  })
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it.each(['CpuTime', 'Cooperative'])('carries redis-benchmark ↔ redis-server traffic through a 200 µs link (%s clocks): every GET takes at least the round trip, and nothing is left behind', async (clock) => {
    const m = liveCluster(`live-pair-${clock.toLowerCase()}`, `
  endTime: 60ms
  network: { default: { latency: 200us } }
  hosts:
${DB}
    - name: bench
      components:
        - name: rb
          live: { command: [redis-benchmark, -h, $(LIVESIM_HOST_DB_0), -p, "6379", -t, get, -n, "40", -c, "1", --csv], clock: ${clock} }
`.replace('live: { command: [redis-server', `live: { clock: ${clock}, command: [redis-server`))
    const dir = path.join(work, `pair-${clock}`)
    const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: dir }) })
    const rb = r.hosts['bench-0']!.components.rb as Record<string, unknown>
    const redis = r.hosts['db-0']!.components.redis as Record<string, unknown>
    expect(rb.kind).toBe('Live')
    expect(rb.exitCode).toBe(0)
    expect(redis.running).toBe(true)
    expect(r.live?.cellMode).toMatch(/^(cgroup2|cgroup1|signals)$/)
    expect(r.hosts['db-0']!.live?.address).toMatch(/^127\.\d+\.\d+\.\d+$/)
    // redis-benchmark measured its GETs with the virtual clock: none can beat 2 × 200 µs.
    const csv = readFileSync(String(rb.log), 'utf8')
    const get = csv.split('\n').find((l) => l.startsWith('"GET"'))
    expect(get, csv).toBeDefined()
    const [, rps, , minMs, p50Ms] = get!.split(',').map((x) => Number(x.replace(/"/g, '')))
    expect(minMs).toBeGreaterThanOrEqual(0.4)
    expect(p50Ms).toBeGreaterThanOrEqual(0.4)
    expect(rps).toBeLessThanOrEqual(2500) // one client, ≥ 400 µs per request
    // Every byte was stamped with the virtual time its program wrote it (the shim's write stamps), and
    // a GET costs the round trip plus Redis's and redis-benchmark's few µs: not a quantum (200 µs) or
    // more per hop, as when bytes were stamped and delivered at quantum ends.
    expect(rb.unstampedBytes).toBe(0)
    expect(redis.unstampedBytes).toBe(0)
    // A hop a quantum late would put p50 at 0.6 ms or more; both clocks stay under 0.5 (measured:
    // CpuTime 0.447-0.455 ms; Cooperative 0.415-0.431, whose clock runs with the wall within a
    // quantum, so machine load moves it by a bucket of redis-benchmark's histogram).
    expect(p50Ms).toBeLessThanOrEqual(0.5)
    expect(r.hosts['db-0']!.live?.clockMode).toBe(clock)
    // The bytes went through the proxies: what the server read and wrote matches what the client side relayed.
    expect(Number(redis.bytesIn)).toBeGreaterThan(40 * 20)
    expect(Number(redis.bytesOut)).toBeGreaterThan(40 * 4)
    // Connections open and close through the simulated network: redis-benchmark's one client
    // connection (and its first CONFIG connection) were closed on both ends when it exited.
    expect(Number(redis.connections)).toBeGreaterThanOrEqual(1)
    expect(redis.closed).toBe(redis.connections)
    expect(rb.closed).toBe(rb.connections)
    // Redis's own log shows the virtual date, not today.
    expect(readFileSync(String(redis.log), 'utf8')).toMatch(/01 Jan 2024/)
    // Teardown: no program of either cell is left.
    expect(redis.pid).toBeGreaterThan(0)
    expect(rb.pid).toBeGreaterThan(0)
    expect(alive(Number(redis.pid))).toBe(false)
  }, 120_000)

  it.each([1, 2])('answers modelled Redis clients from a live redis-server, with latencies of at least the link round trip (--partition %i)', async (partition) => {
    const m = liveCluster(`live-model-${partition}`, `
  endTime: 30ms
  seed: 3
  network: { default: { latency: 100us } }
  hosts:
${DB}
    - name: c
      replicas: 2
      components:
        - name: load
          model: { kind: Client, target: db/redis, closedLoop: { users: 2, thinkTime: 100us }, redis: { setRatio: 0.5, keys: 50 }, timeout: 20ms }
`)
    const r = await runProcesses(m, { partition, childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, `model-${partition}`) }) })
    const redis = r.hosts['db-0']!.components.redis as Record<string, number>
    // The live cells synchronise every quantum (the 100 µs link) either way; the leader's barriers come
    // every 1 ms with one runtime (it steps through its windows in quanta), every quantum with two
    // (a link between runtimes is 100 µs).
    expect(r.hosts['db-0']!.live?.quanta).toBe(300)
    expect(r.sync.barriers).toBe(partition === 1 ? 30 : 300)
    let completed = 0
    for (const h of ['c-0', 'c-1']) {
      const c = r.hosts[h]!.components.load as { completed: number; errors: number; timeouts: number; latency: { p50Ns: number; meanNs: number } }
      expect(c.errors).toBe(0)
      expect(c.timeouts).toBe(0)
      expect(c.completed).toBeGreaterThan(10)
      expect(c.latency.p50Ns).toBeGreaterThanOrEqual(200_000)
      completed += c.completed
    }
    // Every reply the server sent was matched to a request; each user keeps one connection.
    expect(redis.replies).toBeGreaterThanOrEqual(completed)
    expect(redis.requests! - redis.replies!).toBeLessThanOrEqual(4)
    expect(redis.connections).toBe(4)
    expect(r.sync.causalityViolations).toBe(0)
  }, 120_000)

  it('fails clearly when a program does not listen where it must, and leaves no process behind', async () => {
    const m = liveCluster('live-deaf', `
  endTime: 10ms
  hosts:
    - name: db
      components:
        - name: sleeper
          live: { command: [sleep, "30"], ports: [{ name: p, port: 7000 }], readinessTimeout: 1s }
    - name: c
      components:
        - name: load
          model: { kind: Client, target: db/sleeper, closedLoop: { users: 1 }, redis: {} }
`)
    const dir = path.join(work, 'deaf')
    const err = await failureOf(m, () => ({ LIVESIM_WORK_DIR: dir }))
    expect(err).toBeInstanceOf(RunFailed)
    expect((err as Error).message).toMatch(/db-0\/sleeper: port p \(127\.\d+\.\d+\.\d+:7000\) did not accept connections within 1s; the program must listen on \$\(LIVESIM_BIND_ADDR\)/)
    // The sleeper was killed with its cell.
    expect(processesNamed('sleep 30')).toEqual([])
  }, 60_000)

  it('a run stopped while a program ignores SIGTERM in its terminationGracePeriod leaves none of its processes behind', async () => {
    // The program ignores SIGTERM (its children inherit that) and asks for 60 s to shut down; the run
    // is interrupted once running, so its runtime is told to stop with SIGTERM and kills it with the cell.
    const m = liveCluster('live-hurry', `
  endTime: 600s
  hosts:
    - name: a
      components:
        - name: stubborn
          live: { command: [sh, -c, 'trap "" TERM; sleep 1003 & wait'], terminationGracePeriod: 60s }
`)
    const stop = new AbortController()
    const err = await failureOf(m, () => ({ LIVESIM_WORK_DIR: path.join(work, 'hurry') }), {
      signal: stop.signal,
      statusIntervalMs: 50,
      onStatus: (s) => {
        if (s.phase === 'Running' && processesNamed('sleep 1003').length > 0) stop.abort()
      },
    })
    expect((err as Error).message).toMatch(/interrupted/)
    expect(processesNamed('sleep 1003')).toEqual([])
  }, 60_000)

  it('without the clock shim refuses Cooperative cells, naming the component, and says in the results that other cells ran without it', async () => {
    const coop = liveCluster('live-noshim-coop', `
  endTime: 10ms
  hosts:
    - name: db
      components:
        - name: sleeper
          live: { command: [sleep, "30"], clock: Cooperative }
`)
    const missing = path.join(work, 'no-such-shim.so')
    const env = (dir: string) => () => ({ LIVESIM_WORK_DIR: path.join(work, dir), LIVESIM_FAKETIME_SHIM: missing })
    const err = await failureOf(coop, env('noshim-coop'))
    expect(err).toBeInstanceOf(RunFailed)
    expect((err as Error).message).toContain(`db-0/sleeper: clock: Cooperative needs livesim's clock shim, which is not available (LIVESIM_FAKETIME_SHIM=${missing} does not exist)`)
    expect(processesNamed('sleep 30')).toEqual([])

    const cpu = liveCluster('live-noshim-cpu', `
  endTime: 10ms
  hosts:
    - name: db
      components:
        - name: sleeper
          live: { command: [sleep, "31"] }
`)
    const r = await runProcesses(cpu, { childEnv: env('noshim-cpu') })
    expect(r.hosts['db-0']!.live).toMatchObject({ clockMode: 'CpuTime', clockShim: `none: LIVESIM_FAKETIME_SHIM=${missing} does not exist` })
    const withShim = await runProcesses(cpu, { childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, 'shim-cpu') }) })
    expect((withShim.hosts['db-0']!.live as { clockShim: string }).clockShim).toMatch(/^(built|cached) .*shim-[0-9a-f]+\.so$/)
  }, 60_000)

  // The program prints the CPUs it may run on, then serves a port: the run starts once it accepts.
  const AFFINITY = `sed -n 's/^Cpus_allowed_list:[[:space:]]*/cell /p' /proc/self/status; exec redis-server --bind $(LIVESIM_BIND_ADDR) --port 6379 --save '' --appendonly no`
  const cpusHere = allowedCpus()
  it(skipTitle('places the runtime on the CPUs LIVESIM_RUNTIME_CPUS names and its cells on the others; auto does so for a Cooperative cell alone on the machine; a CpuTime cell and none stay where they are', cpusHere.length < 2 ? `one CPU allowed here (${cpusHere.join(',')})` : undefined), async (ctx) => {
    if (cpusHere.length < 2) ctx.skip()
    const all = cpuListText(cpusHere)
    const last = String(cpusHere[cpusHere.length - 1])
    const rest = cpuListText(cpusHere.slice(0, -1))
    const run = async (clock: string, env: Record<string, string>, dir: string) => {
      const m = liveCluster(`live-placement-${dir}`, `
  endTime: 100ms
  hosts:
    - name: a
      components:
        - name: show
          live: { command: [sh, -c, ${JSON.stringify(AFFINITY)}], clock: ${clock}, ports: [{ name: redis, port: 6379 }] }
`)
      const r = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: path.join(work, dir), ...env }) })
      const live = r.hosts['a-0']!.live as { cpus: string; cpusWhy: string; runtimeCpus: string }
      const log = readFileSync((r.hosts['a-0']!.components.show as { log: string }).log, 'utf8')
      return { live, runtime: live.runtimeCpus, cell: /^cell (\S+)$/m.exec(log)?.[1] }
    }
    const listed = await run('Cooperative', { LIVESIM_RUNTIME_CPUS: last }, 'place-list')
    expect(listed).toEqual({ live: { ...listed.live, cpus: rest, cpusWhy: `LIVESIM_RUNTIME_CPUS=${last}; cells on ${rest}` }, runtime: last, cell: rest })
    // auto places only when no other live runtime runs here: other test files may be running one.
    const auto = await run('Cooperative', {}, 'place-auto')
    if (/^auto: \d+ other live runtime/.test(auto.live.cpusWhy)) expect(auto).toMatchObject({ live: { cpus: 'any' }, runtime: all, cell: all })
    else expect(auto).toEqual({ live: { ...auto.live, cpus: rest, cpusWhy: `auto: a Cooperative cell; the runtime on CPU ${last}, cells on ${rest}` }, runtime: last, cell: rest })
    const frozen = await run('CpuTime', {}, 'place-cputime')
    expect(frozen).toMatchObject({ live: { cpus: 'any' }, runtime: all, cell: all })
    const none = await run('Cooperative', { LIVESIM_RUNTIME_CPUS: 'none' }, 'place-none')
    expect(none).toMatchObject({ live: { cpus: 'any', cpusWhy: 'LIVESIM_RUNTIME_CPUS=none' }, runtime: all, cell: all })
    // The leader (this process) was beside its runtime during the auto run and is back on every CPU.
    expect(allowedCpus()).toEqual(cpusHere)
  }, 60_000)

  it('fails clearly, before starting anything, on a command path that is no executable file and on a workingDir that is no directory', async () => {
    const cases: [string, string, RegExp][] = [
      ['[/no/such/program]', '', /a-0\/x: live command "\/no\/such\/program" is not an executable file \(\/no\/such\/program\)/],
      ['[./prog]', '', /a-0\/x: live command "\.\/prog" is not an executable file \(\/.*\/a-0\/prog\)/],
      ['[/tmp]', '', /a-0\/x: live command "\/tmp" is not an executable file/],
      ['[sleep, "1"]', ', workingDir: /no/such/dir', /a-0\/x: workingDir "\/no\/such\/dir" is not a directory \(\/no\/such\/dir; a relative one is taken from the host's work directory \//],
    ]
    for (const [command, extra, message] of cases) {
      const m = liveCluster('live-badcmd', `
  endTime: 10ms
  hosts:
    - name: a
      components:
        - name: x
          live: { command: ${command}${extra} }
`)
      const err = await failureOf(m, () => ({ LIVESIM_WORK_DIR: path.join(work, 'badcmd') }))
      expect(err, command).toBeInstanceOf(RunFailed)
      expect((err as Error).message).toMatch(message)
    }
  }, 60_000)

  /** A LiveRunner for `m`'s host 0 and its live components, as a runtime makes them. */
  const runnerFor = (m: ReturnType<typeof liveCluster>, dir: string) => {
    const runner = new LiveRunner(m.plan, [0], { workDir: path.join(work, dir), logger: silent })
    const comps: Component[] = []
    new HostGroup(m.plan, [0], undefined, (c, ctx) => {
      const comp = runner.factory(c, ctx)
      comps.push(comp)
      return comp
    })
    return { runner, pids: () => comps.map((c) => (c.results(0) as { pid?: number }).pid) }
  }
  const sleeperCluster = (name: string, seconds: string) => liveCluster(name, `
  endTime: 10ms
  hosts:
    - name: db
      components:
        - name: sleeper
          live: { command: [sleep, "${seconds}"] }
        - name: sleeper2
          live: { command: [sleep, "${seconds}"] }
`)

  it('has every program in its cell when start() returns, so that a teardown right after finds it; the clocks live on /dev/shm until then', async () => {
    const { runner, pids } = runnerFor(sleeperCluster('live-join', '36'), 'join')
    // The clocks of a runtime that is gone (pid.start time of no live process) are removed at start.
    const shm = existsSync('/dev/shm')
    const shmDir = shm ? path.join(userShmDir(), 'clock') : ''
    const stale = `${shmDir}/999999999.1/run-x/db-0`
    if (shm) mkdirSync(stale, { recursive: true })
    try {
      await runner.start()
      if (shm) expect(existsSync(path.dirname(path.dirname(stale)))).toBe(false)
      expect(pids().filter((pid) => pid !== undefined && alive(pid))).toHaveLength(2)
      if (runner.cellMode !== 'signals') for (const pid of pids()) expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), `pid ${pid}`).toContain('live-join.db-0')
      // The clock files, rewritten at every slice, are on the tmpfs (a write and rename on ext4 cost ~180 µs), in a directory of this user's and this runtime's.
      const limit = readFileSync(`/proc/${pids()[0]}/environ`, 'utf8').split('\0').find((e) => e.startsWith('LIVESIM_CLOCK_LIMIT='))?.slice('LIVESIM_CLOCK_LIMIT='.length)
      if (shm) expect(limit).toMatch(new RegExp(`^${shmDir}/${process.pid}\\.\\d+/run-[^/]+/db-0/faketime\\.limit$`))
      await runner.stop()
      expect(pids().filter((pid) => alive(pid!))).toEqual([])
      if (shm) expect(existsSync(path.dirname(path.dirname(limit!)))).toBe(false)
    } finally {
      await runner.stop()
    }
  }, 60_000)

  it('stops once: a second stop() (the signal handler of a runtime whose run failed) waits for the teardown the first began', async () => {
    const { runner, pids } = runnerFor(sleeperCluster('live-stop-twice', '37'), 'twice')
    try {
      await runner.start()
      let firstDone = false
      const first = runner.stop().then(() => (firstDone = true))
      await runner.stop()
      expect(firstDone).toBe(true)
      expect(pids().filter((pid) => alive(pid!))).toEqual([])
      await first
    } finally {
      await runner.stop()
    }
  }, 60_000)
})

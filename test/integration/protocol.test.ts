// Bad peers on the leader ↔ runtime protocol: each gives a clear error and ends the run as Failed
// in bounded time; the leader keeps serving and never crashes.
import http from 'node:http'
import http2 from 'node:http2'
import { afterEach, describe, expect, it } from 'vitest'
import { Leader, type LeaderOptions } from '../../sim-runtime/sync/leader.ts'
import { encodeJson, encodeTally, F_HELLO, F_PEERS, F_REPORT, encodeBarrier, FrameDecoder, decodeJson, PROTOCOL_VERSION } from '../../sim-runtime/sync/frames.ts'
import { example, runProcesses, silent } from '../helpers.ts'

const TOKEN = 'test-token-0123456789'
const leaders: Leader[] = []
const sessions: http2.ClientHttp2Session[] = []

afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy()
  for (const l of leaders.splice(0)) await l.close()
})

async function startLeader(opts: Partial<LeaderOptions> = {}) {
  const m = example('quickstart.yaml')
  const leader = new Leader({ cluster: m.cluster, plan: m.plan, token: TOKEN, baseDir: m.baseDir, logger: silent, registerTimeoutMs: 3000, barrierTimeoutMs: 3000, ...opts })
  leaders.push(leader)
  const port = await leader.listen(0, '127.0.0.1', 0)
  return { leader, port, plan: m.plan }
}

/** A hand-driven runtime: open the sync stream and collect what the leader says. */
function rawStream(port: number, token = TOKEN) {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  sessions.push(session)
  const stream = session.request({ ':method': 'POST', ':path': '/v1/sync', authorization: `Bearer ${token}` })
  stream.on('error', () => {})
  const decoder = new FrameDecoder()
  const received: { type: number; body: unknown }[] = []
  let status = 0
  let raw = ''
  stream.on('response', (h) => (status = Number(h[':status'])))
  stream.on('data', (c: Buffer) => {
    if (status !== 200) raw += c.toString()
    else for (const f of decoder.push(c)) received.push({ type: f.type, body: f.type === F_REPORT ? null : safeJson(f) })
  })
  const closed = new Promise<void>((r) => stream.on('close', () => r()))
  /** Register as a runtime (HELLO in this protocol version), then give the leader 100 ms to take it. */
  const hello = async (body: Record<string, unknown>) => {
    stream.write(encodeJson(F_HELLO, { protocol: PROTOCOL_VERSION, ...body }))
    await new Promise((r) => setTimeout(r, 100))
  }
  /** The first frame of a type the leader sent, waited for up to 5 s. */
  const frame = async (type: number) => {
    const deadline = Date.now() + 5000
    while (!received.some((f) => f.type === type) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    const f = received.find((f) => f.type === type)
    if (!f) throw new Error(`no frame of type ${type} from the leader within 5 s`)
    return f.body
  }
  return { stream, received, closed, hello, frame, status: () => status, raw: () => raw }
}

function safeJson(f: { type: number; payload: Buffer }): unknown {
  try {
    return decodeJson(f)
  } catch {
    return null
  }
}

async function failureOf(leader: Leader): Promise<string> {
  const err = await leader.run().then(
    () => {
      throw new Error('the run succeeded')
    },
    (e: Error) => e,
  )
  expect(leader.status().phase).toBe('Failed')
  return err.message
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
}

// Bounded time: the leader's register and barrier timeouts are 3 s here, so a fault that the leader
// does not turn into a failure shows as a test that times out.
describe('leader protocol faults', { timeout: 30_000 }, () => {
  it('refuses a wrong bearer token with 401 and fails the gang start with that reason', async () => {
    const { leader, port } = await startLeader()
    const c = rawStream(port, 'wrong-token')
    await c.closed
    expect(c.status()).toBe(401)
    expect(c.raw()).toContain('wrong bearer token')
    const reason = await failureOf(leader)
    expect(reason).toMatch(/gang start timed out.*hosts not registered.*wrong bearer token/)
  })

  it('cuts off a runtime that speaks another protocol version', async () => {
    const { leader, port } = await startLeader()
    const c = rawStream(port)
    c.stream.write(encodeJson(F_HELLO, { protocol: PROTOCOL_VERSION + 41, runtime: 'r1', hosts: ['web-0'] }))
    const reason = await failureOf(leader)
    expect(reason).toContain(`protocol version ${PROTOCOL_VERSION + 41} is not supported`)
    await c.closed
    expect(c.received.some((f) => JSON.stringify(f.body).includes('not supported'))).toBe(true)
  })

  it('cuts off a runtime that sends a malformed frame', async () => {
    const { leader, port } = await startLeader()
    const c = rawStream(port)
    c.stream.write(Buffer.from('this is not a frame at all'))
    expect(await failureOf(leader)).toMatch(/malformed frame: frame length \d+ is out of range/)
  })

  it('cuts off a HELLO that is not JSON or lacks hosts', async () => {
    const { leader, port } = await startLeader()
    const c = rawStream(port)
    c.stream.write(encodeJson(F_HELLO, { protocol: PROTOCOL_VERSION, runtime: 'r1', hosts: 'web-0' }))
    expect(await failureOf(leader)).toContain('HELLO.hosts must be a non-empty array')
  })

  it('fails the run when two runtimes claim the same host', async () => {
    const { leader, port } = await startLeader()
    const a = rawStream(port)
    await a.hello({ runtime: 'a', hosts: ['web-0'] })
    const b = rawStream(port)
    b.stream.write(encodeJson(F_HELLO, { protocol: PROTOCOL_VERSION, runtime: 'b', hosts: ['web-1', 'web-0'] }))
    expect(await failureOf(leader)).toContain('duplicate host web-0: already registered by runtime a')
  })

  it('fails the run when a registered runtime disconnects', async () => {
    const { leader, port } = await startLeader()
    const c = rawStream(port)
    await c.hello({ runtime: 'gone', hosts: ['db-0'] })
    c.stream.close()
    expect(await failureOf(leader)).toMatch(/runtime gone \(db-0\) disconnected/)
  })

  it('fails the run when a runtime reports the wrong epoch or messages for unknown hosts', async () => {
    const { leader, port } = await startLeader()
    const c = rawStream(port)
    await c.hello({ runtime: 'liar', hosts: ['db-0'] })
    c.stream.write(encodeBarrier(F_REPORT, 7, 0, new Float64Array(0), 0))
    expect(await failureOf(leader)).toContain('REPORT for epoch 7, expected 0')
  })

  it('peer batches: fails the gang start of a runtime that gave no peer address', async () => {
    const { leader, port, plan } = await startLeader({ sync: { mode: 'peers', treeMin: 256, fanIn: 16 } })
    const c = rawStream(port)
    await c.hello({ runtime: 'mute', hosts: plan.hosts.map((h) => h.name) })
    c.stream.write(encodeBarrier(F_REPORT, 0, 0, new Float64Array(0), 0))
    expect(await failureOf(leader)).toContain('runtime mute gave no peer address (HELLO.peerUrl)')
  })

  it('peer batches: hands out PEERS, then refuses a TALLY that names no runtime of the run', async () => {
    const { leader, port, plan } = await startLeader({ sync: { mode: 'peers', treeMin: 256, fanIn: 16 } })
    const c = rawStream(port)
    await c.hello({ runtime: 'solo', hosts: plan.hosts.map((h) => h.name), peerUrl: 'http://127.0.0.1:9' })
    c.stream.write(encodeBarrier(F_REPORT, 0, 0, new Float64Array(0), 0))
    const peers = await c.frame(F_PEERS)
    expect(peers).toEqual({ slot: 0, urls: ['http://127.0.0.1:9'], owner: plan.hosts.map(() => 0), fanIn: 0 })
    c.stream.write(encodeTally(0, Float64Array.from([5, 0, 0]), 1))
    expect(await failureOf(leader)).toContain('TALLY: entry 0 names runtime 5 of 1')
  })

  it('keeps serving status, health and metrics over HTTP/1.1 and HTTP/2 after a failure', async () => {
    const { leader, port } = await startLeader()
    rawStream(port).stream.write(Buffer.alloc(16, 0xff))
    await failureOf(leader)
    const hp = leader.httpPort!
    expect((await get(hp, '/healthz')).body).toBe('ok')
    const status = JSON.parse((await get(hp, '/v1/status')).body) as { phase: string; reason: string }
    expect(status.phase).toBe('Failed')
    expect(status.reason).toContain('malformed frame')
    expect((await get(hp, '/metrics')).body).toContain('livesim_barriers_total')
    expect((await get(hp, '/nope')).status).toBe(404)
    const s = http2.connect(`http://127.0.0.1:${port}`)
    sessions.push(s)
    const body = await new Promise<string>((resolve) => {
      let b = ''
      const r = s.request({ ':path': '/v1/status' })
      r.on('data', (d: Buffer) => (b += d))
      r.on('end', () => resolve(b))
    })
    expect(JSON.parse(body).phase).toBe('Failed')
  })
})

describe('runtime processes', () => {
  it('a runtime with a wrong token makes `livesim run` fail with the leader refusal, not a hang', async () => {
    const m = example('quickstart.yaml')
    const err = await runProcesses(m, { partition: 2, childEnv: (i): Record<string, string> => (i === 1 ? { LIVESIM_TOKEN: 'bad' } : {}) }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/runtime-1 .* exited with code 1: .*HTTP 401.*wrong bearer token/)
  })

  it('a runtime with a wrong protocol version fails the run with the version error', async () => {
    const m = example('quickstart.yaml')
    const err = (await runProcesses(m, { partition: 2, childArgs: (i) => (i === 0 ? ['--protocol-version', '9'] : []) }).catch((e: Error) => e)) as Error
    expect(err.message).toContain('protocol version 9 is not supported')
  })

  it('a runtime process killed mid-run ends the run as Failed with the reason, and no process is left', async () => {
    const m = example('quickstart.yaml')
    let killed = false
    const pids: number[] = []
    const err = (await runProcesses(
      // Long enough never to finish first: a run that went on after the kill shows as this test timing out.
      { ...m, plan: { ...m.plan, endTimeNs: 600e9 } },
      {
        partition: 3,
        statusIntervalMs: 50,
        onStatus: (s) => {
          if (!killed && s.phase === 'Running' && s.barriers > 200) {
            killed = true
            for (const line of runtimePids()) pids.push(line)
            process.kill(pids[0]!, 'SIGKILL')
          }
        },
      },
    ).catch((e: Error) => e)) as Error
    expect(killed).toBe(true)
    expect(err.message).toMatch(/exited with SIGKILL|disconnected at epoch/)
    await new Promise((r) => setTimeout(r, 200))
    for (const pid of pids) expect(alive(pid), `runtime pid ${pid} still alive`).toBe(false)
  }, 60_000)
})

/** Runtime child processes of this test process (`livesim host`). */
function runtimePids(): number[] {
  const { execFileSync } = process.getBuiltinModule('node:child_process')
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
  return out
    .split('\n')
    .filter((l) => l.includes(' host --leader'))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// LeaderElector (operator/machinery/leaderelection.ts) against a fake Lease API with optimistic
// concurrency: who leads, and when.
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { ApiError, type KubeClient } from '../../../operator/kube/rest.ts'
import { LeaderElector } from '../../../operator/machinery/leaderelection.ts'

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string }
  spec: { holderIdentity?: string | null; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number }
}

/** One Lease object behind get / create / PUT / merge-patch, with resourceVersion conflicts. */
function fakeLeases(initial?: Lease) {
  let lease: Lease | undefined = initial ? structuredClone(initial) : undefined
  let version = 1
  const puts: string[] = []
  const clone = <T>(x: T): T => structuredClone(x)
  const client = {
    async get<T>(): Promise<T> {
      if (!lease) throw new ApiError(404, 'NotFound', 'lease not found', {})
      return clone({ ...lease, metadata: { ...lease.metadata, resourceVersion: String(version) } }) as T
    },
    async create<T>(_path: string, obj: Lease): Promise<T> {
      if (lease) throw new ApiError(409, 'AlreadyExists', 'exists', {})
      lease = clone(obj)
      version++
      return clone(lease) as T
    },
    async request<T>(method: string, _path: string, body: Lease): Promise<T> {
      if (method !== 'PUT') throw new Error(`unexpected ${method}`)
      if (body.metadata.resourceVersion !== String(version)) throw new ApiError(409, 'Conflict', 'conflict', {})
      lease = clone(body)
      version++
      puts.push(String(body.spec.holderIdentity))
      return clone(lease) as T
    },
    async patch<T>(_path: string, p: { spec: Lease['spec'] }): Promise<T> {
      if (!lease) throw new ApiError(404, 'NotFound', 'lease not found', {})
      lease = { ...lease, spec: { ...lease.spec, ...p.spec } }
      version++
      return clone(lease) as T
    },
  }
  return { client: client as unknown as KubeClient, lease: () => lease, puts }
}

const micro = (ms: number) => new Date(ms).toISOString().replace('Z', '000Z')
const log = pino({ level: 'silent' })
const electors: LeaderElector[] = []
afterEach(async () => {
  for (const e of electors.splice(0)) await e.stop()
})

function elect(client: KubeClient, identity: string) {
  const events: string[] = []
  const e = new LeaderElector(client, log, {
    namespace: 'ns',
    name: 'livesim',
    identity,
    leaseDurationMs: 1_000,
    renewDeadlineMs: 600,
    retryPeriodMs: 20,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  })
  electors.push(e)
  e.start()
  return { e, events }
}

const until = async (what: string, ok: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('leader election', () => {
  it('creates the lease and leads when there is none', async () => {
    const api = fakeLeases()
    const { e, events } = elect(api.client, 'a')
    await until('a to lead', () => e.isLeader())
    expect(events).toEqual(['started'])
    expect(api.lease()?.spec.holderIdentity).toBe('a')
  })

  it('does not lead while another replica holds a fresh lease, and takes it once it expired', async () => {
    const api = fakeLeases({ metadata: { name: 'livesim', namespace: 'ns' }, spec: { holderIdentity: 'b', leaseDurationSeconds: 1, renewTime: micro(Date.now()), leaseTransitions: 0 } })
    const { e, events } = elect(api.client, 'a')
    await new Promise((r) => setTimeout(r, 200))
    expect(e.isLeader()).toBe(false)
    expect(api.puts).toEqual([])
    await until('a to take the expired lease', () => e.isLeader())
    expect(events).toEqual(['started'])
    expect(api.lease()?.spec.leaseTransitions).toBe(1)
  })

  it('a replica restarted with the identity the lease still names leads again (it does not only renew)', async () => {
    // The same pod's operator lost the lease during an API server outage, exited, and came back with
    // the same identity: the lease (not yet expired) still names it.
    const api = fakeLeases({ metadata: { name: 'livesim', namespace: 'ns' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 60, renewTime: micro(Date.now()), acquireTime: micro(Date.now() - 60_000), leaseTransitions: 1 } })
    const { e, events } = elect(api.client, 'a')
    await until('a to lead', () => e.isLeader(), 1_000)
    expect(events).toEqual(['started'])
    expect(api.lease()?.spec.leaseTransitions).toBe(1)
  })
})

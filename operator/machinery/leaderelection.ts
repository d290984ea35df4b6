// Leader election on a coordination.k8s.io Lease, as client-go does it: acquire when the lease is
// free or expired, renew every retryPeriod, give up leadership if it cannot renew within
// renewDeadline. Optimistic concurrency (resourceVersion) keeps two candidates from both winning.
// Knows nothing of SimClusters.
import type { Logger } from 'pino'
import { Gauge, type Registry } from 'prom-client'
import { isConflict, isNotFound, R, type KubeClient, type KubeObject } from '../kube/rest.ts'

interface Lease extends KubeObject {
  spec: {
    holderIdentity?: string
    leaseDurationSeconds?: number
    acquireTime?: string
    renewTime?: string
    leaseTransitions?: number
  }
}

export interface ElectionOptions {
  namespace: string
  name: string
  identity: string
  leaseDurationMs?: number
  renewDeadlineMs?: number
  retryPeriodMs?: number
  registry?: Registry
  onStartedLeading(): void
  onStoppedLeading(): void
}

const micro = (d: Date) => d.toISOString().replace('Z', '000Z')

export class LeaderElector {
  private readonly client: KubeClient
  private readonly log: Logger
  private readonly o: Required<Omit<ElectionOptions, 'registry'>>
  private leading = false
  private stopped = false
  private lastRenewMs = 0
  private timer: NodeJS.Timeout | undefined
  private readonly gauge: Gauge | undefined

  constructor(client: KubeClient, log: Logger, opts: ElectionOptions) {
    this.client = client
    this.log = log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity })
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts }
    if (opts.registry) {
      this.gauge = new Gauge({ name: 'leader_election_master_status', help: '1 if this replica is the leader.', labelNames: ['name'], registers: [opts.registry] })
      this.gauge.set({ name: opts.name }, 0)
    }
  }

  isLeader(): boolean {
    return this.leading
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return
      try {
        await this.tryAcquireOrRenew()
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'lease update failed')
      }
      if (this.leading && Date.now() - this.lastRenewMs > this.o.renewDeadlineMs) this.lose('could not renew the lease within the renew deadline')
      if (!this.stopped) this.timer = setTimeout(tick, this.o.retryPeriodMs * (this.leading ? 1 : 0.8 + Math.random() * 0.4))
    }
    void tick()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    if (this.leading) {
      // Release, so a standby takes over at once instead of after the lease duration.
      try {
        await this.client.patch(R.leases.item(this.o.namespace, this.o.name), { spec: { holderIdentity: null, leaseDurationSeconds: 1 } })
      } catch {
        // the lease will expire by itself
      }
      this.lose('stopped')
    }
  }

  private lose(why: string): void {
    if (!this.leading) return
    this.leading = false
    this.gauge?.set({ name: this.o.name }, 0)
    this.log.warn({ why }, 'stopped leading')
    this.o.onStoppedLeading()
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const path = R.leases.item(this.o.namespace, this.o.name)
    const now = new Date()
    const durationSec = Math.ceil(this.o.leaseDurationMs / 1000)
    let lease: Lease | undefined
    try {
      lease = await this.client.get<Lease>(path)
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    if (!lease) {
      try {
        await this.client.create(R.leases.collection(this.o.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: { holderIdentity: this.o.identity, leaseDurationSeconds: durationSec, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 },
        })
        return this.won()
      } catch (err) {
        if (isConflict(err)) return
        throw err
      }
    }
    const s = lease.spec
    const renewed = s.renewTime ? Date.parse(s.renewTime) : 0
    const expired = renewed + (s.leaseDurationSeconds ?? durationSec) * 1000 < now.getTime()
    const mine = s.holderIdentity === this.o.identity
    if (!mine && s.holderIdentity && !expired) {
      if (this.leading) this.lose(`lease held by ${s.holderIdentity}`)
      return
    }
    const spec = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: durationSec,
      renewTime: micro(now),
      acquireTime: mine ? s.acquireTime : micro(now),
      leaseTransitions: (s.leaseTransitions ?? 0) + (mine ? 0 : 1),
    }
    try {
      await this.client.request('PUT', path, { ...lease, spec })
      // A renewal, or a lease taken; also a lease that still names us after a restart (the same pod,
      // the same identity): renewing it without leading kept every replica from leading (the first
      // replica after an API server outage longer than the renew deadline, in the e2e test).
      this.won()
    } catch (err) {
      if (!isConflict(err)) throw err
    }
  }

  private won(): void {
    this.lastRenewMs = Date.now()
    if (this.leading) return
    this.leading = true
    this.gauge?.set({ name: this.o.name }, 1)
    this.log.info('started leading')
    this.o.onStartedLeading()
  }
}

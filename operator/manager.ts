// The operator process: informers (warm on every replica), controllers (only on the elected
// leader), /healthz, /readyz and /metrics. Losing the lease ends the process, as controller-runtime
// does, so a replica never acts on a stale view.
import type { Server } from 'node:http'
import express from 'express'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { Controller, controllerMetrics } from './machinery/controller.ts'
import { Informer } from './machinery/informer.ts'
import { LeaderElector } from './machinery/leaderelection.ts'
import { workQueueMetrics } from './machinery/workqueue.ts'
import { KubeClient, objectKey, R, type KubeObject } from './kube/rest.ts'
import { httpLeaderClient } from './simcluster/leaderclient.ts'
import { L, LEADER_HTTP_PORT, type OperatorSettings, type SimClusterObject, type SimHostObject } from './simcluster/objects.ts'
import { domainMetrics, SimClusterReconciler, SimHostReconciler, type Caches } from './simcluster/reconciler.ts'
import { SIM } from './simcluster/resources.ts'
import { SIM_SWEEPS, SL, type SimSweepObject } from './simsweep/objects.ts'
import { SimSweepReconciler } from './simsweep/reconciler.ts'

export interface ManagerOptions {
  settings: OperatorSettings
  /** Watch one namespace, or all when undefined. */
  namespace?: string
  leaseNamespace: string
  leaseName: string
  identity: string
  metricsPort: number
  healthPort: number
  bind?: string
  workers?: number
  resyncMs?: number
  leaderElection?: boolean
}

export class Manager {
  readonly registry = new Registry()
  readonly client: KubeClient
  readonly caches: Caches
  readonly simSweeps: Informer<SimSweepObject>
  readonly controllers: Controller[] = []
  private readonly log: Logger
  private readonly o: ManagerOptions
  private elector: LeaderElector | undefined
  private servers: Server[] = []
  private leading = false

  constructor(o: ManagerOptions, log: Logger, client?: KubeClient) {
    this.o = o
    this.log = log
    this.client = client ?? new KubeClient()
    collectDefaultMetrics({ register: this.registry })
    this.client.instrument(this.registry)
    const inf = <T extends KubeObject>(r: typeof R.pods, labelSelector?: string) =>
      new Informer<T>(this.client, r, log, { namespace: o.namespace, labelSelector, resyncMs: o.resyncMs ?? 300_000 })
    const owned = `${L.managedBy}=livesim-operator`
    this.caches = {
      simClusters: inf<SimClusterObject>(SIM.clusters),
      simHosts: inf<SimHostObject>(SIM.hosts),
      pods: inf(R.pods, owned),
      secrets: inf(R.secrets, owned),
      configMaps: inf(R.configMaps, owned),
      services: inf(R.services, owned),
      serviceAccounts: inf(R.serviceAccounts, owned),
    }
    this.simSweeps = inf<SimSweepObject>(SIM_SWEEPS)
    const cm = controllerMetrics(this.registry)
    const qm = workQueueMetrics(this.registry)
    const deps = {
      client: this.client,
      caches: this.caches,
      leader: httpLeaderClient(LEADER_HTTP_PORT),
      settings: o.settings,
      log,
      metrics: domainMetrics(this.registry),
      finishedAttempts: new Set<string>(),
    }
    const scr = new SimClusterReconciler(deps)
    const shr = new SimHostReconciler(deps)
    const clusters = new Controller('simcluster', (k) => scr.reconcile(k), log, cm, qm, o.workers ?? 4)
    const hosts = new Controller('simhost', (k) => shr.reconcile(k), log, cm, qm, o.workers ?? 4)
    const swr = new SimSweepReconciler({ client: this.client, caches: { simSweeps: this.simSweeps, simClusters: this.caches.simClusters, configMaps: this.caches.configMaps }, log })
    const sweeps = new Controller('simsweep', (k) => swr.reconcile(k), log, cm, qm, o.workers ?? 4)
    this.controllers.push(clusters, hosts, sweeps)

    const clusterOf = (o: KubeObject) => {
      const c = o.metadata.labels?.[L.cluster]
      if (c) clusters.queue.add(`${o.metadata.namespace}/${c}`)
    }
    const hostsOf = (sc: KubeObject) => {
      for (const h of this.caches.simHosts.list((h) => h.metadata.namespace === sc.metadata.namespace && h.spec.cluster === sc.metadata.name)) hosts.queue.add(objectKey(h))
    }
    const sweepKey = (o: KubeObject) => sweeps.queue.add(objectKey(o))
    this.simSweeps.addHandlers({ onAdd: sweepKey, onUpdate: sweepKey, onDelete: sweepKey, onResync: sweepKey })
    // A trial's changes, and its results ConfigMap's arrival, are its sweep's business.
    const sweepOf = (o: KubeObject | undefined) => {
      const s = o?.metadata.labels?.[SL.sweep]
      if (s) sweeps.queue.add(`${o!.metadata.namespace}/${s}`)
    }
    this.caches.simClusters.addHandlers({ onAdd: sweepOf, onUpdate: sweepOf, onDelete: sweepOf })
    const trialOfConfigMap = (c: KubeObject) => {
      const trial = c.metadata.labels?.[L.cluster]
      if (trial) sweepOf(this.caches.simClusters.get(`${c.metadata.namespace}/${trial}`))
    }
    this.caches.configMaps.addHandlers({ onAdd: trialOfConfigMap, onUpdate: trialOfConfigMap, onDelete: sweepOf })
    this.caches.simClusters.addHandlers({
      onAdd: (o) => clusters.queue.add(objectKey(o)),
      onUpdate: (o) => {
        clusters.queue.add(objectKey(o))
        hostsOf(o)
      },
      onDelete: (o) => clusters.queue.add(objectKey(o)),
      onResync: (o) => clusters.queue.add(objectKey(o)),
    })
    const hostKey = (o: SimHostObject) => hosts.queue.add(objectKey(o))
    this.caches.simHosts.addHandlers({ onAdd: hostKey, onUpdate: hostKey, onDelete: hostKey, onResync: hostKey })
    const podChanged = (p: KubeObject) => {
      clusterOf(p)
      const owner = p.metadata.ownerReferences?.find((r) => r.kind === 'SimHost')
      if (owner) hosts.queue.add(`${p.metadata.namespace}/${owner.name}`)
    }
    this.caches.pods.addHandlers({ onAdd: podChanged, onUpdate: podChanged, onDelete: podChanged })
    for (const c of [this.caches.secrets, this.caches.configMaps, this.caches.services, this.caches.serviceAccounts]) c.addHandlers({ onDelete: clusterOf })
  }

  private informers(): Informer<KubeObject>[] {
    return [...(Object.values(this.caches) as Informer<KubeObject>[]), this.simSweeps as unknown as Informer<KubeObject>]
  }

  private synced(): boolean {
    return this.informers().every((c) => c.hasSynced())
  }

  isLeader(): boolean {
    return this.leading
  }

  async start(): Promise<void> {
    const app = express()
    app.disable('x-powered-by')
    app.get('/healthz', (_req, res) => {
      res.type('text/plain').send('ok')
    })
    app.get('/readyz', (_req, res) => {
      if (this.synced()) res.type('text/plain').send('ok')
      else res.status(503).type('text/plain').send('caches not synced')
    })
    app.get('/metrics', async (_req, res) => {
      res.type(this.registry.contentType).send(await this.registry.metrics())
    })
    const listen = (port: number) =>
      new Promise<Server>((resolve, reject) => {
        const s = app.listen(port, this.o.bind ?? '0.0.0.0', () => resolve(s))
        s.once('error', reject)
      })
    this.servers.push(await listen(this.o.healthPort))
    if (this.o.metricsPort !== this.o.healthPort) this.servers.push(await listen(this.o.metricsPort))

    for (const c of this.informers()) c.start()
    await Promise.all(this.informers().map((c) => c.waitForSync()))
    this.log.info('caches synced')

    const lead = () => {
      this.leading = true
      for (const c of this.controllers) c.start()
      // Everything known is reconciled once on taking over.
      for (const sc of this.caches.simClusters.list()) this.controllers[0]!.queue.add(objectKey(sc))
      for (const sh of this.caches.simHosts.list()) this.controllers[1]!.queue.add(objectKey(sh))
      for (const sw of this.simSweeps.list()) this.controllers[2]!.queue.add(objectKey(sw))
    }
    if (this.o.leaderElection === false) return lead()
    this.elector = new LeaderElector(this.client, this.log, {
      namespace: this.o.leaseNamespace,
      name: this.o.leaseName,
      identity: this.o.identity,
      registry: this.registry,
      onStartedLeading: lead,
      onStoppedLeading: () => {
        this.log.error('lost the leader lease: exiting so that a fresh replica takes over')
        process.exit(1)
      },
    })
    this.elector.start()
  }

  async stop(): Promise<void> {
    await this.elector?.stop()
    await Promise.all(this.controllers.map((c) => c.stop()))
    for (const c of this.informers()) c.stop()
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(() => r(undefined)))))
  }
}

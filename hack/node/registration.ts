// The Node object and its heartbeats: register the Node with a fixed capacity and no taints,
// renew its Lease in kube-node-lease every ~10s, and post Ready conditions periodically, as a
// kubelet does.
import os from 'node:os'
import type { Logger } from 'pino'
import { isConflict, isNotFound, R, type KubeClient } from '../../operator/kube/rest.ts'
import { microNow, now, type Node, type NodeCondition } from './types.ts'

export const NODE_CAPACITY = { cpu: '16', memory: '64Gi', pods: '110', 'ephemeral-storage': '100Gi' }
export const INSTANCE_TYPE = 'livesim-process'
const LEASE_NAMESPACE = 'kube-node-lease'
const LEASE_DURATION_SECONDS = 40
const STALE_TAINTS = new Set(['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'])

export interface NodeAgentOptions {
  name: string
  hostIP: string
  leaseIntervalMs?: number
  statusIntervalMs?: number
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }

export class NodeAgent {
  private readonly client: KubeClient
  private readonly log: Logger
  private readonly name: string
  private readonly hostIP: string
  private readonly leaseIntervalMs: number
  private readonly statusIntervalMs: number
  private readonly startedAt = now()
  private kubeletVersion = 'v0.0.0'
  private nodeUid = ''
  private timers: NodeJS.Timeout[] = []

  constructor(client: KubeClient, log: Logger, opts: NodeAgentOptions) {
    this.client = client
    this.log = log
    this.name = opts.name
    this.hostIP = opts.hostIP
    this.leaseIntervalMs = opts.leaseIntervalMs ?? 10_000
    this.statusIntervalMs = opts.statusIntervalMs ?? 30_000
  }

  /** Create (or adopt) the Node, post its status and take its Lease. */
  async register(): Promise<void> {
    const version = await this.client.get<{ gitVersion: string }>('/version')
    this.kubeletVersion = version.gitVersion
    const labels = {
      'kubernetes.io/hostname': this.name,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': ARCH[process.arch] ?? process.arch,
      'node.kubernetes.io/instance-type': INSTANCE_TYPE,
    }
    let node: Node
    try {
      node = await this.client.create<Node>(R.nodes.collection(), { apiVersion: 'v1', kind: 'Node', metadata: { name: this.name, labels }, spec: {} })
      this.log.info('node registered')
    } catch (err) {
      if (!isConflict(err)) throw err
      node = await this.client.patch<Node>(R.nodes.item(undefined, this.name), { metadata: { labels } })
      this.log.info('node exists: adopted it')
    }
    this.nodeUid = node.metadata.uid ?? ''
    await this.postStatus()
    await this.renewLease()
    node = await this.removeNotReadyTaints()
    if (node.spec?.taints?.length) this.log.warn({ taints: node.spec.taints }, 'the node has taints: pods without tolerations will not be scheduled to it')
    if (node.spec?.unschedulable) this.log.warn('the node is cordoned (spec.unschedulable)')
  }

  /**
   * The API server's TaintNodesByCondition admission puts node.kubernetes.io/not-ready on every
   * new Node; the node lifecycle controller takes it off once the Node is Ready, but a minimal
   * control plane does not run that controller. The node is Ready now, so take it off here.
   */
  private async removeNotReadyTaints(): Promise<Node> {
    for (let attempt = 0; ; attempt++) {
      const node = await this.client.get<Node>(R.nodes.item(undefined, this.name))
      const taints = node.spec?.taints ?? []
      const kept = taints.filter((t) => !STALE_TAINTS.has(t.key))
      if (kept.length === taints.length) return node
      try {
        // The resourceVersion makes this a compare-and-swap on the taint list.
        const patched = await this.client.patch<Node>(R.nodes.item(undefined, this.name), { metadata: { resourceVersion: node.metadata.resourceVersion }, spec: { taints: kept } })
        this.log.info({ removed: taints.filter((t) => STALE_TAINTS.has(t.key)).map((t) => t.key) }, 'removed the not-ready taint')
        return patched
      } catch (err) {
        if (!isConflict(err) || attempt >= 5) throw err
      }
    }
  }

  start(): void {
    const every = (ms: number, what: string, fn: () => Promise<void>) => {
      const t = setInterval(() => {
        fn().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, `${what} failed`))
      }, ms)
      this.timers.push(t)
    }
    every(this.leaseIntervalMs, 'lease renewal', () => this.renewLease())
    every(this.statusIntervalMs, 'node status update', () => this.postStatus())
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
  }

  private conditions(): NodeCondition[] {
    const hb = now()
    const c = (type: string, status: 'True' | 'False', reason: string, message: string): NodeCondition => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: hb,
      lastTransitionTime: this.startedAt,
    })
    return [
      c('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'livesim process node has sufficient memory available'),
      c('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'livesim process node has no disk pressure'),
      c('PIDPressure', 'False', 'KubeletHasSufficientPID', 'livesim process node has sufficient PID available'),
      c('Ready', 'True', 'KubeletReady', 'livesim process node is posting ready status'),
    ]
  }

  private async postStatus(): Promise<void> {
    const status = {
      capacity: NODE_CAPACITY,
      allocatable: NODE_CAPACITY,
      conditions: this.conditions(),
      addresses: [
        { type: 'InternalIP', address: this.hostIP },
        { type: 'Hostname', address: this.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
      nodeInfo: {
        machineID: '',
        systemUUID: '',
        bootID: '',
        kernelVersion: os.release(),
        osImage: `livesim process node (${os.type()})`,
        containerRuntimeVersion: 'livesim-process://0.1.0',
        kubeletVersion: this.kubeletVersion,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: ARCH[process.arch] ?? process.arch,
      },
    }
    try {
      // A merge patch replaces the conditions list as a whole: we own every entry.
      await this.client.patch(R.nodes.item(undefined, this.name, 'status'), { status })
    } catch (err) {
      if (!isNotFound(err)) throw err
      this.log.warn('the Node was deleted: registering it again')
      await this.register()
    }
  }

  private async renewLease(): Promise<void> {
    const spec = { holderIdentity: this.name, leaseDurationSeconds: LEASE_DURATION_SECONDS, renewTime: microNow() }
    const item = R.leases.item(LEASE_NAMESPACE, this.name)
    try {
      await this.client.patch(item, { spec })
    } catch (err) {
      if (!isNotFound(err)) throw err
      await this.client.create(R.leases.collection(LEASE_NAMESPACE), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name, namespace: LEASE_NAMESPACE, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.name, uid: this.nodeUid }] },
        spec,
      })
      this.log.info({ lease: `${LEASE_NAMESPACE}/${this.name}` }, 'node lease created')
    }
  }
}

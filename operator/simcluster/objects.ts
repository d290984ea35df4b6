// The objects a SimCluster owns, as pure functions of the SimCluster and the operator's settings:
// the token Secret, the compiled run configuration (ConfigMap), the leader's headless Service, the
// leader Pod of each attempt, one SimHost per runtime (sync/placement.ts: a host replica each by
// default, many modelled hosts each with spec.placement), and each SimHost's runtime Pod.
// ownerReferences everywhere, so that deleting the SimCluster deletes everything.
//
// Pods of hosts that run live components (real programs) get what their cells need, in one of two
// set-ups chosen by the operator's --live-pod-security (chart value live.podSecurity); see
// docs/kubernetes.md:
// - restricted: the same restricted security context as every other pod; the runtime is told to use
//   signals cells (SIGSTOP/SIGCONT of its own children, allowed to the same uid without privilege).
// - privileged: a privileged container running as root, the only set-up the pod API offers in which
//   the container's cgroup file system is writable, so the runtime can make cgroup cells (auto mode).
// Either way: /tmp is an emptyDir (the root file system stays read-only) that holds the clock files
// and the programs' logs (LIVESIM_WORK_DIR=/tmp/<pod>) and gives the runtime (signals cells keep their
// state in $TMPDIR) and the programs a writable /tmp.
//
// A live component with `image` runs in a container of its own in the host's pod (liveSetup,
// imageContainers; docs/kubernetes.md, "Live components in their own images"): the pod shares its
// process namespace; an init container copies the runtime's clock shim, libfaketime, vexec and the
// image launcher into the emptyDir `kit` (/livesim); the component's container runs the launcher
// from there, which waits for the runtime to hand it the program through a FIFO in the shared /tmp.
import { randomBytes } from 'node:crypto'
import { formatHostList } from '../../sim-runtime/api/hostlist.ts'
import type { RunPlan } from '../../sim-runtime/api/plan.ts'
import { formatDurationNs } from '../../sim-runtime/api/units.ts'
import type { Placement } from '../../sim-runtime/sync/placement.ts'
import type { SimCluster, SimHostSpec } from '../../sim-runtime/api/schema.ts'
import type { KubeObject, OwnerReference } from '../kube/rest.ts'

export const LEADER_SYNC_PORT = 7070
export const LEADER_HTTP_PORT = 7071
export const FIELD_MANAGER = 'livesim-operator'

export const L = {
  cluster: 'livesim.dev/cluster',
  role: 'livesim.dev/role',
  host: 'livesim.dev/host',
  runtime: 'livesim.dev/runtime',
  attempt: 'livesim.dev/attempt',
  managedBy: 'app.kubernetes.io/managed-by',
} as const

/** Chart value live.podSecurity, operator flag --live-pod-security. */
export type LivePodSecurity = 'restricted' | 'privileged'

/**
 * Mount path of the scratch emptyDir of live hosts' pods. Their LIVESIM_WORK_DIR is a directory in it
 * named after the pod: one level more than a pod needs, but on the process-backed test node (hack/node,
 * which mounts no volumes) it keeps the work dirs of pods, and of runs with the same host names, apart.
 */
export const LIVE_WORK_DIR = '/tmp'

export interface OperatorSettings {
  /** Image with the livesim CLI, for leader and host pods. */
  image: string
  imagePullPolicy: string
  /** Seconds the leader keeps serving results for the operator after a run. */
  leaderLingerSec: number
  registerTimeoutSec: number
  /** Security of the pods of hosts with live components (default restricted: signals cells). */
  livePodSecurity?: LivePodSecurity
}

export type SimClusterObject = SimCluster & KubeObject & { status?: Record<string, unknown> }

export interface SimHostObject extends KubeObject {
  spec: SimHostSpec
  status?: Record<string, unknown>
}

export const names = {
  secret: (sc: string) => `${sc}-token`,
  serviceAccount: (sc: string) => `${sc}-sim`,
  config: (sc: string) => `${sc}-config`,
  results: (sc: string) => `${sc}-results`,
  service: (sc: string) => `${sc}-leader`,
  leaderPod: (sc: string, attempt: number) => `${sc}-leader-a${attempt}`,
  simHost: (sc: string, host: string) => `${sc}-${host}`,
  /** A runtime of several hosts: rt<i> never clashes with a host's name, which always holds a dash. */
  runtime: (sc: string, index: number) => `${sc}-rt${index}`,
  hostPod: (simHost: string, attempt: number) => `${simHost}-a${attempt}`,
}

export function ownerRef(o: KubeObject, controller = true): OwnerReference {
  return { apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata.name, uid: o.metadata.uid!, controller, blockOwnerDeletion: true }
}

function meta(sc: SimClusterObject, name: string, extraLabels: Record<string, string> = {}) {
  return {
    name,
    namespace: sc.metadata.namespace,
    labels: { [L.cluster]: sc.metadata.name, [L.managedBy]: FIELD_MANAGER, ...extraLabels },
    ownerReferences: [ownerRef(sc)],
  }
}

/** Simulation pods run as a ServiceAccount of their own run, with no token and no permissions. */
export function simServiceAccount(sc: SimClusterObject): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(sc, names.serviceAccount(sc.metadata.name)), automountServiceAccountToken: false }
}

export function tokenSecret(sc: SimClusterObject): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(sc, names.secret(sc.metadata.name)),
    type: 'Opaque',
    stringData: { token: randomBytes(32).toString('hex') },
  }
}

/**
 * The compiled run configuration: the validated SimCluster as the leader loads it; with
 * spec.placement also which SimHost (runtime) carries which hosts, a line each.
 */
export function configMap(sc: SimClusterObject, plan: RunPlan, placement?: Placement): KubeObject {
  const doc = { apiVersion: sc.apiVersion, kind: sc.kind, metadata: { name: sc.metadata.name }, spec: sc.spec }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { ...meta(sc, names.config(sc.metadata.name)), annotations: { 'livesim.dev/generation': String(sc.metadata.generation ?? 0) } },
    data: {
      'simcluster.json': JSON.stringify(doc),
      hosts: plan.hosts.map((h) => h.name).join('\n'),
      lookaheadNs: String(plan.lookaheadNs),
      ...(plan.placement && placement ? { runtimes: placement.runtimes.map((r, i) => `${runtimeName(sc, plan, r, i)}: ${formatHostList(r.map((h) => plan.hosts[h]!.name))}`).join('\n') } : {}),
    },
  }
}

export function leaderService(sc: SimClusterObject): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(sc, names.service(sc.metadata.name), { [L.role]: 'leader' }),
    spec: {
      clusterIP: 'None',
      selector: { [L.cluster]: sc.metadata.name, [L.role]: 'leader' },
      ports: [
        { name: 'sync', port: LEADER_SYNC_PORT, targetPort: LEADER_SYNC_PORT, protocol: 'TCP' },
        { name: 'http', port: LEADER_HTTP_PORT, targetPort: LEADER_HTTP_PORT, protocol: 'TCP' },
      ],
    },
  }
}

const restricted = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
}

/**
 * Live hosts with live.podSecurity=privileged. Writing cgroupfs needs both a read-write mount (the
 * container runtime mounts /sys/fs/cgroup read-write only for privileged containers) and uid 0 (its
 * files belong to root; a non-root uid gets no effective capabilities). The API refuses privileged
 * with allowPrivilegeEscalation false. The root file system stays read-only.
 */
const privilegedCell = {
  privileged: true,
  allowPrivilegeEscalation: true,
  runAsNonRoot: false,
  runAsUser: 0,
  runAsGroup: 0,
  readOnlyRootFilesystem: true,
}

/** Whether a host group of the SimCluster runs live components: its pods then get a cell set-up. */
export function runsLive(sc: SimClusterObject, group: string): boolean {
  return sc.spec.hosts.find((h) => h.name === group)?.components.some((c) => c.live !== undefined) ?? false
}

/** A live component that runs in its own image (live.image). */
export interface LiveImage {
  component: string
  image: string
  /** live.securityContext: numbers only with an image (validate.ts). */
  runAsUser?: number
  runAsGroup?: number
}

/** What the pods of a host group need for their live components: false when it has none. */
export interface LiveSetup {
  images: LiveImage[]
}

export function liveSetup(sc: SimClusterObject, group: string): LiveSetup | false {
  if (!runsLive(sc, group)) return false
  const comps = sc.spec.hosts.find((h) => h.name === group)!.components
  const images = comps.flatMap((c) => {
    const live = c.live
    if (live?.image === undefined) return []
    const sec = live.securityContext
    return [{ component: c.name, image: live.image, ...(typeof sec?.runAsUser === 'number' ? { runAsUser: sec.runAsUser } : {}), ...(typeof sec?.runAsGroup === 'number' ? { runAsGroup: sec.runAsGroup } : {}) }]
  })
  return { images }
}

/** Where the init container puts the runtime's clock parts and the launcher for the image containers. */
export const LIVE_KIT_DIR = '/livesim'
/** The runtime's uid and gid in the livesim image (Dockerfile, hack/image/build.ts): image containers run as it by default. */
export const IMAGE_UID = 65532
/** The FIFO directory of each image component: <work dir>/.launch/<component> (launcher.ts). */
export const launchDir = (component: string) => `${LIVE_WORK_DIR}/$(POD_NAME)/.launch/${component}`

/** The init container that fills the kit volume from the livesim image (the paths its ENV names). */
function kitInit(s: OperatorSettings): Record<string, unknown> {
  return {
    name: 'livesim-kit',
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    command: ['sh', '-c', `cp -L "$LIVESIM_FAKETIME_SHIM" "$LIVESIM_LIBFAKETIME" "$LIVESIM_VEXEC" "$LIVESIM_LAUNCHER" ${LIVE_KIT_DIR}/`],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    securityContext: restricted,
    volumeMounts: [{ name: 'kit', mountPath: LIVE_KIT_DIR }],
  }
}

/**
 * The container of each image component: the launcher from the kit as its command (the image's
 * ENTRYPOINT and CMD are not used), the shared /tmp at the same path as in the runtime's container
 * (work dirs, logs, clock files and FIFOs have one path in both), restricted, running as the
 * component's securityContext or else as the runtime's uid (a signals cell can stop only processes
 * of its own uid unless the runtime is root), with the cell's resources.
 */
function imageContainers(setup: LiveSetup, resources: Record<string, unknown>): Record<string, unknown>[] {
  return setup.images.map((i) => ({
    name: `live-${i.component}`,
    image: i.image,
    command: [`${LIVE_KIT_DIR}/livesim-launcher`, launchDir(i.component)],
    env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    resources,
    securityContext: { ...restricted, runAsUser: i.runAsUser ?? IMAGE_UID, runAsGroup: i.runAsGroup ?? IMAGE_UID },
    volumeMounts: [
      { name: 'work', mountPath: LIVE_WORK_DIR },
      { name: 'kit', mountPath: LIVE_KIT_DIR, readOnly: true },
    ],
  }))
}

function tokenEnv(sc: SimClusterObject) {
  return { name: 'LIVESIM_TOKEN', valueFrom: { secretKeyRef: { name: names.secret(sc.metadata.name), key: 'token' } } }
}

export function leaderPod(sc: SimClusterObject, attempt: number, s: OperatorSettings): KubeObject {
  const name = names.leaderPod(sc.metadata.name, attempt)
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta(sc, name, { [L.role]: 'leader', [L.attempt]: String(attempt) }),
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: names.serviceAccount(sc.metadata.name),
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'leader',
          image: s.image,
          imagePullPolicy: s.imagePullPolicy,
          command: ['livesim'],
          args: [
            'leader',
            '--from-env',
            'LIVESIM_SIMCLUSTER',
            '--bind',
            '$(POD_IP)',
            '--port',
            String(LEADER_SYNC_PORT),
            '--http-port',
            String(LEADER_HTTP_PORT),
            '--register-timeout',
            String(s.registerTimeoutSec),
            '--linger',
            String(s.leaderLingerSec),
            '--exit-on-ack',
          ],
          env: [
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            tokenEnv(sc),
            { name: 'LIVESIM_SIMCLUSTER', valueFrom: { configMapKeyRef: { name: names.config(sc.metadata.name), key: 'simcluster.json' } } },
          ],
          ports: [
            { name: 'sync', containerPort: LEADER_SYNC_PORT },
            { name: 'http', containerPort: LEADER_HTTP_PORT },
          ],
          readinessProbe: { httpGet: { path: '/healthz', port: LEADER_HTTP_PORT }, periodSeconds: 5 },
          resources: { requests: { cpu: '200m', memory: '128Mi' }, limits: { memory: '1Gi' } },
          securityContext: restricted,
        },
      ],
    },
  }
}

/** The SimHost of runtime `index` of a placement: named after its host when it carries one. */
export function runtimeName(sc: SimClusterObject, plan: RunPlan, hosts: readonly number[], index: number): string {
  return hosts.length === 1 ? names.simHost(sc.metadata.name, plan.hosts[hosts[0]!]!.name) : names.runtime(sc.metadata.name, index)
}

/** The status summary of a placement. */
export function placementStatus(p: Placement): { runtimes: number; hostsPerRuntimeMax: number; cutLatency: string } {
  return { runtimes: p.runtimes.length, hostsPerRuntimeMax: p.hostsPerRuntimeMax, cutLatency: Number.isFinite(p.cutLatencyNs) ? formatDurationNs(p.cutLatencyNs) : 'none' }
}

/**
 * The SimHost of runtime `index` carrying `hosts`: simHost's when it is one host; else no cell (a
 * runtime of many modelled hosts gets the default resources) and the hosts as a host list.
 */
export function simRuntime(sc: SimClusterObject, plan: RunPlan, hosts: readonly number[], index: number, leaderUrl: string, attempt: number): SimHostObject {
  if (hosts.length === 1) return simHost(sc, plan, hosts[0]!, leaderUrl, attempt)
  const spec: SimHostSpec = { cluster: sc.metadata.name, hosts: formatHostList(hosts.map((h) => plan.hosts[h]!.name)), hostCount: hosts.length, leader: leaderUrl, attempt }
  return {
    apiVersion: 'livesim.dev/v1alpha1',
    kind: 'SimHost',
    metadata: meta(sc, names.runtime(sc.metadata.name, index), { [L.runtime]: `rt${index}` }),
    spec,
  }
}

export function simHost(sc: SimClusterObject, plan: RunPlan, hostIndex: number, leaderUrl: string, attempt: number): SimHostObject {
  const h = plan.hosts[hostIndex]!
  const spec: SimHostSpec = { cluster: sc.metadata.name, host: h.name, group: h.group, index: h.replica, hostCount: 1, leader: leaderUrl, attempt }
  if (h.spec.cell) spec.cell = h.spec.cell
  return {
    apiVersion: 'livesim.dev/v1alpha1',
    kind: 'SimHost',
    metadata: meta(sc, names.simHost(sc.metadata.name, h.name), { [L.host]: h.name }),
    spec,
  }
}

/** The runtime pod of a SimHost (one host, or a runtime's hosts); `live`: the host runs live components (runsLive), and which run in their own images (liveSetup). */
export function hostPod(sh: SimHostObject, s: OperatorSettings, liveOrSetup: boolean | LiveSetup = false): KubeObject {
  const live = liveOrSetup !== false
  const images = typeof liveOrSetup === 'object' && liveOrSetup.images.length > 0 ? liveOrSetup : undefined
  const attempt = sh.spec.attempt ?? 1
  const name = names.hostPod(sh.metadata.name, attempt)
  const cell = sh.spec.cell
  const quantities: Record<string, string> = {}
  if (cell?.cpu) quantities.cpu = cell.cpu
  if (cell?.memory) quantities.memory = cell.memory
  const privileged = live && s.livePodSecurity === 'privileged'
  const env: Record<string, unknown>[] = [{ name: 'LIVESIM_TOKEN', valueFrom: { secretKeyRef: { name: names.secret(sh.spec.cluster), key: 'token' } } }]
  if (live) {
    // auto: the runtime takes the strongest mode the pod permits (cgroup2, cgroup1, else signals).
    // Programs in image containers live in cgroups outside the runtime's: only signals cells reach them.
    env.push(
      { name: 'LIVESIM_CELL_MODE', value: privileged && !images ? 'auto' : 'signals' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'LIVESIM_WORK_DIR', value: `${LIVE_WORK_DIR}/$(POD_NAME)` },
    )
  }
  if (images) env.push({ name: 'LIVESIM_LAUNCH_DIR', value: `${LIVE_WORK_DIR}/$(POD_NAME)/.launch` }, { name: 'LIVESIM_KIT_DIR', value: LIVE_KIT_DIR })
  // The cell's resources as requests and limits: a simulated host gets what it asked for. With image
  // containers, the programs' containers get them and the runtime keeps the default request.
  const cellResources = Object.keys(quantities).length ? { requests: quantities, limits: quantities } : undefined
  const runtimeResources = (!images && cellResources) || { requests: { cpu: '100m', memory: '64Mi' } }
  const mounts = [{ name: 'work', mountPath: LIVE_WORK_DIR }, ...(images ? [{ name: 'kit', mountPath: LIVE_KIT_DIR, readOnly: true }] : [])]
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: sh.metadata.namespace,
      labels: {
        [L.cluster]: sh.spec.cluster,
        [L.role]: 'host',
        ...(sh.spec.host !== undefined ? { [L.host]: sh.spec.host } : {}),
        ...(sh.metadata.labels?.[L.runtime] !== undefined ? { [L.runtime]: sh.metadata.labels[L.runtime] } : {}),
        [L.attempt]: String(attempt),
        [L.managedBy]: FIELD_MANAGER,
      },
      ownerReferences: [ownerRef(sh)],
    },
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: names.serviceAccount(sh.spec.cluster),
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: privileged ? { seccompProfile: { type: 'RuntimeDefault' } } : { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      ...(images ? { shareProcessNamespace: true, initContainers: [kitInit(s)] } : {}),
      containers: [
        {
          name: 'runtime',
          image: s.image,
          imagePullPolicy: s.imagePullPolicy,
          command: ['livesim'],
          args: ['host', '--leader', sh.spec.leader ?? '', '--hosts', sh.spec.hosts ?? sh.spec.host ?? '', '--runtime-id', name, '--connect-timeout', String(s.registerTimeoutSec)],
          env,
          resources: runtimeResources,
          securityContext: privileged ? privilegedCell : restricted,
          ...(live ? { volumeMounts: mounts } : {}),
        },
        ...(images ? imageContainers(images, cellResources ?? { requests: { cpu: '100m', memory: '64Mi' } }) : []),
      ],
      ...(live ? { volumes: [{ name: 'work', emptyDir: {} }, ...(images ? [{ name: 'kit', emptyDir: {} }] : [])] } : {}),
    },
  }
}

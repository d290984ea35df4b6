// The parts of the core/v1 Pod and Node API the process-backed node reads and writes.
import type { KubeObject } from '../../operator/kube/rest.ts'

export interface ObjectFieldSelector {
  fieldPath: string
}
export interface KeySelector {
  name: string
  key: string
  optional?: boolean
}
export interface EnvVar {
  name: string
  value?: string
  valueFrom?: {
    fieldRef?: ObjectFieldSelector
    secretKeyRef?: KeySelector
    configMapKeyRef?: KeySelector
    resourceFieldRef?: { resource: string; containerName?: string }
  }
}
export interface EnvFromSource {
  prefix?: string
  configMapRef?: { name: string; optional?: boolean }
  secretRef?: { name: string; optional?: boolean }
}

export interface Probe {
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] }
  tcpSocket?: { port: number | string; host?: string }
  exec?: { command?: string[] }
  grpc?: { port: number }
  initialDelaySeconds?: number
  periodSeconds?: number
  timeoutSeconds?: number
  successThreshold?: number
  failureThreshold?: number
}

export interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  workingDir?: string
  env?: EnvVar[]
  envFrom?: EnvFromSource[]
  ports?: { name?: string; containerPort: number; protocol?: string }[]
  readinessProbe?: Probe
  livenessProbe?: Probe
  startupProbe?: Probe
  /** Only on init containers: Always makes it a sidecar. */
  restartPolicy?: string
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never'

export interface ContainerState {
  waiting?: { reason: string; message?: string }
  running?: { startedAt: string }
  terminated?: {
    exitCode: number
    signal?: number
    reason: string
    message?: string
    startedAt?: string
    finishedAt: string
    containerID?: string
  }
}

export interface ContainerStatus {
  name: string
  image: string
  imageID: string
  containerID?: string
  ready: boolean
  started: boolean
  restartCount: number
  state: ContainerState
  lastState: ContainerState
}

export interface PodCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  lastTransitionTime?: string
  lastProbeTime?: string | null
}

export interface Pod extends KubeObject {
  spec: {
    nodeName?: string
    serviceAccountName?: string
    automountServiceAccountToken?: boolean
    restartPolicy?: RestartPolicy
    terminationGracePeriodSeconds?: number
    hostNetwork?: boolean
    containers: Container[]
    initContainers?: Container[]
    readinessGates?: { conditionType: string }[]
  }
  status?: {
    phase?: string
    podIP?: string
    startTime?: string
    conditions?: PodCondition[]
    containerStatuses?: ContainerStatus[]
    initContainerStatuses?: ContainerStatus[]
  }
}

export interface NodeCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason: string
  message: string
  lastHeartbeatTime: string
  lastTransitionTime: string
}

export interface Node extends KubeObject {
  spec?: { taints?: { key: string; effect: string; value?: string }[]; unschedulable?: boolean }
  status?: { conditions?: NodeCondition[] }
}

/** RFC 3339 with seconds precision, as the API server writes metav1.Time. */
export function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** RFC 3339 with microseconds, the format of metav1.MicroTime (Lease renewTime). */
export function microNow(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

// A container's environment and command line, resolved the way the kubelet does it:
// envFrom first, then env in order, each value able to refer to earlier variables as $(VAR);
// command and args are then expanded against the complete environment.
import { isNotFound, R, type KubeClient, type KubeObject } from '../../operator/kube/rest.ts'
import type { Container, Pod } from './types.ts'

/**
 * Kubernetes $(VAR) expansion (k8s.io/kubernetes/third_party/forked/golang/expansion):
 * $(NAME) becomes the value of NAME when it is defined and stays as written otherwise; $$ is an
 * escaped $ (so $$(NAME) gives the literal $(NAME)); any other $ is kept.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = ''
  let i = 0
  while (i < input.length) {
    const c = input[i]!
    if (c !== '$' || i + 1 >= input.length) {
      out += c
      i++
      continue
    }
    const next = input[i + 1]!
    if (next === '$') {
      out += '$'
      i += 2
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2)
      if (close < 0) {
        // unterminated: "$(" is kept and scanning goes on after it
        out += '$('
        i += 2
        continue
      }
      const name = input.slice(i + 2, close)
      const value = name ? lookup(name) : undefined
      out += value ?? `$(${name})`
      i = close + 1
    } else {
      out += c + next
      i += 2
    }
  }
  return out
}

/** Where the pod runs: what fieldRefs can name besides the pod's own fields. */
export interface PodPlacement {
  podIP: string
  hostIP: string
}

/** The value of a downward-API fieldRef, or an Error for a path we do not support. */
export function fieldRefValue(pod: Pod, fieldPath: string, where: PodPlacement): string | Error {
  const md = pod.metadata
  const keyed = /^metadata\.(labels|annotations)\['([^']*)'\]$/.exec(fieldPath)
  if (keyed) {
    const map = keyed[1] === 'labels' ? md.labels : md.annotations
    return map?.[keyed[2]!] ?? ''
  }
  switch (fieldPath) {
    case 'metadata.name':
      return md.name
    case 'metadata.namespace':
      return md.namespace ?? 'default'
    case 'metadata.uid':
      return md.uid ?? ''
    case 'spec.nodeName':
      return pod.spec.nodeName ?? ''
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? ''
    case 'status.podIP':
    case 'status.podIPs':
      return where.podIP
    case 'status.hostIP':
    case 'status.hostIPs':
      return where.hostIP
    default:
      return new Error(`fieldRef ${fieldPath} is not supported by the livesim process node`)
  }
}

interface DataObject extends KubeObject {
  data?: Record<string, string>
  binaryData?: Record<string, string>
}

/** Secrets and ConfigMaps of one namespace, fetched once per container start. */
class Lookups {
  private readonly cache = new Map<string, Promise<DataObject | undefined>>()
  private readonly client: KubeClient
  private readonly namespace: string
  constructor(client: KubeClient, namespace: string) {
    this.client = client
    this.namespace = namespace
  }

  /** The object's data decoded to strings, or undefined when the object does not exist. */
  async data(kind: 'secret' | 'configmap', name: string): Promise<Record<string, string> | undefined> {
    const key = `${kind}/${name}`
    let p = this.cache.get(key)
    if (!p) {
      const res = kind === 'secret' ? R.secrets : R.configMaps
      p = this.client.get<DataObject>(res.item(this.namespace, name)).catch((err: unknown) => {
        if (isNotFound(err)) return undefined
        throw err
      })
      this.cache.set(key, p)
    }
    const obj = await p
    if (!obj) return undefined
    const out: Record<string, string> = {}
    if (kind === 'secret') {
      for (const [k, v] of Object.entries(obj.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8')
    } else {
      for (const [k, v] of Object.entries(obj.binaryData ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8')
      Object.assign(out, obj.data ?? {})
    }
    return out
  }
}

/** A missing Secret/ConfigMap or key, a forbidden field: the kubelet's CreateContainerConfigError. */
export class ConfigError extends Error {}

/**
 * The container's own environment (envFrom + env), with `base` visible to $(VAR) references but
 * not included in the result. Throws ConfigError when a non-optional reference cannot be resolved.
 */
export async function containerEnv(client: KubeClient, pod: Pod, c: Container, where: PodPlacement, base: Record<string, string> = {}): Promise<Record<string, string>> {
  const ns = pod.metadata.namespace ?? 'default'
  const lookups = new Lookups(client, ns)
  const env: Record<string, string> = {}
  const lookup = (name: string) => (Object.hasOwn(env, name) ? env[name] : Object.hasOwn(base, name) ? base[name] : undefined)

  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef
    if (!ref) continue
    const kind = from.secretRef ? 'secret' : 'configmap'
    const data = await lookups.data(kind, ref.name)
    if (!data) {
      if (ref.optional) continue
      throw new ConfigError(`${kind} "${ref.name}" not found`)
    }
    for (const [k, v] of Object.entries(data)) if (!k.includes('=')) env[(from.prefix ?? '') + k] = v
  }

  for (const e of c.env ?? []) {
    const vf = e.valueFrom
    if (!vf) {
      env[e.name] = expand(e.value ?? '', lookup)
      continue
    }
    if (vf.fieldRef) {
      const v = fieldRefValue(pod, vf.fieldRef.fieldPath, where)
      if (v instanceof Error) throw new ConfigError(v.message)
      env[e.name] = v
    } else if (vf.secretKeyRef || vf.configMapKeyRef) {
      const ref = (vf.secretKeyRef ?? vf.configMapKeyRef)!
      const kind = vf.secretKeyRef ? 'secret' : 'configmap'
      const data = await lookups.data(kind, ref.name)
      const v = data?.[ref.key]
      if (v === undefined) {
        if (ref.optional) continue
        throw new ConfigError(data ? `couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name}` : `${kind} "${ref.name}" not found`)
      }
      env[e.name] = v
    } else {
      throw new ConfigError(`env ${e.name}: only fieldRef, secretKeyRef and configMapKeyRef are supported by the livesim process node`)
    }
  }
  return env
}

/**
 * The program and its arguments. Without images there is no entrypoint: a container needs a
 * command (or args, taken as the whole command line). `livesim` runs this checkout's CLI on the
 * node's own Node.js.
 */
export function commandLine(c: Container, env: Record<string, string>, livesimCli: string): { file: string; args: string[] } {
  const lookup = (name: string) => (Object.hasOwn(env, name) ? env[name] : undefined)
  const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => expand(a, lookup))
  if (argv.length === 0) throw new ConfigError(`container ${c.name} has no command: images are not run by the livesim process node`)
  if (argv[0] === 'livesim') return { file: process.execPath, args: [livesimCli, ...argv.slice(1)] }
  return { file: argv[0]!, args: argv.slice(1) }
}

// A small JSON REST client for the Kubernetes API: authentication and TLS come from
// @kubernetes/client-node's KubeConfig; requests, patches and watch streams go over node:https
// so that the machinery above (informers, leader election) controls timeouts and reconnection.
// Knows nothing of SimClusters.
import http from 'node:http'
import https from 'node:https'
import { KubeConfig } from '@kubernetes/client-node'
import { Counter, type Registry } from 'prom-client'

export interface KubeObject {
  apiVersion?: string
  kind?: string
  metadata: {
    name: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    generation?: number
    labels?: Record<string, string>
    annotations?: Record<string, string>
    ownerReferences?: OwnerReference[]
    deletionTimestamp?: string
    creationTimestamp?: string
    finalizers?: string[]
    [k: string]: unknown
  }
  [k: string]: unknown
}

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

export interface KubeList<T> {
  metadata: { resourceVersion: string; continue?: string }
  items: T[]
}

export class ApiError extends Error {
  readonly status: number
  readonly reason: string
  readonly body: unknown
  constructor(status: number, reason: string, message: string, body: unknown) {
    super(message)
    this.status = status
    this.reason = reason
    this.body = body
  }
}

export const isNotFound = (e: unknown) => e instanceof ApiError && e.status === 404
export const isConflict = (e: unknown) => e instanceof ApiError && e.status === 409
export const isGone = (e: unknown) => e instanceof ApiError && e.status === 410

export type PatchType = 'merge' | 'json' | 'apply' | 'strategic'
const PATCH_CONTENT: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
  strategic: 'application/strategic-merge-patch+json',
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  object: T
}

export interface WatchHandle {
  abort(): void
  done: Promise<void>
}

export class KubeClient {
  readonly kc: KubeConfig
  private readonly server: URL
  private requests: Counter | undefined
  /** Requests sent, by verb: what the operator-scale benchmark reads. */
  readonly counts = new Map<string, number>()

  constructor(kc?: KubeConfig) {
    if (kc) {
      this.kc = kc
    } else {
      this.kc = new KubeConfig()
      this.kc.loadFromDefault()
    }
    const cluster = this.kc.getCurrentCluster()
    if (!cluster) throw new Error('no current cluster in the kubeconfig')
    this.server = new URL(cluster.server)
  }

  /** Count requests in a registry as rest_client_requests_total{method,code} (client-go's name). */
  instrument(registry: Registry): void {
    this.requests = new Counter({ name: 'rest_client_requests_total', help: 'API requests by method and status code.', labelNames: ['method', 'code'], registers: [registry] })
  }

  private async options(method: string, path: string, headers: Record<string, string>): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = {
      method,
      protocol: this.server.protocol,
      hostname: this.server.hostname,
      port: this.server.port,
      path: this.server.pathname.replace(/\/$/, '') + path,
      headers: { accept: 'application/json', ...headers },
    }
    await this.kc.applyToHTTPSOptions(opts)
    return opts
  }

  private count(method: string, code: number | string): void {
    this.counts.set(method, (this.counts.get(method) ?? 0) + 1)
    this.requests?.inc({ method, code: String(code) })
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json', timeoutMs = 30_000): Promise<T> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    const opts = await this.options(method, path, payload === undefined ? {} : { 'content-type': contentType, 'content-length': String(Buffer.byteLength(payload)) })
    const lib = this.server.protocol === 'https:' ? https : http
    return new Promise<T>((resolve, reject) => {
      const req = lib.request(opts, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          const status = res.statusCode ?? 0
          this.count(method, status)
          let parsed: unknown = text
          try {
            parsed = text ? JSON.parse(text) : undefined
          } catch {
            // not JSON: keep the text
          }
          if (status >= 200 && status < 300) return resolve(parsed as T)
          const st = parsed as { reason?: string; message?: string } | undefined
          reject(new ApiError(status, st?.reason ?? String(status), `${method} ${path}: ${status} ${st?.message ?? text.slice(0, 300)}`, parsed))
        })
        res.on('error', reject)
      })
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs / 1000}s`)))
      req.on('error', (err) => {
        this.count(method, '<error>')
        reject(err)
      })
      if (payload !== undefined) req.write(payload)
      req.end()
    })
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path)
  }

  create<T>(collectionPath: string, obj: unknown): Promise<T> {
    return this.request<T>('POST', collectionPath, obj)
  }

  patch<T>(path: string, patch: unknown, type: PatchType = 'merge', query = ''): Promise<T> {
    return this.request<T>('PATCH', path + query, patch, PATCH_CONTENT[type])
  }

  delete(path: string, body?: unknown): Promise<unknown> {
    return this.request('DELETE', path, body)
  }

  /**
   * Stream watch events from `path` (a collection path with ?watch=1 added here). Resolves `done`
   * when the server closes the stream; rejects on a transport error, a stall (no bytes for
   * stallMs), or an ERROR event (410 Gone becomes an ApiError with status 410).
   */
  watch<T>(path: string, query: Record<string, string>, onEvent: (e: WatchEvent<T>) => void, stallMs: number): WatchHandle {
    const qs = new URLSearchParams({ ...query, watch: '1', allowWatchBookmarks: 'true' }).toString()
    let req: http.ClientRequest | undefined
    let aborted = false
    const done = (async () => {
      const opts = await this.options('GET', `${path}?${qs}`, {})
      const lib = this.server.protocol === 'https:' ? https : http
      await new Promise<void>((resolve, reject) => {
        let stallTimer: NodeJS.Timeout | undefined
        const arm = () => {
          if (stallTimer) clearTimeout(stallTimer)
          stallTimer = setTimeout(() => req?.destroy(new Error(`watch ${path}: no data for ${stallMs / 1000}s`)), stallMs)
        }
        req = lib.request(opts, (res) => {
          this.count('WATCH', res.statusCode ?? 0)
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => {
              if (stallTimer) clearTimeout(stallTimer)
              const text = Buffer.concat(chunks).toString()
              reject(new ApiError(res.statusCode ?? 0, 'WatchFailed', `watch ${path}: ${res.statusCode} ${text.slice(0, 300)}`, text))
            })
            return
          }
          let buf = ''
          arm()
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            arm()
            buf += chunk
            let nl: number
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim()
              buf = buf.slice(nl + 1)
              if (!line) continue
              let ev: WatchEvent<T>
              try {
                ev = JSON.parse(line) as WatchEvent<T>
              } catch {
                req?.destroy(new Error(`watch ${path}: undecodable event`))
                return
              }
              if (ev.type === 'ERROR') {
                const st = ev.object as unknown as { code?: number; reason?: string; message?: string }
                req?.destroy(new ApiError(st.code ?? 500, st.reason ?? 'Error', `watch ${path}: ${st.message ?? 'error event'}`, st))
                return
              }
              onEvent(ev)
            }
          })
          res.on('end', () => {
            if (stallTimer) clearTimeout(stallTimer)
            resolve()
          })
          res.on('error', (err) => {
            if (stallTimer) clearTimeout(stallTimer)
            reject(err)
          })
        })
        req.on('error', (err) => {
          if (stallTimer) clearTimeout(stallTimer)
          if (aborted) resolve()
          else reject(err)
        })
        arm()
        req.end()
      })
    })()
    return {
      abort: () => {
        aborted = true
        req?.destroy()
      },
      done,
    }
  }
}

/** API paths of a resource type. */
export class Resource {
  readonly group: string
  readonly version: string
  readonly plural: string
  readonly kind: string
  readonly namespaced: boolean

  constructor(group: string, version: string, plural: string, kind: string, namespaced = true) {
    this.group = group
    this.version = version
    this.plural = plural
    this.kind = kind
    this.namespaced = namespaced
  }

  get apiVersion(): string {
    return this.group ? `${this.group}/${this.version}` : this.version
  }

  collection(namespace?: string): string {
    const base = this.group ? `/apis/${this.group}/${this.version}` : `/api/${this.version}`
    return this.namespaced && namespace ? `${base}/namespaces/${namespace}/${this.plural}` : `${base}/${this.plural}`
  }

  item(namespace: string | undefined, name: string, sub = ''): string {
    return `${this.collection(namespace)}/${encodeURIComponent(name)}${sub ? `/${sub}` : ''}`
  }
}

export const R = {
  pods: new Resource('', 'v1', 'pods', 'Pod'),
  services: new Resource('', 'v1', 'services', 'Service'),
  secrets: new Resource('', 'v1', 'secrets', 'Secret'),
  serviceAccounts: new Resource('', 'v1', 'serviceaccounts', 'ServiceAccount'),
  configMaps: new Resource('', 'v1', 'configmaps', 'ConfigMap'),
  events: new Resource('', 'v1', 'events', 'Event'),
  nodes: new Resource('', 'v1', 'nodes', 'Node', false),
  namespaces: new Resource('', 'v1', 'namespaces', 'Namespace', false),
  leases: new Resource('coordination.k8s.io', 'v1', 'leases', 'Lease'),
}

export function objectKey(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name
}

// A pod's way to the API server: a bound ServiceAccount token (TokenRequest, as the kubelet's
// projected kube-api-access volume gets it), written with the cluster's address and CA into a
// per-pod kubeconfig that the containers find through KUBECONFIG. The files of the in-cluster
// layout (token, ca.crt, namespace) are written next to it.
import { mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import { isNotFound, type KubeClient, type KubeObject } from '../../operator/kube/rest.ts'
import { ConfigError } from './env.ts'
import type { Pod } from './types.ts'

/** How pods reach the API server: the node's own view of the cluster. */
export interface ApiServerInfo {
  server: string
  host: string
  port: string
  caPem: string | undefined
  insecure: boolean
}

interface TokenRequestStatus {
  status: { token: string; expirationTimestamp: string }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`
  await writeFile(tmp, text, { mode: 0o600 })
  await rename(tmp, file)
}

/** Whether the pod gets API credentials: a ServiceAccount and automount not turned off (pod first, then ServiceAccount). */
async function wantsToken(client: KubeClient, pod: Pod): Promise<string | undefined> {
  const sa = pod.spec.serviceAccountName
  if (!sa || pod.spec.automountServiceAccountToken === false) return undefined
  if (pod.spec.automountServiceAccountToken === true) return sa
  try {
    const ns = pod.metadata.namespace ?? 'default'
    const obj = await client.get<KubeObject & { automountServiceAccountToken?: boolean }>(`/api/v1/namespaces/${ns}/serviceaccounts/${encodeURIComponent(sa)}`)
    return obj.automountServiceAccountToken === false ? undefined : sa
  } catch (err) {
    if (isNotFound(err)) throw new ConfigError(`serviceaccount "${sa}" not found`)
    throw err
  }
}

export class PodCredentials {
  private readonly client: KubeClient
  private readonly api: ApiServerInfo
  private readonly pod: Pod
  private readonly dir: string
  private readonly log: Logger
  private ready: Promise<string | undefined> | undefined
  private refreshTimer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(client: KubeClient, api: ApiServerInfo, pod: Pod, dir: string, log: Logger) {
    this.client = client
    this.api = api
    this.pod = pod
    this.dir = dir
    this.log = log
  }

  /** The kubeconfig path for the pod's containers, or undefined when the pod gets no token. */
  kubeconfig(): Promise<string | undefined> {
    this.ready ??= this.setUp().catch((err: unknown) => {
      this.ready = undefined // try again on the next container start
      throw err
    })
    return this.ready
  }

  stop(): void {
    this.stopped = true
    if (this.refreshTimer) clearTimeout(this.refreshTimer)
  }

  private async setUp(): Promise<string | undefined> {
    const sa = await wantsToken(this.client, this.pod)
    if (!sa) return undefined
    await mkdir(path.join(this.dir, 'serviceaccount'), { recursive: true })
    await this.refresh(sa)
    return path.join(this.dir, 'kubeconfig')
  }

  private async refresh(sa: string): Promise<void> {
    const ns = this.pod.metadata.namespace ?? 'default'
    const md = this.pod.metadata
    // 3607s is what the kubelet asks for; the API server may extend such tokens (to a year).
    const tr = await this.client.create<TokenRequestStatus>(`/api/v1/namespaces/${ns}/serviceaccounts/${encodeURIComponent(sa)}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: md.name, uid: md.uid } },
    })
    const token = tr.status.token
    const saDir = path.join(this.dir, 'serviceaccount')
    const tokenFile = path.join(saDir, 'token')
    await writeAtomic(tokenFile, token)
    await writeAtomic(path.join(saDir, 'namespace'), ns)
    if (this.api.caPem) await writeAtomic(path.join(saDir, 'ca.crt'), this.api.caPem)
    const cluster = this.api.caPem
      ? `    certificate-authority-data: ${Buffer.from(this.api.caPem).toString('base64')}\n`
      : this.api.insecure
        ? '    insecure-skip-tls-verify: true\n'
        : ''
    // `token` for clients that read it once (@kubernetes/client-node); `tokenFile` lets client-go
    // (kubectl, Go programs) pick up refreshed tokens.
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: livesim',
      '  cluster:',
      `    server: ${this.api.server}`,
      cluster.trimEnd(),
      'users:',
      `- name: ${sa}`,
      '  user:',
      `    token: ${token}`,
      `    tokenFile: ${tokenFile}`,
      'contexts:',
      '- name: livesim',
      '  context:',
      '    cluster: livesim',
      `    user: ${sa}`,
      `    namespace: ${ns}`,
      'current-context: livesim',
      '',
    ]
      .filter((l) => l !== '')
      .join('\n')
    await writeAtomic(path.join(this.dir, 'kubeconfig'), kubeconfig + '\n')
    // Refresh at 80% of the lifetime (as the kubelet does), at least hourly.
    const ttlMs = Date.parse(tr.status.expirationTimestamp) - Date.now()
    this.scheduleRefresh(sa, Math.max(10_000, Math.min(ttlMs * 0.8, 3_600_000)))
  }

  private scheduleRefresh(sa: string, inMs: number): void {
    if (this.stopped) return
    this.refreshTimer = setTimeout(() => {
      this.refresh(sa).catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'service account token refresh failed; retrying in 30s')
        this.scheduleRefresh(sa, 30_000)
      })
    }, inMs)
    this.refreshTimer.unref()
  }
}

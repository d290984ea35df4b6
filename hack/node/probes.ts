// Container probes (httpGet, tcpSocket, exec) run against the pod's IP, with the kubelet's
// defaults and thresholds. A Prober reports each change of its verdict.
import { spawn } from 'node:child_process'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type { Container, Probe } from './types.ts'

export interface ProbeTarget {
  podIP: string
  container: Container
  env: Record<string, string>
  cwd: string
}

function resolvePort(port: number | string, c: Container): number {
  if (typeof port === 'number') return port
  if (/^\d+$/.test(port)) return Number(port)
  const named = c.ports?.find((p) => p.name === port)
  if (!named) throw new Error(`no container port named ${port}`)
  return named.containerPort
}

/** Run a probe once: resolves true on success, false on failure (never rejects). */
export async function probeOnce(p: Probe, t: ProbeTarget): Promise<boolean> {
  const timeoutMs = (p.timeoutSeconds ?? 1) * 1000
  try {
    if (p.httpGet) {
      const g = p.httpGet
      const https_ = g.scheme?.toUpperCase() === 'HTTPS'
      const headers: Record<string, string> = { 'user-agent': 'kube-probe/livesim' }
      for (const h of g.httpHeaders ?? []) headers[h.name] = h.value
      const opts = { host: g.host || t.podIP, port: resolvePort(g.port, t.container), path: g.path ?? '/', headers, timeout: timeoutMs, rejectUnauthorized: false }
      return await new Promise<boolean>((resolve) => {
        const req = (https_ ? https : http).get(opts, (res) => {
          res.resume()
          const code = res.statusCode ?? 0
          resolve(code >= 200 && code < 400)
        })
        req.on('timeout', () => req.destroy(new Error('timeout')))
        req.on('error', () => resolve(false))
      })
    }
    if (p.tcpSocket) {
      const port = resolvePort(p.tcpSocket.port, t.container)
      return await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: p.tcpSocket!.host || t.podIP, port, timeout: timeoutMs })
        s.on('connect', () => {
          s.destroy()
          resolve(true)
        })
        s.on('timeout', () => {
          s.destroy()
          resolve(false)
        })
        s.on('error', () => resolve(false))
      })
    }
    if (p.exec?.command?.length) {
      const [file, ...args] = p.exec.command
      return await new Promise<boolean>((resolve) => {
        const child = spawn(file!, args, { env: t.env, cwd: t.cwd, stdio: 'ignore', timeout: timeoutMs, killSignal: 'SIGKILL' })
        child.on('error', () => resolve(false))
        child.on('exit', (code) => resolve(code === 0))
      })
    }
  } catch {
    return false
  }
  // grpc or an empty probe: not supported, counted as success so the pod is not held back.
  return true
}

/**
 * Periodic probing with the kubelet's semantics: the first run after initialDelaySeconds, then
 * every periodSeconds; the verdict turns true after successThreshold consecutive successes and
 * false after failureThreshold consecutive failures. `onChange` sees each change of verdict.
 */
export class Prober {
  private readonly probe: Probe
  private readonly target: ProbeTarget
  private readonly onChange: (ok: boolean) => void
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private verdict: boolean | undefined
  private successes = 0
  private failures = 0

  constructor(probe: Probe, target: ProbeTarget, onChange: (ok: boolean) => void) {
    this.probe = probe
    this.target = target
    this.onChange = onChange
  }

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000)
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => void this.run(), ms)
  }

  private async run(): Promise<void> {
    const ok = await probeOnce(this.probe, this.target)
    if (this.stopped) return
    if (ok) {
      this.successes++
      this.failures = 0
    } else {
      this.failures++
      this.successes = 0
    }
    let next = this.verdict
    if (ok && this.successes >= (this.probe.successThreshold ?? 1)) next = true
    if (!ok && this.failures >= (this.probe.failureThreshold ?? 3)) next = false
    if (next !== undefined && next !== this.verdict) {
      this.verdict = next
      this.onChange(next)
    }
    this.schedule((this.probe.periodSeconds ?? 10) * 1000)
  }
}

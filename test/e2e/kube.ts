// kubectl and helm against the e2e cluster, and waiting helpers.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { inject } from 'vitest'

export const root = path.join(import.meta.dirname, '..', '..')

/**
 * True when the tests run against the cluster in KUBECONFIG (LIVESIM_USE_EXISTING=1) rather than the
 * local control plane and the process-backed node, whose processes some tests reach into.
 */
export const existingCluster = (): boolean => inject('existingCluster')

/**
 * `title`, or on an existing cluster `title (skipped: why; LIVESIM_USE_EXISTING=1)`: for a test that
 * needs the local control plane's or the process-backed node's processes, with it.skipIf(existingCluster()).
 */
export function localOnly(title: string, why: string): string {
  return existingCluster() ? `${title} (skipped: ${why}; LIVESIM_USE_EXISTING=1)` : title
}

export function env(): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: inject('kubeconfig'), PATH: `${inject('binDir')}:${process.env.PATH}` }
}

export interface Run {
  status: number | null
  stdout: string
  stderr: string
}

export function run(cmd: string, args: string[], input?: string, timeoutMs = 120_000): Run {
  const r = spawnSync(cmd, args, { cwd: root, env: env(), encoding: 'utf8', input, timeout: timeoutMs })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}

export function kubectl(...args: string[]): string {
  const r = run('kubectl', args)
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

export function kubectlIn(input: string, ...args: string[]): Run {
  return run('kubectl', args, input)
}

export function getJson<T = Record<string, unknown>>(...args: string[]): T {
  return JSON.parse(kubectl(...args, '-o', 'json')) as T
}

export async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 120_000, everyMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
}

export function namespace(name: string): string {
  run('kubectl', ['delete', 'namespace', name, '--wait=true', '--timeout=120s'])
  kubectl('create', 'namespace', name)
  return name
}

/** A manifest from examples/ with a new name and, optionally, a new end time. */
export function exampleAs(file: string, name: string, endTime?: string): string {
  const { readFileSync } = process.getBuiltinModule('node:fs')
  let text = readFileSync(path.join(root, 'examples', file), 'utf8').replace(/^ {2}name: .*$/m, `  name: ${name}`)
  if (endTime) text = text.replace(/^ {2}endTime: .*$/m, `  endTime: ${endTime}`)
  return text
}

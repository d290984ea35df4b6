// Shared test helpers: load manifests, run them through the real leader and runtime processes.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import { loadSimCluster } from '../sim-runtime/api/validate.ts'
import { runLocal, type LocalRunOptions } from '../sim-runtime/run/local.ts'
import type { SimResults } from '../sim-runtime/sync/results.ts'

export const root = path.join(import.meta.dirname, '..')
export const silent = pino({ level: 'silent' })

export function example(name: string) {
  const file = path.join(root, 'examples', name)
  return { ...loadSimCluster(readFileSync(file, 'utf8'), { source: file, baseDir: path.dirname(file) }), baseDir: path.dirname(file) }
}

export function manifest(text: string) {
  return { ...loadSimCluster(text, { baseDir: root }), baseDir: root }
}

export async function runProcesses(
  m: ReturnType<typeof example>,
  opts: Partial<Omit<LocalRunOptions, 'cluster' | 'plan' | 'baseDir' | 'logger'>> = {},
): Promise<SimResults> {
  return runLocal({ cluster: m.cluster, plan: m.plan, baseDir: m.baseDir, logger: silent, ...opts })
}

/**
 * `base` with each `find` replaced: a manifest of a validation table, one mistake at a time. Each
 * `find` must occur exactly once in the text so far (else the table itself is wrong).
 */
export function replaceOnce(base: string, ...replacements: [find: string, replace: string][]): string {
  let text = base
  for (const [find, replace] of replacements) {
    const count = text.split(find).length - 1
    if (count !== 1) throw new Error(`test bug: ${JSON.stringify(find)} occurs ${count} times in the base manifest`)
    text = text.replace(find, () => replace)
  }
  return text
}

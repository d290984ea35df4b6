// Helpers shared by the cell backends: naming, stale clean-up, limits formatting.
import { readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { alive, selfStarttime, sleep } from './proc.ts'

/** Format a CPU list for cpuset.cpus / taskset: [0,1,2,5] → "0-2,5". */
export function cpuList(cpus: number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return parts.join(',')
}

/** Top directory of every livesim cell, under the runtime's own cgroup (or state directory). */
export const LIVESIM_DIR = 'livesim'

let runtimeName: string | undefined
/**
 * Directory name of this runtime process: "<pid>.<start time in clock ticks>". The start time tells
 * a dead runtime's directory from ours when the pid has been reused.
 */
export function runtimeDirName(): string {
  runtimeName ??= `${process.pid}.${selfStarttime()}`
  return runtimeName
}

/** True when a runtime directory name belongs to a runtime that is no longer running. */
export function isStaleRuntime(name: string): boolean {
  const m = /^(\d+)\.(\d+)$/.exec(name)
  if (!m) return false // not ours to judge
  if (name === runtimeDirName()) return false
  return !alive(Number(m[1]), Number(m[2]))
}

/** Entries of a directory, [] when it does not exist. */
export function entries(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
  } catch {
    return []
  }
}

/** rmdir, retrying while the kernel still reports the cgroup busy; true when gone. */
export async function removeDir(dir: string, timeoutMs = 2000): Promise<boolean> {
  const start = performance.now()
  while (true) {
    try {
      rmdirSync(dir)
      return true
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return true
      if (code === 'ENOTEMPTY' || performance.now() - start > timeoutMs) return false
      await sleep(5)
    }
  }
}

export function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  return err.code ? `${err.code} ${err.message}` : String(e)
}

/**
 * Why a probe could not write a cgroup, without the probe's own path (which names our pid): the same
 * text on every run, fit for a test's name or a status line.
 */
export function probeDenial(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'EACCES' || code === 'EPERM') return `${code}: needs root, or a cgroup delegated to this user`
  if (code === 'EROFS') return 'EROFS: mounted read-only'
  return errorText(e)
}

/** Move process `pid` into the cgroup directory `dir` of cell `cell` (cgroup v1 or v2). */
export function joinCgroup(cell: string, dir: string, pid: number): void {
  try {
    writeFileSync(path.join(dir, 'cgroup.procs'), String(pid))
  } catch (e) {
    throw new Error(`cell ${cell}: cannot move process ${pid} into ${dir}: ${errorText(e)}`, { cause: e })
  }
}

// The conformance suite's harness (README.md beside it): runs real programs as live components of
// one host in a real `livesim run` (runLocal, the code path of the CLI), reads the JSON lines each
// program printed to its log (<workDir>/<host>/<component>.log), and judges them: every timeout or
// timer must end within [deadline, deadline + quantum] of virtual time, on the virtual clock.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { beforeAll, expect, it } from 'vitest'
import { DEFAULT_BASE_EPOCH_MS } from '../../../sim-runtime/live/clock.ts'
import type { SimResults } from '../../../sim-runtime/sync/results.ts'
import { manifest, runProcesses } from '../../helpers.ts'
import { ensureLiveDeps } from '../helpers.ts'
import { PENDING } from './pending.ts'

/** The host of every conformance run. */
export const HOST = 'probe'
/**
 * The host's CPU speed factor: its clock runs at 1/SPEED of the wall while its cell is thawed, so a
 * timeout that expires on the wall clock ends at a quarter of its virtual deadline, and every
 * quantum takes at least SPEED × its length of wall time (the slowdown is at least SPEED).
 */
export const SPEED = 4
/** The sync quantum: a timer may fire up to one quantum late (frozen at its deadline, it wakes at the next thaw). */
export const QUANTUM = '1ms'
/** Slowdown (wall s per virtual s) a run must have for its checks to mean anything. */
export const MIN_SLOWDOWN = 3

/** One line a program printed: a check's result (askedNs, gotNs), or why it has none (error, hung). */
export interface Check {
  call: string
  askedNs?: number
  gotNs?: number
  /** Deadlines one after another in the measured span: each may be up to a quantum late. */
  waits?: number
  /**
   * Granularity of the timeouts the program hands to the system for this call (1 ms where a runtime
   * rounds them to poll's or epoll's milliseconds): natively, each deadline may be that much late.
   */
  resolutionNs?: number
  /**
   * CPU time (real ns) the program spent in the measured span besides waiting: its own work, which
   * the clock counts at 1/SPEED (an interpreter's after a fork, an event loop's). Added to the bound.
   */
  cpuNs?: number
  /** The program's clock at the end of the check, epoch ns: a date of the run's virtual time. */
  clockNs?: number
  /** How the call returned, when that was not its timeout. */
  ret?: string
  error?: string
  hung?: string
}

export interface Program {
  /** Component name: its log is <workDir>/probe-0/<name>.log. */
  name: string
  command: string[]
  env?: Record<string, string>
}

export interface ConformanceRun {
  /** undefined when the run failed (then `failure` says why). */
  results: SimResults | undefined
  failure: string | undefined
  slowdown: number
  quantumNs: number
  endTimeNs: number
  /** Every result line, keyed by `<program>/<call>`. */
  checks: Map<string, Check[]>
  /** The end of each program's log, for messages about checks with no result. */
  logTail: Map<string, string>
}

/** YAML of a one-host SimCluster running `programs` side by side in one cell. */
export function conformanceManifest(name: string, programs: Program[], endTime: string): string {
  const comps = programs.map((p) => {
    const env = Object.entries(p.env ?? {}).map(([k, v]) => `{ name: ${k}, value: ${JSON.stringify(v)} }`)
    return `        - name: ${p.name}
          live: { command: ${JSON.stringify(p.command)}${env.length ? `, env: [${env.join(', ')}]` : ''} }`
  })
  return `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: ${name} }
spec:
  endTime: ${endTime}
  sync: { quantum: ${QUANTUM} }
  hosts:
    - name: ${HOST}
      cell: { speed: ${SPEED} }
      components:
${comps.join('\n')}
`
}

/** Parse a program's log: its JSON lines with a `call`, other lines ignored. */
export function parseChecks(text: string): Check[] {
  const out: Check[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const j = JSON.parse(line) as Check
      if (typeof j.call === 'string') out.push(j)
    } catch {
      // a line cut off by the end of the run
    }
  }
  return out
}

/** Run `programs` in one conformance SimCluster named `name`, for `endTime` of virtual time. */
export async function runConformance(name: string, programs: Program[], endTime: string): Promise<ConformanceRun> {
  ensureLiveDeps()
  const m = manifest(conformanceManifest(name, programs, endTime))
  const work = mkdtempSync(path.join(tmpdir(), `livesim-${name}-`))
  try {
    let results: SimResults | undefined
    let failure: string | undefined
    try {
      results = await runProcesses(m, { childEnv: () => ({ LIVESIM_WORK_DIR: work }) })
    } catch (e) {
      failure = (e as Error).message
    }
    const checks = new Map<string, Check[]>()
    const logTail = new Map<string, string>()
    for (const p of programs) {
      let text = ''
      try {
        text = readFileSync(path.join(work, `${HOST}-0`, `${p.name}.log`), 'utf8')
      } catch {
        text = '(no log)'
      }
      logTail.set(p.name, text.slice(-600))
      for (const c of parseChecks(text)) {
        const key = `${p.name}/${c.call}`
        checks.set(key, [...(checks.get(key) ?? []), c])
      }
    }
    return { results, failure, slowdown: results?.wall.slowdown ?? NaN, quantumNs: m.plan.quantumNs, endTimeNs: m.plan.endTimeNs, checks, logTail }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

const ms = (ns: number) => `${(ns / 1e6).toFixed(3)} ms`
const BASE_NS = DEFAULT_BASE_EPOCH_MS * 1e6

/**
 * What is wrong with the check `key` (`<program>/<call>`) of run `r`, or undefined when it is right:
 * it returned by its timeout, after asked and at most `waits` quanta later (and `waits` steps of the
 * program's own timeout resolution), measured on a clock that reads the run's virtual time. The message names the call, asked, got, the quantum and the slowdown.
 */
export function problemOf(r: ConformanceRun, key: string): string | undefined {
  const at = `(quantum ${ms(r.quantumNs)}, slowdown ${r.slowdown})`
  const lines = r.checks.get(key)
  const program = key.slice(0, key.indexOf('/'))
  if (!lines?.length) {
    const why = r.failure ? `the run failed: ${r.failure}` : 'the program printed no result for it (it ended, or the run did, before it)'
    return `${key}: no result ${at}: ${why}; end of its log: ${r.logTail.get(program) ?? ''}`
  }
  if (lines.length > 1) return `${key}: ${lines.length} results, expected one ${at}: ${lines.map((l) => JSON.stringify(l)).join(' ')}`
  const c = lines[0]!
  if (c.error) return `${key}: could not run ${at}: ${c.error}`
  if (c.hung) return `${key}: asked ${ms(c.askedNs ?? NaN)}, got no return (${c.hung}) ${at}`
  const asked = c.askedNs!
  const got = c.gotNs!
  const work = (c.cpuNs ?? 0) / SPEED
  const latest = asked + (c.waits ?? 1) * (r.quantumNs + (c.resolutionNs ?? 0)) + work
  const notes = [
    ...(c.resolutionNs ? [`the program's timeouts are in steps of ${ms(c.resolutionNs)}`] : []),
    ...(c.cpuNs ? [`its own CPU time in the span, ${ms(c.cpuNs)}, is ${ms(work)} of virtual time`] : []),
  ]
  const head = `${key}: asked ${ms(asked)}, got ${ms(got)}, allowed [${ms(asked)}, ${ms(latest)}]${notes.length ? ` (${notes.join('; ')})` : ''} ${at}`
  if (c.ret) return `${head}: the call did not time out: ${c.ret}`
  if (got < asked) return `${head}: early by ${ms(asked - got)}`
  if (got > latest) return `${head}: late by ${ms(got - asked)}`
  const clock = c.clockNs ?? NaN
  if (!(clock >= BASE_NS && clock <= BASE_NS + r.endTimeNs)) {
    return `${head}: measured on a clock that is not the run's virtual one (it read ${new Date(clock / 1e6).toISOString()}, the run spans ${new Date(BASE_NS / 1e6).toISOString()} + ${ms(r.endTimeNs)})`
  }
  return undefined
}

/** A table of every check of `r` (asked, got, within bounds), for the test output. */
export function table(r: ConformanceRun, keys: string[], pending: readonly string[]): string {
  const rows = keys.map((k) => {
    const c = r.checks.get(k)?.[0]
    const p = problemOf(r, k)
    const verdict = p === undefined ? 'ok' : pending.includes(k) ? 'FAIL (pending)' : 'FAIL'
    const got = c?.gotNs !== undefined ? ms(c.gotNs) : c?.hung ? 'hung' : c?.error ? 'error' : '-'
    return `  ${k.padEnd(64)} ${(c?.askedNs !== undefined ? ms(c.askedNs) : '-').padStart(13)} ${got.padStart(13)}  ${verdict}${p && c?.ret ? ` (${c.ret})` : ''}`
  })
  return [`  ${'check'.padEnd(64)} ${'asked'.padStart(13)} ${'got'.padStart(13)}  within [asked, asked + quantum]?`, ...rows].join('\n')
}

/**
 * The tests of one conformance run: the run itself (it must succeed at a slowdown of at least
 * MIN_SLOWDOWN, printed), that it reported no call missing from `calls` (per program), and one test per call,
 * skipped visibly while the call is in PENDING. LIVESIM_CONFORMANCE_PENDING=1 runs those too (to see
 * which now pass, and what the others get).
 */
export function conformanceTests(name: string, endTime: string, calls: Record<string, string[]>, programs: () => Promise<Program[]> | Program[]): void {
  const keys = Object.entries(calls).flatMap(([program, cs]) => cs.map((c) => `${program}/${c}`))
  const runPending = process.env.LIVESIM_CONFORMANCE_PENDING === '1'
  let run: ConformanceRun
  beforeAll(async () => {
    run = await runConformance(name, await programs(), endTime)
    const nowPass = keys.filter((k) => PENDING.includes(k) && problemOf(run, k) === undefined)
    console.log(
      [
        `${name}: ${Object.keys(calls).join(', ')} ran at a slowdown of ${run.slowdown} wall s per virtual s (cell.speed ${SPEED}, quantum ${QUANTUM})${run.failure ? `; the run failed: ${run.failure}` : ''}`,
        table(run, keys, PENDING),
        ...(nowPass.length ? [`${name}: these PENDING entries pass now, remove them from test/live/conformance/pending.ts: ${nowPass.join(', ')}`] : []),
      ].join('\n'),
    )
  }, 900_000)

  it(`runs its programs in a cell at a slowdown of at least ${MIN_SLOWDOWN} (wall s per virtual s)`, () => {
    expect(run.failure).toBeUndefined()
    expect(run.slowdown).toBeGreaterThanOrEqual(MIN_SLOWDOWN)
  })

  it('reports only calls it lists (a call with no result fails its own test)', () => {
    expect([...run.checks.keys()].filter((k) => !keys.includes(k))).toEqual([])
  })

  for (const key of keys) {
    const pending = PENDING.includes(key) && !runPending
    it.skipIf(pending)(pending ? `${key} (skipped: not yet virtual)` : `${key}: times out within [deadline, deadline + quantum] of virtual time`, () => {
      const problem = problemOf(run, key)
      expect(problem, problem).toBeUndefined()
    })
  }
}

// The Argo CD health check of SimCluster (charts/livesim/argocd/health.lua), run the way Argo CD runs
// it: the live object as the global `obj` (JSON objects and arrays as Lua tables, every number a
// float as gopher-lua has them), the script's returned table read back as { status, message }.
// fengari is a Lua 5.3 VM in JavaScript; Argo CD embeds gopher-lua (Lua 5.1), so the script sticks to
// what both share.
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { load } from 'js-yaml'
import { describe, expect, it } from 'vitest'
import { conditionsFor, type ClusterStatus, type Phase } from '../../operator/simcluster/status.ts'
import { sweepConditions, type SweepStatus } from '../../operator/simsweep/status.ts'

const dir = path.join(import.meta.dirname, '..', '..', 'charts', 'livesim', 'argocd')

// fengari ships no type declarations: the few functions used here, typed.
type LuaState = object
interface Fengari {
  to_luastring(s: string): Uint8Array
  lua: {
    LUA_OK: number
    lua_pushnil(L: LuaState): void
    lua_pushboolean(L: LuaState, b: boolean): void
    lua_pushnumber(L: LuaState, n: number): void
    lua_pushstring(L: LuaState, s: Uint8Array): void
    lua_createtable(L: LuaState, narr: number, nrec: number): void
    lua_setfield(L: LuaState, idx: number, k: Uint8Array): void
    lua_rawseti(L: LuaState, idx: number, n: number): void
    lua_setglobal(L: LuaState, name: Uint8Array): void
    lua_getfield(L: LuaState, idx: number, k: Uint8Array): number
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number
    lua_type(L: LuaState, idx: number): number
    lua_tojsstring(L: LuaState, idx: number): string
    lua_pop(L: LuaState, n: number): void
    LUA_TTABLE: number
    LUA_TSTRING: number
  }
  lauxlib: {
    luaL_newstate(): LuaState
    luaL_loadbuffer(L: LuaState, s: Uint8Array, sz: number | null, name: Uint8Array): number
  }
  lualib: { luaL_openlibs(L: LuaState): void }
}
const fengari = createRequire(import.meta.url)('fengari') as Fengari
const { lua, lauxlib, lualib, to_luastring: ls } = fengari

const script = readFileSync(path.join(dir, 'health.lua'), 'utf8')

/** Push a JSON value as Argo CD converts it: objects and arrays to tables (arrays from 1), null to nil. */
function push(L: LuaState, v: unknown): void {
  if (v === null || v === undefined) lua.lua_pushnil(L)
  else if (typeof v === 'boolean') lua.lua_pushboolean(L, v)
  else if (typeof v === 'number') lua.lua_pushnumber(L, v)
  else if (typeof v === 'string') lua.lua_pushstring(L, ls(v))
  else if (v instanceof Date) lua.lua_pushstring(L, ls(v.toISOString().replace(/\.000Z$/, 'Z')))
  else if (Array.isArray(v)) {
    lua.lua_createtable(L, v.length, 0)
    v.forEach((item, i) => {
      push(L, item)
      lua.lua_rawseti(L, -2, i + 1)
    })
  } else if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== null && x !== undefined)
    lua.lua_createtable(L, 0, entries.length)
    for (const [k, x] of entries) {
      push(L, x)
      lua.lua_setfield(L, -2, ls(k))
    }
  } else throw new Error(`cannot convert ${typeof v} to Lua`)
}

interface Health {
  status: string
  message?: string
}

/** Run health.lua against one object, in a fresh VM. */
function health(obj: unknown): Health {
  const L = lauxlib.luaL_newstate()
  lualib.luaL_openlibs(L)
  push(L, obj)
  lua.lua_setglobal(L, ls('obj'))
  const code = ls(script)
  if (lauxlib.luaL_loadbuffer(L, code, code.length, ls('=health.lua')) !== lua.LUA_OK) throw new Error(`health.lua does not compile: ${lua.lua_tojsstring(L, -1)}`)
  if (lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) throw new Error(`health.lua failed: ${lua.lua_tojsstring(L, -1)}`)
  if (lua.lua_type(L, -1) !== lua.LUA_TTABLE) throw new Error('health.lua must return a table')
  const field = (name: string): string | undefined => {
    lua.lua_getfield(L, -1, ls(name))
    const s = lua.lua_type(L, -1) === lua.LUA_TSTRING ? lua.lua_tojsstring(L, -1) : undefined
    lua.lua_pop(L, 1)
    return s
  }
  const status = field('status')
  if (status === undefined) throw new Error('health.lua returned no status')
  const message = field('message')
  return message === undefined ? { status } : { status, message }
}

interface HealthTests {
  tests: { healthStatus: Health; inputPath: string }[]
}
const cases = (load(readFileSync(path.join(dir, 'health_test.yaml'), 'utf8')) as HealthTests).tests

describe('Argo CD health check of SimCluster (charts/livesim/argocd/health.lua)', () => {
  it('health_test.yaml has cases, and every testdata file is one of them', () => {
    expect(cases.length).toBeGreaterThanOrEqual(8)
    const used = new Set(cases.map((c) => path.normalize(c.inputPath)))
    for (const f of readdirSync(path.join(dir, 'testdata'))) expect(used.has(path.join('testdata', f)), `testdata/${f} is not in health_test.yaml`).toBe(true)
    for (const s of ['Healthy', 'Progressing', 'Degraded']) expect(cases.some((c) => c.healthStatus.status === s), `no ${s} case`).toBe(true)
  })

  it.each(cases.map((c) => [c.inputPath, c] as const))('%s', (_name, c) => {
    const obj = load(readFileSync(path.join(dir, c.inputPath), 'utf8'))
    expect(health(obj)).toEqual(c.healthStatus)
  })

  // The operator's own conditions, for every phase: what Argo CD shows must follow them.
  const expected: Record<Phase, string> = { Pending: 'Progressing', Scheduling: 'Progressing', Running: 'Progressing', Succeeded: 'Healthy', Failed: 'Degraded' }
  it.each(Object.entries(expected))('maps the operator status of phase %s to %s', (phase, want) => {
    const st: ClusterStatus = { observedGeneration: 3, phase: phase as Phase }
    const message = `message of ${phase}`
    st.conditions = conditionsFor(st, 3, `ReasonOf${phase}`, message, phase === 'Running' || phase === 'Succeeded', new Date('2026-01-10T12:00:00Z'))
    st.message = message
    const obj = { apiVersion: 'livesim.dev/v1alpha1', kind: 'SimCluster', metadata: { name: 'x', namespace: 'y', generation: 3 }, spec: {}, status: st }
    const h = health(obj)
    expect(h.status).toBe(want)
    expect(h.message).toBe(want === 'Progressing' ? `${phase}: ${message}` : message)
    // The same status, one generation behind the spec: Progressing, whatever the phase.
    expect(health({ ...obj, metadata: { ...obj.metadata, generation: 4 } })).toEqual({ status: 'Progressing', message: 'Waiting for the livesim operator to observe generation 4' })
  })

  // The same script for SimSweeps, with the sweep reconciler's conditions.
  const sweepExpected = { Pending: 'Progressing', Running: 'Progressing', Succeeded: 'Healthy', Failed: 'Degraded' } as const
  it.each(Object.entries(sweepExpected))('maps the operator status of a SimSweep in phase %s to %s', (phase, want) => {
    const st: SweepStatus = { observedGeneration: 2, phase: phase as keyof typeof sweepExpected }
    const message = `sweep message of ${phase}`
    st.conditions = sweepConditions(st, 2, `ReasonOf${phase}`, message, new Date('2026-01-10T12:00:00Z'))
    st.message = message
    const obj = { apiVersion: 'livesim.dev/v1alpha1', kind: 'SimSweep', metadata: { name: 'x', namespace: 'y', generation: 2 }, spec: {}, status: st }
    const h = health(obj)
    expect(h.status).toBe(want)
    expect(h.message).toBe(want === 'Progressing' ? `${phase}: ${message}` : message)
    expect(health({ ...obj, metadata: { ...obj.metadata, generation: 3 } })).toEqual({ status: 'Progressing', message: 'Waiting for the livesim operator to observe generation 3' })
  })

  it('never fails on partial or odd objects', () => {
    const base = { apiVersion: 'livesim.dev/v1alpha1', kind: 'SimCluster' }
    expect(health({ ...base, metadata: { name: 'x' } }).status).toBe('Progressing')
    expect(health({ ...base, metadata: { name: 'x' }, status: {} }).status).toBe('Progressing')
    expect(health({ ...base, metadata: { name: 'x', generation: 1 }, status: { observedGeneration: 1, conditions: [] } })).toEqual({
      status: 'Progressing',
      message: 'Waiting for the livesim operator to reconcile the SimCluster',
    })
    expect(health({ ...base, metadata: { name: 'x', generation: 1 }, status: { observedGeneration: 1, conditions: [{ type: 'Failed', status: 'True' }] } })).toEqual({
      status: 'Degraded',
      message: 'The simulation failed',
    })
  })
})

// Custom components: a user's ES module, named in the manifest as
//   model: { kind: Custom, module: ./my-component.mjs, params: { ... } }
// The module's default export is a factory (params, ctx) => Component. See docs/components.md.
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { RunPlan } from '../api/plan.ts'
import type { Component, ComponentContext, ComponentFactory } from './component.ts'

type UserFactory = (params: Record<string, unknown>, ctx: ComponentContext) => Component

/** Import every Custom component's module; returns factories keyed by component path. */
export async function loadCustomComponents(plan: RunPlan, baseDir: string, hosts: number[]): Promise<Map<string, ComponentFactory>> {
  const out = new Map<string, ComponentFactory>()
  const cache = new Map<string, UserFactory>()
  for (const h of hosts) {
    for (const c of plan.hosts[h]!.components) {
      const m = c.spec.model
      if (m?.kind !== 'Custom') continue
      const file = path.resolve(baseDir, m.module!)
      let factory = cache.get(file)
      if (!factory) {
        let mod: { default?: unknown }
        try {
          mod = (await import(pathToFileURL(file).href)) as { default?: unknown }
        } catch (err) {
          throw new Error(`${c.path}: cannot load module ${file}: ${(err as Error).message}`, { cause: err })
        }
        if (typeof mod.default !== 'function') throw new Error(`${c.path}: module ${file} has no default export function (params, ctx) => component`)
        factory = mod.default as UserFactory
        cache.set(file, factory)
      }
      const f = factory
      out.set(c.path, (spec, ctx) => {
        const comp = f(spec.params ?? {}, ctx)
        for (const k of ['start', 'onTimer', 'onMessage', 'results'] as const) {
          if (typeof comp?.[k] !== 'function') throw new Error(`${c.path}: the component from ${file} has no ${k}() method`)
        }
        return comp
      })
    }
  }
  return out
}

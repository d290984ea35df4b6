// Parameter paths of a SimSweep: a dotted path into the template (a SimCluster spec), resolved
// against the template itself and the API schema at once. A list of named items (hosts,
// components, ports, env, headers) is indexed by name, any other list by position; objects the
// template leaves out may be set (their fields are in the schema), lists must be in the template.
import { MODEL_KINDS, SimClusterSpec, type ModelKind, type SimClusterSpec as SimClusterSpecT } from '../api/schema.ts'

type Json = Record<string, unknown>

/** Where a parameter's values go. */
export interface ResolvedPath {
  /** Keys from the spec down: ['hosts', 2, 'components', 0, 'model', 'workers']. */
  keys: (string | number)[]
  /** The same in a SimCluster's field-path notation: spec.hosts[2].components[0].model.workers. */
  clusterPath: string
}

export class PathError extends Error {}

/** What a list of named items is called in messages. */
const NAMED_LISTS: Record<string, { item: string; plural: string }> = {
  hosts: { item: 'host group', plural: 'groups' },
}

/** Paths a parameter may not take, and why. */
const REFUSED: Record<string, string> = {
  seed: 'the seed of each trial is template.seed + i for i < spec.seeds; vary it with spec.seeds',
}

export function resolvePath(template: SimClusterSpecT, path: string): ResolvedPath {
  const segments = path.split('.')
  if (segments.some((s) => s === '')) throw new PathError(`${JSON.stringify(path)} has an empty segment; segments are separated by single dots`)
  if (REFUSED[path] !== undefined) throw new PathError(REFUSED[path])
  let schema: Json = SimClusterSpec as unknown as Json
  let node: unknown = template
  let shown = 'template'
  let free = false
  const keys: (string | number)[] = []
  for (const seg of segments) {
    if (free) {
      keys.push(seg)
      node = isObject(node) ? node[seg] : undefined
    } else if (schema.type === 'object') {
      const next = objectStep(schema, node, seg, shown)
      keys.push(seg)
      schema = next
      node = isObject(node) ? node[seg] : undefined
      free = next['x-kubernetes-preserve-unknown-fields'] === true
    } else if (schema.type === 'array') {
      const index = listStep(schema, node, seg, shown)
      keys.push(index)
      schema = schema.items as Json
      node = (node as unknown[])[index]
    } else {
      throw new PathError(`${shown} takes a value (${describeSchema(schema)}); the path cannot go further`)
    }
    shown += `.${seg}`
  }
  return { keys, clusterPath: clusterPath(keys) }
}

/** The schema of field `seg` of the object at `shown`, or why there is none. */
function objectStep(schema: Json, node: unknown, seg: string, shown: string): Json {
  const props = (schema.properties ?? {}) as Record<string, Json>
  const kind = isObject(node) && typeof node.kind === 'string' && 'openLoop' in props ? (node.kind as ModelKind) : undefined
  const allowed = kind && MODEL_KINDS[kind] ? MODEL_KINDS[kind].fields : Object.keys(props)
  if (!(seg in props)) throw new PathError(`no field ${JSON.stringify(seg)} in ${shown}; its fields are: ${allowed.join(', ')}`)
  if (kind && !allowed.includes(seg)) throw new PathError(`${seg} is not a field of kind ${kind}; ${kind} takes: ${allowed.join(', ')}`)
  if (seg === 'kind' && kind) throw new PathError(`${shown}.kind chooses which fields the model has; sweep the fields of one kind instead`)
  if (seg === 'name' && 'components' in props) throw new PathError('names identify host groups, and parameter paths and metrics use them; a parameter cannot change one')
  if (seg === 'name' && 'model' in props) throw new PathError('names identify components, and parameter paths and metrics use them; a parameter cannot change one')
  return props[seg]!
}

/** The index that `seg` names in the list at `shown`, or why there is none. */
function listStep(schema: Json, node: unknown, seg: string, shown: string): number {
  if (!Array.isArray(node)) throw new PathError(`${shown} is not in the template; a list must be there to be indexed`)
  const items = (schema.items ?? {}) as Json
  const named = isObject(items.properties) && 'name' in items.properties
  if (named) {
    const names = node.map((x) => (isObject(x) ? String(x.name) : '?'))
    const index = names.indexOf(seg)
    if (index >= 0) return index
    const last = shown.slice(shown.lastIndexOf('.') + 1)
    if (last === 'components') throw new PathError(`no component ${JSON.stringify(seg)} on host group ${shown.split('.').at(-2)}; its components are: ${names.join(', ')}`)
    const what = NAMED_LISTS[last] ?? { item: 'item named', plural: 'names' }
    throw new PathError(`no ${what.item} ${JSON.stringify(seg)} in ${shown}; ${what.plural} are: ${names.join(', ')}`)
  }
  if (!/^(0|[1-9][0-9]*)$/.test(seg)) {
    throw new PathError(`${shown} is a list of unnamed items, indexed by position: 0${node.length > 1 ? `…${node.length - 1}` : ''}; got ${JSON.stringify(seg)}`)
  }
  const index = Number(seg)
  if (index >= node.length) throw new PathError(`${shown} has ${node.length} item${node.length === 1 ? '' : 's'}; index ${index} is past its end`)
  return index
}

function describeSchema(schema: Json): string {
  if (typeof schema.type === 'string') return `a ${schema.type}`
  return String(schema.description ?? 'a value')
}

function isObject(x: unknown): x is Json {
  return x !== null && typeof x === 'object' && !Array.isArray(x)
}

/** ['hosts', 2, 'model'] → spec.hosts[2].model */
export function clusterPath(keys: (string | number)[]): string {
  return keys.reduce<string>((out, k) => (typeof k === 'number' ? `${out}[${k}]` : `${out}.${k}`), 'spec')
}

/** A copy of `spec` with `value` at `keys` (missing objects on the way are created). */
export function withValue<T extends object>(spec: T, keys: (string | number)[], value: unknown): T {
  if (keys.length === 0) throw new Error('withValue: empty path')
  const out = structuredClone(spec)
  let node = out as Record<string | number, unknown>
  for (const k of keys.slice(0, -1)) {
    if (node[k] === undefined || node[k] === null) node[k] = {}
    node = node[k] as Record<string | number, unknown>
  }
  node[keys.at(-1)!] = structuredClone(value)
  return out
}

/** Whether one path lies inside the other (or they are the same). */
export function overlaps(a: (string | number)[], b: (string | number)[]): boolean {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

// Validation of SimCluster manifests: safe YAML parsing, the schema, then semantic checks that a
// schema cannot express (targets exist, links name real hosts, quantum ≤ lookahead, units parse,
// names unique, no call cycles) and, given a heap budget, that the modelled state fits the runtimes'
// heap (state-budget.ts). Every problem is reported with its field path and what is allowed;
// nothing here throws anything but ValidationError.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { Compile } from 'typebox/compile'
import { loadAll } from 'js-yaml'
import {
  API_VERSION,
  HTTP_HEADER_NAME_PATTERN,
  HTTP_HEADER_VALUE_PATTERN,
  HTTP_MANAGED_HEADERS,
  HTTP_PATH_PATTERN,
  LIMITS,
  MODEL_KINDS,
  PHOLD_DEFAULTS,
  SimCluster,
  type HttpRequests,
  type ModelKind,
  type ModelSpec,
  type SimCluster as SimClusterT,
} from './schema.ts'
import { compilePlan, expandHostRef, TargetError, type RunPlan } from './plan.ts'
import { IMAGE_REFERENCE_PATTERN, imageReferenceProblem } from './image.ts'
import { heapIssues, type HeapBudget } from './state-budget.ts'
import { MAX_TIME_NS, parseBandwidthBitsPerSec, parseDurationNs, parseSizeBytes, UnitError } from './units.ts'

export interface Issue {
  path: string
  message: string
}

export class ValidationError extends Error {
  readonly issues: Issue[]
  constructor(issues: Issue[], source?: string, kind = 'SimCluster') {
    const head = source ? `${source}: ` : ''
    super(`${head}invalid ${kind}:\n${issues.map((i) => `  ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n')}`)
    this.issues = issues
  }
}

const checker = Compile(SimCluster)
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
const MAX_ISSUES = 25

/** The schema's name patterns in words: their descriptions say what a name is for, not what it may contain. */
const PATTERN_RULES: Record<string, string | ((value: unknown) => string)> = {
  '^[a-z]([-a-z0-9]*[a-z0-9])?$': 'use lowercase letters, digits and "-", starting with a letter and ending with a letter or digit',
  '^[A-Za-z_][A-Za-z0-9_]*$': 'use letters, digits and "_", not starting with a digit',
  [HTTP_PATH_PATTERN]: 'a request target starts with "/" and has no spaces or control characters (percent-encode them)',
  [HTTP_HEADER_NAME_PATTERN]: 'a header name is an HTTP token: letters, digits and !#$%&\'*+-.^_`|~, no spaces or colon',
  [HTTP_HEADER_VALUE_PATTERN]: 'a header value may not contain CR, LF or NUL',
  [IMAGE_REFERENCE_PATTERN]: (value) => imageReferenceProblem(String(value)) ?? 'not an image reference',
}

/** JSON pointer "/spec/hosts/2/name" → "spec.hosts[2].name". */
export function fieldPath(pointer: string): string {
  let out = ''
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^[0-9]+$/.test(part)) out += `[${part}]`
    else out += out ? `.${part}` : part
  }
  return out
}

function schemaAt(schemaPath: string, root: unknown): Record<string, unknown> | undefined {
  let node: unknown = root
  for (const raw of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return node as Record<string, unknown> | undefined
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'number') return `number ${value}` // JSON.stringify would print Infinity and NaN as null
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 60)}`
}

function valueAt(doc: unknown, pointer: string): unknown {
  let node = doc
  for (const raw of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return node
}

/** The schema's complaints about `doc` in words, with field paths; `root` is the schema `check` was compiled from. */
export function schemaIssues(doc: unknown, check: { Errors(value: unknown): Iterable<{ instancePath: string; schemaPath: string; keyword: string; params: unknown; message: string }> } = checker, root: unknown = SimCluster): Issue[] {
  const issues: Issue[] = []
  const seen = new Set<string>()
  for (const e of check.Errors(doc)) {
    const at = fieldPath(e.instancePath)
    const schema = schemaAt(e.schemaPath, root) ?? {}
    const params = e.params as Record<string, unknown>
    const value = valueAt(doc, e.instancePath)
    let message: string
    switch (e.keyword) {
      case 'boolean':
        continue // reported through the parent's additionalProperties error
      case 'additionalProperties': {
        const allowed = Object.keys((schema.properties as object | undefined) ?? {})
        for (const extra of (params.additionalProperties as string[] | undefined) ?? []) {
          const p = at ? `${at}.${extra}` : extra
          const m = `unknown field; allowed fields here: ${allowed.join(', ')}`
          if (!seen.has(p + m)) issues.push({ path: p, message: m })
          seen.add(p + m)
        }
        continue
      }
      case 'required':
        for (const r of (params.requiredProperties as string[] | undefined) ?? []) {
          const p = at ? `${at}.${r}` : r
          // A live component with an image still needs its command: the launcher replaces the image's entrypoint.
          const hint = r === 'command' && value !== null && typeof value === 'object' && 'image' in value ? ": with image, command names the program in the image and its arguments (the image's ENTRYPOINT and CMD are not used)" : ''
          if (!seen.has(p + 'req')) issues.push({ path: p, message: `required field is missing${hint}` })
          seen.add(p + 'req')
        }
        continue
      case 'type':
        message = `expected ${String(params.type ?? schema.type)}, got ${describe(value)}`
        break
      case 'enum':
        message = `must be one of: ${((schema.enum as unknown[]) ?? []).join(', ')}; got ${describe(value)}`
        break
      case 'const':
        message = `must be ${JSON.stringify(params.allowedValue)}; got ${describe(value)}`
        break
      case 'pattern': {
        const rule = PATTERN_RULES[String(params.pattern)]
        message = `${describe(value)} is not allowed: ${typeof rule === 'function' ? rule(value) : (rule ?? String(schema.description ?? `must match ${String(params.pattern)}`))}`
        break
      }
      case 'anyOf':
        message = `${describe(value)} is not allowed: ${String(schema.description ?? 'no alternative matches')}`
        break
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        message = `must be ${String(params.comparison)} ${String(params.limit)}; got ${describe(value)}`
        break
      case 'minItems':
      case 'maxItems':
        message = `${e.keyword === 'minItems' ? 'needs at least' : 'takes at most'} ${String(params.limit)} items`
        break
      case 'minLength':
      case 'maxLength':
        message = `${e.keyword === 'minLength' ? 'must have at least' : 'must have at most'} ${String(params.limit)} characters`
        break
      default:
        message = e.message
    }
    // Inside an anyOf, the branches' own errors repeat the anyOf error: keep the first per path.
    if (e.schemaPath.includes('/anyOf/')) continue
    if (seen.has(at + message)) continue
    seen.add(at + message)
    issues.push({ path: at, message })
    if (issues.length >= MAX_ISSUES) break
  }
  return issues
}

/** Parse a manifest's text: exactly one YAML (or JSON) document, no alias bombs, bounded size and depth. */
export function parseManifest(text: string, source = 'manifest', kind = 'SimCluster'): unknown {
  if (text.length > MAX_MANIFEST_BYTES) {
    throw new ValidationError([{ path: '', message: `manifest is ${text.length} bytes; at most ${MAX_MANIFEST_BYTES} are accepted` }], source, kind)
  }
  let docs: unknown[]
  try {
    docs = loadAll(text, { filename: source, maxAliases: 64, maxDepth: 64, maxTotalMergeKeys: 1000 })
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new ValidationError([{ path: '', message: `not valid YAML: ${msg}` }], source, kind)
  }
  docs = docs.filter((d) => d !== null && d !== undefined)
  if (docs.length !== 1) {
    throw new ValidationError([{ path: '', message: `expected exactly one ${kind} document, found ${docs.length}` }], source, kind)
  }
  return docs[0]
}

export interface ValidateOptions {
  /** Directory that Custom component module paths are relative to; when set, modules must exist. */
  baseDir?: string
  source?: string
  /**
   * Refuse a manifest whose modelled state cannot fit the heap of the runtimes that will carry its
   * hosts (state-budget.ts). Unset: no such check (a runtime validating its WELCOME, the operator).
   */
  heap?: HeapBudget
}

/** Validate a parsed document; returns the typed SimCluster and its plan, or throws ValidationError. */
export function validateSimCluster(doc: unknown, opts: ValidateOptions = {}): { cluster: SimClusterT; plan: RunPlan } {
  const source = opts.source
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ValidationError([{ path: '', message: `expected a SimCluster object, got ${describe(doc)}` }], source)
  }
  const d = doc as Record<string, unknown>
  if (d.kind !== 'SimCluster') {
    throw new ValidationError([{ path: 'kind', message: `expected SimCluster, got ${describe(d.kind)}` }], source)
  }
  if (d.apiVersion !== API_VERSION) {
    throw new ValidationError([{ path: 'apiVersion', message: `expected ${API_VERSION}, got ${describe(d.apiVersion)}` }], source)
  }
  const issues = schemaIssues(doc)
  if (issues.length) throw new ValidationError(issues, source)
  const cluster = doc as SimClusterT
  const semantic = semanticIssues(cluster, opts)
  if (semantic.issues.length) throw new ValidationError(semantic.issues.slice(0, MAX_ISSUES), source)
  if (opts.heap) {
    const heap = heapIssues(semantic.plan!, opts.heap)
    if (heap.length) throw new ValidationError(heap, source)
  }
  return { cluster, plan: semantic.plan! }
}

export function loadSimCluster(text: string, opts: ValidateOptions = {}): { cluster: SimClusterT; plan: RunPlan } {
  return validateSimCluster(parseManifest(text, opts.source), opts)
}

function semanticIssues(cluster: SimClusterT, opts: ValidateOptions): { issues: Issue[]; plan?: RunPlan } {
  const issues: Issue[] = []
  const add = (p: string, message: string) => issues.push({ path: p, message })
  const spec = cluster.spec

  const duration = (p: string, text: string | undefined, min = 1): number | undefined => {
    if (text === undefined) return undefined
    try {
      const ns = parseDurationNs(text)
      if (ns < min) add(p, `must be greater than zero; got ${JSON.stringify(text)}`)
      else if (ns > MAX_TIME_NS) add(p, `must be at most 30 days; got ${JSON.stringify(text)}`)
      return ns
    } catch (err) {
      add(p, (err as Error).message)
      return undefined
    }
  }
  const bandwidth = (p: string, text: string | undefined) => {
    if (text === undefined) return
    try {
      if (parseBandwidthBitsPerSec(text) < 1) add(p, `must be greater than zero; got ${JSON.stringify(text)}`)
    } catch (err) {
      add(p, (err as UnitError).message)
    }
  }
  const size = (p: string, v: string | number | undefined) => {
    if (v === undefined) return
    try {
      if (parseSizeBytes(v) > 1024 ** 3) add(p, `must be at most 1GiB; got ${JSON.stringify(v)}`)
    } catch (err) {
      add(p, (err as UnitError).message)
    }
  }

  /** A Phold's target must be the Phold components (the LPs); its lookahead at most its mean. */
  const pholdChecks = (p: string, m: ModelSpec, hostIndex: number) => {
    const meanNs = duration(`${p}.phold.mean`, m.phold?.mean) ?? parseDurationNs(PHOLD_DEFAULTS.mean)
    const lookaheadNs = duration(`${p}.phold.lookahead`, m.phold?.lookahead) ?? parseDurationNs(PHOLD_DEFAULTS.lookahead)
    if (lookaheadNs > meanNs) add(`${p}.phold.lookahead`, `${lookaheadNs}ns is longer than the mean (${meanNs}ns); an event causes the next at lookahead + Exp(mean − lookahead)`)
    try {
      const r = plan.resolve(hostIndex, m.target!)
      const kind = plan.hosts[r.hosts[0]!]!.components[r.component]!.spec.model?.kind ?? 'a live component'
      if (kind !== 'Phold') add(`${p}.target`, `${m.target} is ${kind}; a Phold sends its events to the Phold components of the LPs`)
    } catch (err) {
      if (err instanceof TargetError) add(`${p}.target`, err.message)
      else throw err
    }
  }

  /** The path of a sender's protocol block (redis: or http:), if it has one. */
  const protocolField = (p: string, s: { redis?: unknown; http?: unknown }) => (s.http ? `${p}.http` : s.redis ? `${p}.redis` : undefined)
  /** A Client's or a call's redis: and http: blocks. */
  const protocolChecks = (p: string, s: { redis?: { valueSize?: string | number }; http?: HttpRequests }) => {
    if (s.redis && s.http) add(`${p}.http`, 'set one protocol: redis or http, not both')
    size(`${p}.redis.valueSize`, s.redis?.valueSize)
    if (s.http) httpChecks(`${p}.http`, s.http)
  }
  const httpChecks = (p: string, h: HttpRequests) => {
    if (h.path !== undefined && h.paths !== undefined) add(`${p}.paths`, 'set path or paths, not both')
    if (h.bodySize !== undefined && (h.method ?? 'GET') !== 'POST') add(`${p}.bodySize`, `a request body needs method POST; the method here is ${h.method ?? 'GET (the default)'}`)
    size(`${p}.bodySize`, h.bodySize)
    h.headers?.forEach((x, i) => {
      const managed = HTTP_MANAGED_HEADERS.find((m) => m.toLowerCase() === x.name.toLowerCase())
      if (managed) add(`${p}.headers[${i}].name`, `${managed} is set by livesim (Content-Length from bodySize, Connection from keepAlive, no Transfer-Encoding); remove it`)
    })
  }

  duration('spec.endTime', spec.endTime)

  // Names: host groups unique, replica names unique across groups, components unique per host.
  const groupNames = new Map<string, number>()
  let totalHosts = 0
  spec.hosts.forEach((h, i) => {
    if (groupNames.has(h.name)) add(`spec.hosts[${i}].name`, `duplicate host name ${JSON.stringify(h.name)} (also spec.hosts[${groupNames.get(h.name)}])`)
    groupNames.set(h.name, i)
    totalHosts += h.replicas ?? 1
    const comps = new Map<string, number>()
    h.components.forEach((c, j) => {
      const cp = `spec.hosts[${i}].components[${j}]`
      if (comps.has(c.name)) add(`${cp}.name`, `duplicate component name ${JSON.stringify(c.name)} on host ${h.name}`)
      comps.set(c.name, j)
      if (!!c.model === !!c.live) add(cp, 'exactly one of model or live must be set')
    })
  })
  if (totalHosts > LIMITS.hostsTotalMax) add('spec.hosts', `${totalHosts} hosts in all (replicas included); at most ${LIMITS.hostsTotalMax} are allowed`)
  const replicaNames = new Set<string>()
  spec.hosts.forEach((h) => {
    for (let r = 0; r < (h.replicas ?? 1); r++) replicaNames.add(`${h.name}-${r}`)
  })
  spec.hosts.forEach((h, i) => {
    if (replicaNames.has(h.name)) add(`spec.hosts[${i}].name`, `${JSON.stringify(h.name)} is also the name of a replica of another host; names would be ambiguous`)
  })

  placementChecks(spec, add)

  // Units of the network and sync, which compilePlan parses.
  const net = spec.network
  duration('spec.network.default.latency', net?.default?.latency)
  bandwidth('spec.network.default.bandwidth', net?.default?.bandwidth)
  net?.links?.forEach((l, i) => {
    duration(`spec.network.links[${i}].latency`, l.latency)
    bandwidth(`spec.network.links[${i}].bandwidth`, l.bandwidth)
  })
  const mode = spec.sync?.mode ?? 'Conservative'
  const quantum = duration('spec.sync.quantum', spec.sync?.quantum)
  const slack = duration('spec.sync.slack', spec.sync?.slack)
  if (issues.length) return { issues }

  // From here on the structure is sound enough to compile.
  let plan: RunPlan
  try {
    plan = compilePlan(cluster)
  } catch (err) {
    add('spec', (err as Error).message)
    return { issues }
  }
  // Links that name real hosts.
  const hostsList = [...plan.groups.keys()].join(', ')
  net?.links?.forEach((l, i) => {
    const lp = `spec.network.links[${i}]`
    const from = expandHostRef(l.from, plan.hostIndex, plan.groups)
    const to = expandHostRef(l.to, plan.hostIndex, plan.groups)
    if (!from) add(`${lp}.from`, `no host ${JSON.stringify(l.from)}; hosts are: ${hostsList}`)
    if (!to) add(`${lp}.to`, `no host ${JSON.stringify(l.to)}; hosts are: ${hostsList}`)
    if (from && to && from.length === 1 && to.length === 1 && from[0] === to[0]) add(lp, `a link needs two distinct hosts; ${l.from} and ${l.to} are the same host`)
  })

  // Sync.
  if (quantum !== undefined && mode === 'Conservative' && quantum > plan.lookaheadNs) {
    add('spec.sync.quantum', `${spec.sync?.quantum} is larger than the smallest link latency (${plan.lookaheadNs}ns); in Conservative mode the quantum must not exceed it`)
  }
  if (mode === 'Slack' && slack === undefined) add('spec.sync.slack', 'required in Slack mode (how far past a barrier hosts may run)')
  if (mode === 'Conservative' && spec.sync?.slack !== undefined) add('spec.sync.slack', 'only allowed with mode: Slack')

  // Components.
  // "group/component" → its calls (and a Client's target), each with the field path that makes it.
  const callGraph = new Map<string, { to: string; path: string }[]>()
  for (const host of plan.hosts) {
    if (host.replica !== 0) continue // replicas share the spec; check once per group
    const hi = spec.hosts.indexOf(host.spec)
    // Port numbers of the host's live programs: they all listen on the host's one address.
    const portOwners = new Map<number, string>()
    host.components.forEach((c, j) => {
      const cp = `spec.hosts[${hi}].components[${j}]`
      const node = `${host.group}/${c.name}`
      const edges: { to: string; path: string }[] = []
      callGraph.set(node, edges)
      // `speaks`: the sender's protocol block (redis: or http:), if it has one, and what the sender is.
      const targetCheck = (p: string, t: string, wantServer: boolean, speaks: { field: string | undefined; sender: string }) => {
        try {
          const r = plan.resolve(host.index, t)
          const targetHost = plan.hosts[r.hosts[0]!]!
          const tc = targetHost.components[r.component]!
          if (wantServer && tc.spec.model?.kind === 'Client') add(p, `${t} is a Client; requests must go to a Server, a Custom or a live component`)
          const portName = t.includes('/') && t.includes(':') ? t.slice(t.lastIndexOf(':') + 1) : undefined
          if (tc.spec.live) {
            const ports = tc.spec.live.ports ?? []
            if (!ports.length) add(p, `${t} is a live component that serves no ports`)
            else if (portName !== undefined && !ports.some((x) => x.name === portName)) add(p, `${t}: ${tc.name} serves no port named ${JSON.stringify(portName)}; its ports are: ${ports.map((x) => x.name).join(', ')}`)
            if (speaks.field === undefined) add(p, `${t} is a live component: set redis: or http: on this ${speaks.sender} (the protocol its requests speak)`)
          } else {
            if (portName !== undefined) add(p, `${t}: a :port suffix names a port of a live component, and ${tc.name} is modelled`)
            if (speaks.field !== undefined) add(speaks.field, `a protocol is for a live target, and ${t} is modelled; remove it, or target a live component`)
          }
          edges.push({ to: `${targetHost.group}/${tc.name}`, path: p })
        } catch (err) {
          if (err instanceof TargetError) add(p, err.message)
          else throw err
        }
      }
      const m = c.spec.model
      if (m) {
        const kind = m.kind as ModelKind
        const rules = MODEL_KINDS[kind]
        for (const key of Object.keys(m)) {
          if (!rules.fields.includes(key)) add(`${cp}.model.${key}`, `not a field of kind ${kind}; ${kind} takes: ${rules.fields.join(', ')}`)
        }
        for (const r of rules.required) {
          if ((m as Record<string, unknown>)[r] === undefined) add(`${cp}.model.${r}`, `required for kind ${kind}`)
        }
        if (kind === 'Client') {
          if (!!m.openLoop === !!m.closedLoop) add(`${cp}.model`, 'a Client needs exactly one of openLoop or closedLoop')
          if (m.target) targetCheck(`${cp}.model.target`, m.target, true, { field: protocolField(`${cp}.model`, m), sender: 'Client' })
          protocolChecks(`${cp}.model`, m)
          size(`${cp}.model.requestSize`, m.requestSize)
          size(`${cp}.model.responseSize`, m.responseSize)
          duration(`${cp}.model.timeout`, m.timeout)
          duration(`${cp}.model.closedLoop.thinkTime`, m.closedLoop?.thinkTime, 0)
        }
        if (kind === 'Server' && m.service) {
          duration(`${cp}.model.service.mean`, m.service.mean, 0)
          if (m.service.distribution === 'LogNormal' && m.service.sigma === undefined) add(`${cp}.model.service.sigma`, 'required with distribution LogNormal')
          if (m.service.distribution !== 'LogNormal' && m.service.sigma !== undefined) add(`${cp}.model.service.sigma`, 'only allowed with distribution LogNormal')
          m.calls?.forEach((call, k) => {
            const kp = `${cp}.model.calls[${k}]`
            targetCheck(`${kp}.target`, call.target, true, { field: protocolField(kp, call), sender: 'call' })
            protocolChecks(kp, call)
            size(`${kp}.requestSize`, call.requestSize)
            size(`${kp}.responseSize`, call.responseSize)
            duration(`${kp}.timeout`, call.timeout)
          })
        }
        if (kind === 'Phold' && m.target) pholdChecks(`${cp}.model`, m, host.index)
        if (kind === 'Custom' && m.module && opts.baseDir !== undefined) {
          const file = path.resolve(opts.baseDir, m.module)
          if (!existsSync(file)) add(`${cp}.model.module`, `no such file: ${file}`)
        }
      }
      const live = c.spec.live
      if (live) {
        duration(`${cp}.live.readinessTimeout`, live.readinessTimeout)
        duration(`${cp}.live.terminationGracePeriod`, live.terminationGracePeriod, 0)
        if (!live.command[0]) add(`${cp}.live.command[0]`, 'the program to run must not be empty')
        if (live.image !== undefined) {
          // The pattern cannot count the name's length; user names cannot be looked up in an image.
          const problem = imageReferenceProblem(live.image)
          if (problem) add(`${cp}.live.image`, problem)
          for (const f of ['runAsUser', 'runAsGroup'] as const) {
            const v = live.securityContext?.[f]
            if (typeof v === 'string') add(`${cp}.live.securityContext.${f}`, `with image, give a number: the container runs as ${f === 'runAsUser' ? 'a UID' : 'a GID'} (Kubernetes cannot look ${JSON.stringify(v)} up in the image); got ${describe(v)}`)
          }
        }
        const ports = new Map<string, number>()
        live.ports?.forEach((p, k) => {
          if (ports.has(p.name)) add(`${cp}.live.ports[${k}].name`, `duplicate port name ${JSON.stringify(p.name)}`)
          ports.set(p.name, k)
          const owner = portOwners.get(p.port)
          if (owner !== undefined) {
            add(`${cp}.live.ports[${k}].port`, `port ${p.port} is already served on this host by ${owner === c.name ? 'this component' : `component ${owner}`}; the live programs of a host share its address, so each port number may be served once`)
          }
          portOwners.set(p.port, c.name)
        })
      }
    })
  }

  // A server that (transitively) calls itself would hold its workers forever. The search keeps its
  // own stack: a call chain may be thousands of components long. The call that closes a cycle is
  // reported at its own path.
  const state = new Map<string, 1 | 2>()
  search: for (const root of callGraph.keys()) {
    if (state.has(root)) continue
    state.set(root, 1)
    const stack = [{ node: root, next: 0 }]
    while (stack.length) {
      const top = stack[stack.length - 1]!
      const edge = callGraph.get(top.node)?.[top.next++]
      if (!edge) {
        state.set(top.node, 2)
        stack.pop()
      } else if (state.get(edge.to) === 1) {
        const loop = [...stack.slice(stack.findIndex((f) => f.node === edge.to)).map((f) => f.node), edge.to]
        const shown = loop.length > 12 ? [...loop.slice(0, 6), `… ${loop.length - 12} more …`, ...loop.slice(-6)] : loop
        add(edge.path, `call cycle: ${shown.join(' → ')}; a server must not call itself, even through others`)
        break search
      } else if (!state.has(edge.to)) {
        state.set(edge.to, 1)
        stack.push({ node: edge.to, next: 0 })
      }
    }
  }
  return { issues, plan }
}

/**
 * spec.placement: exactly one of runtimes and hostsPerRuntime, and no more runtimes than modelled
 * hosts to carry (a host with a live component has a runtime of its own and is not counted).
 */
function placementChecks(spec: SimClusterT['spec'], add: (path: string, message: string) => void): void {
  const p = spec.placement
  if (!p) return
  if ((p.runtimes === undefined) === (p.hostsPerRuntime === undefined)) {
    add('spec.placement', 'set exactly one of runtimes (how many runtimes carry the modelled hosts) or hostsPerRuntime (at most how many hosts one runtime carries)')
    return
  }
  const modelled = spec.hosts.reduce((n, h) => n + (h.components.some((c) => c.live !== undefined) ? 0 : (h.replicas ?? 1)), 0)
  const field = p.runtimes !== undefined ? 'spec.placement.runtimes' : 'spec.placement.hostsPerRuntime'
  if (modelled === 0) add(field, 'every host runs a live component and has a runtime of its own: there is no modelled host to place; remove placement')
  else if (p.runtimes !== undefined && p.runtimes > modelled) add(field, `${p.runtimes} runtimes for ${modelled} modelled hosts; at most ${modelled} (one host per runtime)`)
}

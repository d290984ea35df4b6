// CustomResourceDefinitions generated from the TypeBox schemas in schema.ts (the one source of
// truth). JSON Schema is turned into a Kubernetes structural schema: no additionalProperties:false
// (the API server prunes and, with strict field validation, rejects unknown fields), OpenAPI 3.0
// exclusive bounds, const → enum, and CEL rules for what a structural schema cannot say, derived
// from the same MODEL_KINDS table that validate.ts uses.
import { dump } from 'js-yaml'
import { GROUP, MODEL_KINDS, SimClusterSpec, SimClusterStatus, SimHostSpec, SimHostStatus, SimSweepSpec, SimSweepStatus, VERSION } from './schema.ts'

type Json = Record<string, unknown>

function structural(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(structural)
  if (schema === null || typeof schema !== 'object') return schema
  const src = schema as Json
  const bare = Array.isArray(src.anyOf) && (src.anyOf as Json[]).every((b) => Object.keys(b).length === 1)
  if (src['x-kubernetes-int-or-string'] === true && Array.isArray(src.anyOf) && !bare) {
    // Structural int-or-string allows only bare types in anyOf: hoist each branch's constraints
    // to the node (pattern applies only to strings, minimum only to numbers, so meaning is kept).
    const hoisted: Json = {}
    for (const branch of src.anyOf as Json[]) for (const [k, v] of Object.entries(branch)) if (k !== 'type') hoisted[k] = v
    const { anyOf: _anyOf, ...rest } = src
    return structural({ ...rest, ...hoisted, anyOf: [{ type: 'integer' }, { type: 'string' }] })
  }
  const out: Json = {}
  for (const [k, v] of Object.entries(schema as Json)) {
    if (k === 'additionalProperties' && v === false) continue
    if (k === '$id' || k === '$schema') continue
    if (k === 'const') {
      out.enum = [v]
      continue
    }
    if (k === 'exclusiveMinimum' && typeof v === 'number') {
      out.minimum = v
      out.exclusiveMinimum = true
      continue
    }
    if (k === 'exclusiveMaximum' && typeof v === 'number') {
      out.maximum = v
      out.exclusiveMaximum = true
      continue
    }
    out[k] = structural(v)
  }
  return out
}

function at(schema: Json, ...path: string[]): Json {
  let node = schema
  for (const p of path) node = (node[p] as Json)
  if (!node) throw new Error(`schema path ${path.join('.')} not found`)
  return node
}

function addRules(node: Json, rules: { rule: string; message: string; fieldPath?: string }[]): void {
  node['x-kubernetes-validations'] = [...((node['x-kubernetes-validations'] as unknown[]) ?? []), ...rules]
}

function simClusterSpecSchema(): Json {
  const spec = clusterSpecRules(structural(SimClusterSpec) as Json)
  // A run is defined by its spec: changing it mid-run would make the results describe nothing.
  // Only runPolicy may change (e.g. to extend a deadline or a TTL).
  addRules(spec, [
    {
      rule: 'self.endTime == oldSelf.endTime && self.hosts == oldSelf.hosts && (has(self.seed) == has(oldSelf.seed)) && (!has(self.seed) || self.seed == oldSelf.seed) && (has(self.sync) == has(oldSelf.sync)) && (!has(self.sync) || self.sync == oldSelf.sync) && (has(self.network) == has(oldSelf.network)) && (!has(self.network) || self.network == oldSelf.network) && (has(self.results) == has(oldSelf.results)) && (!has(self.results) || self.results == oldSelf.results) && (has(self.placement) == has(oldSelf.placement)) && (!has(self.placement) || self.placement == oldSelf.placement)',
      message: 'the run-defining fields of spec (endTime, seed, sync, network, hosts, results, placement) are immutable; delete and re-create the SimCluster to change them',
    },
  ])
  return spec
}

/** The CEL rules and list-map keys of a SimCluster spec (a SimCluster's own, or a SimSweep's template). */
function clusterSpecRules(spec: Json): Json {
  const host = at(spec, 'properties', 'hosts', 'items')
  const component = at(host, 'properties', 'components', 'items')
  addRules(component, [{ rule: 'has(self.model) != has(self.live)', message: 'exactly one of model or live must be set' }])
  const model = at(component, 'properties', 'model')
  const all = new Set(Object.values(MODEL_KINDS).flatMap((k) => k.fields))
  const rules: { rule: string; message: string }[] = []
  for (const [kind, r] of Object.entries(MODEL_KINDS)) {
    for (const req of r.required) rules.push({ rule: `self.kind != '${kind}' || has(self.${req})`, message: `${req} is required for kind ${kind}` })
    const foreign = [...all].filter((f) => !r.fields.includes(f))
    if (foreign.length) {
      rules.push({
        rule: `self.kind != '${kind}' || !(${foreign.map((f) => `has(self.${f})`).join(' || ')})`,
        message: `kind ${kind} takes only: ${r.fields.join(', ')}`,
      })
    }
  }
  rules.push({ rule: "self.kind != 'Client' || has(self.openLoop) != has(self.closedLoop)", message: 'a Client needs exactly one of openLoop or closedLoop' })
  addRules(model, rules)
  const service = at(model, 'properties', 'service')
  addRules(service, [{ rule: "(self.distribution == 'LogNormal') == has(self.sigma)", message: 'sigma is required with, and only allowed with, distribution LogNormal' }])
  // Unique names as list-map keys: enforced by the API server without CEL cost.
  for (const list of [at(spec, 'properties', 'hosts'), at(host, 'properties', 'components')]) {
    list['x-kubernetes-list-type'] = 'map'
    list['x-kubernetes-list-map-keys'] = ['name']
  }
  addRules(at(spec, 'properties', 'placement'), [
    { rule: 'has(self.runtimes) != has(self.hostsPerRuntime)', message: 'set exactly one of runtimes (how many runtimes carry the modelled hosts) or hostsPerRuntime (at most how many hosts one runtime carries)' },
  ])
  addRules(spec, [
    { rule: "!has(self.sync) || !has(self.sync.mode) || self.sync.mode != 'Slack' || has(self.sync.slack)", message: 'sync.slack is required in Slack mode' },
    { rule: "!has(self.sync) || !has(self.sync.slack) || (has(self.sync.mode) && self.sync.mode == 'Slack')", message: 'sync.slack is only allowed with mode: Slack' },
  ])
  return spec
}

/**
 * A SimSweep's spec: the template checked as a SimCluster spec, names unique, the objective naming a
 * metric, and everything but parallelism, maxFailedTrials and ttlSecondsAfterFinished immutable (a
 * changed grid would leave finished trials describing another sweep; CEL compares parameter values
 * whole, so a changed value is refused too). Parameter values are any JSON value
 * (x-kubernetes-preserve-unknown-fields), whose meaning CEL cannot check: the grid's size, paths
 * resolving in the template and values valid at them are the validator's (sweep/validate.ts), which
 * the reconciler runs.
 */
function simSweepSpecSchema(): Json {
  const spec = structural(SimSweepSpec) as Json
  clusterSpecRules(at(spec, 'properties', 'template'))
  for (const list of [at(spec, 'properties', 'parameters'), at(spec, 'properties', 'metrics')]) {
    list['x-kubernetes-list-type'] = 'map'
    list['x-kubernetes-list-map-keys'] = ['name']
  }
  addRules(spec, [
    { rule: 'self.metrics.exists(m, m.name == self.objective.metric)', message: 'objective.metric must name one of metrics', fieldPath: '.objective.metric' },
    {
      rule: 'self.template == oldSelf.template && self.parameters == oldSelf.parameters && self.metrics == oldSelf.metrics && self.objective == oldSelf.objective && (has(self.seeds) == has(oldSelf.seeds)) && (!has(self.seeds) || self.seeds == oldSelf.seeds)',
      message: 'the grid-defining fields of spec (template, parameters, seeds, metrics, objective) are immutable; delete and re-create the SimSweep to change them',
    },
  ])
  return spec
}

function crd(kind: string, plural: string, short: string, spec: Json, status: Json, columns: Json[]): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}`, annotations: { 'livesim.dev/generated-by': 'hack/gen-crds.ts from sim-runtime/api/schema.ts' } },
    spec: {
      group: GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames: [short], categories: ['livesim'] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `${kind} of livesim.dev.`,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  }
}

export function crdObjects(): Json[] {
  const simcluster = crd('SimCluster', 'simclusters', 'simc', simClusterSpecSchema(), structural(SimClusterStatus) as Json, [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Hosts', type: 'string', jsonPath: '.status.hostsSummary', description: 'ready/total hosts' },
    { name: 'VirtualTime', type: 'string', jsonPath: '.status.virtualTime' },
    { name: 'Progress', type: 'string', jsonPath: '.status.progress' },
    { name: 'Slowdown', type: 'string', jsonPath: '.status.slowdown' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    { name: 'Runtimes', type: 'integer', jsonPath: '.status.placement.runtimes', description: 'runtime pods carrying the hosts', priority: 1 },
    { name: 'Slowest', type: 'string', jsonPath: '.status.stragglers[0].runtime', description: 'the runtime most often last to report a barrier', priority: 1 },
    { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
  ])
  const simhost = crd('SimHost', 'simhosts', 'simh', structural(SimHostSpec) as Json, structural(SimHostStatus) as Json, [
    { name: 'Cluster', type: 'string', jsonPath: '.spec.cluster' },
    { name: 'Host', type: 'string', jsonPath: '.spec.host', description: 'the host, when the runtime carries one' },
    { name: 'Hosts', type: 'integer', jsonPath: '.spec.hostCount', description: 'hosts the runtime carries' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'VirtualTime', type: 'string', jsonPath: '.status.virtualTime' },
    { name: 'Pod', type: 'string', jsonPath: '.status.pod' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ])
  const simsweep = crd('SimSweep', 'simsweeps', 'simsw', simSweepSpecSchema(), structural(SimSweepStatus) as Json, [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Trials', type: 'string', jsonPath: '.status.trialsSummary', description: 'done/total trials' },
    { name: 'Best', type: 'string', jsonPath: '.status.bestSummary', description: 'the best point by the objective' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
  ])
  return [simcluster, simhost, simsweep]
}

export const CRD_FILES = ['livesim.dev_simclusters.yaml', 'livesim.dev_simhosts.yaml', 'livesim.dev_simsweeps.yaml'] as const

const HEADER = '# Generated by `npm run gen:crds` from sim-runtime/api/schema.ts. Do not edit.\n'

export function renderCrdFiles(): Record<string, string> {
  const objects = crdObjects()
  return Object.fromEntries(CRD_FILES.map((name, i) => [name, HEADER + dump(objects[i], { noRefs: true })]))
}

/**
 * The same CRDs as Helm templates of charts/livesim: installed and upgraded with the chart, kept on
 * uninstall (helm.sh/resource-policy: keep) so that deleting a release never deletes every run.
 */
export function renderChartCrdTemplates(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const obj of crdObjects()) {
    const meta = obj.metadata as { name: string; annotations: Record<string, string> }
    const withKeep = { ...obj, metadata: { ...meta, annotations: { ...meta.annotations, 'helm.sh/resource-policy': 'keep' } } }
    const file = `crd-${meta.name.split('.')[0]}.yaml`
    out[file] = `{{- if .Values.crds.install }}\n${HEADER}${dump(withKeep, { noRefs: true })}{{- end }}\n`
  }
  return out
}

export function renderCrds(): string {
  return Object.values(renderCrdFiles()).map((t) => `---\n${t}`).join('')
}

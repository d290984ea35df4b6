// The table of malformed SimSweeps: each breaks one thing in a small valid base and names the field
// path and the words that `livesim validate` must give. test/unit/sweep-validation.test.ts runs it
// through validateSimSweep (every case); test/e2e/sweep-validation.test.ts applies every case to the
// real API server (the CRD's schema and CEL refuse what they can express, the operator the rest).

import { replaceOnce } from './helpers.ts'

// template.hosts[0] = client (2 replicas), [1] = web, [2] = db.
export const BASE = `apiVersion: livesim.dev/v1alpha1
kind: SimSweep
metadata:
  name: base
spec:
  template:
    endTime: 100ms
    seed: 7
    network:
      default: { latency: 100us, bandwidth: 10Gbps }
      links:
        - { from: client, to: web, latency: 200us }
    hosts:
      - name: client
        replicas: 2
        components:
          - name: load
            model: { kind: Client, target: web/http, openLoop: { rate: 100 } }
      - name: web
        components:
          - name: http
            model:
              kind: Server
              workers: 4
              service: { distribution: Exponential, mean: 200us }
              calls: [{ target: db/sql }]
      - name: db
        components:
          - name: sql
            model: { kind: Server, workers: 2, service: { distribution: Exponential, mean: 100us } }
  parameters:
    - name: workers
      path: hosts.db.components.sql.model.workers
      values: [1, 2]
    - name: latency
      path: network.default.latency
      values: [50us, 100us]
  seeds: 2
  parallelism: 2
  metrics:
    - { name: p99, component: client/load, field: latency.p99Ns, aggregate: Max }
    - { name: util, component: db/sql, field: utilization }
  objective: { metric: p99, goal: Minimize }
`

export function edit(...replacements: [find: string, replace: string][]): string {
  return replaceOnce(BASE, ...replacements)
}

const WORKERS_PATH = 'path: hosts.db.components.sql.model.workers'
const LATENCY_PATH = 'path: network.default.latency'
const list = (n: number, f: (i: number) => string) => `[${Array.from({ length: n }, (_, i) => f(i)).join(', ')}]`

export interface Case {
  name: string
  yaml: string
  /** The field path `livesim validate` names, and words of its message there. */
  path: string
  message: string
  /**
   * Set when the CRD's schema or CEL rules express the check, so that the API server refuses the
   * sweep itself: what its message names (the field path as the API server writes it; for a list
   * item with a duplicate key, the item; for an unserved apiVersion, the version). Unset: the
   * API server accepts it and the operator refuses it (phase Failed, reason InvalidSpec, `path` and
   * `message` in status.message).
   */
  apiServer?: string
}

export const CASES: Case[] = [
  { name: 'no such host group', yaml: edit([WORKERS_PATH, 'path: hosts.dbx.components.sql.model.workers']), path: 'spec.parameters[0].path', message: 'no host group "dbx" in template.hosts; groups are: client, web, db' },
  { name: 'no such component', yaml: edit([WORKERS_PATH, 'path: hosts.db.components.nosql.model.workers']), path: 'spec.parameters[0].path', message: 'no component "nosql" on host group db; its components are: sql' },
  { name: 'no such field', yaml: edit([WORKERS_PATH, 'path: hosts.db.components.sql.model.wrokers']), path: 'spec.parameters[0].path', message: 'no field "wrokers" in template.hosts.db.components.sql.model; its fields are: kind, workers, queueLimit, service, calls, callMode, balance' },
  { name: 'a field of another kind', yaml: edit([WORKERS_PATH, 'path: hosts.client.components.load.model.workers']), path: 'spec.parameters[0].path', message: 'workers is not a field of kind Client; Client takes: kind, target' },
  { name: 'an unnamed list indexed by a name', yaml: edit([LATENCY_PATH, 'path: network.links.first.latency']), path: 'spec.parameters[1].path', message: 'template.network.links is a list of unnamed items, indexed by position: 0; got "first"' },
  { name: 'an index past the end', yaml: edit([LATENCY_PATH, 'path: network.links.3.latency']), path: 'spec.parameters[1].path', message: 'template.network.links has 1 item; index 3 is past its end' },
  { name: 'a list the template lacks', yaml: edit([WORKERS_PATH, 'path: hosts.db.components.sql.model.calls.0.timeout']), path: 'spec.parameters[0].path', message: 'template.hosts.db.components.sql.model.calls is not in the template; a list must be there to be indexed' },
  { name: 'a path past a value', yaml: edit([LATENCY_PATH, 'path: endTime.unit']), path: 'spec.parameters[1].path', message: 'template.endTime takes a value (a string); the path cannot go further' },
  { name: 'a name as parameter', yaml: edit([WORKERS_PATH, 'path: hosts.db.name']), path: 'spec.parameters[0].path', message: 'names identify host groups' },
  { name: 'the seed as parameter', yaml: edit([WORKERS_PATH, 'path: seed']), path: 'spec.parameters[0].path', message: 'vary it with spec.seeds' },
  { name: 'an empty path segment', yaml: edit([LATENCY_PATH, 'path: network..latency']), path: 'spec.parameters[1].path', message: 'is not allowed', apiServer: 'spec.parameters[1].path' },
  { name: 'overlapping paths', yaml: edit([WORKERS_PATH, 'path: network.default'], ['values: [1, 2]', 'values: [{ latency: 1ms }]']), path: 'spec.parameters[1].path', message: 'network.default.latency overlaps spec.parameters[0].path (network.default): one would overwrite the other' },
  { name: 'a value out of range', yaml: edit(['values: [1, 2]', 'values: [1, 0]']), path: 'spec.parameters[0].values[1]', message: 'must be >= 1; got number 0 (at spec.template.hosts[2].components[0].model.workers)' },
  { name: 'a value of the wrong type', yaml: edit(['values: [1, 2]', 'values: [1, four]']), path: 'spec.parameters[0].values[1]', message: 'expected integer, got string "four" (at spec.template.hosts[2].components[0].model.workers)' },
  { name: 'a duration without a unit', yaml: edit(['values: [50us, 100us]', 'values: [50us, 100]']), path: 'spec.parameters[1].values[1]', message: '(at spec.template.network.default.latency)' },
  { name: 'a zero latency', yaml: edit(['values: [50us, 100us]', 'values: [0s, 100us]']), path: 'spec.parameters[1].values[0]', message: 'must be greater than zero; got "0s" (at spec.template.network.default.latency)' },
  { name: 'a value valid alone but not with the template', yaml: edit(['    seed: 7', '    seed: 7\n    sync: { quantum: 60us }']), path: 'spec.parameters[1].values[0]', message: 'with this value, spec.template.sync.quantum: 60us is larger than the smallest link latency (50000ns)' },
  {
    name: 'a grid point invalid though each value is valid',
    yaml: edit(['name: workers', 'name: quantum'], [WORKERS_PATH, 'path: sync.quantum'], ['values: [1, 2]', 'values: [50us, 90us]']),
    path: 'spec.parameters',
    message: 'grid point 2 (quantum=90us, latency=50us): spec.template.sync.quantum: 90us is larger than the smallest link latency (50000ns)',
  },
  { name: 'an empty list of values', yaml: edit(['values: [1, 2]', 'values: []']), path: 'spec.parameters[0].values', message: 'needs at least 1 items', apiServer: 'spec.parameters[0].values' },
  { name: 'no parameters', yaml: edit([`    - name: workers\n      ${WORKERS_PATH}\n      values: [1, 2]\n    - name: latency\n      ${LATENCY_PATH}\n      values: [50us, 100us]\n`, '    []\n']), path: 'spec.parameters', message: 'needs at least 1 items', apiServer: 'spec.parameters' },
  { name: 'too many values', yaml: edit(['values: [1, 2]', `values: ${list(101, (i) => String(i + 1))}`]), path: 'spec.parameters[0].values', message: 'takes at most 100 items', apiServer: 'spec.parameters[0].values' },
  {
    name: 'an absurd grid (100^3 points)',
    yaml: edit(
      ['values: [1, 2]', `values: ${list(100, (i) => String(i + 1))}`],
      ['values: [50us, 100us]', `values: ${list(100, (i) => `${i + 1}us`)}`],
      [`  parameters:\n`, `  parameters:\n    - { name: loss, path: network.default.loss, values: ${list(100, (i) => String(i / 1000))} }\n`],
    ),
    path: 'spec.parameters',
    message: 'the grid is 100 × 100 × 100 values × 2 seeds: more than 1000 points; at most 1000 trials are allowed',
  },
  { name: 'points × seeds over the bound', yaml: edit(['values: [1, 2]', `values: ${list(30, (i) => String(i + 1))}`], ['values: [50us, 100us]', `values: ${list(20, (i) => `${i + 50}us`)}`]), path: 'spec.parameters', message: 'the grid is 30 × 20 values × 2 seeds: 1200 trials; at most 1000 trials are allowed' },
  { name: 'zero seeds', yaml: edit(['seeds: 2', 'seeds: 0']), path: 'spec.seeds', message: 'must be >= 1; got number 0', apiServer: 'spec.seeds' },
  { name: 'seeds past the largest seed', yaml: edit(['seed: 7', 'seed: 4294967295']), path: 'spec.seeds', message: 'seeds 4294967295…4294967296 pass the largest seed, 4294967295' },
  { name: 'parallelism 0', yaml: edit(['parallelism: 2', 'parallelism: 0']), path: 'spec.parallelism', message: 'must be >= 1; got number 0', apiServer: 'spec.parallelism' },
  { name: 'negative maxFailedTrials', yaml: edit(['seeds: 2', 'seeds: 2\n  maxFailedTrials: -1']), path: 'spec.maxFailedTrials', message: 'must be >= 0; got number -1', apiServer: 'spec.maxFailedTrials' },
  { name: 'a metric on a missing component', yaml: edit(['component: db/sql', 'component: db/nosql']), path: 'spec.metrics[1].component', message: 'no component "nosql" on db; its components are: sql' },
  { name: 'a metric on a missing group', yaml: edit(['component: db/sql', 'component: cache/sql']), path: 'spec.metrics[1].component', message: 'no host group or host "cache"; groups are: client, web, db (a host is a group\'s replica, e.g. client-0)' },
  { name: 'a metric on a missing replica', yaml: edit(['component: client/load', 'component: client-2/load']), path: 'spec.metrics[0].component', message: 'no host group or host "client-2"' },
  {
    name: 'a metric on a replica that a grid point removes',
    yaml: edit(['component: client/load', 'component: client-1/load'], [WORKERS_PATH, 'path: hosts.client.replicas']),
    path: 'spec.metrics[0].component',
    message: 'at grid point 0 (workers=1, latency=50us): no host group or host "client-1"',
  },
  { name: 'a field the kind does not report', yaml: edit(['field: latency.p99Ns', 'field: latency.p98Ns']), path: 'spec.metrics[0].field', message: 'latency reports no field "p98Ns"; its fields are: count, meanNs, p50Ns, p90Ns, p99Ns, p999Ns, maxNs' },
  { name: 'a field of another kind', yaml: edit(['field: utilization', 'field: throughputPerSec']), path: 'spec.metrics[1].field', message: 'Server reports no field "throughputPerSec"; its fields are: arrivals, completed' },
  { name: 'a field that is an object', yaml: edit(['field: latency.p99Ns', 'field: latency']), path: 'spec.metrics[0].field', message: 'latency is an object; a metric takes one number: latency.count, latency.meanNs' },
  { name: 'status codes of a client without http', yaml: edit(['field: latency.p99Ns', 'field: status.200']), path: 'spec.metrics[0].field', message: 'status is reported only by a Client with http:' },
  { name: 'an unknown aggregate', yaml: edit(['aggregate: Max', 'aggregate: Median']), path: 'spec.metrics[0].aggregate', message: 'must be one of: Mean, Max, Min, Sum; got string "Median"', apiServer: 'spec.metrics[0].aggregate' },
  { name: 'no metrics', yaml: edit(['  metrics:\n    - { name: p99, component: client/load, field: latency.p99Ns, aggregate: Max }\n    - { name: util, component: db/sql, field: utilization }\n', '  metrics: []\n']), path: 'spec.metrics', message: 'needs at least 1 items', apiServer: 'spec.metrics' },
  { name: 'an objective on no metric', yaml: edit(['metric: p99', 'metric: p95']), path: 'spec.objective.metric', message: 'no metric "p95"; metrics are: p99, util', apiServer: 'spec.objective.metric' },
  { name: 'an unknown goal', yaml: edit(['goal: Minimize', 'goal: Lowest']), path: 'spec.objective.goal', message: 'must be one of: Minimize, Maximize', apiServer: 'spec.objective.goal' },
  { name: 'duplicate parameter names', yaml: edit(['name: latency', 'name: workers']), path: 'spec.parameters[1].name', message: 'duplicate name "workers" (also spec.parameters[0].name)', apiServer: 'spec.parameters[1]: Duplicate value' },
  { name: 'a metric named like a parameter', yaml: edit(['name: util', 'name: workers']), path: 'spec.metrics[1].name', message: 'duplicate name "workers" (also spec.parameters[0].name)' },
  { name: 'a reserved column name', yaml: edit(['name: latency', 'name: seed']), path: 'spec.parameters[1].name', message: '"seed" is a column of results.csv already' },
  { name: 'a sweep name too long for its trials', yaml: edit(['name: base', `name: ${'s'.repeat(31)}`]), path: 'metadata.name', message: 'must have at most 30 characters' },
  { name: 'an invalid template', yaml: edit(['target: web/http', 'target: web/nope']), path: 'spec.template.hosts[0].components[0].model.target', message: 'nope' },
  { name: 'an unknown field of the spec', yaml: edit(['seeds: 2', 'seeds: 2\n  grid: full']), path: 'spec.grid', message: 'unknown field; allowed fields here: template, parameters, seeds, parallelism, maxFailedTrials, metrics, objective', apiServer: 'unknown field "spec.grid"' },
  { name: 'a SimCluster apiVersion of old', yaml: edit(['apiVersion: livesim.dev/v1alpha1', 'apiVersion: livesim.dev/v1']), path: 'apiVersion', message: 'expected livesim.dev/v1alpha1', apiServer: 'no matches for kind "SimSweep" in version "livesim.dev/v1"' },
  // Checks the CRD expresses as well: the API server refuses these itself.
  { name: 'more than 8 parameters', yaml: edit(['  parameters:\n', `  parameters:\n${Array.from({ length: 9 }, (_, i) => `    - { name: p${i}, path: network.links.0.latency, values: [${i + 1}ms] }`).join('\n')}\n`]), path: 'spec.parameters', message: 'takes at most 8 items', apiServer: 'spec.parameters' },
  { name: 'more than 100 seeds', yaml: edit(['seeds: 2', 'seeds: 101']), path: 'spec.seeds', message: 'must be <= 100; got number 101', apiServer: 'spec.seeds' },
  { name: 'parallelism above 64', yaml: edit(['parallelism: 2', 'parallelism: 65']), path: 'spec.parallelism', message: 'must be <= 64; got number 65', apiServer: 'spec.parallelism' },
  { name: 'a metric component without its group', yaml: edit(['component: db/sql', 'component: db']), path: 'spec.metrics[1].component', message: 'string "db" is not allowed: group/component', apiServer: 'spec.metrics[1].component' },
  { name: 'a metric field that is not a dotted name', yaml: edit(['field: utilization', 'field: "util ization"']), path: 'spec.metrics[1].field', message: 'string "util ization" is not allowed', apiServer: 'spec.metrics[1].field' },
  { name: 'a parameter name that is not a column name', yaml: edit(['name: workers', 'name: 2workers']), path: 'spec.parameters[0].name', message: 'string "2workers" is not allowed', apiServer: 'spec.parameters[0].name' },
  { name: 'a parameter without a path', yaml: edit([`      ${LATENCY_PATH}\n`, '']), path: 'spec.parameters[1].path', message: 'required field is missing', apiServer: 'spec.parameters[1].path' },
  { name: 'an objective without a goal', yaml: edit(['objective: { metric: p99, goal: Minimize }', 'objective: { metric: p99 }']), path: 'spec.objective.goal', message: 'required field is missing', apiServer: 'spec.objective.goal' },
  { name: 'a template end time without a unit', yaml: edit(['endTime: 100ms', 'endTime: "100"']), path: 'spec.template.endTime', message: 'string "100" is not allowed', apiServer: 'spec.template.endTime' },
  { name: 'an unknown field of the template', yaml: edit(['    seed: 7\n', '    seed: 7\n    speedOfLight: fast\n']), path: 'spec.template.speedOfLight', message: 'unknown field; allowed fields here: endTime, seed', apiServer: 'unknown field "spec.template.speedOfLight"' },
]

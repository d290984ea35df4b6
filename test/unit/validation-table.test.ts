// Table-driven test of SimCluster validation: malformed manifests, each given as YAML text, must be
// rejected with a ValidationError that names the exact field path and says what is wrong, without a
// stack trace. Most cases break one thing in a small valid base manifest; some are whole documents.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { localHeapBudget, type HeapBudget } from '../../sim-runtime/api/state-budget.ts'
import { loadSimCluster, ValidationError } from '../../sim-runtime/api/validate.ts'
import { loadSimSweep } from '../../sim-runtime/sweep/validate.ts'
import { replaceOnce } from '../helpers.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const EXAMPLES = path.join(ROOT, 'examples')
const CLI = path.join(ROOT, 'sim-runtime/cli/main.ts')

// hosts[0] = client (2 replicas), hosts[1] = web, hosts[2] = db.
const BASE = `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata:
  name: base
spec:
  endTime: 1s
  seed: 7
  network:
    default: { latency: 100us, bandwidth: 10Gbps }
    links:
      - { from: client, to: web, latency: 200us, bandwidth: 1Gbps, loss: 0.01 }
  hosts:
    - name: client
      replicas: 2
      components:
        - name: load
          model:
            kind: Client
            target: web/http
            openLoop: { rate: 100 }
            requestSize: 512B
            timeout: 50ms
    - name: web
      components:
        - name: http
          model:
            kind: Server
            workers: 4
            service: { distribution: LogNormal, mean: 300us, sigma: 0.5 }
            calls:
              - { target: db/sql, requestSize: 256B, responseSize: 4KiB }
    - name: db
      components:
        - name: sql
          model:
            kind: Server
            service: { distribution: Exponential, mean: 100us }
`

/** The base manifest with each `find` (which must occur exactly once) replaced. */
function edit(...replacements: [find: string, replace: string][]): string {
  return replaceOnce(BASE, ...replacements)
}

/** web/http is a live program serving port http (80); the Client targets it. */
const LIVE_WEB = edit([
  'model:\n            kind: Server\n            workers: 4\n            service: { distribution: LogNormal, mean: 300us, sigma: 0.5 }\n            calls:\n              - { target: db/sql, requestSize: 256B, responseSize: 4KiB }',
  'live: { command: [nginx], ports: [{ name: http, port: 80 }] }',
])
/** LIVE_WEB with the Client's `http:` block set to `block` (YAML flow mapping). */
const httpClient = (block: string) => replaceOnce(LIVE_WEB, ['timeout: 50ms', `timeout: 50ms\n            http: ${block}`])
/** db/sql is a live program serving port sql (6379); web/http calls it with `call` added to its call. */
const liveDbCall = (call: string) =>
  edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { command: [redis-server], ports: [{ name: sql, port: 6379 }] }'], ['responseSize: 4KiB }', `responseSize: 4KiB${call} }`])

const CLIENT = 'spec.hosts[0].components[0]'
const WEB = 'spec.hosts[1].components[0]'
const DB = 'spec.hosts[2].components[0]'

/** db/sql as a live redis-server from `image` (YAML text), with `more` added to its live block; web/http's call speaks Redis to it. */
const liveImage = (image: string, more = '') =>
  edit(
    ['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', `live: { image: ${image}, command: [redis-server], ports: [{ name: sql, port: 6379 }]${more} }`],
    ['responseSize: 4KiB }', 'responseSize: 4KiB, redis: {} }'],
  )

// Nine levels of nine aliases each: 9^9 "lol"s if expanded.
const BILLION_LAUGHS = [
  'apiVersion: livesim.dev/v1alpha1',
  'kind: SimCluster',
  'metadata:',
  '  name: lol',
  '  annotations:',
  '    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
  ...'bcdefghi'.split('').map((x, i) => `    ${x}: &${x} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`),
].join('\n')

// Under the alias limit (6 x 9 aliases) but still 9^7 leaves if anything walked it naively.
const SMALL_BOMB = edit([
  '  name: base\n',
  [
    '  name: base',
    '  annotations:',
    '    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ...'bcdefg'.split('').map((x, i) => `    ${x}: &${x} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`),
    '',
  ].join('\n'),
])

/** Servers h0/c0 → h0/c1 → … → h<hosts-1>/c<per-1>, each calling the next; optionally back to h0/c0. */
function callChain(hosts: number, perHost: number, cycle: boolean): string {
  const lines = ['apiVersion: livesim.dev/v1alpha1', 'kind: SimCluster', 'metadata: { name: chain }', 'spec:', '  endTime: 1s', '  hosts:']
  for (let h = 0; h < hosts; h++) {
    lines.push(`    - name: h${h}`, '      components:')
    for (let c = 0; c < perHost; c++) {
      const next = c + 1 < perHost ? `c${c + 1}` : h + 1 < hosts ? `h${h + 1}/c0` : cycle ? 'h0/c0' : undefined
      const calls = next ? `, calls: [{ target: ${next} }]` : ''
      lines.push(`        - { name: c${c}, model: { kind: Server, service: { distribution: Constant, mean: 1us }${calls} } }`)
    }
  }
  return `${lines.join('\n')}\n`
}

interface Case {
  name: string
  yaml: string
  /** Exact field path of the expected issue; '' for whole-document problems. */
  path: string
  /** A fragment of that issue's message. */
  message: string
  baseDir?: string
  /** Check the modelled state against runtimes of this heap. */
  heap?: HeapBudget
}

/** Runtimes of a 4 GiB heap, all hosts in one. */
const HEAP_4GIB: HeapBudget = { heapLimitBytes: 4 * 2 ** 30, partition: 1 }
/** The base manifest with 100 client hosts of 1,000,000 closed-loop users each. */
const HUNDRED_MILLION_USERS = edit(['replicas: 2', 'replicas: 100'], ['openLoop: { rate: 100 }', 'closedLoop: { users: 1000000 }'])

const cases: Case[] = [
  // --- wrong types -----------------------------------------------------------------------------
  { name: 'string for integer (seed)', yaml: edit(['seed: 7', 'seed: seven']), path: 'spec.seed', message: 'expected integer, got string "seven"' },
  { name: 'quoted number for integer (workers)', yaml: edit(['workers: 4', 'workers: "4"']), path: `${WEB}.model.workers`, message: 'expected integer' },
  { name: 'infinite seed', yaml: edit(['seed: 7', 'seed: .inf']), path: 'spec.seed', message: 'got number Infinity' },
  { name: 'object for array (calls)', yaml: edit(['calls:\n              - { target: db/sql, requestSize: 256B, responseSize: 4KiB }', 'calls: { target: db/sql }']), path: `${WEB}.model.calls`, message: 'expected array, got an object' },
  { name: 'object for array (links)', yaml: edit(['links:\n      - { from: client, to: web, latency: 200us, bandwidth: 1Gbps, loss: 0.01 }', 'links: { from: client, to: web }']), path: 'spec.network.links', message: 'expected array' },
  { name: 'number for duration (endTime)', yaml: edit(['endTime: 1s', 'endTime: 1000']), path: 'spec.endTime', message: 'expected string, got number 1000' },
  { name: 'number for duration (link latency)', yaml: edit(['latency: 200us', 'latency: 200']), path: 'spec.network.links[0].latency', message: 'expected string' },
  { name: 'array for object (openLoop)', yaml: edit(['openLoop: { rate: 100 }', 'openLoop: [100]']), path: `${CLIENT}.model.openLoop`, message: 'expected object, got an array' },
  { name: 'string for number (rate)', yaml: edit(['rate: 100', 'rate: fast']), path: `${CLIENT}.model.openLoop.rate`, message: 'expected number' },
  { name: 'boolean for name', yaml: edit(['name: base', 'name: true']), path: 'metadata.name', message: 'expected string, got boolean true' },
  { name: 'null spec', yaml: 'apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: x }\nspec: ~\n', path: 'spec', message: 'expected object, got null' },

  // --- unknown fields at every depth -------------------------------------------------------------
  { name: 'unknown top-level field', yaml: edit(['kind: SimCluster', 'kind: SimCluster\nspecs: {}']), path: 'specs', message: 'unknown field' },
  { name: 'unknown field in spec', yaml: edit(['seed: 7', 'seed: 7\n  speed: 2']), path: 'spec.speed', message: 'unknown field; allowed fields here: endTime, seed, sync, network, hosts' },
  { name: 'unknown field in host', yaml: edit(['replicas: 2', 'replicas: 2\n      zone: eu']), path: 'spec.hosts[0].zone', message: 'unknown field' },
  { name: 'unknown field in component', yaml: edit(['- name: sql', '- name: sql\n          image: postgres']), path: `${DB}.image`, message: 'unknown field' },
  { name: 'unknown field in model', yaml: edit(['workers: 4', 'workers: 4\n            threads: 8']), path: `${WEB}.model.threads`, message: 'unknown field' },
  { name: 'unknown field in service', yaml: edit(['mean: 100us }', 'mean: 100us, p99: 1ms }']), path: `${DB}.model.service.p99`, message: 'unknown field' },
  { name: 'unknown field in network link', yaml: edit(['loss: 0.01 }', 'loss: 0.01, jitter: 5us }']), path: 'spec.network.links[0].jitter', message: 'unknown field' },
  { name: 'unknown field in network default', yaml: edit(['default: { latency: 100us', 'default: { mtu: 1500, latency: 100us']), path: 'spec.network.default.mtu', message: 'unknown field' },
  { name: 'unknown field in closedLoop', yaml: edit(['openLoop: { rate: 100 }', 'closedLoop: { users: 10, thinkTime: 1ms, think: 2ms }']), path: `${CLIENT}.model.closedLoop.think`, message: 'unknown field; allowed fields here: users, thinkTime' },
  { name: 'unknown field in a call', yaml: edit(['responseSize: 4KiB }', 'responseSize: 4KiB, retries: 3 }']), path: `${WEB}.model.calls[0].retries`, message: 'unknown field' },

  // --- durations -------------------------------------------------------------------------------
  { name: 'zero endTime', yaml: edit(['endTime: 1s', 'endTime: 0s']), path: 'spec.endTime', message: 'must be greater than zero' },
  { name: 'negative latency', yaml: edit(['latency: 100us', 'latency: -1ms']), path: 'spec.network.default.latency', message: 'string "-1ms" is not allowed' },
  { name: 'zero quantum ("0ns")', yaml: edit(['seed: 7', 'seed: 7\n  sync: { quantum: "0ns" }']), path: 'spec.sync.quantum', message: 'must be greater than zero' },
  { name: 'zero link latency', yaml: edit(['latency: 200us', 'latency: 0us']), path: 'spec.network.links[0].latency', message: 'must be greater than zero' },
  { name: 'duration without unit', yaml: edit(['mean: 300us', 'mean: "300"']), path: `${WEB}.model.service.mean`, message: 'A duration with a unit' },
  { name: 'duration with unknown unit (endTime)', yaml: edit(['endTime: 1s', 'endTime: 1sec']), path: 'spec.endTime', message: 'A duration with a unit' },
  { name: 'duration with unknown unit (days)', yaml: edit(['timeout: 50ms', 'timeout: 2d']), path: `${CLIENT}.model.timeout`, message: 'A duration with a unit' },
  { name: 'fractional nanoseconds (service mean)', yaml: edit(['mean: 100us', 'mean: 1.5ns']), path: `${DB}.model.service.mean`, message: 'not a whole number of nanoseconds' },
  { name: 'fractional nanoseconds (link latency)', yaml: edit(['latency: 200us', 'latency: 0.5ns']), path: 'spec.network.links[0].latency', message: 'not a whole number of nanoseconds' },
  { name: 'fractional nanoseconds (quantum)', yaml: edit(['seed: 7', 'seed: 7\n  sync: { quantum: 2.5ns }']), path: 'spec.sync.quantum', message: 'not a whole number of nanoseconds' },
  { name: 'endTime over 30 days', yaml: edit(['endTime: 1s', 'endTime: 1000h']), path: 'spec.endTime', message: 'at most 30 days' },
  { name: 'link latency too large to be exact', yaml: edit(['latency: 200us', 'latency: 99999999999999999999h']), path: 'spec.network.links[0].latency', message: 'too large' },

  // --- bandwidths and sizes --------------------------------------------------------------------
  { name: 'bandwidth in bytes per second', yaml: edit(['bandwidth: 10Gbps', 'bandwidth: 10GBps']), path: 'spec.network.default.bandwidth', message: 'Bits per second with a unit' },
  { name: 'bandwidth with a slash unit', yaml: edit(['bandwidth: 1Gbps', 'bandwidth: 1Gb/s']), path: 'spec.network.links[0].bandwidth', message: 'Bits per second with a unit' },
  { name: 'zero bandwidth', yaml: edit(['bandwidth: 10Gbps', 'bandwidth: 0Gbps']), path: 'spec.network.default.bandwidth', message: 'must be greater than zero' },
  { name: 'fractional bits per second', yaml: edit(['bandwidth: 1Gbps', 'bandwidth: 1.5bps']), path: 'spec.network.links[0].bandwidth', message: 'not a whole number' },
  { name: 'size with unknown unit', yaml: edit(['requestSize: 512B', 'requestSize: 12XB']), path: `${CLIENT}.model.requestSize`, message: 'Bytes: an integer, or a string with a unit' },
  { name: 'negative size', yaml: edit(['responseSize: 4KiB', 'responseSize: -4']), path: `${WEB}.model.calls[0].responseSize`, message: 'is not allowed' },
  { name: 'size over 1GiB', yaml: edit(['requestSize: 256B', 'requestSize: 2GiB']), path: `${WEB}.model.calls[0].requestSize`, message: 'must be at most 1GiB' },
  { name: 'fractional bytes', yaml: edit(['requestSize: 512B', 'requestSize: 0.5B']), path: `${CLIENT}.model.requestSize`, message: 'not a whole number' },

  // --- targets ---------------------------------------------------------------------------------
  { name: 'client target on an unknown host', yaml: edit(['target: web/http', 'target: dbx/sql']), path: `${CLIENT}.model.target`, message: 'no host "dbx"; hosts are: client, web, db' },
  { name: 'call target on an unknown component', yaml: edit(['target: db/sql', 'target: db/mysql']), path: `${WEB}.model.calls[0].target`, message: 'host db has no component "mysql"' },
  { name: 'unknown component on the same host', yaml: edit(['target: web/http', 'target: http']), path: `${CLIENT}.model.target`, message: 'no component "http" on host client' },
  { name: 'a Client targeting a Client', yaml: edit(['target: web/http', 'target: client/load']), path: `${CLIENT}.model.target`, message: 'client/load is a Client' },
  { name: 'a Server calling a Client', yaml: edit(['target: db/sql', 'target: client-1/load']), path: `${WEB}.model.calls[0].target`, message: 'is a Client' },
  {
    name: 'a target that is a live component without ports',
    yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { command: [sleep, "1000"] }']),
    path: `${WEB}.model.calls[0].target`,
    message: 'serves no ports',
  },

  // --- names -----------------------------------------------------------------------------------
  { name: 'duplicate host names', yaml: edit(['- name: db', '- name: web']), path: 'spec.hosts[2].name', message: 'duplicate host name "web" (also spec.hosts[1])' },
  {
    name: 'duplicate component names',
    yaml: edit(['mean: 100us }\n', 'mean: 100us }\n        - name: sql\n          model: { kind: Server, service: { distribution: Constant, mean: 1ms } }\n']),
    path: 'spec.hosts[2].components[1].name',
    message: 'duplicate component name "sql" on host db',
  },
  { name: 'absurd replica count', yaml: edit(['replicas: 2', 'replicas: 100000']), path: 'spec.hosts[0].replicas', message: 'must be <= 10000; got number 100000' },
  {
    name: 'too many hosts over several groups',
    yaml: edit(['replicas: 2', 'replicas: 4000'], ['- name: web\n', '- name: web\n      replicas: 4000\n'], ['- name: db\n', '- name: db\n      replicas: 4000\n']),
    path: 'spec.hosts',
    message: '12000 hosts in all (replicas included); at most 10000',
  },
  { name: 'zero replicas', yaml: edit(['replicas: 2', 'replicas: 0']), path: 'spec.hosts[0].replicas', message: 'must be >= 1' },
  { name: 'host without components', yaml: edit(['      components:\n        - name: sql\n          model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }\n', '      components: []\n']), path: 'spec.hosts[2].components', message: 'needs at least 1 items' },
  { name: 'uppercase host name', yaml: edit(['- name: db', '- name: DB']), path: 'spec.hosts[2].name', message: 'string "DB" is not allowed: use lowercase letters, digits and "-"' },
  { name: 'host name too long', yaml: edit(['- name: db', '- name: database-primary-east']), path: 'spec.hosts[2].name', message: 'must have at most 20 characters' },
  { name: 'component name with an underscore', yaml: edit(['- name: sql', '- name: my_sql']), path: `${DB}.name`, message: 'use lowercase letters' },
  { name: 'cluster name with uppercase', yaml: edit(['name: base', 'name: Base']), path: 'metadata.name', message: 'use lowercase letters' },
  { name: 'host name equal to a replica of another group', yaml: edit(['- name: db', '- name: client-1']), path: 'spec.hosts[2].name', message: '"client-1" is also the name of a replica of another host' },

  // --- network ---------------------------------------------------------------------------------
  { name: 'link to an unknown host', yaml: edit(['to: web', 'to: webx']), path: 'spec.network.links[0].to', message: 'no host "webx"' },
  { name: 'link from an unknown replica', yaml: edit(['from: client', 'from: client-2']), path: 'spec.network.links[0].from', message: 'no host "client-2"' },
  { name: 'link from a host to itself', yaml: edit(['from: client, to: web', 'from: db, to: db-0']), path: 'spec.network.links[0]', message: 'a link needs two distinct hosts' },
  { name: 'loss over 1', yaml: edit(['loss: 0.01', 'loss: 1.5']), path: 'spec.network.links[0].loss', message: 'must be <= 1' },
  { name: 'negative loss', yaml: edit(['loss: 0.01', 'loss: -0.1']), path: 'spec.network.links[0].loss', message: 'must be >= 0' },
  { name: 'zero link queueLimit', yaml: edit(['loss: 0.01', 'loss: 0.01, queueLimit: 0']), path: 'spec.network.links[0].queueLimit', message: 'must be >= 1' },

  // --- sync ------------------------------------------------------------------------------------
  { name: 'Conservative quantum larger than the smallest latency', yaml: edit(['seed: 7', 'seed: 7\n  sync: { quantum: 1ms }']), path: 'spec.sync.quantum', message: 'larger than the smallest link latency (100000ns)' },
  { name: 'Slack mode without slack', yaml: edit(['seed: 7', 'seed: 7\n  sync: { mode: Slack }']), path: 'spec.sync.slack', message: 'required in Slack mode' },
  { name: 'slack in Conservative mode', yaml: edit(['seed: 7', 'seed: 7\n  sync: { mode: Conservative, slack: 1ms }']), path: 'spec.sync.slack', message: 'only allowed with mode: Slack' },
  { name: 'slack with the default mode', yaml: edit(['seed: 7', 'seed: 7\n  sync: { slack: 1ms }']), path: 'spec.sync.slack', message: 'only allowed with mode: Slack' },
  { name: 'unknown sync mode', yaml: edit(['seed: 7', 'seed: 7\n  sync: { mode: Optimistic }']), path: 'spec.sync.mode', message: 'must be one of: Conservative, Slack; got string "Optimistic"' },

  // --- models ----------------------------------------------------------------------------------
  { name: 'both openLoop and closedLoop', yaml: edit(['openLoop: { rate: 100 }', 'openLoop: { rate: 100 }\n            closedLoop: { users: 4 }']), path: `${CLIENT}.model`, message: 'exactly one of openLoop or closedLoop' },
  { name: 'neither openLoop nor closedLoop', yaml: edit(['            openLoop: { rate: 100 }\n', '']), path: `${CLIENT}.model`, message: 'exactly one of openLoop or closedLoop' },
  { name: 'Client without target', yaml: edit(['            target: web/http\n', '']), path: `${CLIENT}.model.target`, message: 'required for kind Client' },
  { name: 'Server missing service', yaml: edit(['service: { distribution: Exponential, mean: 100us }', 'workers: 2']), path: `${DB}.model.service`, message: 'required for kind Server' },
  { name: 'workers on a Client', yaml: edit(['timeout: 50ms', 'timeout: 50ms\n            workers: 4']), path: `${CLIENT}.model.workers`, message: 'not a field of kind Client; Client takes: kind, target' },
  { name: 'target on a Server', yaml: edit(['workers: 4', 'workers: 4\n            target: db/sql']), path: `${WEB}.model.target`, message: 'not a field of kind Server' },
  { name: 'unknown model kind', yaml: edit(['kind: Server\n            workers', 'kind: Database\n            workers']), path: `${WEB}.model.kind`, message: 'must be one of: Client, Server, Custom' },
  { name: 'LogNormal without sigma', yaml: edit([', sigma: 0.5', '']), path: `${WEB}.model.service.sigma`, message: 'required with distribution LogNormal' },
  { name: 'sigma with Exponential', yaml: edit(['Exponential, mean: 100us', 'Exponential, mean: 100us, sigma: 0.5']), path: `${DB}.model.service.sigma`, message: 'only allowed with distribution LogNormal' },
  { name: 'unknown distribution', yaml: edit(['distribution: Exponential', 'distribution: Gaussian']), path: `${DB}.model.service.distribution`, message: 'must be one of: Constant, Exponential, LogNormal' },
  { name: 'zero open-loop rate', yaml: edit(['rate: 100', 'rate: 0']), path: `${CLIENT}.model.openLoop.rate`, message: 'must be > 0' },
  {
    name: 'both model and live',
    yaml: edit(['- name: sql\n', '- name: sql\n          live: { command: [postgres], ports: [{ name: sql, port: 5432 }] }\n']),
    path: DB,
    message: 'exactly one of model or live must be set',
  },
  { name: 'neither model nor live', yaml: edit(['          model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }\n', '']), path: DB, message: 'exactly one of model or live must be set' },
  { name: 'live with an empty command', yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { command: [], ports: [{ name: sql, port: 5432 }] }']), path: `${DB}.live.command`, message: 'needs at least 1 items' },
  { name: 'live port out of range', yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { command: [postgres], ports: [{ name: sql, port: 70000 }] }']), path: `${DB}.live.ports[0].port`, message: 'must be <= 65535' },
  {
    name: 'one live component serving a port number twice',
    yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { command: [postgres], ports: [{ name: sql, port: 5432 }, { name: admin, port: 5432 }] }']),
    path: `${DB}.live.ports[1].port`,
    message: 'port 5432 is already served on this host by this component',
  },
  {
    name: 'two live components of a host serving the same port number',
    yaml: edit([
      'model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }',
      'live: { command: [postgres], ports: [{ name: sql, port: 5432 }] }\n        - name: replica\n          live: { command: [postgres], ports: [{ name: sql, port: 5432 }] }',
    ]),
    path: 'spec.hosts[2].components[1].live.ports[0].port',
    message: 'port 5432 is already served on this host by component sql; the live programs of a host share its address',
  },
  {
    name: 'environment variable name starting with a digit',
    yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { command: [postgres], env: [{ name: 1PG, value: x }], ports: [{ name: sql, port: 5432 }] }']),
    path: `${DB}.live.env[0].name`,
    message: 'use letters, digits and "_"',
  },
  { name: 'a server calling itself', yaml: edit(['responseSize: 4KiB }', 'responseSize: 4KiB }\n              - { target: http }']), path: `${WEB}.model.calls[1].target`, message: 'call cycle: web/http → web/http' },
  {
    name: 'a cycle of two servers',
    yaml: edit(['mean: 100us }\n', 'mean: 100us }\n            calls: [{ target: web/http }]\n']),
    path: `${DB}.model.calls[0].target`,
    message: 'call cycle: web/http → db/sql → web/http',
  },
  {
    name: 'a cycle through 10240 servers',
    yaml: callChain(160, 64, true),
    path: 'spec.hosts[159].components[63].model.calls[0].target',
    message: 'call cycle: h0/c0 → h0/c1 → h0/c2',
  },
  {
    name: 'Custom module that does not exist',
    yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'model: { kind: Custom, module: ./models/no-such-model.js }']),
    path: `${DB}.model.module`,
    message: `no such file: ${path.join(EXAMPLES, 'models/no-such-model.js')}`,
    baseDir: EXAMPLES,
  },

  // --- live.image (sim-runtime/api/image.ts) --------------------------------------------------------
  { name: 'image: empty', yaml: liveImage('""'), path: `${DB}.live.image`, message: 'an image reference must not be empty' },
  { name: 'image: uppercase repository', yaml: liveImage('Redis:7'), path: `${DB}.live.image`, message: 'repository names are lowercase: "Redis"' },
  { name: 'image: uppercase first component that is no registry', yaml: liveImage('MyOrg/redis:7'), path: `${DB}.live.image`, message: 'a registry has a "." or a :port, or is localhost' },
  { name: 'image: short digest', yaml: liveImage('redis@sha256:abc'), path: `${DB}.live.image`, message: 'a sha256 digest is 64 hex digits; got 3 characters' },
  { name: 'image: uppercase digest', yaml: liveImage(`redis@sha256:${'AB'.repeat(32)}`), path: `${DB}.live.image`, message: 'written in lowercase hex digits' },
  { name: 'image: unknown digest algorithm', yaml: liveImage(`redis@md5:${'ab'.repeat(16)}`), path: `${DB}.live.image`, message: 'algorithm is sha256 or sha512; got "md5"' },
  { name: 'image: tag after the digest', yaml: liveImage(`redis@sha256:${'ab'.repeat(32)}:7`), path: `${DB}.live.image`, message: 'the tag goes before the digest' },
  { name: 'image: two digests', yaml: liveImage(`redis@sha256:${'ab'.repeat(32)}@sha256:${'ab'.repeat(32)}`), path: `${DB}.live.image`, message: 'at most one @digest' },
  { name: 'image: empty tag', yaml: liveImage('"redis:"'), path: `${DB}.live.image`, message: 'the tag after ":" is empty' },
  { name: 'image: tag starting with "-"', yaml: liveImage('redis:-7'), path: `${DB}.live.image`, message: 'not starting with "." or "-"' },
  { name: 'image: tag longer than 128', yaml: liveImage(`redis:${'7'.repeat(129)}`), path: `${DB}.live.image`, message: 'a tag is 1-128 letters' },
  { name: 'image: a scheme', yaml: liveImage('docker://redis:7'), path: `${DB}.live.image`, message: 'no scheme: drop "docker://"' },
  { name: 'image: double slash', yaml: liveImage('library//redis:7'), path: `${DB}.live.image`, message: 'empty path component' },
  { name: 'image: leading space', yaml: liveImage('" redis:7"'), path: `${DB}.live.image`, message: 'no spaces or control characters' },
  { name: 'image: repository name longer than 255', yaml: liveImage(`registry.example/${'a'.repeat(250)}:7`), path: `${DB}.live.image`, message: 'the repository name is 267 characters; at most 255' },
  { name: 'image: a number', yaml: liveImage('7'), path: `${DB}.live.image`, message: 'expected string, got number 7' },
  {
    name: 'image without command',
    yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'live: { image: "redis:7", ports: [{ name: sql, port: 6379 }] }']),
    path: `${DB}.live.command`,
    message: "with image, command names the program in the image and its arguments (the image's ENTRYPOINT and CMD are not used)",
  },
  { name: 'image with a user name', yaml: liveImage('redis:7', ', securityContext: { runAsUser: redis }'), path: `${DB}.live.securityContext.runAsUser`, message: 'with image, give a number' },
  // --- protocols to live components --------------------------------------------------------------
  { name: 'a Client to a live component without a protocol', yaml: LIVE_WEB, path: `${CLIENT}.model.target`, message: 'web/http is a live component: set redis: or http: on this Client' },
  { name: 'http on a Client to a modelled component', yaml: edit(['timeout: 50ms', 'timeout: 50ms\n            http: {}']), path: `${CLIENT}.model.http`, message: 'a protocol is for a live target, and web/http is modelled' },
  { name: 'both redis and http on a Client', yaml: replaceOnce(httpClient('{}'), ['http: {}', 'http: {}\n            redis: {}']), path: `${CLIENT}.model.http`, message: 'set one protocol: redis or http, not both' },
  { name: 'unknown HTTP method', yaml: httpClient('{ method: PUT }'), path: `${CLIENT}.model.http.method`, message: 'must be one of: GET, POST; got string "PUT"' },
  { name: 'HTTP path without a leading slash', yaml: httpClient('{ path: index.html }'), path: `${CLIENT}.model.http.path`, message: 'a request target starts with "/"' },
  { name: 'HTTP path with a space', yaml: httpClient('{ paths: [/a, "/b c"] }'), path: `${CLIENT}.model.http.paths[1]`, message: 'no spaces or control characters' },
  { name: 'both path and paths', yaml: httpClient('{ path: /a, paths: [/b] }'), path: `${CLIENT}.model.http.paths`, message: 'set path or paths, not both' },
  { name: 'empty paths', yaml: httpClient('{ paths: [] }'), path: `${CLIENT}.model.http.paths`, message: 'needs at least 1 items' },
  { name: 'a request body on a GET', yaml: httpClient('{ bodySize: 1KiB }'), path: `${CLIENT}.model.http.bodySize`, message: 'a request body needs method POST; the method here is GET (the default)' },
  { name: 'HTTP body size with an unknown unit', yaml: httpClient('{ method: POST, bodySize: 1XB }'), path: `${CLIENT}.model.http.bodySize`, message: 'Bytes: an integer, or a string with a unit' },
  { name: 'a Content-Length header', yaml: httpClient('{ method: POST, headers: [{ name: Host, value: a }, { name: content-length, value: "5" }] }'), path: `${CLIENT}.model.http.headers[1].name`, message: 'Content-Length is set by livesim' },
  { name: 'a Connection header', yaml: httpClient('{ headers: [{ name: Connection, value: close }] }'), path: `${CLIENT}.model.http.headers[0].name`, message: 'Connection from keepAlive' },
  { name: 'a header name with a space', yaml: httpClient('{ headers: [{ name: X Id, value: "1" }] }'), path: `${CLIENT}.model.http.headers[0].name`, message: 'a header name is an HTTP token' },
  { name: 'a header value with a newline', yaml: httpClient('{ headers: [{ name: X-Id, value: "1\\r\\nInjected: yes" }] }'), path: `${CLIENT}.model.http.headers[0].value`, message: 'a header value may not contain CR, LF or NUL' },
  { name: 'unknown field in http', yaml: httpClient('{ rate: 10 }'), path: `${CLIENT}.model.http.rate`, message: 'unknown field; allowed fields here: method, path, paths, headers, bodySize, keepAlive' },
  { name: 'keepAlive as a string', yaml: httpClient('{ keepAlive: "yes" }'), path: `${CLIENT}.model.http.keepAlive`, message: 'expected boolean, got string "yes"' },
  { name: 'a call to a live component without a protocol', yaml: liveDbCall(''), path: `${WEB}.model.calls[0].target`, message: 'db/sql is a live component: set redis: or http: on this call' },
  { name: 'http on a call to a modelled component', yaml: edit(['responseSize: 4KiB }', 'responseSize: 4KiB, http: { path: /q } }']), path: `${WEB}.model.calls[0].http`, message: 'a protocol is for a live target, and db/sql is modelled' },
  { name: 'a Redis value over 1GiB in a call', yaml: liveDbCall(', redis: { valueSize: 2GiB }'), path: `${WEB}.model.calls[0].redis.valueSize`, message: 'must be at most 1GiB' },
  { name: 'both protocols on a call', yaml: liveDbCall(', redis: {}, http: {}'), path: `${WEB}.model.calls[0].http`, message: 'set one protocol: redis or http, not both' },
  { name: 'unknown field in a call\'s redis', yaml: liveDbCall(', redis: { ratio: 1 }'), path: `${WEB}.model.calls[0].redis.ratio`, message: 'unknown field; allowed fields here: setRatio, keys, valueSize' },
  {
    name: '100 hosts × 1,000,000 closed-loop users in one runtime',
    yaml: HUNDRED_MILLION_USERS,
    path: `${CLIENT}.model.closedLoop.users`,
    message: "needs ~61.5 GiB of modelled state (100 hosts × 1000000 users, ~660 B each), the runtime's heap holds ~3.0 GiB (75 % of its 4.0 GiB limit, less the runtime itself); lower users or split hosts across runtimes (--partition 26)",
    heap: HEAP_4GIB,
  },
  {
    name: 'a host whose users alone are more than a runtime can carry',
    yaml: edit(['openLoop: { rate: 100 }', 'closedLoop: { users: 1000000 }']),
    path: `${CLIENT}.model.closedLoop.users`,
    message: "needs ~629 MiB of modelled state in runtime 1 of 4 (1000000 users, ~660 B each), the runtime's heap holds ~160 MiB (75 % of its 256 MiB limit, less the runtime itself); lower users (one host is more than a runtime can carry)",
    heap: { heapLimitBytes: 256 * 2 ** 20, partition: 4 },
  },
  {
    name: 'open-loop requests outstanding for a timeout (rate × timeout)',
    yaml: edit(['rate: 100', 'rate: 100000000']),
    path: `${CLIENT}.model.openLoop.rate`,
    message: 'needs ~6.1 GiB of modelled state (2 hosts × up to 5000000 requests outstanding (rate × timeout), ~660 B each)',
    heap: HEAP_4GIB,
  },
  { name: 'Server field on a Custom model', yaml: edit(['model:\n            kind: Server\n            service: { distribution: Exponential, mean: 100us }', 'model: { kind: Custom, module: ./m.js, workers: 2 }']), path: `${DB}.model.workers`, message: 'not a field of kind Custom' },

  // --- whole documents -------------------------------------------------------------------------
  { name: 'YAML alias bomb', yaml: BILLION_LAUGHS, path: '', message: 'aliases exceeded maxAliases' },
  { name: 'alias expansion under the alias limit', yaml: SMALL_BOMB, path: 'metadata.annotations.a', message: 'expected string, got an array' },
  { name: 'invalid YAML syntax', yaml: edit(['  seed: 7\n', '  seed: [7\n']), path: '', message: 'not valid YAML' },
  { name: 'duplicate YAML key', yaml: edit(['seed: 7', 'seed: 7\n  seed: 8']), path: '', message: 'duplicated mapping key' },
  { name: 'nesting too deep', yaml: `${BASE}status: ${'['.repeat(200)}${']'.repeat(200)}\n`, path: '', message: 'not valid YAML' },
  { name: 'empty file', yaml: '', path: '', message: 'expected exactly one SimCluster document, found 0' },
  { name: 'only comments', yaml: '# nothing here\n', path: '', message: 'found 0' },
  { name: 'two documents in one file', yaml: `${BASE}---\n${BASE}`, path: '', message: 'expected exactly one SimCluster document, found 2' },
  { name: 'a Deployment', yaml: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { replicas: 3 }\n', path: 'kind', message: 'expected SimCluster, got string "Deployment"' },
  { name: 'wrong apiVersion', yaml: edit(['apiVersion: livesim.dev/v1alpha1', 'apiVersion: livesim.dev/v1']), path: 'apiVersion', message: 'expected livesim.dev/v1alpha1, got string "livesim.dev/v1"' },
  { name: 'JSON array at top level', yaml: '[{"apiVersion": "livesim.dev/v1alpha1", "kind": "SimCluster"}]', path: '', message: 'expected a SimCluster object, got an array' },
  { name: 'scalar document', yaml: 'just a string\n', path: '', message: 'expected a SimCluster object, got string "just a string"' },
  { name: 'number document', yaml: '42\n', path: '', message: 'got number 42' },
  { name: 'missing spec', yaml: 'apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: x }\n', path: 'spec', message: 'required field is missing' },
  { name: 'missing endTime', yaml: edit(['  endTime: 1s\n', '']), path: 'spec.endTime', message: 'required field is missing' },
  { name: 'missing metadata.name', yaml: edit(['  name: base\n', '  labels: { app: x }\n']), path: 'metadata.name', message: 'required field is missing' },
  { name: 'placement with both runtimes and hostsPerRuntime', yaml: edit(['seed: 7', 'seed: 7\n  placement: { runtimes: 2, hostsPerRuntime: 2 }']), path: 'spec.placement', message: 'set exactly one of runtimes' },
  { name: 'placement with neither', yaml: edit(['seed: 7', 'seed: 7\n  placement: {}']), path: 'spec.placement', message: 'set exactly one of runtimes' },
  { name: 'placement: zero runtimes', yaml: edit(['seed: 7', 'seed: 7\n  placement: { runtimes: 0 }']), path: 'spec.placement.runtimes', message: 'must be >= 1' },
  { name: 'placement: more runtimes than the limit', yaml: edit(['seed: 7', 'seed: 7\n  placement: { runtimes: 1001 }']), path: 'spec.placement.runtimes', message: 'must be <= 1000' },
  { name: 'placement: more runtimes than modelled hosts', yaml: edit(['seed: 7', 'seed: 7\n  placement: { runtimes: 5 }']), path: 'spec.placement.runtimes', message: '5 runtimes for 4 modelled hosts; at most 4' },
  { name: 'placement: hostsPerRuntime zero', yaml: edit(['seed: 7', 'seed: 7\n  placement: { hostsPerRuntime: 0 }']), path: 'spec.placement.hostsPerRuntime', message: 'must be >= 1' },
  { name: 'placement: an unknown field', yaml: edit(['seed: 7', 'seed: 7\n  placement: { runtimes: 2, pods: 2 }']), path: 'spec.placement.pods', message: 'unknown' },
  { name: 'no hosts', yaml: 'apiVersion: livesim.dev/v1alpha1\nkind: SimCluster\nmetadata: { name: x }\nspec: { endTime: 1s, hosts: [] }\n', path: 'spec.hosts', message: 'needs at least 1 items' },
  {
    name: 'JSON document with a bad field',
    yaml: JSON.stringify({ apiVersion: 'livesim.dev/v1alpha1', kind: 'SimCluster', metadata: { name: 'j' }, spec: { endTime: '1s', hosts: [{ name: 'a', components: [{ name: 'c', model: { kind: 'Server', service: { distribution: 'Constant', mean: '1ms' }, workers: -1 } }] }] } }),
    path: 'spec.hosts[0].components[0].model.workers',
    message: 'must be >= 1',
  },
]

function errorOf(c: Case): unknown {
  try {
    loadSimCluster(c.yaml, { ...(c.baseDir === undefined ? {} : { baseDir: c.baseDir }), ...(c.heap ? { heap: c.heap } : {}) })
  } catch (err) {
    return err
  }
  return undefined
}

describe('malformed SimCluster manifests', () => {
  it('has at least 40 cases with distinct names', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40)
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length)
  })

  it.each(cases)('$name', (c) => {
    const err = errorOf(c)
    expect(err, 'the manifest was accepted').toBeInstanceOf(ValidationError)
    const { issues, message } = err as ValidationError
    const hit = issues.find((i) => i.path === c.path && i.message.includes(c.message))
    expect(hit, `no issue at ${JSON.stringify(c.path)} containing ${JSON.stringify(c.message)}; got:\n${message}`).toBeDefined()
    for (const text of [message, ...issues.map((i) => i.message)]) {
      expect(text).not.toContain('    at ')
      expect(text).not.toContain('.ts:')
    }
  })
})

describe('valid manifests', () => {
  it('accepts the base manifest', () => {
    const { plan } = loadSimCluster(BASE)
    expect(plan.hosts.map((h) => h.name)).toEqual(['client-0', 'client-1', 'web-0', 'db-0'])
  })

  it('accepts HTTP clients and calls that speak Redis or HTTP to live components', () => {
    const client = httpClient('{ method: POST, paths: [/a, "/b?c=1"], headers: [{ name: Host, value: example.com }, { name: X-Token, value: "a b:c" }], bodySize: 2KiB, keepAlive: false }')
    expect(() => loadSimCluster(client)).not.toThrow()
    expect(() => loadSimCluster(liveDbCall(', redis: { setRatio: 0.1, keys: 10 }'))).not.toThrow()
    expect(() => loadSimCluster(liveDbCall(', http: { path: /q }'))).not.toThrow()
  })

  it.each([
    'redis:7.2',
    'redis',
    'docker.io/library/redis:7.2-bookworm',
    'localhost:5000/team/app_v2__x.y-z:v1.0_rc',
    'registry.example:5000/app',
    'Registry.Example/app:1',
    '[::1]:5000/app:1',
    `redis:7@sha256:${'ab'.repeat(32)}`,
    `redis@sha512:${'cd'.repeat(64)}`,
  ])('accepts the image %s', (image) => {
    expect(() => loadSimCluster(liveImage(JSON.stringify(image), ', securityContext: { runAsUser: 999 }'))).not.toThrow()
  })

  it('accepts a call chain through 10240 servers', () => {
    expect(loadSimCluster(callChain(160, 64, false)).plan.hosts).toHaveLength(160)
  })

  const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'))
  it('finds the examples', () => expect(examples.length).toBeGreaterThan(0))
  it.each(examples)('accepts examples/%s', (file) => {
    const text = readFileSync(path.join(EXAMPLES, file), 'utf8')
    const opts = { source: file, baseDir: EXAMPLES, heap: localHeapBudget(1) }
    // A SimSweep example is checked as one: its template and every grid point as SimClusters.
    expect(() => (/^kind: SimSweep$/m.test(text) ? loadSimSweep(text, opts) : loadSimCluster(text, opts))).not.toThrow()
  })
})

describe('livesim validate', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'livesim-validate-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const validate = (file: string) => spawnSync(process.execPath, [CLI, 'validate', file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })

  it('rejects a bad manifest with exit code 1, the field path and no stack trace', () => {
    const file = path.join(dir, 'bad.yaml')
    writeFileSync(file, edit(['target: web/http', 'target: dbx/sql']))
    const r = validate(file)
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain(`${CLIENT}.model.target`)
    expect(r.stderr).toContain('no host "dbx"')
    expect(r.stderr).not.toContain('    at ')
    expect(r.stderr).not.toContain('.ts:')
  })

  it('refuses 100 hosts × 1,000,000 users in one runtime: exit 1, the field path and the figures', () => {
    const file = path.join(dir, 'users.yaml')
    writeFileSync(file, HUNDRED_MILLION_USERS)
    const r = validate(file)
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toMatch(
      new RegExp(`${CLIENT.replace(/[[\].]/g, '\\$&')}\\.model\\.closedLoop\\.users: needs ~61\\.5 GiB of modelled state \\(100 hosts × 1000000 users, ~660 B each\\), the runtime's heap holds ~[0-9.]+ [GM]iB .*; lower users or split hosts across runtimes \\(--partition [0-9]+\\)`),
    )
    expect(r.stderr).not.toContain('    at ')
  })

  it('accepts examples/quickstart.yaml with exit code 0', () => {
    const r = validate(path.join(EXAMPLES, 'quickstart.yaml'))
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('valid SimCluster quickstart')
  })
})

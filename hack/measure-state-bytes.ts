// Measures the V8 heap that modelled state takes, per item: the figures behind STATE_BYTES in
// sim-runtime/api/state-budget.ts, which validation uses to refuse a manifest whose state cannot fit
// a runtime's heap.
//
//   node --expose-gc hack/measure-state-bytes.ts            # every scenario, one JSON line each
//   node --expose-gc hack/measure-state-bytes.ts users-queued
//
// Each scenario runs in a process of its own: the heap in use after a full GC, with the hosts built
// and run to a point where the items are alive, minus the heap before the manifest was loaded,
// divided by the number of items (less what other measured items account for). ArrayBuffers (the
// histograms' bucket arrays, the outbox) live outside the V8 heap and are reported apart.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadSimCluster } from '../sim-runtime/api/validate.ts'
import { HostGroup } from '../sim-runtime/engine/group.ts'
import { WIRE_SLOTS } from '../sim-runtime/engine/message.ts'
import { WindowClock } from '../sim-runtime/sync/windows.ts'

const USERS = 200_000

interface Scenario {
  /** What one item is. */
  item: string
  items: number
  /** Stop the run at this virtual time (ns); undefined: build the hosts, do not start them. */
  stopNs?: number
  yaml: string
}

const head = (name: string, endTime: string, network = '') => `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: ${name} }
spec:
  endTime: ${endTime}
${network}  hosts:
`
const servers = (n: number) =>
  Array.from({ length: n }, (_, i) => `        - name: s${i}\n          model: { kind: Server, service: { distribution: Constant, mean: 1ms } }\n`).join('')
const clients = (n: number) =>
  Array.from({ length: n }, (_, i) => `        - name: c${i}\n          model: { kind: Client, target: s0, openLoop: { rate: 1 } }\n`).join('')
/** One client host with USERS closed-loop users against a server on another host. */
const usersAgainst = (name: string, client: string, server: string, network = '') => `${head(name, '10h', network)}    - name: load
      components:
        - name: c
          model: { kind: Client, target: srv/s, ${client} }
    - name: srv
      components:
        - name: s
          model: { kind: Server, ${server} }
`

const SCENARIOS: Record<string, Scenario> = {
  // 1000 hosts with one Server each, built: a host (its plan entry, HostSim, context) and a Server.
  'hosts-1-server': { item: 'host with one Server', items: 1000, yaml: `${head('h1', '1s')}    - name: h\n      replicas: 1000\n      components:\n${servers(1)}` },
  // The same with 9 Servers: the difference is 8000 Servers.
  'hosts-9-servers': { item: 'host with nine Servers', items: 1000, yaml: `${head('h9', '1s')}    - name: h\n      replicas: 1000\n      components:\n${servers(9)}` },
  // 1 Server and 8 Clients: the difference from hosts-1-server is 8000 Clients.
  'hosts-1-server-8-clients': { item: 'host with one Server and eight Clients', items: 1000, yaml: `${head('h18', '1s')}    - name: h\n      replicas: 1000\n      components:\n${servers(1)}${clients(8)}` },
  // Closed-loop users thinking: each is one timer event.
  'users-thinking': { item: 'closed-loop user (thinking)', items: USERS, stopNs: 1_000_000, yaml: usersAgainst('ut', `closedLoop: { users: ${USERS}, thinkTime: 1h }, timeout: 1h`, 'service: { distribution: Constant, mean: 1us }') },
  // Every user's request queued at a server that is busy for an hour: the client's pending entry and
  // timeout timer, the server's job.
  'users-queued': {
    item: 'closed-loop user (request queued at the server)',
    items: USERS,
    stopNs: 1_000_000_000,
    yaml: usersAgainst('uq', `closedLoop: { users: ${USERS} }, timeout: 1h`, 'workers: 1, service: { distribution: Constant, mean: 1h }', `  network:\n    default: { queueLimit: 1000000 }\n`),
  },
  // Every user's request on a slow link: the message waiting in the receiving host's event queue,
  // the link's queue entry, the client's pending entry and timeout timer.
  'users-in-flight': {
    item: 'closed-loop user (request in flight)',
    items: USERS,
    stopNs: 1_000_000,
    yaml: usersAgainst('uf', `closedLoop: { users: ${USERS} }, timeout: 10h`, 'service: { distribution: Constant, mean: 1us }', `  network:\n    default: { bandwidth: 1Mbps, queueLimit: 1000000 }\n`),
  },
  // The same without a timeout: no timer per request.
  'users-in-flight-no-timeout': {
    item: 'closed-loop user (request in flight, no timeout)',
    items: USERS,
    stopNs: 1_000_000,
    yaml: usersAgainst('un', `closedLoop: { users: ${USERS} }`, 'service: { distribution: Constant, mean: 1us }', `  network:\n    default: { bandwidth: 1Mbps, queueLimit: 1000000 }\n`),
  },
  // Open loop against a fast server: the timeout timers of answered requests stay queued until they
  // fire (1e6 requests/s for 100 ms, timeout 1 h: 100000 timers).
  'open-loop-timers': {
    item: 'timeout timer of an answered request',
    items: 100_000,
    stopNs: 100_000_000,
    yaml: usersAgainst('ot', 'openLoop: { rate: 1000000, arrival: Constant }, timeout: 1h', 'workers: 1000, service: { distribution: Constant, mean: 1us }'),
  },
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with node --expose-gc')
  g()
  g()
}

function measure(name: string): Record<string, unknown> {
  const s = SCENARIOS[name]
  if (!s) throw new Error(`no scenario ${name}; scenarios: ${Object.keys(SCENARIOS).join(', ')}`)
  gc()
  const before = process.memoryUsage()
  const { plan } = loadSimCluster(s.yaml)
  const group = new HostGroup(plan, plan.hosts.map((h) => h.index))
  let events = 0
  if (s.stopNs !== undefined) {
    const clock = new WindowClock(plan)
    group.start()
    let [pending, count, payloads] = group.drainOutbox()
    while (clock.nowNs < s.stopNs) {
      let earliest = group.nextEventNs()
      for (let i = 0; i < count; i++) earliest = Math.min(earliest, pending[i * WIRE_SLOTS]!)
      const next = clock.next(earliest)
      if (next < 0) break
      const end = Math.min(next, s.stopNs)
      clock.nowNs = end
      group.deliver(pending, count, payloads)
      group.runUntil(end)
      ;[pending, count, payloads] = group.drainOutbox()
    }
    group.deliver(pending, count, payloads) // what left a host is now queued at its receiver
    events = group.hosts.reduce((n, h) => n + h.eventsProcessed, 0)
  }
  gc()
  const after = process.memoryUsage()
  const heapBytes = after.heapUsed - before.heapUsed
  const arrayBufferBytes = after.arrayBuffers - before.arrayBuffers
  const results = group.results()
  return {
    scenario: name,
    item: s.item,
    items: s.items,
    events,
    heapBytes,
    heapBytesPerItem: Math.round(heapBytes / s.items),
    arrayBufferBytes,
    arrayBufferBytesPerItem: Math.round(arrayBufferBytes / s.items),
    // What the scenario really holds, to check it is what the item says.
    components: name.startsWith('hosts') ? undefined : Object.fromEntries(Object.entries(results).map(([h, r]) => [h, r.components])),
  }
}

const self = fileURLToPath(import.meta.url)
const [only] = process.argv.slice(2)
if (only) {
  process.stdout.write(JSON.stringify(measure(only)) + '\n')
} else {
  for (const name of Object.keys(SCENARIOS)) {
    const r = spawnSync(process.execPath, ['--expose-gc', self, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    if (r.status !== 0) throw new Error(`${name} failed (${r.status ?? r.signal})`)
    const line = JSON.parse(r.stdout) as Record<string, unknown>
    delete line.components
    process.stdout.write(JSON.stringify(line) + '\n')
  }
}

// The API server itself rejects invalid SimClusters: the generated structural schema, strict field
// validation, and the CEL rules (cross-field checks and spec immutability).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { kubectl, kubectlIn, namespace, root } from './kube.ts'

const NS = 'e2e-validation'
const base = readFileSync(path.join(root, 'examples', 'quickstart.yaml'), 'utf8').replace(/^ {2}name: .*$/m, '  name: bad')

beforeAll(() => {
  namespace(NS)
})

/** Replace exactly one occurrence of `from` in the quickstart. */
function variant(from: string | RegExp, to: string | ((m: string) => string)): string {
  const out = base.replace(from, to as string)
  if (out === base) throw new Error(`test bug: ${from} not found`)
  return out
}

const clientModel = /model:\n {12}kind: Client\n {12}target: web\/http {10}# the web group: round-robin over web-0..web-2\n/

const cases: { name: string; manifest: string; expect: RegExp }[] = [
  { name: 'missing endTime', manifest: variant(/^ {2}endTime: 2s\n/m, ''), expect: /spec\.endTime: Required value/ },
  { name: 'endTime without a unit', manifest: variant('endTime: 2s', 'endTime: "2"'), expect: /spec\.endTime.*should match/ },
  { name: 'seed of the wrong type', manifest: variant('seed: 42', 'seed: forty-two'), expect: /spec\.seed.*must be of type integer|spec\.seed: Invalid value: "string"/ },
  { name: 'negative replicas', manifest: variant('replicas: 4', 'replicas: -1'), expect: /replicas.*should be greater than or equal to 1/ },
  { name: 'absurd replica count', manifest: variant('replicas: 4', 'replicas: 100000'), expect: /replicas.*should be less than or equal to 1000/ },
  { name: 'unknown sync mode', manifest: variant('  seed: 42\n', '  seed: 42\n  sync: { mode: Optimistic }\n'), expect: /spec\.sync\.mode: Unsupported value: "Optimistic"/ },
  { name: 'unknown field', manifest: variant('  seed: 42\n', '  seed: 42\n  speedOfLight: fast\n'), expect: /unknown field "spec\.speedOfLight"/ },
  { name: 'bad bandwidth unit', manifest: variant('bandwidth: 10Gbps }', 'bandwidth: 10GB/s }'), expect: /spec\.network\.default\.bandwidth.*should match/ },
  { name: 'loss above 1', manifest: variant('latency: 100us, bandwidth: 10Gbps }', 'latency: 100us, bandwidth: 10Gbps, loss: 1.5 }'), expect: /loss.*should be less than or equal to 1/ },
  { name: 'invalid host name', manifest: variant('- name: db\n', '- name: DB_Primary\n'), expect: /spec\.hosts\[2\]\.name.*should match/ },
  // Cross-field rules (CEL).
  { name: 'component with both model and live', manifest: variant('        - name: sql\n          model:', '        - name: sql\n          live: { command: [redis-server] }\n          model:'), expect: /exactly one of model or live must be set/ },
  { name: 'Client with neither openLoop nor closedLoop', manifest: variant('            openLoop: { rate: 1500 }  # Poisson arrivals, requests per second per client host\n', ''), expect: /a Client needs exactly one of openLoop or closedLoop/ },
  { name: 'Client with both openLoop and closedLoop', manifest: variant('            openLoop: { rate: 1500 }', '            closedLoop: { users: 2 }\n            openLoop: { rate: 1500 }'), expect: /a Client needs exactly one of openLoop or closedLoop/ },
  { name: 'Server without service', manifest: variant('            service: { distribution: Exponential, mean: 120us }\n', ''), expect: /service is required for kind Server/ },
  { name: 'a Server field on a Client', manifest: variant(clientModel, (m) => `${m}            workers: 4\n`), expect: /kind Client takes only/ },
  { name: 'LogNormal without sigma', manifest: variant('LogNormal, mean: 300us, sigma: 0.6 }', 'LogNormal, mean: 300us }'), expect: /sigma is required with, and only allowed with, distribution LogNormal/ },
  { name: 'sigma with Exponential', manifest: variant('Exponential, mean: 120us }', 'Exponential, mean: 120us, sigma: 1 }'), expect: /sigma is required with, and only allowed with, distribution LogNormal/ },
  { name: 'Slack mode without slack', manifest: variant('  seed: 42\n', '  seed: 42\n  sync: { mode: Slack }\n'), expect: /sync\.slack is required in Slack mode/ },
  { name: 'slack in Conservative mode', manifest: variant('  seed: 42\n', '  seed: 42\n  sync: { mode: Conservative, slack: 1ms }\n'), expect: /sync\.slack is only allowed with mode: Slack/ },
  { name: 'placement with both runtimes and hostsPerRuntime', manifest: variant('  seed: 42\n', '  seed: 42\n  placement: { runtimes: 2, hostsPerRuntime: 4 }\n'), expect: /spec\.placement: Invalid value.*set exactly one of runtimes/ },
  { name: 'placement with zero runtimes', manifest: variant('  seed: 42\n', '  seed: 42\n  placement: { runtimes: 0 }\n'), expect: /spec\.placement\.runtimes.*should be greater than or equal to 1/ },
  { name: 'duplicate host names', manifest: variant('    - name: db\n', '    - name: web\n'), expect: /spec\.hosts\[2\]: Duplicate value/ },
  { name: 'duplicate component names', manifest: variant('        - name: sql\n', '        - name: sql2\n          model: { kind: Server, service: { distribution: Constant, mean: 1ms } }\n        - name: sql2\n'), expect: /components\[1\]: Duplicate value/ },
]

/** The quickstart with a fourth host whose live component names `image` (YAML, as written). */
const withImage = (image: string) =>
  `${base.trimEnd()}\n    - name: cache\n      components:\n        - name: redis\n          live: { image: ${image}, command: [redis-server], ports: [{ name: redis, port: 6379 }] }\n`

/** Malformed image references: the schema's pattern (and type) refuses each at this path. */
const IMAGE_PATH = /spec\.hosts\[3\]\.components\[0\]\.live\.image/
const badImages: { name: string; image: string }[] = [
  { name: 'empty', image: '""' },
  { name: 'uppercase repository', image: 'Redis:7' },
  { name: 'uppercase first component that is no registry', image: 'MyOrg/redis:7' },
  { name: 'short digest', image: 'redis@sha256:abc' },
  { name: 'uppercase digest', image: `redis@sha256:${'AB'.repeat(32)}` },
  { name: 'unknown digest algorithm', image: `redis@md5:${'ab'.repeat(16)}` },
  { name: 'tag after the digest', image: `redis@sha256:${'ab'.repeat(32)}:7` },
  { name: 'two digests', image: `redis@sha256:${'ab'.repeat(32)}@sha256:${'ab'.repeat(32)}` },
  { name: 'empty tag', image: '"redis:"' },
  { name: 'tag starting with "-"', image: 'redis:-7' },
  { name: 'tag longer than 128', image: `redis:${'7'.repeat(129)}` },
  { name: 'a scheme', image: 'docker://redis:7' },
  { name: 'double slash', image: 'library//redis:7' },
  { name: 'leading space', image: '" redis:7"' },
  { name: 'a number', image: '7' },
]

describe('the API server refuses malformed live.image references, naming the field path', () => {
  it('has at least 10 cases, and accepts a well-formed reference in the same place', () => {
    expect(badImages.length).toBeGreaterThanOrEqual(10)
    const r = kubectlIn(withImage(`registry.example:5000/team/cache:1.4@sha256:${'ab'.repeat(32)}`), 'apply', '--dry-run=server', '-n', NS, '-f', '-')
    expect(r.status, r.stderr).toBe(0)
  })

  it.each(badImages)('image: $name', ({ image }) => {
    const r = kubectlIn(withImage(image), 'apply', '--dry-run=server', '-n', NS, '-f', '-')
    expect(r.status, `accepted:\n${r.stdout}`).not.toBe(0)
    expect(r.stderr).toMatch(IMAGE_PATH)
  })
})

describe('the API server rejects invalid SimClusters', () => {
  it('has at least 15 cases, cross-field ones among them', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15)
  })

  it.each(cases)('$name', ({ manifest, expect: message }) => {
    const r = kubectlIn(manifest, 'apply', '--dry-run=server', '-n', NS, '-f', '-')
    expect(r.status, `accepted:\n${r.stdout}`).not.toBe(0)
    expect(r.stderr).toMatch(message)
  })

  it('accepts the valid base manifest', () => {
    const r = kubectlIn(base, 'apply', '--dry-run=server', '-n', NS, '-f', '-')
    expect(r.status, r.stderr).toBe(0)
  })

  it('refuses a change to a run-defining field of an existing SimCluster, but allows runPolicy changes', () => {
    const held = base.replace('endTime: 2s', 'endTime: 1h').replace('  name: bad', '  name: immutable')
    expect(kubectlIn(held, 'apply', '-n', NS, '-f', '-').status).toBe(0)
    const r = kubectlIn(held.replace('seed: 42', 'seed: 43'), 'apply', '-n', NS, '-f', '-')
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/run-defining fields of spec .* are immutable/)
    // Placement too: the runtime pods of a run in progress would no longer match it.
    const placed = kubectlIn(held.replace('  seed: 42\n', '  seed: 42\n  placement: { runtimes: 2 }\n'), 'apply', '-n', NS, '-f', '-')
    expect(placed.status).not.toBe(0)
    expect(placed.stderr).toMatch(/run-defining fields of spec \(.*placement\) are immutable/)
    const policy = kubectlIn(held.replace('  seed: 42\n', '  seed: 42\n  runPolicy: { ttlSecondsAfterFinished: 60 }\n'), 'apply', '-n', NS, '-f', '-')
    expect(policy.status, policy.stderr).toBe(0)
    kubectl('delete', 'simcluster', '-n', NS, 'immutable', '--wait=false')
  })
})

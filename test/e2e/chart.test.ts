// The Helm chart (charts/livesim), rendered by the real helm: lint, templates with the defaults and
// with watchNamespace, least-privilege RBAC, the restricted pod security of the operator, the
// NetworkPolicy of leader pods, and the values schema rejecting misspelt keys.
//
// helm is the one hack/control-plane/build.sh builds and caches; its location comes from
// hack/control-plane/lib.sh itself (sourced by bash), so this test and the scripts cannot disagree.
// When it is missing, build.sh is run first (it compiles from Go modules: slow the first time only),
// except with LIVESIM_USE_EXISTING=1 and a helm on PATH: against an existing cluster that helm is used,
// as global-setup.ts installs the chart with it too.
import { spawnSync } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { load, loadAll } from 'js-yaml'
import { beforeAll, describe, expect, it } from 'vitest'
import { leaderPod, simServiceAccount, type SimClusterObject } from '../../operator/simcluster/objects.ts'

const root = path.join(import.meta.dirname, '..', '..')
const chart = path.join(root, 'charts', 'livesim')
const controlPlane = path.join(root, 'hack', 'control-plane')

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  [k: string]: unknown
}
interface PolicyRule {
  apiGroups?: string[]
  resources?: string[]
  resourceNames?: string[]
  verbs: string[]
  nonResourceURLs?: string[]
}
interface Container {
  name: string
  image: string
  command?: string[]
  args?: string[]
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]
  ports?: { name: string; containerPort: number }[]
  livenessProbe?: { httpGet: { path: string; port: number | string } }
  readinessProbe?: { httpGet: { path: string; port: number | string } }
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext?: Record<string, unknown>
}
interface PodSpec {
  serviceAccountName: string
  automountServiceAccountToken?: boolean
  securityContext?: Record<string, unknown>
  containers: Container[]
}

function isExecutable(f: string): boolean {
  try {
    accessSync(f, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** $BIN_DIR/helm as hack/control-plane/lib.sh computes it (LIVESIM_CACHE, XDG_CACHE_HOME, version). */
function helmPath(): string {
  const r = spawnSync('bash', ['-c', 'source "$1" && printf %s "$BIN_DIR/helm"', 'lib.sh', path.join(controlPlane, 'lib.sh')], { encoding: 'utf8' })
  if (r.status !== 0 || !r.stdout) throw new Error(`cannot source hack/control-plane/lib.sh: ${r.stderr}`)
  return r.stdout
}

let helmBin = ''
// helm's own config, cache and data away from the user's (plugins, repositories): nothing here needs them.
const helmHome = path.join(tmpdir(), 'livesim-chart-test-helm')
const helmHomes = { HELM_CACHE_HOME: path.join(helmHome, 'cache'), HELM_CONFIG_HOME: path.join(helmHome, 'config'), HELM_DATA_HOME: path.join(helmHome, 'data') }

function helm(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(helmBin, args, { encoding: 'utf8', cwd: root, env: { ...process.env, ...helmHomes } })
  if (r.error) throw r.error
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** helm template → the rendered objects; fails the test with helm's message when rendering fails. */
function render(...set: string[]): K8sObject[] {
  const r = helm('template', 'demo', chart, '--namespace', 'livesim-system', ...set.flatMap((s) => ['--set', s]))
  expect(r.status, r.stderr).toBe(0)
  return (loadAll(r.stdout) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null && typeof o === 'object')
}

function only(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`), `exactly one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1)
  return found[0]!
}

const podSpec = (d: K8sObject) => (d.spec as { template: { spec: PodSpec } }).template.spec
const env = (c: Container, name: string) => c.env?.find((e) => e.name === name)
const rulesOf = (o: K8sObject) => (o as unknown as { rules: PolicyRule[] }).rules

/** Every (apiGroup, resource, verb) a set of rules grants, as "group/resource:verb" (core group as ""). */
function grants(rules: PolicyRule[]): string[] {
  const out: string[] = []
  for (const r of rules) for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.push(`${g}/${res}:${v}${r.resourceNames ? `[${r.resourceNames.join(',')}]` : ''}`)
  return out.sort()
}

/** What the operator uses (operator/simcluster/reconciler.ts, operator/simsweep/reconciler.ts, operator/manager.ts): nothing more. */
const OPERATOR_GRANTS = [
  ...['get', 'list', 'watch', 'create', 'delete'].map((v) => `livesim.dev/simclusters:${v}`),
  ...['get', 'list', 'watch'].map((v) => `livesim.dev/simsweeps:${v}`),
  ...['get', 'list', 'watch', 'create', 'patch', 'delete'].map((v) => `livesim.dev/simhosts:${v}`),
  ...['get', 'patch', 'update'].flatMap((v) => [`livesim.dev/simclusters/status:${v}`, `livesim.dev/simhosts/status:${v}`, `livesim.dev/simsweeps/status:${v}`]),
  'livesim.dev/simclusters/finalizers:update',
  'livesim.dev/simhosts/finalizers:update',
  'livesim.dev/simsweeps/finalizers:update',
  ...['get', 'list', 'watch', 'create', 'delete'].map((v) => `/pods:${v}`),
  ...['get', 'list', 'watch', 'create', 'update', 'delete'].flatMap((v) => [`/services:${v}`, `/secrets:${v}`, `/configmaps:${v}`]),
  ...['get', 'list', 'watch', 'create'].map((v) => `/serviceaccounts:${v}`),
  '/events:create',
  '/events:patch',
].sort()

function expectNoWildcards(objs: K8sObject[]): void {
  for (const o of objs.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
    for (const r of rulesOf(o)) {
      for (const field of ['verbs', 'resources', 'apiGroups', 'resourceNames', 'nonResourceURLs'] as const) {
        expect(r[field] ?? [], `${o.kind}/${o.metadata.name} ${field}`).not.toContain('*')
      }
      expect(r.nonResourceURLs, `${o.kind}/${o.metadata.name} nonResourceURLs`).toBeUndefined()
    }
    // No escalation paths either.
    expect(grants(rulesOf(o)).filter((g) => /:(escalate|bind|impersonate)/.test(g) || g.startsWith('rbac.authorization.k8s.io/'))).toEqual([])
  }
  for (const b of objs.filter((x) => x.kind === 'ClusterRoleBinding' || x.kind === 'RoleBinding')) {
    expect((b as unknown as { roleRef: { name: string } }).roleRef.name, `${b.kind}/${b.metadata.name}`).not.toMatch(/^(cluster-admin|admin|edit)$/)
  }
}

function expectRestricted(deploy: K8sObject): void {
  const spec = podSpec(deploy)
  expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
  expect(spec.securityContext?.runAsUser).toBe(65532)
  expect(spec.securityContext?.runAsGroup).toBe(65532)
  for (const c of spec.containers) {
    expect(c.securityContext, c.name).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(c.securityContext?.privileged ?? false).toBe(false)
    expect((c.securityContext?.capabilities as { add?: string[] }).add).toBeUndefined()
  }
  expect(JSON.stringify(spec)).not.toMatch(/"host(Network|PID|IPC|Path)"/)
}

beforeAll(() => {
  helmBin = helmPath()
  const onPath = spawnSync('bash', ['-c', 'command -v helm'], { encoding: 'utf8' }).stdout.trim()
  if (!isExecutable(helmBin) && process.env.LIVESIM_USE_EXISTING === '1' && onPath) helmBin = onPath
  if (!isExecutable(helmBin)) {
    const r = spawnSync('bash', [path.join(controlPlane, 'build.sh')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) throw new Error(`hack/control-plane/build.sh failed (exit ${r.status}): helm is needed for this test`)
  }
  expect(isExecutable(helmBin), `${helmBin} after build.sh`).toBe(true)
}, 4 * 3600_000)

describe('Helm chart charts/livesim', () => {
  it('Chart.yaml: v2, livesim 0.1.0, Kubernetes >= 1.30', () => {
    const c = load(readFileSync(path.join(chart, 'Chart.yaml'), 'utf8')) as Record<string, string>
    expect(c).toMatchObject({ apiVersion: 'v2', name: 'livesim', version: '0.1.0', appVersion: '0.1.0', kubeVersion: '>=1.30.0-0' })
    const old = helm('template', 'demo', chart, '--kube-version', 'v1.29.0')
    expect(old.status).not.toBe(0)
    expect(old.stderr).toMatch(/kubeVersion/)
  })

  it('passes helm lint --strict (defaults and watchNamespace)', () => {
    for (const extra of [[], ['--set', 'watchNamespace=team-a']]) {
      const r = helm('lint', '--strict', chart, ...extra)
      expect(r.status, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/)
    }
  })

  describe('with the defaults', () => {
    let objs: K8sObject[] = []
    beforeAll(() => {
      objs = render()
    })

    it('renders the operator, its ServiceAccount, RBAC, metrics Service, NetworkPolicy and the CRDs', () => {
      const kinds = objs.map((o) => o.kind)
      for (const k of ['Deployment', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Service', 'NetworkPolicy', 'PodDisruptionBudget']) expect(kinds, k).toContain(k)
      expect(kinds.filter((k) => k === 'CustomResourceDefinition')).toHaveLength(3)
      expect(kinds).not.toContain('ServiceMonitor')
      for (const o of objs.filter((x) => x.kind !== 'CustomResourceDefinition' && x.kind !== 'ClusterRole' && x.kind !== 'ClusterRoleBinding')) {
        expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('livesim-system')
      }
    })

    it('the operator runs `livesim operator` with 2 replicas, leader election, probes, resources and its env', () => {
      const d = only(objs, 'Deployment')
      expect((d.spec as { replicas: number }).replicas).toBe(2)
      const spec = podSpec(d)
      const c = spec.containers[0]!
      expect(spec.containers).toHaveLength(1)
      expect(c.image).toBe('ghcr.io/livesim/livesim:0.1.0')
      expect([...(c.command ?? []), ...(c.args ?? [])].slice(0, 2)).toEqual(['livesim', 'operator'])
      expect(c.args).toContain('--lease-name=demo-livesim')
      expect(c.args).not.toContain('--no-leader-elect')
      expect(c.ports?.map((p) => [p.name, p.containerPort])).toEqual([
        ['metrics', 8080],
        ['health', 8081],
      ])
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' })
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' })
      expect(c.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) })
      expect(c.resources?.limits).toMatchObject({ memory: expect.any(String) })
      expect(env(c, 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace')
      expect(env(c, 'POD_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP')
      expect(env(c, 'LIVESIM_IMAGE')?.value).toBe(c.image)
      expect(env(c, 'LIVESIM_IMAGE_PULL_POLICY')?.value).toBe('IfNotPresent')
      expect(env(c, 'WATCH_NAMESPACE')).toBeUndefined()
    })

    it('the operator and simulation pods have SEPARATE ServiceAccounts; the simulation one has no token and no Role', () => {
      const spec = podSpec(only(objs, 'Deployment'))
      // The chart's one ServiceAccount is the operator's, and every binding names it alone.
      const operatorSA = only(objs, 'ServiceAccount')
      expect(operatorSA.metadata.name).toBe(spec.serviceAccountName)
      expect(operatorSA.automountServiceAccountToken).not.toBe(false)
      for (const b of objs.filter((o) => o.kind.endsWith('Binding'))) {
        const subjects = (b as unknown as { subjects: { kind: string; name: string; namespace: string }[] }).subjects
        expect(subjects, `${b.kind}/${b.metadata.name}`).toEqual([{ kind: 'ServiceAccount', name: spec.serviceAccountName, namespace: 'livesim-system' }])
      }
      // Simulation pods: the per-SimCluster ServiceAccount the operator creates (the chart grants it
      // serviceaccounts create for that), never the operator's, and without a token.
      const sc = { apiVersion: 'livesim.dev/v1alpha1', kind: 'SimCluster', metadata: { name: 'demo-livesim', namespace: 'livesim-system', uid: 'u', generation: 1 }, spec: {} } as unknown as SimClusterObject
      const sa = simServiceAccount(sc) as K8sObject
      expect(sa.metadata.name).not.toBe(spec.serviceAccountName)
      expect(sa.automountServiceAccountToken).toBe(false)
      const leader = leaderPod(sc, 1, { image: 'x', imagePullPolicy: 'Never', leaderLingerSec: 1, registerTimeoutSec: 1 }).spec as PodSpec
      expect(leader.serviceAccountName).toBe(sa.metadata.name)
      expect(leader.automountServiceAccountToken).toBe(false)
    })

    it('RBAC: a ClusterRole with exactly what the operator uses, no wildcards, and a Role for its Lease', () => {
      expectNoWildcards(objs)
      const cr = only(objs, 'ClusterRole')
      expect(grants(rulesOf(cr))).toEqual(OPERATOR_GRANTS)
      const crb = only(objs, 'ClusterRoleBinding') as unknown as { roleRef: { kind: string; name: string } }
      expect(crb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: cr.metadata.name })
      const lease = only(objs, 'Role')
      expect(lease.metadata.namespace).toBe('livesim-system')
      expect(grants(rulesOf(lease))).toEqual(
        ['coordination.k8s.io/leases:create', ...['get', 'update', 'patch'].map((v) => `coordination.k8s.io/leases:${v}[demo-livesim]`)].sort(),
      )
      expect((only(objs, 'RoleBinding') as unknown as { roleRef: { name: string } }).roleRef.name).toBe(lease.metadata.name)
    })

    it('the operator pod and container security contexts are restricted', () => {
      expectRestricted(only(objs, 'Deployment'))
    })

    it('a metrics Service on 8080 selects the operator pods', () => {
      const svc = only(objs, 'Service') as unknown as { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] } }
      expect(svc.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }])
      const podLabels = (only(objs, 'Deployment').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels
      expect(podLabels).toMatchObject(svc.spec.selector)
    })

    it('the NetworkPolicy admits 7070 from host pods and 7071 from the operator to leader pods, nothing else', () => {
      const np = only(objs, 'NetworkPolicy') as unknown as {
        spec: { podSelector: unknown; policyTypes: string[]; ingress: { from: { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: number; protocol: string }[] }[] }
      }
      expect(np.spec.podSelector).toEqual({ matchLabels: { 'livesim.dev/role': 'leader' } })
      expect(np.spec.policyTypes).toEqual(['Ingress'])
      expect(np.spec.ingress).toHaveLength(2)
      const [sync, http] = np.spec.ingress
      expect(sync!.ports).toEqual([{ protocol: 'TCP', port: 7070 }])
      expect(sync!.from).toEqual([{ podSelector: { matchLabels: { 'livesim.dev/role': 'host' } } }])
      expect(http!.ports).toEqual([{ protocol: 'TCP', port: 7071 }])
      const podLabels = (only(objs, 'Deployment').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels
      expect(http!.from).toHaveLength(1)
      expect(podLabels).toMatchObject(http!.from[0]!.podSelector!.matchLabels)
      expect(http!.from[0]!.namespaceSelector).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': 'livesim-system' } })
    })

    it('the CRDs are templates kept on uninstall, and crds.install=false leaves them out', () => {
      for (const crd of objs.filter((o) => o.kind === 'CustomResourceDefinition')) expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep')
      expect(render('crds.install=false').filter((o) => o.kind === 'CustomResourceDefinition')).toEqual([])
    })
  })

  describe('with watchNamespace', () => {
    let objs: K8sObject[] = []
    beforeAll(() => {
      objs = render('watchNamespace=team-a')
    })

    it('uses a Role and RoleBinding in that namespace instead of cluster-wide access', () => {
      expect(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([])
      expectNoWildcards(objs)
      const roles = objs.filter((o) => o.kind === 'Role')
      const operatorRole = roles.find((r) => r.metadata.namespace === 'team-a')
      expect(operatorRole).toBeDefined()
      expect(grants(rulesOf(operatorRole!))).toEqual(OPERATOR_GRANTS)
      expect(roles.find((r) => r.metadata.namespace === 'livesim-system')?.metadata.name).toBe('demo-livesim-leader-election')
      const rb = objs.find((o) => o.kind === 'RoleBinding' && o.metadata.namespace === 'team-a') as unknown as { roleRef: { kind: string; name: string }; subjects: unknown[] }
      expect(rb.roleRef).toMatchObject({ kind: 'Role', name: operatorRole!.metadata.name })
      expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'demo-livesim', namespace: 'livesim-system' }])
    })

    it('passes WATCH_NAMESPACE, keeps the operator in the release namespace, and puts the NetworkPolicy where simulations run', () => {
      const d = only(objs, 'Deployment')
      expect(d.metadata.namespace).toBe('livesim-system')
      expect(env(podSpec(d).containers[0]!, 'WATCH_NAMESPACE')?.value).toBe('team-a')
      expectRestricted(d)
      expect(only(objs, 'ServiceAccount').metadata.namespace).toBe('livesim-system')
      expect(only(objs, 'NetworkPolicy').metadata.namespace).toBe('team-a')
    })

    it('refuses networkPolicy.namespaces that leave watchNamespace out', () => {
      const r = helm('template', 'demo', chart, '--set', 'watchNamespace=team-a', '--set', 'networkPolicy.namespaces={team-b}')
      expect(r.status).not.toBe(0)
      expect(r.stderr).toMatch(/networkPolicy.namespaces .*must include watchNamespace "team-a"/)
    })
  })

  it('networkPolicy.namespaces: a leader NetworkPolicy in each', () => {
    const nss = render('networkPolicy.namespaces={sim-a,sim-b}')
      .filter((o) => o.kind === 'NetworkPolicy')
      .map((o) => o.metadata.namespace)
    expect(nss).toEqual(['sim-a', 'sim-b'])
  })

  it('options: ServiceMonitor, no NetworkPolicy, image digest, one replica without leader election', () => {
    const sm = only(render('serviceMonitor.enabled=true'), 'ServiceMonitor')
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1')
    expect((sm.spec as { endpoints: { port: string; path: string }[] }).endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' })
    expect(render('networkPolicy.enabled=false').filter((o) => o.kind === 'NetworkPolicy')).toEqual([])
    const digest = `sha256:${'a'.repeat(64)}`
    const c = podSpec(only(render(`image.digest=${digest}`), 'Deployment')).containers[0]!
    expect(c.image).toBe(`ghcr.io/livesim/livesim@${digest}`)
    expect(env(c, 'LIVESIM_IMAGE')?.value).toBe(c.image)
    const single = render('leaderElection.enabled=false', 'replicaCount=1')
    expect(podSpec(only(single, 'Deployment')).containers[0]!.args).toContain('--no-leader-elect')
    expect(single.filter((o) => o.kind === 'Role' || o.kind === 'PodDisruptionBudget')).toEqual([])
    const clash = helm('template', 'demo', chart, '--set', 'leaderElection.enabled=false')
    expect(clash.status).not.toBe(0)
    expect(clash.stderr).toMatch(/replicaCount=1/)
  })

  it('live.podSecurity: restricted by default, passed to the operator; the operator itself stays restricted either way', () => {
    const flag = (objs: K8sObject[]) => podSpec(only(objs, 'Deployment')).containers[0]!.args?.filter((a) => a.startsWith('--live-pod-security'))
    expect(flag(render())).toEqual(['--live-pod-security=restricted'])
    const privileged = render('live.podSecurity=privileged')
    expect(flag(privileged)).toEqual(['--live-pod-security=privileged'])
    expectRestricted(only(privileged, 'Deployment'))
    // The install notes say what the namespaces need.
    const notes = helm('install', 'demo', chart, '--dry-run=client', '--namespace', 'sims', '--set', 'live.podSecurity=privileged')
    expect(notes.status, notes.stderr).toBe(0)
    expect(notes.stdout).toContain('kubectl label namespace sims pod-security.kubernetes.io/enforce=privileged')
    const bad = helm('template', 'demo', chart, '--set', 'live.podSecurity=root')
    expect(bad.status).not.toBe(0)
    expect(bad.stderr).toMatch(/\/live\/podSecurity/)
  })

  describe('the values schema rejects misspelt keys, naming them', () => {
    it.each([
      ['top level', 'replicaCoutn=3', /additional propert(y|ies) '?replicaCoutn'? not allowed/],
      ['nested', 'image.pullPolicyy=Always', /\/image.*additional propert(y|ies) '?pullPolicyy'? not allowed/],
      ['deeply nested', 'resources.requests.cpuu=1', /\/resources\/requests.*additional propert(y|ies) '?cpuu'? not allowed/],
      ['nested under a feature', 'serviceMonitor.enable=true', /\/serviceMonitor.*additional propert(y|ies) '?enable'? not allowed/],
      ['under live', 'live.podSecurty=privileged', /\/live.*additional propert(y|ies) '?podSecurty'? not allowed/],
    ])('%s: --set %s', (_where, set, message) => {
      const r = helm('template', 'demo', chart, '--set', set)
      expect(r.status).not.toBe(0)
      expect(r.stderr).toMatch(/schema/)
      expect(r.stderr).toMatch(message)
    })

    it('and values of the wrong type or outside their enum', () => {
      for (const set of ['replicaCount=0', 'image.pullPolicy=Sometimes', 'podAntiAffinityPreset=maybe', 'crds.install=yes please']) {
        const r = helm('template', 'demo', chart, '--set', set)
        expect(r.status, set).not.toBe(0)
        expect(r.stderr, set).toMatch(/schema/)
      }
    })
  })
})

// The real node (hack/kubelet) the e2e tests run on by default: the kubelet of the control plane's
// release with containerd as its runtime, and the operator running from the image the chart was
// installed with, imported into that containerd. With LIVESIM_E2E_NODE=process or on an existing
// cluster these tests are named as skipped, and why.
import { spawnSync } from 'node:child_process'
import { describe, expect, inject, it } from 'vitest'
import { getJson, kubectl } from './kube.ts'

const real = inject('nodeKind') === 'kubelet'
const why = `the pods run on ${inject('nodeKind') === 'process' ? 'the process-backed node (LIVESIM_E2E_NODE=process)' : 'the existing cluster (LIVESIM_USE_EXISTING=1)'}`

interface Pod {
  metadata: { name: string }
  spec: { nodeName: string; containers: { name: string; image: string }[] }
  status: { phase: string; containerStatuses?: { name: string; image: string; imageID: string; containerID?: string; ready: boolean }[] }
}

describe.skipIf(!real)(real ? 'the real node' : `the real node (skipped: ${why})`, () => {
  it('kubectl get nodes -o wide shows the kubelet of the control plane\'s release on containerd', () => {
    const wide = kubectl('get', 'nodes', '-o', 'wide')
    process.stderr.write(`kubectl get nodes -o wide:\n${wide}`)
    const row = wide.split('\n').find((l) => l.startsWith('livesim-node '))
    expect(row, wide).toBeDefined()
    expect(row).toMatch(/\sReady\s/)
    expect(row).toMatch(/\scontainerd:\/\/\d+\.\d+\.\d+/)
    const node = getJson<{ status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } } }>('get', 'node', 'livesim-node')
    const server = JSON.parse(kubectl('version', '-o', 'json')) as { serverVersion: { gitVersion: string } }
    expect(node.status.nodeInfo.kubeletVersion).toBe(server.serverVersion.gitVersion)
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\//)
  })

  it('the operator runs in containers from the built image, which containerd holds', () => {
    const ns = inject('operatorNamespace')
    const pods = getJson<{ items: Pod[] }>('get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/name=livesim').items
    expect(pods.length).toBeGreaterThan(0)
    // Kubernetes' normalised name: livesim:dev is docker.io/library/livesim:dev.
    const image = inject('image')
    const normalised = image.includes('/') ? image : `docker.io/library/${image}`
    const sock = `${inject('e2eDir')}/kubelet/containerd/containerd.sock`
    const held = spawnSync('ctr', ['--address', sock, '--namespace', 'k8s.io', 'images', 'ls', `name==${normalised}`], { encoding: 'utf8' })
    expect(held.status, held.stderr).toBe(0)
    const digest = /sha256:[0-9a-f]{64}/.exec(held.stdout.split('\n')[1] ?? '')?.[0]
    expect(digest, held.stdout).toBeDefined()
    for (const p of pods) {
      expect(p.spec.nodeName).toBe('livesim-node')
      expect(p.spec.containers[0]!.image).toBe(image)
      const cs = p.status.containerStatuses?.[0]
      expect(p.status.phase).toBe('Running')
      expect(cs?.ready).toBe(true)
      expect(cs?.containerID).toMatch(/^containerd:\/\//)
      expect(cs?.image).toBe(normalised)
      process.stderr.write(`operator pod ${p.metadata.name}: image ${cs?.image}, imageID ${cs?.imageID}, ${cs?.containerID}; containerd: ${normalised} ${digest}\n`)
    }
  })
})

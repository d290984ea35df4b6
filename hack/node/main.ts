// The livesim process node: a kubelet stand-in that runs pods' containers as local processes.
//
//   node hack/node/main.ts --name livesim-node --state-dir DIR [--kubeconfig FILE] [--pod-ip-base 127.77]
//
// See README.md in this directory for what it does and does not do.
import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { KubeConfig } from '@kubernetes/client-node'
import { KubeClient } from '../../operator/kube/rest.ts'
import { makeLogger } from '../../sim-runtime/log.ts'
import { reapOrphans } from './container.ts'
import { IpAllocator } from './ipam.ts'
import { PodManager } from './pods.ts'
import { NodeAgent } from './registration.ts'
import type { ApiServerInfo } from './serviceaccount.ts'

const HOST_IP = '127.0.0.1'
const repoRoot = path.resolve(import.meta.dirname, '..', '..')

const usage = 'usage: node hack/node/main.ts --name NAME --state-dir DIR [--kubeconfig FILE] [--pod-ip-base 127.77] [--shutdown-grace-seconds 5]'

function apiServerInfo(kc: KubeConfig): ApiServerInfo {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('no current cluster in the kubeconfig')
  const url = new URL(cluster.server)
  const caPem = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : cluster.caFile ? readFileSync(cluster.caFile, 'utf8') : undefined
  return {
    server: cluster.server,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port || (url.protocol === 'https:' ? '443' : '80'),
    caPem,
    insecure: cluster.skipTLSVerify,
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      'state-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      'pod-ip-base': { type: 'string', default: '127.77' },
      'shutdown-grace-seconds': { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(usage)
    return
  }
  if (!values.name || !values['state-dir']) {
    console.error(usage)
    process.exit(2)
  }
  const name = values.name
  const stateDir = path.resolve(values['state-dir'])
  const shutdownGraceMs = Number(values['shutdown-grace-seconds']) * 1000
  const log = makeLogger('livesim-node').child({ node: name })

  const kc = new KubeConfig()
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig)
  else kc.loadFromDefault()
  const client = new KubeClient(kc)
  const podsDir = path.join(stateDir, 'pods')
  await mkdir(podsDir, { recursive: true })
  reapOrphans(podsDir, log)

  const agent = new NodeAgent(client, log, { name, hostIP: HOST_IP })
  const pods = new PodManager({
    client,
    log,
    nodeName: name,
    hostIP: HOST_IP,
    podsDir,
    api: apiServerInfo(kc),
    livesimCli: path.join(repoRoot, 'bin', 'livesim.js'),
    ips: new IpAllocator(values['pod-ip-base']),
  })

  // Stop every pod process on the way out, whatever the way out is.
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: killing every pod process now')
      pods.killAll()
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'shutting down: stopping every pod')
    agent.stop()
    await pods.shutdown(shutdownGraceMs)
    log.info('all pod processes stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('exit', () => pods.killAll())

  // The API server may still be coming up: retry registration.
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      await agent.register()
      break
    } catch (err) {
      log.warn({ err: (err as Error).message, retryMs: delay }, 'node registration failed; retrying')
      await new Promise((r) => setTimeout(r, delay))
    }
  }
  agent.start()
  await pods.start()
  log.info({ stateDir, podsDir, podIPs: `${values['pod-ip-base']}.0.0/16` }, 'node ready: running pods bound to it')
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})

#!/usr/bin/env node
// The livesim command line: run, validate, sweep, compare, leader, host, crds.
// Exit codes: 0 success; 1 invalid input or failed run; 2 usage error; 130 interrupted.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { resultsPlan } from '../api/plan.ts'
import type { SimCluster } from '../api/schema.ts'
import { parseHostList } from '../api/hostlist.ts'
import { localHeapBudget, type HeapBudget } from '../api/state-budget.ts'
import { loadSimCluster, ValidationError } from '../api/validate.ts'
import { makeLogger } from '../log.ts'
import { Leader, RunFailed } from '../sync/leader.ts'
import { placeHosts } from '../sync/placement.ts'
import { runRuntime, RuntimeError, stopLiveComponents } from '../sync/runtime.ts'
import { runLocal, runsEmbedded } from '../run/local.ts'
import { resultsJson } from '../sync/results.ts'
import { addSweepCommands } from '../sweep/cli.ts'
import { ProgressView, printResultsTable } from './view.ts'
import { renderCrds } from '../api/crds.ts'

const VERSION = '0.1.0'

/**
 * Read and validate a manifest. `heap`: the runtimes `livesim run` will split its hosts into on
 * this machine (runBudget); its modelled state must fit their heap.
 */
function readManifest(file: string, heap?: HeapBudget) {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ValidationError([{ path: '', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }])
  }
  const baseDir = path.dirname(path.resolve(file))
  return { ...loadSimCluster(text, { source: file, baseDir, heap }), baseDir }
}

/** The runtimes of `livesim run`: --partition blocks if given, else spec.placement's runtimes, else one. */
function runBudget(partition: number | undefined): HeapBudget {
  const budget = localHeapBudget(partition ?? 1)
  if (partition !== undefined) return budget
  return { ...budget, runtimes: (plan) => (plan.placement ? placeHosts(plan, plan.placement).runtimes : undefined) }
}

const DETAILS = { auto: 'Auto', groups: 'Groups', hosts: 'Hosts' } as const

/** The manifest with spec.results.detail set by --results-detail; the plan follows it. */
function withDetail(m: ReturnType<typeof readManifest>, detail: keyof typeof DETAILS | undefined): ReturnType<typeof readManifest> {
  if (!detail) return m
  const cluster: SimCluster = { ...m.cluster, spec: { ...m.cluster.spec, results: { ...m.cluster.spec.results, detail: DETAILS[detail] } } }
  return { ...m, cluster, plan: { ...m.plan, results: resultsPlan(cluster.spec, m.plan.hosts.length) } }
}

function readToken(opts: { tokenFile?: string }): string {
  if (opts.tokenFile) return readFileSync(opts.tokenFile, 'utf8').trim()
  const t = process.env.LIVESIM_TOKEN
  if (!t) throw new Error('no bearer token: set LIVESIM_TOKEN or pass --token-file')
  return t
}

const program = new Command()
program.name('livesim').description('Cluster-scale full-stack simulation under one virtual time.').version(VERSION).exitOverride()

program
  .command('run')
  .description('Run a SimCluster on this machine: the leader here, its hosts in this process too or, with live components or --partition, in sim-runtime processes over HTTP/2.')
  .argument('<file>', 'SimCluster manifest (YAML or JSON)')
  .option('-o, --out <file>', 'write the results JSON here', 'results.json')
  .option('-p, --partition <n>', 'run the hosts in this many runtime processes over HTTP/2, in plan order (default: the runtimes of spec.placement; without it none, all in this process, or 1 with live components)', (v) => positiveInt(v, '--partition'))
  .addOption(new Option('--stepping <mode>', 'adaptive windows (skip idle time) or fixed lookahead steps').choices(['adaptive', 'fixed']).default('adaptive'))
  .addOption(
    new Option('--results-detail <detail>', 'what the results hold: groups (per host group, link totals per group pair, the outliers), hosts (also every host and link), auto (hosts up to 64 hosts); sets spec.results.detail').choices(
      Object.keys(DETAILS),
    ),
  )
  .option('--json', 'print the results JSON on stdout instead of a table')
  .option('-q, --quiet', 'no progress display')
  .option('--work-dir <dir>', 'live components: where their logs and clock files go (default: a new directory under the system temp dir)')
  .action(async (file: string, o: { out: string; partition?: number; stepping: 'adaptive' | 'fixed'; resultsDetail?: keyof typeof DETAILS; json?: boolean; quiet?: boolean; workDir?: string }) => {
    // Without --partition, runLocal carries the hosts in spec.placement's runtimes, else in this
    // process (no live component) or in defaultPartition(plan) runtimes, 1: the heap of one runtime.
    const { cluster, plan, baseDir } = withDetail(readManifest(file, runBudget(o.partition)), o.resultsDetail)
    const workDir = plan.liveComponents > 0 ? path.resolve(o.workDir ?? mkdtempSync(path.join(os.tmpdir(), `livesim-${plan.cluster}-`))) : undefined
    const log = makeLogger('livesim', process.env.LIVESIM_LOG_LEVEL ?? 'warn')
    const view = o.quiet || o.json ? undefined : new ProgressView(process.stderr)
    const abort = new AbortController()
    let interrupted = false
    const onSignal = () => {
      interrupted = true
      abort.abort()
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      const results = await runLocal({
        cluster,
        plan,
        baseDir,
        logger: log,
        partition: o.partition,
        stepping: o.stepping,
        signal: abort.signal,
        childEnv: workDir ? () => ({ LIVESIM_WORK_DIR: workDir }) : undefined,
        onStatus: view ? (s) => view.update(s) : undefined,
      })
      view?.stop()
      const json = resultsJson(results) + '\n'
      writeFileSync(o.out, json)
      if (o.json) process.stdout.write(json)
      else printResultsTable(results, o.out)
      if (workDir && !o.json) process.stdout.write(`live programs' logs: ${workDir}/<host>/<component>.log\n`)
    } catch (err) {
      view?.stop()
      if (interrupted) {
        process.stderr.write(runsEmbedded(plan, o.partition) ? 'livesim: interrupted\n' : 'livesim: interrupted; every runtime process was stopped\n')
        process.exitCode = 130
        return
      }
      throw err
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  })

program
  .command('validate')
  .description('Check SimCluster and SimSweep manifests: schema and semantics. Exit 0 when all are valid.')
  .argument('<files...>', 'manifests')
  .option('-p, --partition <n>', 'check the modelled state against the heap of this many runtime processes, as `livesim run --partition` (default: the runtimes of spec.placement, else 1)', (v) => positiveInt(v, '--partition'))
  .action(async (files: string[], o: { partition?: number }) => {
    const { validateSweepFile } = await import('../sweep/command.ts')
    let bad = 0
    for (const f of files) {
      try {
        const sweep = validateSweepFile(f)
        if (sweep !== undefined) {
          process.stdout.write(`${sweep}\n`)
          continue
        }
        const { plan } = readManifest(f, runBudget(o.partition))
        const placed = plan.placement ? placeHosts(plan, plan.placement) : undefined
        const placement = placed ? `, ${placed.runtimes.length} runtimes of at most ${placed.hostsPerRuntimeMax} hosts` : ''
        process.stdout.write(`${f}: valid SimCluster ${plan.cluster} (${plan.hosts.length} hosts, lookahead ${Number.isFinite(plan.lookaheadNs) ? `${plan.lookaheadNs}ns` : 'none'}${placement})\n`)
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err
        process.stderr.write(`${err.message}\n`)
        bad++
      }
    }
    if (bad) process.exitCode = 1
  })

addSweepCommands(program)

program
  .command('leader')
  .description('Run the leader of a SimCluster (as in the leader pod): wait for every host, drive barriers, serve results.')
  .argument('[file]', 'SimCluster manifest (or --from-env)')
  .option('--from-env <var>', 'read the SimCluster (JSON or YAML) from this environment variable instead of a file')
  .option('--port <port>', 'HTTP/2 port for runtimes (also serves GET /v1/status, /metrics, /healthz)', (v) => positiveInt(v, '--port'), 7070)
  .option('--http-port <port>', 'HTTP/1.1 port for probes, curl and Prometheus', (v) => positiveInt(v, '--http-port'), 7071)
  .option('--bind <address>', 'listen address', '0.0.0.0')
  .option('--token-file <file>', 'bearer token file (default: $LIVESIM_TOKEN)')
  .option('-o, --out <file>', 'also write the results JSON to this file')
  .option('--register-timeout <seconds>', 'wall time to wait for every host', (v) => positiveInt(v, '--register-timeout'), 300)
  .option('--linger <seconds>', 'after the run ends, keep serving /v1/status and /v1/results this long', (v) => Number(v), 0)
  .option('--exit-on-ack', 'while lingering, exit as soon as an authenticated POST /v1/ack arrives')
  .action(async (file: string | undefined, o: { fromEnv?: string; port: number; httpPort: number; bind: string; tokenFile?: string; out?: string; registerTimeout: number; linger: number; exitOnAck?: boolean }) => {
    let m: ReturnType<typeof readManifest>
    if (o.fromEnv) {
      const text = process.env[o.fromEnv]
      if (!text) throw new ValidationError([{ path: '', message: `environment variable ${o.fromEnv} is empty or unset` }])
      m = { ...loadSimCluster(text, { source: `$${o.fromEnv}` }), baseDir: process.cwd() }
    } else if (file) {
      m = readManifest(file)
    } else {
      throw new ValidationError([{ path: '', message: 'give a manifest file or --from-env VAR' }])
    }
    const log = makeLogger('livesim-leader')
    const leader = new Leader({ cluster: m.cluster, plan: m.plan, token: readToken(o), baseDir: m.baseDir, logger: log, registerTimeoutMs: o.registerTimeout * 1000 })
    // Terminated (its pod deleted, say): fail the run and leave at once, without lingering, so that
    // the pod does not wait out its grace period for a SIGKILL.
    let terminated = false
    const stop = () => {
      terminated = true
      leader.fail('leader received a termination signal')
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    await leader.listen(o.port, o.bind, o.httpPort)
    let failed: Error | undefined
    try {
      const results = await leader.run()
      if (o.out) writeFileSync(o.out, resultsJson(results) + '\n')
      process.stdout.write(JSON.stringify({ digest: results.digest, barriers: results.sync.barriers, wallSeconds: results.wall.seconds }) + '\n')
    } catch (err) {
      failed = err as Error
    }
    if (o.linger > 0 && !terminated) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.linger * 1000)
        process.once('SIGTERM', () => resolve())
        if (o.exitOnAck) leader.onAck = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
    await leader.close()
    if (failed) throw failed
  })

program
  .command('host')
  .description('Run a sim-runtime carrying one or more hosts (as in a SimHost pod), connected to the leader.')
  .requiredOption('--leader <url>', 'leader URL, e.g. http://leader:7070')
  .requiredOption('--hosts <names>', 'comma-separated host names, consecutive replicas as a range: web-0,web-1 or web-0..1,db-0')
  .option('--runtime-id <id>', 'name of this runtime in logs and errors', `runtime-${process.pid}`)
  .option('--token-file <file>', 'bearer token file (default: $LIVESIM_TOKEN)')
  .option('--connect-timeout <seconds>', 'keep retrying the leader for this long', (v) => positiveInt(v, '--connect-timeout'), 60)
  .addOption(new Option('--protocol-version <n>').hideHelp().argParser((v) => Number(v)))
  .action(async (o: { leader: string; hosts: string; runtimeId: string; tokenFile?: string; connectTimeout: number; protocolVersion?: number }) => {
    const log = makeLogger('livesim-host').child({ runtime: o.runtimeId })
    // As PID 1 in a container no default handler would end the process on SIGTERM. Ctrl-C on
    // `livesim run` reaches this process too. Live programs live in their own sessions: tear their
    // cells down before leaving, so that nothing is left behind.
    const onSignal = (sig: NodeJS.Signals) => {
      log.warn({ signal: sig }, 'terminated')
      const force = setTimeout(() => process.exit(sig === 'SIGINT' ? 130 : 143), 5000)
      void stopLiveComponents({ hurry: true }).finally(() => {
        clearTimeout(force)
        process.exit(sig === 'SIGINT' ? 130 : 143)
      })
    }
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
    await runRuntime({
      leaderUrl: o.leader,
      token: readToken(o),
      hosts: parseHostList(o.hosts),
      runtimeId: o.runtimeId,
      logger: log,
      connectTimeoutMs: o.connectTimeout * 1000,
      protocolVersion: o.protocolVersion,
    })
  })

program
  .command('operator')
  .description('Run the Kubernetes operator: reconcile SimClusters and SimHosts into pods, report status and results.')
  .option('--namespace <ns>', 'watch only this namespace (default: all; env WATCH_NAMESPACE)', process.env.WATCH_NAMESPACE || undefined)
  .option('--image <image>', 'image of leader and host pods (env LIVESIM_IMAGE)', process.env.LIVESIM_IMAGE ?? 'ghcr.io/livesim/livesim:0.1.0')
  .option('--image-pull-policy <policy>', 'imagePullPolicy of simulation pods', process.env.LIVESIM_IMAGE_PULL_POLICY ?? 'IfNotPresent')
  .option('--lease-namespace <ns>', 'namespace of the leader-election Lease (env POD_NAMESPACE)', process.env.POD_NAMESPACE ?? 'default')
  .option('--lease-name <name>', 'name of the leader-election Lease', 'livesim-operator')
  .option('--identity <id>', 'this replica in the Lease (env HOSTNAME)', process.env.HOSTNAME ?? `livesim-operator-${process.pid}`)
  .option('--metrics-port <port>', 'port of /metrics', (v) => positiveInt(v, '--metrics-port'), 8080)
  .option('--health-port <port>', 'port of /healthz and /readyz', (v) => positiveInt(v, '--health-port'), 8081)
  .option('--bind <address>', 'listen address of metrics and health', process.env.POD_IP ?? '0.0.0.0')
  .option('--no-leader-elect', 'act without a Lease (one replica only)')
  .addOption(
    new Option('--live-pod-security <level>', 'pods of hosts with live components: restricted (signals cells) or privileged (root, cgroup cells; the namespace must admit privileged pods)')
      .choices(['restricted', 'privileged'])
      .env('LIVESIM_LIVE_POD_SECURITY')
      .default('restricted'),
  )
  .action(async (o: { namespace?: string; image: string; imagePullPolicy: string; leaseNamespace: string; leaseName: string; identity: string; metricsPort: number; healthPort: number; bind: string; leaderElect: boolean; livePodSecurity: 'restricted' | 'privileged' }) => {
    const { Manager } = await import('../../operator/manager.ts')
    const log = makeLogger('livesim-operator')
    const m = new Manager(
      {
        settings: { image: o.image, imagePullPolicy: o.imagePullPolicy, leaderLingerSec: 900, registerTimeoutSec: 300, livePodSecurity: o.livePodSecurity },
        namespace: o.namespace,
        leaseNamespace: o.leaseNamespace,
        leaseName: o.leaseName,
        identity: o.identity,
        metricsPort: o.metricsPort,
        healthPort: o.healthPort,
        bind: o.bind,
        leaderElection: o.leaderElect,
      },
      log,
    )
    await m.start()
    log.info({ namespace: o.namespace ?? 'all', identity: o.identity, livePodSecurity: o.livePodSecurity }, 'operator started')
    await new Promise<void>((resolve) => {
      const stop = () => resolve()
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    })
    await m.stop()
  })

program
  .command('crds')
  .description('Print the CustomResourceDefinitions (the same as crds/).')
  .action(() => {
    process.stdout.write(renderCrds())
  })

function positiveInt(v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`livesim: ${flag} must be a positive integer, got ${JSON.stringify(v)}\n`)
    process.exit(2)
  }
  return n
}

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2
  } else if (err instanceof ValidationError) {
    process.stderr.write(`${err.message}\n`)
    process.exitCode = 1
  } else if (err instanceof RunFailed) {
    process.stderr.write(`livesim: run failed: ${err.message}\n`)
    process.exitCode = 1
  } else if (err instanceof RuntimeError && err.toldLeader && process.env.LIVESIM_LOCAL_RUN === '1') {
    // A runtime of `livesim run`: its leader, in the parent process, reports the run's failure with
    // this message; saying it here too would print it twice more.
    process.exitCode = 1
  } else {
    const log = makeLogger('livesim', 'error')
    log.error({ err }, (err as Error).message)
    process.stderr.write(`livesim: ${(err as Error).message}\n`)
    process.exitCode = 1
  }
}

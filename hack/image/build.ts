// npm run image: the livesim image, built on this machine without a container engine or a
// registry, as an OCI archive. The same image as ./Dockerfile (image.test.ts compares them; the
// differences are in docs/kubernetes.md, "The image"), from other parts:
//
//   layer 1  a minimal Debian root file system (mmdebstrap --variant=essential, this machine's
//            Debian release and package sources) with libstdc++6 (Node) and libfaketime
//   layer 2  /usr/local/bin/node: the pinned Node binary of the npm `node` package
//            (node_modules/node/bin/node), the version package-lock.json names
//   layer 3  /app (dist/ compiled here, package.json, production node_modules, bin/),
//            /usr/local/bin/livesim, /usr/local/lib/livesim (the clock shim, vexec and the image
//            launcher compiled here, a link to libfaketime), and the livesim user (uid/gid 65532) in
//            /etc/passwd and /etc/group
//   config   USER 65532:65532, WORKDIR /app, ENTRYPOINT ["livesim"], CMD ["--help"], the ENV and
//            LABELs of the Dockerfile
//
// umoci assembles the layers and the config, skopeo writes the archive. The result is
// $LIVESIM_CACHE/images/livesim-<key>.oci.tar (LIVESIM_CACHE defaults to ~/.cache/livesim), where
// key hashes every input: this script, the base layer, the Node binary, package.json,
// package-lock.json, the tsconfig files and every file under bin/, sim-runtime/ and operator/. An
// archive that is there already is the answer (a rebuild with the same inputs does nothing); of the
// others, the newest ones are kept (ARCHIVES_KEPT in all). The
// base layer is cached on its own (images/base/), keyed by its recipe: `--refresh-base` makes it
// anew from today's packages. Before it is saved, the image is unpacked and checked in a chroot, as
// the Dockerfile's RUN lines check it: `livesim --version` as uid 65532, and the preloaded clock.
//
// Needs root (mmdebstrap and umoci make root-owned files) and hack/image/deps.sh's packages.
// Prints the archive's path on stdout, everything else on stderr.
//
//   node hack/image/build.ts [--refresh-base] [--force]
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The livesim user and group of the Dockerfile and the Helm chart. */
export const IMAGE_UID = 65532
/** Where the runtime's prebuilt parts go (the Dockerfile's /usr/local/lib/livesim). */
export const LIB_DIR = '/usr/local/lib/livesim'

/** The image's config, as the Dockerfile's final stage sets it (image.test.ts compares the two). */
export const IMAGE_CONFIG = {
  user: `${IMAGE_UID}:${IMAGE_UID}`,
  workingDir: '/app',
  entrypoint: ['livesim'],
  cmd: ['--help'],
  env: {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LIVESIM_LIBFAKETIME: `${LIB_DIR}/libfaketimeMT.so.1`,
    LIVESIM_FAKETIME_SHIM: `${LIB_DIR}/faketime-shim.so`,
    LIVESIM_VEXEC: `${LIB_DIR}/vexec`,
    LIVESIM_LAUNCHER: `${LIB_DIR}/livesim-launcher`,
    NODE_ENV: 'production',
  } as Record<string, string>,
  labels: {
    'org.opencontainers.image.title': 'livesim',
    'org.opencontainers.image.description': 'Cluster-scale full-stack simulation under one virtual time: CLI, operator, leader and host runtime',
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.version': '0.1.0',
  } as Record<string, string>,
}

/** What the image holds where: each path the Dockerfile's COPY and `ln -s` lines create. */
export const IMAGE_PATHS = [
  `${LIB_DIR}/faketime-shim.so`,
  `${LIB_DIR}/vexec`,
  `${LIB_DIR}/livesim-launcher`,
  `${LIB_DIR}/libfaketimeMT.so.1`,
  '/usr/local/bin/livesim',
  '/usr/local/bin/node',
  '/app/package.json',
  '/app/node_modules',
  '/app/dist',
  '/app/bin',
]

/** The base layer's recipe: its key is the hash of this, the Debian release and the package sources. */
const BASE = {
  variant: 'essential',
  include: ['libfaketime', 'libstdc++6'],
  hooks: ['/usr/share/mmdebstrap/hooks/merged-usr'],
  dpkgopts: ['path-exclude=/usr/share/man/*', 'path-exclude=/usr/share/doc/*', 'path-include=/usr/share/doc/*/copyright', 'path-exclude=/usr/share/locale/*', 'path-exclude=/usr/share/info/*'],
}

const SOURCES = '/etc/apt/sources.list.d/debian.sources'

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.LIVESIM_CACHE || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'livesim'), 'images')
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex')

function fileSha256(file: string): string {
  const h = createHash('sha256')
  const fd = readFileSync(file)
  h.update(fd)
  return h.digest('hex')
}

/** This machine's Debian release (the base must match it: the shim and vexec are compiled here). */
export function debianSuite(): string {
  const text = readFileSync('/etc/os-release', 'utf8')
  const suite = /^VERSION_CODENAME=(\S+)$/m.exec(text)?.[1]
  if (!/^ID=debian$/m.test(text) || !suite) throw new Error('npm run image builds on Debian (it makes the base from this machine\'s Debian release and package sources); /etc/os-release says otherwise')
  return suite
}

export function basePaths(): { tar: string; sum: string; recipe: string } {
  const suite = debianSuite()
  const sources = existsSync(SOURCES) ? readFileSync(SOURCES, 'utf8') : ''
  const recipe = sha256(JSON.stringify({ suite, sources, ...BASE })).slice(0, 16)
  const dir = path.join(cacheDir(), 'base')
  return { tar: path.join(dir, `debian-${suite}-${recipe}.tar`), sum: path.join(dir, `debian-${suite}-${recipe}.tar.sha256`), recipe }
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name)
    const st = statSync(full)
    if (st.isDirectory()) walk(full, out)
    else if (st.isFile()) out.push(full)
  }
}

/** The Node binary of the npm `node` package, and the version package-lock.json pins. */
export function nodeBinary(): { file: string; version: string } {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> }
  const version = lock.packages['node_modules/node']?.version
  if (!version) throw new Error('package-lock.json pins no `node` package')
  return { file: path.join(ROOT, 'node_modules', 'node', 'bin', 'node'), version }
}

/**
 * The image's key: the hash of every input. undefined when the base layer has not been made yet
 * (then no image can exist for these inputs).
 */
export function imageKey(): string | undefined {
  const base = basePaths()
  if (!existsSync(base.sum)) return undefined
  const h = createHash('sha256')
  h.update(`script\0${readFileSync(fileURLToPath(import.meta.url))}\0`)
  h.update(`base\0${readFileSync(base.sum, 'utf8').trim()}\0`)
  h.update(`node\0${fileSha256(nodeBinary().file)}\0`)
  const files = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => path.join(ROOT, f))
  for (const d of ['bin', 'sim-runtime', 'operator']) walk(path.join(ROOT, d), files)
  for (const f of files) h.update(`${path.relative(ROOT, f)}\0${statSync(f).mode & 0o111 ? 'x' : '-'}\0`).update(readFileSync(f)).update('\0')
  return h.digest('hex').slice(0, 16)
}

/** The archive of the image of this checkout, when its base exists (it may not have been built). */
export function imageArchive(): string | undefined {
  const key = imageKey()
  return key ? path.join(cacheDir(), `livesim-${key}.oci.tar`) : undefined
}

const TAG = IMAGE_CONFIG.labels['org.opencontainers.image.version']!

function log(msg: string): void {
  process.stderr.write(`image: ${msg}\n`)
}

function run(cmd: string, args: string[], opts: ExecFileSyncOptions = {}): string {
  try {
    return String(execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20, ...opts }) ?? '')
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string }
    const said = `${err.stderr?.toString() ?? ''}${err.stdout?.toString() ?? ''}`.trim().split('\n').slice(-15).join('\n')
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${said || err.message}`, { cause: e })
  }
}

function timed<T>(what: string, fn: () => T): T {
  const t0 = process.hrtime.bigint()
  const r = fn()
  log(`${what}: ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`)
  return r
}

function makeBase(refresh: boolean): string {
  const base = basePaths()
  if (existsSync(base.tar) && existsSync(base.sum) && !refresh) return base.tar
  mkdirSync(path.dirname(base.tar), { recursive: true })
  const tmp = `${base.tar}.${process.pid}.tmp`
  const args = [`--variant=${BASE.variant}`, `--include=${BASE.include.join(',')}`, ...BASE.hooks.map((h) => `--hook-dir=${h}`), ...BASE.dpkgopts.map((o) => `--dpkgopt=${o}`), '--format=tar', debianSuite(), tmp]
  if (existsSync(SOURCES)) args.push(SOURCES)
  try {
    timed('base layer (mmdebstrap)', () => run('mmdebstrap', args))
    const sum = fileSha256(tmp)
    renameSync(tmp, base.tar)
    writeFileSync(base.sum, `${sum}\n`)
  } finally {
    rmSync(tmp, { force: true })
  }
  return base.tar
}

/** The path of libfaketimeMT.so.1 in the base layer. */
function libfaketimeIn(baseTar: string): string {
  const entry = run('tar', ['-tf', baseTar]).split('\n').find((l) => /\/faketime\/libfaketimeMT\.so\.1$/.test(l))
  if (!entry) throw new Error(`${baseTar} has no libfaketimeMT.so.1`)
  return entry.replace(/^\.\//, '/')
}

function stageApp(stage: string, baseTar: string): void {
  const app = path.join(stage, 'app')
  mkdirSync(app, { recursive: true })
  const node = process.execPath
  timed('compile (tsc -p tsconfig.build.json)', () => run(node, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')]))
  for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(ROOT, f), path.join(app, f))
  // --ignore-scripts: as in the Dockerfile (no install script is needed at run time).
  timed('production node_modules (npm ci --omit=dev)', () =>
    run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, env: { ...process.env, npm_config_update_notifier: 'false' } }),
  )
  rmSync(path.join(app, 'package-lock.json'))
  cpSync(path.join(ROOT, 'bin'), path.join(app, 'bin'), { recursive: true })
  chmodSync(path.join(app, 'bin', 'livesim.js'), 0o755)

  const lib = path.join(stage, LIB_DIR.slice(1))
  mkdirSync(lib, { recursive: true })
  timed('clock shim, vexec, launcher (cc)', () => {
    run(node, [path.join(ROOT, 'sim-runtime', 'live', 'shim.ts'), path.join(lib, 'faketime-shim.so')])
    run(node, [path.join(ROOT, 'sim-runtime', 'live', 'vexec.ts'), path.join(lib, 'vexec')])
    run(node, [path.join(ROOT, 'sim-runtime', 'live', 'launcher.ts'), path.join(lib, 'livesim-launcher')])
  })
  symlinkSync(libfaketimeIn(baseTar), path.join(lib, 'libfaketimeMT.so.1'))
  mkdirSync(path.join(stage, 'usr', 'local', 'bin'), { recursive: true })
  symlinkSync('/app/bin/livesim.js', path.join(stage, 'usr', 'local', 'bin', 'livesim'))

  // The user and group, as the Dockerfile's groupadd/useradd make them.
  const etc = path.join(stage, 'etc')
  mkdirSync(etc)
  const fromBase = (f: string) => run('tar', ['-xOf', baseTar, `./etc/${f}`])
  writeFileSync(path.join(etc, 'passwd'), `${fromBase('passwd')}livesim:x:${IMAGE_UID}:${IMAGE_UID}::/nonexistent:/usr/sbin/nologin\n`, { mode: 0o644 })
  writeFileSync(path.join(etc, 'group'), `${fromBase('group')}livesim:x:${IMAGE_UID}:\n`, { mode: 0o644 })
}

/** Unpack the layout's image to a bundle and check it as the Dockerfile's RUN lines do. */
function check(layout: string, work: string): void {
  const bundle = path.join(work, 'check')
  run('umoci', ['unpack', '--image', `${layout}:${TAG}`, bundle])
  const rootfs = path.join(bundle, 'rootfs')
  const env = { PATH: IMAGE_CONFIG.env.PATH!, HOME: '/nonexistent' }
  const version = run('chroot', [`--userspec=${IMAGE_CONFIG.user}`, rootfs, '/usr/local/bin/livesim', '--version'], { env }).trim()
  const year = run('chroot', [`--userspec=${IMAGE_CONFIG.user}`, rootfs, '/usr/bin/date', '-u', '+%Y'], {
    env: { ...env, LD_PRELOAD: `${IMAGE_CONFIG.env.LIVESIM_FAKETIME_SHIM} ${IMAGE_CONFIG.env.LIVESIM_LIBFAKETIME}`, FAKETIME: '@2024-01-01 00:00:00' },
  }).trim()
  if (year !== '2024') throw new Error(`the image's preloaded clock shows the year ${year}, not 2024`)
  log(`checked in a chroot as ${IMAGE_CONFIG.user}: livesim --version ${version}; preloaded clock ok`)
  rmSync(bundle, { recursive: true, force: true })
}

/** Archives of other inputs kept beside a new one (the newest first): each is ~90 MB. */
export const ARCHIVES_KEPT = 3

/** Remove all but the ARCHIVES_KEPT newest archives (`keep` among them). */
function pruneArchives(keep: string): void {
  const dir = path.dirname(keep)
  const archives = readdirSync(dir)
    .filter((n) => /^livesim-[0-9a-f]+\.oci\.tar$/.test(n))
    .map((n) => path.join(dir, n))
    .filter((f) => f !== keep)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  for (const f of archives.slice(ARCHIVES_KEPT - 1)) {
    rmSync(f, { force: true })
    log(`removed the older ${path.basename(f)}`)
  }
}

export function build(opts: { refreshBase?: boolean; force?: boolean } = {}): string {
  if (process.getuid?.() !== 0) throw new Error('npm run image needs root (mmdebstrap and umoci make root-owned files): run it as root, e.g. sudo npm run image')
  for (const tool of ['mmdebstrap', 'umoci', 'skopeo', 'cc', 'chroot']) {
    try {
      run('sh', ['-c', `command -v ${tool}`])
    } catch {
      throw new Error(`npm run image needs ${tool}: run hack/image/deps.sh`)
    }
  }
  const t0 = process.hrtime.bigint()
  const baseTar = makeBase(opts.refreshBase ?? false)
  const node = nodeBinary()
  const nodeVersion = run(node.file, ['--version']).trim()
  if (nodeVersion !== `v${node.version}`) throw new Error(`${node.file} is ${nodeVersion}, but package-lock.json pins node ${node.version}: run npm ci`)
  const out = imageArchive()!
  if (existsSync(out) && !opts.force) {
    log(`cached: ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB; same inputs), ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`)
    return out
  }
  mkdirSync(path.dirname(out), { recursive: true })
  const work = mkdtempSync(path.join(path.dirname(out), 'build-'))
  try {
    const layout = path.join(work, 'layout')
    const ref = `${layout}:${TAG}`
    run('umoci', ['init', '--layout', layout])
    run('umoci', ['new', '--image', ref])
    timed('layer 1: Debian base', () => run('umoci', ['raw', 'add-layer', '--image', ref, '--history.created_by', `mmdebstrap --variant=${BASE.variant} --include=${BASE.include.join(',')} ${debianSuite()}`, baseTar]))

    const nodeStage = path.join(work, 'node')
    mkdirSync(path.join(nodeStage, 'usr', 'local', 'bin'), { recursive: true })
    cpSync(node.file, path.join(nodeStage, 'usr', 'local', 'bin', 'node'))
    chmodSync(path.join(nodeStage, 'usr', 'local', 'bin', 'node'), 0o755)
    timed('layer 2: Node', () => run('umoci', ['insert', '--image', ref, '--history.created_by', `node ${nodeVersion} from the npm package node@${node.version}`, nodeStage, '/']))

    const appStage = path.join(work, 'app')
    stageApp(appStage, baseTar)
    timed('layer 3: livesim', () => run('umoci', ['insert', '--image', ref, '--history.created_by', 'livesim: /app, /usr/local/lib/livesim, the livesim user', appStage, '/']))

    const c = IMAGE_CONFIG
    run('umoci', [
      'config',
      '--image',
      ref,
      '--no-history',
      `--config.user=${c.user}`,
      `--config.workingdir=${c.workingDir}`,
      ...c.entrypoint.map((e) => `--config.entrypoint=${e}`),
      ...c.cmd.map((e) => `--config.cmd=${e}`),
      ...Object.entries(c.env).map(([k, v]) => `--config.env=${k}=${v}`),
      ...Object.entries(c.labels).flatMap(([k, v]) => [`--config.label=${k}=${v}`, `--manifest.annotation=${k}=${v}`]),
    ])
    run('umoci', ['gc', '--layout', layout])
    timed('check (chroot)', () => check(layout, work))
    const tmp = `${out}.${process.pid}.tmp`
    timed('archive (skopeo copy)', () => run('skopeo', ['copy', '--quiet', `oci:${ref}`, `oci-archive:${tmp}:${TAG}`]))
    renameSync(tmp, out)
    pruneArchives(out)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  log(`built ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB) in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`)
  return out
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const unknown = args.filter((a) => a !== '--refresh-base' && a !== '--force')
  if (unknown.length) {
    process.stderr.write(`usage: node hack/image/build.ts [--refresh-base] [--force]; unknown: ${unknown.join(' ')}\n`)
    process.exit(2)
  }
  try {
    console.log(build({ refreshBase: args.includes('--refresh-base'), force: args.includes('--force') }))
  } catch (e) {
    process.stderr.write(`image: ${(e as Error).message}\n`)
    process.exit(1)
  }
}

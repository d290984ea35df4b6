// The livesim image two ways: ./Dockerfile (for users with a container engine and a registry) and
// `npm run image` (hack/image/build.ts: built here, an OCI archive). They must describe the same
// image: the Dockerfile's final stage (ENV, USER, WORKDIR, ENTRYPOINT, CMD, LABEL, and the paths its
// COPY and `ln -s` lines create) against build.ts's plan, always; against the built archive's
// config, when the archive of this checkout exists; and the image itself, unpacked and run in a
// chroot as uid 65532: the quickstart's digest inside it equals the host's `livesim run`.
// Without root, umoci or the archive (npm run image) those tests skip, saying why in their names.
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { IMAGE_CONFIG, IMAGE_PATHS, imageArchive, nodeBinary } from '../../hack/image/build.ts'

const ROOT = path.resolve(import.meta.dirname, '..', '..')

/** The instructions of the Dockerfile's last stage, continuation lines joined, comments dropped. */
function finalStage(text: string): { op: string; args: string }[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const from = lines.map((l) => l.split(/\s+/)[0]!.toUpperCase()).lastIndexOf('FROM')
  return lines.slice(from).map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l)!
    return { op: m[1]!.toUpperCase(), args: m[2]! }
  })
}

/** KEY=value pairs of ENV and LABEL lines (values may be double-quoted). */
function pairs(args: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of args.matchAll(/([A-Za-z0-9_.-]+)=("((?:[^"\\]|\\.)*)"|\S+)/g)) out[m[1]!] = m[3] ?? m[2]!
  return out
}

function dockerfileImage() {
  const stage = finalStage(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))
  const env: Record<string, string> = {}
  const labels: Record<string, string> = {}
  const paths: string[] = []
  let user = ''
  let workdir = '/'
  let entrypoint: string[] = []
  let cmd: string[] = []
  for (const { op, args } of stage) {
    if (op === 'ENV') Object.assign(env, pairs(args))
    if (op === 'LABEL') Object.assign(labels, pairs(args))
    if (op === 'USER') user = args
    if (op === 'WORKDIR') workdir = path.posix.resolve(workdir, args)
    if (op === 'ENTRYPOINT') entrypoint = JSON.parse(args) as string[]
    if (op === 'CMD') cmd = JSON.parse(args) as string[]
    if (op === 'COPY') paths.push(path.posix.resolve(workdir, args.split(/\s+/).at(-1)!))
    if (op === 'RUN') for (const m of args.matchAll(/\bln -s\s+("[^"]*"|\S+)\s+(\/\S+)/g)) paths.push(m[2]!)
  }
  return { env, labels, paths, user, workdir, entrypoint, cmd }
}

describe('the Dockerfile and npm run image describe the same image', () => {
  const d = dockerfileImage()

  it('user, working directory, entrypoint and command', () => {
    expect(d.user).toBe(IMAGE_CONFIG.user)
    expect(d.workdir).toBe(IMAGE_CONFIG.workingDir)
    expect(d.entrypoint).toEqual(IMAGE_CONFIG.entrypoint)
    expect(d.cmd).toEqual(IMAGE_CONFIG.cmd)
  })

  it('the same environment, but PATH, which the Dockerfile inherits from node:24-slim (docs/kubernetes.md, "The image")', () => {
    expect(Object.keys(d.env).length).toBeGreaterThanOrEqual(5)
    const { PATH, ...rest } = IMAGE_CONFIG.env
    expect(rest).toEqual(d.env)
    expect(PATH).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  })

  it('the same labels', () => {
    expect(IMAGE_CONFIG.labels).toEqual(d.labels)
  })

  it('the same files in the same places, and Node where node:24-slim has it', () => {
    expect(d.paths.length).toBeGreaterThanOrEqual(8)
    expect([...IMAGE_PATHS].sort()).toEqual([...d.paths, '/usr/local/bin/node'].sort())
  })
})

const root = process.getuid?.() === 0
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
const archive = imageArchive()
const why = !archive || !existsSync(archive) ? `no image of this checkout at ${archive ?? '$LIVESIM_CACHE/images'}: run npm run image` : !root ? 'chroot needs root' : !has('umoci') ? 'no umoci: run hack/image/deps.sh' : undefined
const title = (t: string, reason: string | undefined) => (reason ? `${t} (skipped: ${reason})` : t)

describe('the built image', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'livesim-image-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))
  const archiveWhy = !archive || !existsSync(archive) ? `no image of this checkout at ${archive ?? '$LIVESIM_CACHE/images'}: run npm run image` : undefined

  it.skipIf(archiveWhy !== undefined)(title('its config is the Dockerfile\'s (OCI config JSON in the archive)', archiveWhy), () => {
    const read = (member: string) => execFileSync('tar', ['-xOf', archive!, member], { maxBuffer: 64 << 20 }).toString()
    const blob = (digest: string) => JSON.parse(read(`blobs/${digest.replace(':', '/')}`)) as Record<string, unknown>
    const index = JSON.parse(read('index.json')) as { manifests: { digest: string }[] }
    const manifest = blob(index.manifests[0]!.digest) as { config: { digest: string }; layers: unknown[] }
    expect(manifest.layers).toHaveLength(3)
    const config = (blob(manifest.config.digest) as { config: { User: string; WorkingDir: string; Entrypoint: string[]; Cmd: string[]; Env: string[]; Labels: Record<string, string> } }).config
    const d = dockerfileImage()
    expect(config.User).toBe(d.user)
    expect(config.WorkingDir).toBe(d.workdir)
    expect(config.Entrypoint).toEqual(d.entrypoint)
    expect(config.Cmd).toEqual(d.cmd)
    expect(config.Labels).toEqual(d.labels)
    const env = Object.fromEntries(config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
    expect(env).toEqual({ ...d.env, PATH: IMAGE_CONFIG.env.PATH })
  })

  it.skipIf(why !== undefined)(title('in a chroot as uid 65532: the quickstart\'s digest equals the host\'s livesim run', why), () => {
    const layout = path.join(work, 'layout')
    execFileSync('mkdir', ['-p', layout])
    execFileSync('tar', ['-xf', archive!, '-C', layout])
    const tag = IMAGE_CONFIG.labels['org.opencontainers.image.version']!
    const bundle = path.join(work, 'bundle')
    execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle])
    const rootfs = path.join(bundle, 'rootfs')
    for (const p of IMAGE_PATHS) expect(lstatSync(path.join(rootfs, p)), p).toBeTruthy()

    const env = { PATH: IMAGE_CONFIG.env.PATH!, HOME: '/nonexistent', ...Object.fromEntries(Object.entries(IMAGE_CONFIG.env).filter(([k]) => k !== 'PATH')) }
    const inImage = (args: string[]) => execFileSync('chroot', ['--userspec=65532:65532', rootfs, ...args], { env, encoding: 'utf8', timeout: 300_000 })
    expect(inImage(['/usr/local/bin/node', '--version']).trim()).toBe(`v${nodeBinary().version}`)

    copyFileSync(path.join(ROOT, 'examples', 'quickstart.yaml'), path.join(rootfs, 'tmp', 'quickstart.yaml'))
    inImage(['/usr/local/bin/livesim', 'run', '/tmp/quickstart.yaml', '--quiet', '--out', '/tmp/quickstart.json'])
    const image = JSON.parse(readFileSync(path.join(rootfs, 'tmp', 'quickstart.json'), 'utf8')) as { digest: string }

    const hostOut = path.join(work, 'host.json')
    execFileSync(process.execPath, [path.join(ROOT, 'sim-runtime', 'cli', 'main.ts'), 'run', path.join(ROOT, 'examples', 'quickstart.yaml'), '--quiet', '--out', hostOut], { timeout: 300_000 })
    const host = JSON.parse(readFileSync(hostOut, 'utf8')) as { digest: string }
    expect(image.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(image.digest).toBe(host.digest)
  }, 300_000)
})

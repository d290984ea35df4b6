// Live programs as another user (securityContext) and their end (terminationGracePeriod): the
// look-ups and the directory hand-over as functions, and whole runs with a real program. The runs
// switch users, so they need a runtime running as root (CI's); elsewhere they are skipped, saying so.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, existsSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canTraverse, handOver, openPathTo, parsePasswd, resolveRunAs } from '../../sim-runtime/live/user.ts'
import { manifest, runProcesses } from '../helpers.ts'
import { ensureLiveDeps } from './helpers.ts'

const files = {
  passwd: 'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\nbroken:x::\n',
  group: 'root:x:0:\npostgres:x:104:\nssl-cert:x:108:postgres\n',
}
const root = { uid: 0, gid: 0 }

describe('securityContext: who a live program runs as', () => {
  it('resolves names from /etc/passwd and /etc/group, defaulting the group to the user\'s', () => {
    expect(parsePasswd(files.passwd).map((u) => u.name)).toEqual(['root', 'postgres'])
    expect(resolveRunAs({ runAsUser: 'postgres' }, 'f', root, files)).toEqual({ uid: 101, gid: 104, name: 'postgres', home: '/var/lib/postgresql' })
    expect(resolveRunAs({ runAsUser: 101, runAsGroup: 'ssl-cert' }, 'f', root, files)).toMatchObject({ uid: 101, gid: 108, name: 'postgres' })
    expect(resolveRunAs({ runAsUser: 5000 }, 'f', root, files)).toEqual({ uid: 5000, gid: 0, name: undefined, home: undefined })
    expect(resolveRunAs({ runAsGroup: 104 }, 'f', root, files)).toMatchObject({ uid: 0, gid: 104 })
  })

  it('runs a program as the runtime when the context names the runtime\'s own user, or nothing', () => {
    expect(resolveRunAs(undefined, 'f', root, files)).toBeUndefined()
    expect(resolveRunAs({}, 'f', root, files)).toBeUndefined()
    expect(resolveRunAs({ runAsUser: 'root' }, 'f', root, files)).toBeUndefined()
    expect(resolveRunAs({ runAsUser: 101 }, 'f', { uid: 101, gid: 104 }, files)).toBeUndefined()
  })

  it('refuses unknown names and a switch a non-root runtime cannot make, naming the field', () => {
    expect(() => resolveRunAs({ runAsUser: 'nosuch' }, 'hosts.db.components.pg: live.securityContext', root, files)).toThrow(/hosts\.db\.components\.pg: live\.securityContext\.runAsUser: no user "nosuch" in \/etc\/passwd/)
    expect(() => resolveRunAs({ runAsUser: 101, runAsGroup: 'nosuch' }, 'f', root, files)).toThrow(/f\.runAsGroup: no group "nosuch"/)
    expect(() => resolveRunAs({ runAsUser: 'postgres' }, 'f', { uid: 1001, gid: 1001 }, files)).toThrow(/f: the program is to run as uid 101 \(postgres\) gid 104, but this runtime runs as uid 1001 .* only root can switch users/)
  })

  it('knows who may enter a directory: owner, primary group, others', () => {
    const who = { uid: 101, gid: 104 }
    expect(canTraverse({ uid: 101, gid: 0, mode: 0o700 }, who)).toBe(true)
    expect(canTraverse({ uid: 0, gid: 104, mode: 0o750 }, who)).toBe(true)
    expect(canTraverse({ uid: 0, gid: 0, mode: 0o750 }, who)).toBe(false)
    expect(canTraverse({ uid: 0, gid: 0, mode: 0o711 }, who)).toBe(true)
    expect(canTraverse({ uid: 101, gid: 104, mode: 0o077 }, who)).toBe(false)
  })

  it('opens livesim\'s own directories for search only, and names a blocked directory that is not livesim\'s', () => {
    const top = mkdtempSync(path.join(tmpdir(), 'livesim-user-'))
    try {
      chmodSync(top, 0o700)
      const own = path.join(top, 'work')
      const host = path.join(own, 'db-0')
      mkdirSync(host, { recursive: true, mode: 0o700 })
      chmodSync(own, 0o700)
      const who = { uid: 65534, gid: 65534 }
      expect(() => openPathTo(host, own, who)).toThrow(new RegExp(`${top} \\(mode 700, uid \\d+\\) cannot be entered by uid 65534`))
      chmodSync(top, 0o711)
      openPathTo(host, own, who)
      expect(statSync(own).mode & 0o777).toBe(0o701)
      expect(statSync(host).mode & 0o777).toBe(0o701)
      expect(() => openPathTo(tmpdir(), own, who)).toThrow(/is not inside/)
    } finally {
      rmSync(top, { recursive: true, force: true })
    }
  })
})

const isRoot = process.getuid?.() === 0
const cluster = (name: string, live: string) =>
  manifest(`apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: ${name} }
spec:
  endTime: 20ms
  hosts:
    - name: a
      components:
        - name: p
          live: ${live}
`)

describe.skipIf(!isRoot)(`live programs as another user, and their end${isRoot ? '' : ' (skipped: switching users needs a runtime running as root)'}`, () => {
  let work = ''
  beforeAll(() => {
    ensureLiveDeps()
    work = mkdtempSync(path.join(tmpdir(), 'livesim-user-run-'))
    chmodSync(work, 0o711) // not livesim's: a user of another uid must be able to pass it
  })
  afterAll(() => rmSync(work, { recursive: true, force: true }))
  const script = 'id -u; id -g; echo "$HOME"; date -u +%Y-%m-%d; echo ok > mine; ls -ln mine; sleep 1000'

  it('runs a program as securityContext.runAsUser, in a work directory it can write, reading the virtual clock', async () => {
    const dir = path.join(work, 'as-nobody')
    const r = await runProcesses(cluster('as-nobody', `{ command: [/bin/sh, -c, '${script}'], securityContext: { runAsUser: nobody } }`), { childEnv: () => ({ LIVESIM_WORK_DIR: dir }) })
    const p = r.hosts['a-0']!.components.p as Record<string, unknown>
    const lines = readFileSync(String(p.log), 'utf8').trim().split('\n')
    expect(lines.slice(0, 4), lines.join('\n')).toEqual(['65534', '65534', '/nonexistent', '2024-01-01'])
    expect(lines[4]).toMatch(/^-rw\S+ 1 65534 65534 3 /)
    expect(p.running).toBe(true)
  })

  it('sends SIGTERM at the end and waits terminationGracePeriod, with the clock standing at the end; without one, kills at once', async () => {
    const trap = (mark: string) => `trap "date -u +%T.%N > ${mark}; exit 0" TERM; sleep 1000 & wait`
    const dir = path.join(work, 'grace')
    await runProcesses(cluster('grace', `{ command: [/bin/sh, -c, '${trap('graceful')}'], terminationGracePeriod: 5s }`), { childEnv: () => ({ LIVESIM_WORK_DIR: dir }) })
    expect(readFileSync(path.join(dir, 'a-0', 'graceful'), 'utf8').trim()).toBe('00:00:00.020000000')
    const dir2 = path.join(work, 'no-grace')
    await runProcesses(cluster('no-grace', `{ command: [/bin/sh, -c, '${trap('graceful')}'] }`), { childEnv: () => ({ LIVESIM_WORK_DIR: dir2 }) })
    expect(existsSync(path.join(dir2, 'a-0', 'graceful'))).toBe(false)
  })
})

describe('handOver', () => {
  it.skipIf(!isRoot)(`gives a directory tree to a user${isRoot ? '' : ' (skipped: chown needs root)'}`, () => {
    const top = mkdtempSync(path.join(tmpdir(), 'livesim-handover-'))
    try {
      mkdirSync(path.join(top, 'a', 'b'), { recursive: true })
      handOver(top, { uid: 65534, gid: 65534 })
      for (const p of [top, path.join(top, 'a'), path.join(top, 'a', 'b')]) expect(statSync(p).uid).toBe(65534)
    } finally {
      rmSync(top, { recursive: true, force: true })
    }
  })
})

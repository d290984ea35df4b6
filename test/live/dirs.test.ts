// Per-user directories of the live runtime (sim-runtime/live/dirs.ts): each user's own, mode 0700,
// and a clear error, not EACCES deep in a run, when the directory belongs to another user.
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createCell } from '../../sim-runtime/live/cell.ts'
import { privateDir, userShmDir, userStateDir } from '../../sim-runtime/live/dirs.ts'
import { signalsStateDir } from '../../sim-runtime/live/signals.ts'
import { skipTitle } from './helpers.ts'

const me = process.getuid?.() as number
const NOBODY = 65534
const work = mkdtempSync(path.join(tmpdir(), 'livesim-dirs-test-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** A directory owned by another user: one we chown as root, else /tmp (root's). */
function othersDir(): { dir: string; owner: number } {
  if (me !== 0) return { dir: '/tmp', owner: lstatSync('/tmp').uid }
  const dir = mkdtempSync(path.join(work, 'other-'))
  chownSync(dir, NOBODY, NOBODY)
  chmodSync(dir, 0o755)
  return { dir, owner: NOBODY }
}

const savedEnv = { TMPDIR: process.env.TMPDIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR, LIVESIM_STATE_DIR: process.env.LIVESIM_STATE_DIR }
afterEach(() => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
})

describe('privateDir', () => {
  it('creates the directory mode 0700, owned by this user, and returns it again when it exists', () => {
    const dir = privateDir(work, 'mine')
    expect(dir).toBe(path.join(work, 'mine'))
    const st = lstatSync(dir)
    expect(st.isDirectory()).toBe(true)
    expect(st.uid).toBe(me)
    expect(st.mode & 0o777).toBe(0o700)
    expect(privateDir(work, 'mine')).toBe(dir)
  })

  it('refuses a directory of another user, naming its owner', () => {
    const { dir, owner } = othersDir()
    expect(() => privateDir(path.dirname(dir), path.basename(dir))).toThrow(new RegExp(`^${dir} belongs to uid ${owner}, not to this user \\(uid ${me}\\)`))
  })

  it('refuses a directory other users can write, and a symbolic link', () => {
    mkdirSync(path.join(work, 'open'), { mode: 0o700 })
    chmodSync(path.join(work, 'open'), 0o777)
    expect(() => privateDir(work, 'open')).toThrow(/is writable by other users \(mode 777\): make it private/)
    symlinkSync(path.join(work, 'mine'), path.join(work, 'link'))
    expect(() => privateDir(work, 'link')).toThrow(/is not a directory \(a symbolic link or a file\)/)
  })

  it('rejects a relative parent and a name with a slash', () => {
    expect(() => privateDir('relative', 'x')).toThrow(/not an absolute path/)
    expect(() => privateDir(work, 'a/b')).toThrow(/one path component/)
  })
})

describe('userStateDir and userShmDir', () => {
  it('is $XDG_RUNTIME_DIR/livesim when XDG_RUNTIME_DIR is a directory of this user, else <tmpdir>/livesim-<uid>', () => {
    const xdg = mkdtempSync(path.join(work, 'xdg-'))
    process.env.XDG_RUNTIME_DIR = xdg
    expect(userStateDir()).toBe(path.join(xdg, 'livesim'))
    expect(lstatSync(path.join(xdg, 'livesim')).mode & 0o777).toBe(0o700)
    // `su` keeps the caller's XDG_RUNTIME_DIR: another user's is not used.
    process.env.XDG_RUNTIME_DIR = othersDir().dir
    process.env.TMPDIR = work
    expect(userStateDir()).toBe(path.join(work, `livesim-${me}`))
    delete process.env.XDG_RUNTIME_DIR
    expect(userStateDir()).toBe(path.join(work, `livesim-${me}`))
  })

  it('puts the clock directory on /dev/shm under this user\'s name', () => {
    const shm = mkdtempSync(path.join(work, 'shm-'))
    expect(userShmDir(shm)).toBe(path.join(shm, `livesim-${me}`))
    expect(lstatSync(path.join(shm, `livesim-${me}`)).mode & 0o777).toBe(0o700)
  })
})

describe('signals cells', () => {
  it('record their process groups in this user\'s directory', () => {
    delete process.env.XDG_RUNTIME_DIR
    delete process.env.LIVESIM_STATE_DIR
    process.env.TMPDIR = work
    expect(path.dirname(signalsStateDir())).toBe(path.join(work, `livesim-${me}`, 'cells'))
  })

  // The failure this prevents: `livesim run` as one user after another user's run had created the
  // shared directory stopped with "EACCES: permission denied, mkdir '<tmp>/livesim-cells/…'".
  const rootSkip = me === 0 ? undefined : 'needs root to make a directory that another user owns'
  it.skipIf(rootSkip !== undefined)(skipTitle("fail with a clear error when this user's directory belongs to another user", rootSkip), async () => {
    const tmp = mkdtempSync(path.join(work, 'tmp-'))
    mkdirSync(path.join(tmp, `livesim-${me}`), { mode: 0o700 })
    chownSync(path.join(tmp, `livesim-${me}`), NOBODY, NOBODY)
    delete process.env.XDG_RUNTIME_DIR
    delete process.env.LIVESIM_STATE_DIR
    process.env.TMPDIR = tmp
    await expect(createCell({ name: 'other-users-dir', mode: 'signals' })).rejects.toThrow(
      new RegExp(`${tmp}/livesim-${me} belongs to uid ${NOBODY}, not to this user \\(uid ${me}\\).*remove it`),
    )
  })
})

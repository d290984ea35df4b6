// Per-user directories of the live runtime: signals cells' records, the clock files on tmpfs. Each
// user gets directories of their own, mode 0700: a directory shared by every user under /tmp belongs
// to whoever made it first (root, say), and then no one else's run can create anything in it; and a
// directory another user could write would let them plant files that our live programs read.
import { accessSync, constants, lstatSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** This process's uid (Linux: always defined). */
function myUid(): number {
  const uid = process.getuid?.()
  if (uid === undefined) throw new Error('livesim live components need a POSIX system (no process.getuid here)')
  return uid
}

/**
 * `parent/name`, created mode 0700 when missing, and checked: a directory (not a symlink) owned by
 * this user that no other user can write. Throws an error naming the directory and its owner
 * otherwise, rather than using it or failing later with EACCES deep inside a run.
 */
export function privateDir(parent: string, name: string): string {
  if (!path.isAbsolute(parent)) throw new Error(`privateDir: parent ${JSON.stringify(parent)} is not an absolute path`)
  if (name === '' || name.includes('/')) throw new Error(`privateDir: name ${JSON.stringify(name)} must be one path component`)
  const dir = path.join(parent, name)
  try {
    mkdirSync(dir, { mode: 0o700 })
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (err.code !== 'EEXIST') throw new Error(`cannot create livesim's directory ${dir}: ${err.code ?? ''} ${err.message}`, { cause: e })
  }
  const st = lstatSync(dir)
  const uid = myUid()
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symbolic link or a file): livesim keeps this user's state there; remove it`)
  if (st.uid !== uid) {
    throw new Error(
      `${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}): livesim keeps each user's state in a directory of their own; ` +
        `remove it (as its owner or root), or set TMPDIR to a directory of yours`,
    )
  }
  if ((st.mode & 0o022) !== 0) throw new Error(`${dir} is writable by other users (mode ${(st.mode & 0o777).toString(8)}): make it private (chmod 700 ${dir})`)
  return dir
}

/** True when `dir` is a directory of this user's that this process can write. */
function ownWritableDir(dir: string): boolean {
  try {
    const st = lstatSync(dir)
    accessSync(dir, constants.W_OK | constants.X_OK)
    return st.isDirectory() && st.uid === myUid()
  } catch {
    return false
  }
}

/**
 * This user's livesim directory: `$XDG_RUNTIME_DIR/livesim` when XDG_RUNTIME_DIR names a writable
 * directory of this user's (`su` keeps the caller's, which is not), else `<tmpdir>/livesim-<uid>`.
 */
export function userStateDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR
  if (xdg && path.isAbsolute(xdg) && ownWritableDir(xdg)) return privateDir(xdg, 'livesim')
  return privateDir(os.tmpdir(), `livesim-${myUid()}`)
}

/** This user's livesim directory on the tmpfs `/dev/shm` (`/dev/shm/livesim-<uid>`), for files rewritten at every barrier. */
export function userShmDir(shm = '/dev/shm'): string {
  return privateDir(shm, `livesim-${myUid()}`)
}

// Running a live program as another user (`live.securityContext.runAsUser` / `runAsGroup`).
// Some programs refuse to run as root (PostgreSQL's postgres and initdb), and a runtime that runs as
// root (cgroup cells need it) would otherwise start every program as root. The runtime resolves the
// user on the machine that runs the program (names from /etc/passwd and /etc/group: a package's user
// has a different UID on each machine), spawns the program with that UID and GID (Node's spawn drops
// the supplementary groups), and hands it what it must reach: its host's work directory, and its
// cell's clock files (the shim maps them read-write).
import { chmodSync, chownSync, lchownSync, lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs'
import path from 'node:path'

export interface RunAs {
  uid: number
  gid: number
  /** The user's name and home directory, when /etc/passwd has the UID. */
  name?: string
  home?: string
}

export interface SecurityContextSpec {
  runAsUser?: number | string
  runAsGroup?: number | string
}

interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
}

/** The entries of a passwd-format file (name:x:uid:gid:gecos:home:shell); malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f.length < 7 || line.startsWith('#')) continue
    const uid = Number(f[2])
    const gid = Number(f[3])
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') continue
    out.push({ name: f[0]!, uid, gid, home: f[5]! })
  }
  return out
}

/** The groups of a group-format file (name:x:gid:members). */
export function parseGroup(text: string): { name: string; gid: number }[] {
  const out: { name: string; gid: number }[] = []
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f.length < 3 || line.startsWith('#') || f[2] === '') continue
    const gid = Number(f[2])
    if (Number.isInteger(gid)) out.push({ name: f[0]!, gid })
  }
  return out
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

export interface Identity {
  uid: number
  gid: number
}

/**
 * Who a component runs as, or undefined when it runs as the runtime does (no securityContext, or one
 * that names the runtime's own user and group). Throws an error that names `field` when a name is
 * unknown here, or when the runtime cannot switch (it is not root).
 */
export function resolveRunAs(
  sc: SecurityContextSpec | undefined,
  field: string,
  self: Identity,
  files: { passwd: string; group: string } = { passwd: readOr('/etc/passwd'), group: readOr('/etc/group') },
): RunAs | undefined {
  if (!sc || (sc.runAsUser === undefined && sc.runAsGroup === undefined)) return undefined
  const users = parsePasswd(files.passwd)
  let entry: PasswdEntry | undefined
  let uid = self.uid
  if (typeof sc.runAsUser === 'string') {
    entry = users.find((u) => u.name === sc.runAsUser)
    if (!entry) throw new Error(`${field}.runAsUser: no user ${JSON.stringify(sc.runAsUser)} in /etc/passwd on this machine; give a UID, or create the user (Debian's packages create theirs, e.g. postgres)`)
    uid = entry.uid
  } else if (typeof sc.runAsUser === 'number') {
    uid = sc.runAsUser
    entry = users.find((u) => u.uid === uid)
  } else {
    entry = users.find((u) => u.uid === uid)
  }
  let gid: number
  if (typeof sc.runAsGroup === 'string') {
    const g = parseGroup(files.group).find((x) => x.name === sc.runAsGroup)
    if (!g) throw new Error(`${field}.runAsGroup: no group ${JSON.stringify(sc.runAsGroup)} in /etc/group on this machine; give a GID`)
    gid = g.gid
  } else if (typeof sc.runAsGroup === 'number') {
    gid = sc.runAsGroup
  } else {
    gid = entry && sc.runAsUser !== undefined ? entry.gid : self.gid
  }
  if (uid === self.uid && gid === self.gid) return undefined
  if (self.uid !== 0) {
    throw new Error(
      `${field}: the program is to run as uid ${uid}${entry ? ` (${entry.name})` : ''} gid ${gid}, but this runtime runs as uid ${self.uid} gid ${self.gid} and only root can switch users; ` +
        `run livesim as root, or remove securityContext to run the program as uid ${self.uid}`,
    )
  }
  return { uid, gid, name: entry?.name, home: entry?.home }
}

/** The environment variables that name the user, as a login would set them (HOME, USER, LOGNAME), where /etc/passwd knows the user. */
export function userEnv(who: RunAs): Record<string, string> {
  return who.name ? { HOME: who.home || '/', USER: who.name, LOGNAME: who.name } : {}
}

/** Whether `who` (primary group only: the program has no supplementary groups) may enter a directory with these permissions. */
export function canTraverse(st: Pick<Stats, 'uid' | 'gid' | 'mode'>, who: Identity): boolean {
  if (who.uid === 0) return true
  if (st.uid === who.uid) return (st.mode & 0o100) !== 0
  if (st.gid === who.gid) return (st.mode & 0o010) !== 0
  return (st.mode & 0o001) !== 0
}

/**
 * Make `dir` reachable by `who`: the directories from `ownRoot` down to `dir` (livesim's own, e.g. a
 * run's work directory or the clock directories on /dev/shm) get o+x where `who` cannot enter them
 * (search only: no listing, no writing); the ancestors above `ownRoot` are not livesim's, so a
 * blocked one is an error that names it.
 */
export function openPathTo(dir: string, ownRoot: string, who: Identity): void {
  const target = path.resolve(dir)
  const root = path.resolve(ownRoot)
  if (target !== root && !target.startsWith(root + path.sep)) throw new Error(`openPathTo: ${target} is not inside ${root}`)
  const chain: string[] = []
  for (let d = target; ; d = path.dirname(d)) {
    chain.push(d)
    if (d === path.dirname(d)) break
  }
  for (const d of chain.reverse()) {
    const st = lstatSync(d)
    if (canTraverse(st, who)) continue
    const ours = d === root || d.startsWith(root + path.sep)
    if (!ours) throw new Error(`${d} (mode ${(st.mode & 0o777).toString(8)}, uid ${st.uid}) cannot be entered by uid ${who.uid}, so a program running as that user cannot reach ${target}: choose a work directory it can reach (--work-dir)`)
    chmodSync(d, (st.mode & 0o7777) | 0o001)
  }
}

/** Give `dir` and everything in it to `who` (chown -R; symbolic links themselves, never followed). Bounded: at most `limit` entries. */
export function handOver(dir: string, who: Identity, limit = 10_000): void {
  let n = 0
  const walk = (p: string): void => {
    if (++n > limit) throw new Error(`handOver: more than ${limit} entries under ${dir}`)
    const st = lstatSync(p)
    if (st.isSymbolicLink()) lchownSync(p, who.uid, who.gid)
    else chownSync(p, who.uid, who.gid)
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e))
  }
  walk(dir)
}

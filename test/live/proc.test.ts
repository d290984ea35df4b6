// ThreadStates (sim-runtime/live/proc.ts): the cooperative driver asks it, many times a millisecond,
// whether any thread of an idle-looking cell is runnable. It keeps the /proc stat and schedstat files
// open and reads a thread's stat only when its schedstat moved, so it must see a thread that a
// sleeping process starts later (the thread count changes), a sleeping thread that wakes, a process
// that appears in the list, one that exits, and close every file it opened.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { procStat, SchedstatReader, taskSchedstat, ThreadStates, tids, type TaskSchedstat } from '../../sim-runtime/live/proc.ts'
import { ensureLiveDeps, sleep, waitFor } from './helpers.ts'

/** `late MS`: sleeps MS, then starts a thread that spins forever (the main thread sleeps on); `late MS main`: spins in the main thread instead. */
const LATE = String.raw`
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *spin(void *a) { volatile unsigned long x = 0; for (;;) x++; return a; }
int main(int argc, char **argv) {
  usleep(atoi(argv[1]) * 1000);
  if (argc > 2 && strcmp(argv[2], "main") == 0) spin(NULL);
  pthread_t t;
  pthread_create(&t, NULL, spin, NULL);
  for (;;) pause();
}
`

let dir: string
let late: string
const children: ChildProcess[] = []

beforeAll(() => {
  ensureLiveDeps()
  dir = mkdtempSync(path.join(tmpdir(), 'livesim-proc-test-'))
  writeFileSync(path.join(dir, 'late.c'), LATE)
  late = path.join(dir, 'late')
  execFileSync('cc', ['-O2', '-pthread', '-o', late, path.join(dir, 'late.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
}, 600_000)

afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const hr = () => Number(process.hrtime.bigint())
/** This process's open files that are /proc stat or schedstat files (ThreadStates keeps those open): counting all fds raced with fds Node or vitest opened or closed meanwhile. */
const statFds = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return /^\/proc\/\d+\/(task\/\d+\/)?(sched)?stat$/.test(readlinkSync(`/proc/self/fd/${fd}`))
    } catch {
      return false // the directory's own fd, closed by now
    }
  }).length

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' })
  children.push(c)
  return c
}

describe('ThreadStates', () => {
  it('sees a thread that a sleeping process starts later, a process added to the list, one that exits, and closes its files', async () => {
    const sleeper = start(late, ['300'])
    const busy = start(late, ['0'])
    const pids = [sleeper.pid!]
    const fds = statFds()
    const states = new ThreadStates(() => pids, 0)
    await sleep(100)
    // One thread, asleep in usleep: nothing runnable (looked at many times, as the driver does).
    for (let k = 0; k < 20; k++) expect(states.runnable(hr())).toBe(false)
    // From 300 ms on, a second thread spins: the thread count moved, so the new thread is read too.
    // (Under load the main thread, woken to start it, may itself wait for a CPU: runnable alone does
    // not say the new thread was read, the stat files open for it do.)
    await waitFor(() => states.runnable(hr()) && statFds() >= fds + 4, 10_000, 'the spinning thread seen as runnable') // stat and schedstat of its two threads
    sleeper.kill('SIGKILL')
    await waitFor(() => !states.runnable(hr()), 10_000, 'nothing runnable once the process is gone')
    // A process that joins the list later (a fork in the cell) is seen at the next refresh.
    pids.push(busy.pid!)
    await waitFor(() => states.runnable(hr()), 10_000, 'the new process seen as runnable')
    expect(statFds()).toBeGreaterThan(fds)
    states.close()
    expect(statFds()).toBe(fds)
  }, 60_000)

  it("reads a sleeping thread's state only once it has run again, and every state when asked for an exact look", async () => {
    const proc = start(late, ['400', 'main'])
    await sleep(100)
    const states = new ThreadStates(() => [proc.pid!], 0)
    // Asleep in usleep: the first look reads its stat, the next ones see an unchanged schedstat.
    for (let k = 0; k < 20; k++) expect(states.runnable(hr())).toBe(false)
    expect(states.statReads).toBe(1)
    expect(states.skipped).toBe(19)
    for (let k = 0; k < 5; k++) expect(states.runnable(hr(), true)).toBe(false)
    expect(states.statReads).toBe(6)
    // From 400 ms on the same thread spins: it has run, so its stat is read, and it is runnable.
    await waitFor(() => states.runnable(hr()), 10_000, 'the woken thread seen as runnable')
    // While runnable it is read at every look.
    const reads = states.statReads
    expect(states.runnable(hr())).toBe(true)
    expect(states.statReads).toBe(reads + 1)
    states.close()
  }, 60_000)

  it('reads the process list at most every pidsEveryNs', async () => {
    let reads = 0
    const states = new ThreadStates(() => {
      reads++
      return []
    }, 1_000_000_000)
    const t = hr()
    for (let k = 0; k < 100; k++) states.runnable(t + k * 1000)
    expect(reads).toBe(1)
    states.runnable(t + 1_000_000_000)
    expect(reads).toBe(2)
    states.close()
  })
})

describe('SchedstatReader', () => {
  it('reads what taskSchedstat reads through files it keeps open, opens one for a new thread, drops those of threads gone, and closes them all', async () => {
    const proc = start(late, ['300'])
    const pid = proc.pid!
    // Asleep in its usleep (not still loading), so that its times stand still between two readings.
    await waitFor(() => tids(pid).length === 1 && procStat(pid)?.state === 'S', 10_000, 'the process asleep')
    const fds = statFds()
    const reader = new SchedstatReader(2)
    const out = new Map<number, TaskSchedstat>()
    // One thread, asleep: the same times as an open-read-close of its file, from one file opened once.
    reader.read([pid], out)
    expect([...out.keys()]).toEqual([pid])
    expect(out.get(pid)).toEqual(taskSchedstat(pid, pid))
    for (let k = 0; k < 10; k++) reader.read([pid], out)
    expect(reader.opened).toBe(1)
    expect(statFds()).toBe(fds + 1)
    // From 300 ms on a second thread spins: one more file, and its run time grows from reading to reading.
    await waitFor(() => reader.read([pid], out).size === 2, 10_000, 'the second thread read')
    expect(reader.opened).toBe(2)
    const spinner = [...out.keys()].find((t) => t !== pid)!
    const before = out.get(spinner)!.runNs
    await waitFor(() => reader.read([pid], out).get(spinner)!.runNs > before, 10_000, 'the spinning thread ran')
    expect(reader.opened).toBe(2)
    // The process exits: its threads' files are closed once they have not been read for keepReads readings.
    proc.kill('SIGKILL')
    await waitFor(() => tids(pid).length === 0, 10_000, 'the process gone')
    for (let k = 0; k < 64; k++) expect(reader.read([pid], out).size).toBe(0)
    expect(reader.size).toBe(0)
    expect(statFds()).toBe(fds)
    // A reading of a set that is read again later does not reopen what it still holds; close() closes it all.
    const other = start(late, ['0'])
    await waitFor(() => reader.read([other.pid!], out).size === 2, 10_000, 'both threads of the second process read')
    const opened = reader.opened
    reader.read([other.pid!], out)
    expect(reader.opened).toBe(opened)
    expect(statFds()).toBe(fds + 2)
    reader.close()
    expect(reader.size).toBe(0)
    expect(statFds()).toBe(fds)
  }, 60_000)
})

// The conformance suite, C (README.md beside this file): one small C program per group of calls,
// compiled by the test with the machine's cc, all running side by side in one cell of one
// `livesim run` at cell.speed 4; every check must time out within [deadline, deadline + quantum]
// of virtual time, and n timed waits of d must take n × d.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe } from 'vitest'
import { which } from '../../../sim-runtime/live/spawn.ts'
import { ensureLiveDeps } from '../helpers.ts'
import { conformanceTests, type Program } from './harness.ts'

/** Per program (test/live/conformance/<program>.c), the calls it checks, as it names them. */
const CALLS: Record<string, string[]> = {
  sleep: ['nanosleep', 'nanosleep x5', 'usleep', 'clock_nanosleep(MONOTONIC)', 'clock_nanosleep(REALTIME,ABSTIME)', 'clock_nanosleep(MONOTONIC,ABSTIME)'],
  poll: ['poll', 'poll x5', 'ppoll', 'select', 'select x5', 'pselect', 'epoll_wait', 'epoll_wait x5', 'epoll_pwait', 'epoll_pwait2'],
  itimer: ['alarm', 'setitimer(ITIMER_REAL)', 'setitimer(ITIMER_REAL) periodic x5', 'getitimer(ITIMER_REAL)'],
  'posix-timer': [
    'timer_settime(SIGEV_SIGNAL,MONOTONIC)',
    'timer_settime(SIGEV_SIGNAL,REALTIME)',
    'timer_settime(SIGEV_SIGNAL,REALTIME,ABSTIME)',
    'timer_settime(SIGEV_SIGNAL,MONOTONIC,ABSTIME)',
    'timer_settime(SIGEV_SIGNAL,MONOTONIC) periodic x5',
    'timer_settime(SIGEV_THREAD,MONOTONIC)',
    'timer_settime(SIGEV_THREAD,MONOTONIC,ABSTIME)',
    'timer_settime(SIGEV_THREAD,REALTIME,ABSTIME)',
    'timer_gettime',
  ],
  timerfd: [
    'timerfd read(MONOTONIC)',
    'timerfd read(REALTIME)',
    'timerfd read(REALTIME,ABSTIME)',
    'timerfd read(MONOTONIC,ABSTIME)',
    'timerfd read(MONOTONIC) periodic x5',
    'timerfd in epoll_wait',
    'timerfd_gettime',
  ],
  sync: [
    'pthread_cond_timedwait(REALTIME)',
    'pthread_cond_timedwait(MONOTONIC)',
    'pthread_cond_timedwait(MONOTONIC) x5',
    'pthread_cond_clockwait(REALTIME)',
    'pthread_cond_clockwait(MONOTONIC)',
    'sem_timedwait',
    'sem_timedwait x5',
    'sem_clockwait(REALTIME)',
    'sem_clockwait(MONOTONIC)',
    'pthread_mutex_timedlock',
    'pthread_mutex_clocklock(MONOTONIC)',
    'futex(FUTEX_WAIT)',
    'futex(FUTEX_WAIT) x5',
    'futex(FUTEX_WAIT_BITSET,MONOTONIC)',
    'futex(FUTEX_WAIT_BITSET,REALTIME)',
  ],
  ipc: ['sigtimedwait', 'sigtimedwait x5', 'mq_timedreceive', 'recv(SO_RCVTIMEO)', 'recv(SO_RCVTIMEO) x5', 'send(SO_SNDTIMEO)'],
}

describe('conformance, C: timeouts and timers of C programs in virtual time', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'livesim-conformance-c-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const compile = (): Program[] => {
    if (!which('cc')) ensureLiveDeps()
    return Object.keys(CALLS).map((name) => {
      const out = path.join(dir, name)
      execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', out, path.join(import.meta.dirname, `${name}.c`), '-lrt'], { stdio: ['ignore', 'ignore', 'pipe'] })
      return { name, command: [out] }
    })
  }
  conformanceTests('conformance-c', '3s', CALLS, compile)
})

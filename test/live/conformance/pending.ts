// The conformance checks that fail today, by `<program>/<call>` (their test names): their timeouts
// or timers still run on the wall clock, or hand the kernel a virtual date. Each is skipped visibly
// ("(skipped: not yet virtual)"); none is marked passing while it fails. Remove an entry as soon as
// its call is virtual: every conformance test file prints the entries that pass now, and
// LIVESIM_CONFORMANCE_PENDING=1 runs them all (to see what each gets).
export const PENDING: readonly string[] = [
  // Go reads its clock through the vDSO or raw system calls: its clock is the real one (it reads
  // today's date), so every timer is on the wall. Needs the vexec supervisor.
  'go-static/time.Sleep',
  'go-static/time.Sleep x5',
  'go-static/time.After',
  'go-static/time.Ticker x5',
  'go-static/context.WithTimeout',
  'go-static/net.Conn.SetReadDeadline',
  'go-static/net.Conn.SetWriteDeadline',
  'go-cgo/time.Sleep',
  'go-cgo/time.Sleep x5',
  'go-cgo/time.After',
  'go-cgo/time.Ticker x5',
  'go-cgo/context.WithTimeout',
  'go-cgo/net.Conn.SetReadDeadline',
  'go-cgo/net.Conn.SetWriteDeadline',
  // Readiness waits: early (wall-clock timeouts), and epoll returns EINTR after a freeze.
  'poll/poll',
  'poll/poll x5',
  'poll/ppoll',
  'poll/select',
  'poll/select x5',
  'poll/pselect',
  'poll/epoll_wait',
  'poll/epoll_wait x5',
  'poll/epoll_pwait',
  'poll/epoll_pwait2',
  // Timed waits the shim does not take over yet (condition variables it does).
  'sync/sem_timedwait',
  'sync/sem_timedwait x5',
  'sync/sem_clockwait(REALTIME)',
  'sync/sem_clockwait(MONOTONIC)',
  'sync/pthread_mutex_timedlock',
  'sync/pthread_mutex_clocklock(MONOTONIC)',
  'sync/futex(FUTEX_WAIT)',
  'sync/futex(FUTEX_WAIT) x5',
  'sync/futex(FUTEX_WAIT_BITSET,MONOTONIC)',
  'sync/futex(FUTEX_WAIT_BITSET,REALTIME)',
  'ipc/sigtimedwait',
  'ipc/sigtimedwait x5',
  'ipc/mq_timedreceive',
  'ipc/recv(SO_RCVTIMEO)',
  'ipc/recv(SO_RCVTIMEO) x5',
  'ipc/send(SO_SNDTIMEO)',
  // CPython: select and socket timeouts early; locks (sem_clockwait on MONOTONIC) hang.
  'python/select.select',
  'python/select.select x5',
  'python/threading.Event.wait',
  'python/threading.Event.wait x5',
  'python/queue.Queue.get(timeout)',
  'python/socket.recv(settimeout)',
]

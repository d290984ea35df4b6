/* Block accounting: the calls in which a program may go idle (poll, select, epoll_wait with a
   timeout). Before one, the barrier, if the program's clock is there: the CPU between a program's
   last reading and its going idle would otherwise not count (clock.c, "Overshoot"). Around one, the
   time blocked, which is neither work nor steal (clock.c, "Steal"). */
#include "shim.h"
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

/* A program about to block (a poll, select or epoll_wait that may wait): first the barrier, if its
   clock is there (clock.c, "Overshoot"). */
void before_block(void) {
  if (state && state_rw && ready && !in_clock && (state[W_FLAGS] & STATE_FLAG_WAIT)) fast_ns_mode(1);
  block_begin();
}

/* The thread may block from now on (until after_block): that time is neither work nor steal. */
void block_begin(void) {
  if (state) block_start = mono_ns();
}

int after_block(int r, int blocking) {
  if (state && blocking) {
    int e = errno;
    woke_at = mono_ns();
    if (block_start > 0 && woke_at > block_start) blocked_total += woke_at - block_start;
    wake_slice = 0;
    if (state_ext && state_rw && base_at != 0 && base_cpu >= 0 && state[W_AT] == base_at) {
      long long anchor = state[W_ANCHOR], cap = state[W_BARRIER];
      double rate = *state_rate;
      if (anchor != -1 && cap > 0 && rate > 0 && clock_at(base_at, anchor, rate, woke_at) >= cap) {
        wake_cpu = thread_cpu_ns();
        wake_real = mono_ns();
        if (wake_cpu >= 0) wake_slice = base_at;
      }
    }
    errno = e;
  }
  block_start = 0;
  return r;
}

typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

SHIM_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
  static epoll_wait_fn next;
  if (!next) next = (epoll_wait_fn)dlsym(RTLD_NEXT, "epoll_wait");
  if (timeout != 0) before_block();
  return after_block(next(epfd, ev, max, timeout), timeout != 0);
}

SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
  static epoll_pwait_fn next;
  if (!next) next = (epoll_pwait_fn)dlsym(RTLD_NEXT, "epoll_pwait");
  if (timeout != 0) before_block();
  return after_block(next(epfd, ev, max, timeout, mask), timeout != 0);
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  static poll_fn next;
  if (!next) next = (poll_fn)dlsym(RTLD_NEXT, "poll");
  if (timeout != 0) before_block();
  return after_block(next(fds, n, timeout), timeout != 0);
}

SHIM_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
  static select_fn next;
  if (!next) next = (select_fn)dlsym(RTLD_NEXT, "select");
  int blocking = !tv || tv->tv_sec != 0 || tv->tv_usec != 0;
  if (blocking) before_block();
  return after_block(next(n, r, w, e, tv), blocking);
}

/* Block accounting of the calls in which a program may go idle (the waits of waits.c and sleep.c:
   poll, select, epoll_wait with a timeout, timed locks, sleeps). Before one, the barrier, if the
   program's clock is there: the CPU between a program's last reading and its going idle would
   otherwise not count (clock.c, "Overshoot"). Around one, the time blocked, which is neither work nor
   steal (clock.c, "Steal"). */
#include "shim.h"
#include <errno.h>

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

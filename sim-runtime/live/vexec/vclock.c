/* The program's virtual clock, computed by the supervisor from the cell's clock state
   (LIVESIM_CLOCK_LIMIT, words W_* of ../shim/layout.h, written by clock.ts) the way the shim computes
   it (shim/clock.c, fast_ns_mode): virtual epoch ns = at + (real CLOCK_MONOTONIC − anchor) × rate,
   clamped at the barrier, under the state's seqlock. Every clock of the program (REALTIME,
   MONOTONIC, BOOTTIME…) reads that same virtual date, as under the shim.
   A precise slice (anchor −1) starts at the first reading of any of the cell's programs: the
   supervisor starts it with the same compare-and-swap of the reading's real time as the shim, and a
   reading that reaches the barrier of a precise slice waits there (held by serve.c) until the
   runtime moves the clock. Not done here, unlike the shim: overshoot and steal (the supervisor does
   not know which of the program's threads did the work past a barrier). The supervisor is not under
   its own filter: its clock_gettime is the vDSO's, the real clock. */
#include "vexec.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile long long *state; /* the clock state, or NULL (vclock_fixed) */
static volatile const double *state_rate;
static int state_rw;              /* mapped writable: may start a precise slice, count waiters */
static long long fixed_ns;

long long mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ns_of_ts(t.tv_sec, t.tv_nsec);
}

int vclock_map(const char *file) {
  int fd = open(file, O_RDWR | O_CLOEXEC);
  state_rw = fd >= 0;
  if (fd < 0) fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "vexec: cannot open the clock state %s: %s\n", file, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < STATE_RUNTIME_BYTES) {
    fprintf(stderr, "vexec: %s is not a livesim clock state (%lld bytes, at least %d expected)\n", file, (long long)st.st_size, STATE_RUNTIME_BYTES);
    close(fd);
    errno = EINVAL;
    return -1;
  }
  void *p = mmap(NULL, STATE_RUNTIME_BYTES, state_rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd);
  if (p == MAP_FAILED) {
    fprintf(stderr, "vexec: cannot map the clock state %s: %s\n", file, strerror(e));
    errno = e;
    return -1;
  }
  state = (volatile long long *)p;
  state_rate = (volatile const double *)((volatile const char *)p + W_RATE * 8);
  return 0;
}

void vclock_fixed(long long epoch_ns) {
  state = NULL;
  fixed_ns = epoch_ns;
}

long long vclock_seq(void) { return state ? state[W_SEQ] : 0; }

void vclock_waiting(int delta) {
  if (state && state_rw) __sync_fetch_and_add(&state[W_WAITING], (long long)delta);
}

/* The runtime writes the state between its odd and even sequence numbers; it may lose its CPU in
   between (a Cooperative cell is not frozen then): wait it out for up to 100 ms, yielding. */
#define ODD_WAIT_NS 100000000LL

/* One consistent look at the state, with a real time taken inside it. Like any reading of the
   cell's clock, it starts a precise slice's clock if nobody has yet. */
static struct vreading read_state(void) {
  struct vreading r = { -1, 0, 0 };
  long long odd_since = 0;
  for (int tries = 0; tries < 1000000; tries++) {
    long long seq = state[W_SEQ];
    if (seq & 1) {
      long long now = mono_ns();
      if (!odd_since) odd_since = now;
      if (now - odd_since > ODD_WAIT_NS) return r;
      sched_yield();
      continue;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    long long at = state[W_AT], anchor = state[W_ANCHOR], cap = state[W_BARRIER], flags = state[W_FLAGS];
    double rate = *state_rate;
    if (at == 0 || !(rate > 0)) return r;
    long long real = mono_ns();
    __sync_synchronize();
    if (state[W_SEQ] != seq || state[W_ANCHOR] != anchor) continue;
    if (anchor == -1 && !state_rw) anchor = state[W_PLANNED_ANCHOR];
    if (anchor == -1) {
      /* A precise slice: this reading starts the clock (for every program of the cell). */
      if (!__sync_bool_compare_and_swap(&state[W_ANCHOR], -1LL, real)) continue;
      if (state[W_SEQ] != seq) continue;
      anchor = real;
    }
    long long v = real > anchor ? at + (long long)((double)(real - anchor) * rate) : at;
    if (cap > 0 && v >= cap) {
      v = cap;
      r.wait = (flags & STATE_FLAG_WAIT) && state_rw;
    }
    r.ns = v;
    r.seq = seq;
    return r;
  }
  return r;
}

struct vreading vclock_read(void) {
  if (!state) return (struct vreading){ fixed_ns, 0, 0 };
  return read_state();
}

/* Virtual ns left before a virtual deadline (0: it has come). While the barrier is short of the
   deadline, from the barrier alone, without a reading: as the shim's sleepers do (shim/sleep.c,
   virtual_left), a sleeper does not start a precise slice just to find it is not due yet. */
long long vclock_left(long long deadline) {
  if (!state) return 0;
  long long cap = state[W_BARRIER];
  if (cap > 0 && cap < deadline) return deadline - cap;
  struct vreading r = read_state();
  if (r.ns < 0) return 0; /* no clock: nothing to wait for */
  return deadline > r.ns ? deadline - r.ns : 0;
}

/* Real ns to wait for what is left of a virtual deadline (0: it has come): the virtual ns left at
   the clock's rate, at least 1. The clock runs at that rate while the cell is thawed and stands
   still while it is frozen, so such a wait never ends after the deadline: the supervisor looks
   again and waits again, and answers within its wake-up of the deadline (or a quantum, when the
   cell is frozen as the deadline comes). */
long long vclock_real_wait(long long deadline) {
  long long left = vclock_left(deadline);
  if (left == 0) return 0;
  double rate = state ? *state_rate : 1.0;
  long long real = (long long)((double)left / (rate > 0 ? rate : 1.0));
  return real > 0 ? real : 1;
}

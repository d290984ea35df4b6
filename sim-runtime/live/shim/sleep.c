/* Sleeps and timed condition waits end at their virtual deadline, also when the cell was frozen in
   between. A sleep is a kernel timer on the real clock: frozen in the middle, it expires during the
   freeze and returns at the thaw, before its virtual deadline. So the deadline is computed on the
   program's (virtual) clock, the real wait is for what is left of it, and the wait is taken again
   while the virtual clock is short of the deadline. */
#include "shim.h"
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

long long vnow(clockid_t c) { struct timespec t; clock_gettime(c, &t); return ns_of(&t); }

/* Standing clock (STATE_FLAG_STANDING): outside the run (start-up before the first quantum,
   termination after the last) the clock stands and nothing moves it, so a wait for a virtual
   deadline would never end: PostgreSQL's checkpointer, backing off from a spinlock in start-up with
   a 1 ms select(), waited there until the run's start timed out. While the clock stands, a wait is
   measured instead on a clock that runs from where the program's stands, from the moment the wait
   began (wait_begins; at the rate), so that it lasts its length. Its deadline is still the
   program's (its clock + the length), so a wait that the run's start overtakes ends at that
   deadline in virtual time. The programs' readings read the standing clock. */
int clock_standing(void) { return state && (state[W_FLAGS] & STATE_FLAG_STANDING) && state[W_ANCHOR] != -1; }

static __thread long long standing_from SHIM_TLS;
void wait_begins(void) {
  if (clock_standing()) standing_from = mono_ns();
}

static long long standing_now(void) {
  long long anchor = state[W_ANCHOR], from = standing_from > anchor ? standing_from : anchor;
  double rate = *state_rate;
  return clock_at(state[W_AT], from, rate > 0 ? rate : 1.0, mono_ns());
}

/* Where the clock of this cell is now, at most the barrier cap, from the state alone: what a
   reading would return, without being one (no precise slice started, no wait at the barrier), or -1
   when that is not known (a precise slice nobody has started yet, the runtime writing the state). */
static long long clock_unread(long long cap) {
  long long seq = state[W_SEQ];
  if (seq & 1) return -1;
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  long long at = state[W_AT], anchor = state[W_ANCHOR];
  double rate = *state_rate;
  long long real = mono_ns();
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (state[W_SEQ] != seq || anchor == -1 || at == 0 || !(rate > 0)) return -1;
  long long v = clock_at(at, anchor, rate, real);
  return v < cap ? v : cap;
}

/* Virtual ns left before a virtual deadline (0: it has come). While the barrier is short of the
   deadline, without a reading: a sleeper that woke on the real clock before its virtual deadline (the
   simulation runs slower than the wall) sleeps again without reading its clock. A reading would
   start the cell's precise slice, whose clock runs with the wall from then on, and a background
   thread waking ever more often near its deadline (jemalloc's, in redis-server) took the slices of
   the thread with the work: stalls of several ms of virtual time in a busy pair. What is left is
   counted from where the state says the clock is (clock_unread), else from the barrier: from the
   barrier alone, a deadline just past it looked that close all along the quantum, and its waiter
   woke every (deadline - barrier) / rate until the quantum ended (thousands of wake-ups for a
   deadline a µs past the barrier). */
long long virtual_left(long long deadline) {
  if (clock_standing()) {
    long long left = deadline - standing_now();
    return left > 0 ? left : 0;
  }
  long long cap = state ? state[W_BARRIER] : 0;
  if (cap > 0 && cap < deadline) {
    long long now = clock_unread(cap);
    return deadline - (now >= 0 ? now : cap);
  }
  long long left = deadline - vnow(CLOCK_REALTIME);
  return left > 0 ? left : 0;
}

/* Real ns to wait for what is left of a virtual deadline (0: it has come): the virtual ns left at the
   clock's rate, at least 1. A wait of that long on the real clock never ends after the deadline (the
   clock runs at that rate while the cell is thawed, and stands still while it is frozen), so a
   waiter re-checks and waits again until virtual_left() is 0: never early, and late by no more than
   its wake-up (or a quantum, when the cell is frozen as the deadline comes). A deadline past the
   barrier is waited for BARRIER_NAP_NS at least: the clock may stand at the barrier until the
   runtime moves it (a Cooperative cell is not frozen meanwhile), and a waiter with little left
   beyond it would otherwise spin; the deadline cannot come before the runtime moves the clock, so
   the nap makes it late by at most its length, at the clock's rate. */
#define BARRIER_NAP_NS 20000LL

/* In a cell frozen between quanta (STATE_FLAG_FROZEN), a real wait ends at the barrier at the latest
   (a nap past where the clock reaches it): the rate holds only up to the barrier. When the freeze
   comes before the clock gets there (the runtime froze it a little early), the next quantum's clock
   starts at the barrier all the same, and a wait planned across many barriers at the rate ran that
   much late, jump after jump: a lone select of 100 ms at 1 ms quanta ended up to 1.7 quanta late.
   Ended at the barrier, the wait comes back at the thaw (or, frozen late, naps until the freeze)
   and is planned again from the new quantum's clock. A precise slice nobody has read yet starts
   its clock no sooner than its planned anchor, so its barrier comes no sooner than that plus the
   slice's length at the rate. A deadline more than FAR_SLICES slices away is waited for half the
   way instead: the jumps (each less than a quarter of a slice) cannot make that half reach the
   deadline, and a long wait then wakes some log2(its slices) times instead of at every barrier
   (jemalloc's background thread in redis-server waits seconds; woken every 100 µs quantum it
   cost the cell 30 % more CPU). */
#define FAR_SLICES 4
static long long frozen_wait_ns(long long cap, double rate, long long left, long long real) {
  long long span = cap - state[W_AT];
  if (span > 0 && left > FAR_SLICES * span) return real / 2;
  long long now = clock_unread(cap), to_cap;
  if (now >= 0) to_cap = (long long)((double)(cap - now) / rate);
  else to_cap = state[W_PLANNED_ANCHOR] + (long long)((double)(cap - state[W_AT]) / rate) - mono_ns();
  long long end = (to_cap > 0 ? to_cap : 0) + BARRIER_NAP_NS;
  return end < real ? end : real;
}

long long real_wait_ns(long long deadline) {
  long long left = virtual_left(deadline);
  if (left == 0) return 0;
  double rate = state ? *state_rate : 1.0;
  if (!(rate > 0)) rate = 1.0;
  long long real = (long long)((double)left / rate);
  long long cap = state ? state[W_BARRIER] : 0;
  if (cap > 0 && cap < deadline && !clock_standing()) {
    if (real < BARRIER_NAP_NS) real = BARRIER_NAP_NS;
    else if (state_ext && (state[W_FLAGS] & STATE_FLAG_FROZEN)) real = frozen_wait_ns(cap, rate, left, real);
  }
  return real > 0 ? real : 1;
}

/* glibc's definition of a call, not libfaketime's: libfaketime converts timeouts with its timestamp
   file (stale in precise slices) and divides them by its rate; the shim does both itself. */
void *libc_sym(const char *name) {
  static void *libc;
  if (!libc) libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc ? dlsym(libc, name) : NULL;
}

/* Sleep until a virtual deadline: sleep for what is left, and again until the virtual clock is there.
   With the fast clock, glibc's nanosleep for the real time left at the clock's rate (real_wait_ns),
   registered (deadlines.c) with the instant it ends; without it, libfaketime's nanosleep for the
   virtual time left, which it divides by its own rate. */
static int vsleep_until(long long deadline, struct timespec *rem) {
  static nanosleep_fn next, glibc;
  if (!next) next = (nanosleep_fn)dlsym(RTLD_NEXT, "nanosleep");
  if (!glibc) glibc = (nanosleep_fn)libc_sym("nanosleep");
  nanosleep_fn sleep_fn = state && glibc ? glibc : next;
  for (;;) {
    long long ns = sleep_fn == glibc ? real_wait_ns(deadline) : virtual_left(deadline);
    if (ns == 0) return 0;
    struct timespec req = ts_of(ns), r;
    int slot = sleep_fn == glibc ? wait_register(deadline, ns) : -1;
    block_begin();
    int e = after_block(sleep_fn(&req, &r), 1);
    wait_clear(slot, deadline);
    if (e != 0) {
      if (errno == EINTR && rem) {
        long long left = deadline - vnow(CLOCK_REALTIME);
        *rem = ts_of(left > 0 ? left : 0);
      }
      return -1;
    }
  }
}

static int vsleep(long long ns, struct timespec *rem) {
  if (ns <= 0) return 0;
  wait_begins();
  return vsleep_until(vnow(CLOCK_REALTIME) + ns, rem);
}

SHIM_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem) {
  if (!req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000L || req->tv_sec < 0) { errno = EINVAL; return -1; }
  return vsleep(ns_of(req), rem);
}

SHIM_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
  static clock_nanosleep_fn next;
  if (!next) next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
  if (!req) return EINVAL;
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME) return next(clock, flags, req, rem);
  if (flags & TIMER_ABSTIME) {
    /* Not libfaketime's conversion of the deadline: it uses its file, which precise slices leave stale. */
    wait_begins();
    return vsleep_until(ns_of(req), NULL) != 0 ? errno : 0;
  }
  if (vsleep(ns_of(req), rem) != 0) return errno;
  return 0;
}

SHIM_EXPORT int usleep(useconds_t usec) {
  return vsleep((long long)usec * 1000LL, NULL);
}

SHIM_EXPORT unsigned int sleep(unsigned int seconds) {
  struct timespec rem = { 0, 0 };
  if (vsleep((long long)seconds * 1000000000LL, &rem) != 0) return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
  return 0;
}

/* Timed waits on a condition variable, with an absolute deadline on the program's (virtual) clock:
   wait on the real CLOCK_MONOTONIC for what is left of it (at the clock's rate), and again while the
   virtual clock is short of the deadline. libfaketime converts such a deadline with its own clock,
   its timestamp file, which precise slices do not rewrite (clock.ts): it keeps the last offset and
   runs ahead at wall speed while the simulation runs slower. Once it was ahead by more than a wait,
   every deadline looked past: redis-server's jemalloc background thread (decay waits of seconds) then
   timed out at once, read its clock, and again, from about 10 s of wall on, taking the CPU its cell
   and the runtime needed (a C=10 redis-benchmark went from 77000 to 9000 GET/s). The clock of the
   condition variable does not matter: both virtual clocks read the same time. */
static int vcond_wait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
  long long deadline = ns_of(abstime);
  wait_begins();
  for (;;) {
    long long real_ns = real_wait_ns(deadline);
    if (real_ns == 0) return ETIMEDOUT;
    struct timespec real = ts_of(mono_ns() + real_ns);
    int slot = wait_register(deadline, real_ns);
    block_begin();
    int r = after_block(libc_cond_clockwait(c, m, CLOCK_MONOTONIC, &real), 1);
    wait_clear(slot, deadline);
    if (r != ETIMEDOUT) return r;
  }
}

static int virtual_wait(const struct timespec *abstime) {
  return state && libc_cond_clockwait && ready && !in_clock && abstime && abstime->tv_nsec >= 0 && abstime->tv_nsec < 1000000000L;
}

typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);

SHIM_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
  static cond_timedwait_fn next;
  if (!next) next = (cond_timedwait_fn)dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
  if (!virtual_wait(abstime)) return next ? next(c, m, abstime) : ENOSYS;
  return vcond_wait(c, m, abstime);
}

/* glibc 2.30+; libfaketime 0.9.10 does not wrap it, so without this a virtual deadline (a date in the
   run's base year, also on CLOCK_MONOTONIC) would be waited for on the real clock. */
SHIM_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
  static cond_clockwait_fn next;
  if (!next) next = libc_cond_clockwait ? libc_cond_clockwait : (cond_clockwait_fn)dlsym(RTLD_NEXT, "pthread_cond_clockwait");
  if (!limited(clock) || !virtual_wait(abstime)) return next ? next(c, m, clock, abstime) : ENOSYS;
  return vcond_wait(c, m, abstime);
}

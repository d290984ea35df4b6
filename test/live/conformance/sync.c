/* Timed waits of thread synchronisation: condition variables, semaphores, mutexes and the futex
   system call under them, with absolute deadlines on CLOCK_REALTIME and CLOCK_MONOTONIC (virtual
   dates: given to the kernel as they are, a MONOTONIC one lies decades ahead of the real clock and
   a REALTIME one in the past) and relative ones (which the kernel counts on the real clock). */
#include "check.h"
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/syscall.h>

/* n waits of d, each by `once` (d) which must report its timeout: ETIMEDOUT (as a return value or
   in errno, as the call does it). */
static void waits(const char *call, long long d, int n, int (*once)(long long)) {
  long long t0 = mono();
  for (int i = 0; i < n; i++) {
    errno = 0;
    int r = once(d);
    if (r != ETIMEDOUT) { result(call, n * d, mono() - t0, n, unless(0, "wait %d returned %s", i + 1, r ? strerror(r) : "0 (no timeout)")); return; }
  }
  result(call, n * d, mono() - t0, n, NULL);
}
/* errno's value for calls that return -1 and set it; 0 for success. */
static int err(int r) { return r == 0 ? 0 : errno; }

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_real = PTHREAD_COND_INITIALIZER, cv_mono;

/* One condition wait until `deadline`, through spurious wake-ups. */
static int cond_until(pthread_cond_t *cv, clockid_t c, int clockwait, struct timespec deadline) {
  pthread_mutex_lock(&m);
  int r;
  do r = clockwait ? pthread_cond_clockwait(cv, &m, c, &deadline) : pthread_cond_timedwait(cv, &m, &deadline);
  while (r == 0);
  pthread_mutex_unlock(&m);
  return r;
}
static int once_cond_real(long long d) { return cond_until(&cv_real, CLOCK_REALTIME, 0, after(CLOCK_REALTIME, d)); }
static int once_cond_mono(long long d) { return cond_until(&cv_mono, CLOCK_MONOTONIC, 0, after(CLOCK_MONOTONIC, d)); }
static int once_clockwait_real(long long d) { return cond_until(&cv_real, CLOCK_REALTIME, 1, after(CLOCK_REALTIME, d)); }
static int once_clockwait_mono(long long d) { return cond_until(&cv_real, CLOCK_MONOTONIC, 1, after(CLOCK_MONOTONIC, d)); }

static sem_t sem; /* stays at 0 */
static int once_sem_timedwait(long long d) { struct timespec t = after(CLOCK_REALTIME, d); return err(sem_timedwait(&sem, &t)); }
static int once_sem_clockwait_real(long long d) { struct timespec t = after(CLOCK_REALTIME, d); return err(sem_clockwait(&sem, CLOCK_REALTIME, &t)); }
static int once_sem_clockwait_mono(long long d) { struct timespec t = after(CLOCK_MONOTONIC, d); return err(sem_clockwait(&sem, CLOCK_MONOTONIC, &t)); }

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER; /* locked by holder() for good */
static void *holder(void *a) {
  pthread_mutex_lock(&held);
  for (;;) pause();
  return a;
}
static int once_mutex_timedlock(long long d) { struct timespec t = after(CLOCK_REALTIME, d); return pthread_mutex_timedlock(&held, &t); }
static int once_mutex_clocklock(long long d) { struct timespec t = after(CLOCK_MONOTONIC, d); return pthread_mutex_clocklock(&held, CLOCK_MONOTONIC, &t); }

static uint32_t word; /* stays 0: a futex wait on it ends by its timeout */
static int futex(int op, const struct timespec *t, uint32_t mask) { return err((int)syscall(SYS_futex, &word, op, 0, t, NULL, mask)); }
static int once_futex_wait(long long d) { struct timespec t = ts_ns(d); return futex(FUTEX_WAIT_PRIVATE, &t, 0); }
static int once_futex_bitset_mono(long long d) { struct timespec t = after(CLOCK_MONOTONIC, d); return futex(FUTEX_WAIT_BITSET_PRIVATE, &t, FUTEX_BITSET_MATCH_ANY); }
static int once_futex_bitset_real(long long d) { struct timespec t = after(CLOCK_REALTIME, d); return futex(FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, &t, FUTEX_BITSET_MATCH_ANY); }

#define WAITS(name) static void do_##name(const char *call, long long d, int n) { waits(call, d, n, once_##name); }
WAITS(cond_real)
WAITS(cond_mono)
WAITS(clockwait_real)
WAITS(clockwait_mono)
WAITS(sem_timedwait)
WAITS(sem_clockwait_real)
WAITS(sem_clockwait_mono)
WAITS(futex_wait)
WAITS(futex_bitset_mono)
WAITS(futex_bitset_real)

/* The mutex checks need the holder thread, in the check's own process. */
static void hold(void) {
  pthread_t t;
  pthread_create(&t, NULL, holder, NULL);
  while (pthread_mutex_trylock(&held) == 0) { pthread_mutex_unlock(&held); sched_yield(); }
}
static void do_mutex_timedlock(const char *call, long long d, int n) { hold(); waits(call, d, n, once_mutex_timedlock); }
static void do_mutex_clocklock(const char *call, long long d, int n) { hold(); waits(call, d, n, once_mutex_clocklock); }

int main(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&cv_mono, &a);
  sem_init(&sem, 0, 0);
  check("pthread_cond_timedwait(REALTIME)", do_cond_real, 100 * MS, 1);
  check("pthread_cond_timedwait(MONOTONIC)", do_cond_mono, 100 * MS, 1);
  check("pthread_cond_timedwait(MONOTONIC) x5", do_cond_mono, 30 * MS, 5);
  check("pthread_cond_clockwait(REALTIME)", do_clockwait_real, 100 * MS, 1);
  check("pthread_cond_clockwait(MONOTONIC)", do_clockwait_mono, 100 * MS, 1);
  check("sem_timedwait", do_sem_timedwait, 100 * MS, 1);
  check("sem_timedwait x5", do_sem_timedwait, 30 * MS, 5);
  check("sem_clockwait(REALTIME)", do_sem_clockwait_real, 100 * MS, 1);
  check("sem_clockwait(MONOTONIC)", do_sem_clockwait_mono, 100 * MS, 1);
  check("pthread_mutex_timedlock", do_mutex_timedlock, 100 * MS, 1);
  check("pthread_mutex_clocklock(MONOTONIC)", do_mutex_clocklock, 100 * MS, 1);
  check("futex(FUTEX_WAIT)", do_futex_wait, 100 * MS, 1);
  check("futex(FUTEX_WAIT) x5", do_futex_wait, 30 * MS, 5);
  check("futex(FUTEX_WAIT_BITSET,MONOTONIC)", do_futex_bitset_mono, 100 * MS, 1);
  check("futex(FUTEX_WAIT_BITSET,REALTIME)", do_futex_bitset_real, 100 * MS, 1);
  return 0;
}

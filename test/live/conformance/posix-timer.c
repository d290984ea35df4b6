/* POSIX timers: timer_create/timer_settime/timer_gettime with SIGEV_SIGNAL and SIGEV_THREAD,
   relative and TIMER_ABSTIME, on CLOCK_REALTIME and CLOCK_MONOTONIC. The kernel runs them on the
   real clock: a relative one expires at its wall deadline, and an absolute one at a virtual date,
   which on CLOCK_MONOTONIC lies decades ahead of the real clock (it never fires) and on
   CLOCK_REALTIME in the past (it fires at once). */
#include "check.h"
#include <semaphore.h>

#define TIMER_SIG SIGRTMIN

static volatile sig_atomic_t fired;
static void on_timer(int sig) { (void)sig; fired++; }

/* SIGEV_THREAD: the notification thread reads the clock when it runs and posts `notified`. */
static sem_t notified;
static volatile long long notified_at;
static void on_thread(union sigval v) {
  (void)v;
  notified_at = mono();
  fired++;
  sem_post(&notified);
}

static void catch_timer(void) {
  struct sigaction sa = { 0 };
  sa.sa_handler = on_timer;
  sigaction(TIMER_SIG, &sa, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, TIMER_SIG);
  sigprocmask(SIG_BLOCK, &s, NULL);
}
static void wait_fired(int n) {
  sigset_t none;
  sigemptyset(&none);
  while (fired < n) sigsuspend(&none);
}

static int create(clockid_t c, int thread, timer_t *t) {
  struct sigevent ev = { 0 };
  if (thread) {
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_thread;
  } else {
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = TIMER_SIG;
  }
  return timer_create(c, &ev, t);
}

/* Arm a timer on clock c for d from now (relative, or at now + d with TIMER_ABSTIME), periodic
   with interval d when n > 1, and wait for its n-th expiry, due n × d after the start. */
static void expiry(const char *call, long long d, int n, clockid_t c, int flags, int thread) {
  timer_t t;
  if (thread) sem_init(&notified, 0, 0);
  else catch_timer();
  if (create(c, thread, &t) != 0) { failed(call, "timer_create"); return; }
  long long t0 = mono();
  struct itimerspec its = { n > 1 ? ts_ns(d) : ts_ns(0), flags ? after(c, d) : ts_ns(d) };
  if (timer_settime(t, flags, &its, NULL) != 0) { failed(call, "timer_settime"); return; }
  long long t1;
  if (thread) {
    for (int i = 0; i < n; i++) while (sem_wait(&notified) != 0) {}
    t1 = notified_at;
  } else {
    wait_fired(n);
    t1 = mono();
  }
  result(call, n * d, t1 - t0, 1, NULL);
}

static void sig_mono(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_MONOTONIC, 0, 0); }
static void sig_real(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_REALTIME, 0, 0); }
static void sig_real_abs(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_REALTIME, TIMER_ABSTIME, 0); }
static void sig_mono_abs(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_MONOTONIC, TIMER_ABSTIME, 0); }
static void thread_mono(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_MONOTONIC, 0, 1); }
static void thread_mono_abs(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_MONOTONIC, TIMER_ABSTIME, 1); }
static void thread_real_abs(const char *call, long long d, int n) { expiry(call, d, n, CLOCK_REALTIME, TIMER_ABSTIME, 1); }

/* After d of the program's clock, timer_gettime must report the value less d. got = value - reported. */
static void do_gettime(const char *call, long long d, int n) {
  (void)n;
  const long long value = 4 * d;
  timer_t t;
  catch_timer();
  if (create(CLOCK_MONOTONIC, 0, &t) != 0) { failed(call, "timer_create"); return; }
  struct itimerspec its = { ts_ns(0), ts_ns(value) };
  if (timer_settime(t, 0, &its, NULL) != 0) { failed(call, "timer_settime"); return; }
  long long t0 = mono();
  sleep_until(t0 + d);
  long long asked = mono() - t0;
  if (timer_gettime(t, &its) != 0) { failed(call, "timer_gettime"); return; }
  result(call, asked, value - (its.it_value.tv_sec * SEC + its.it_value.tv_nsec), 1, unless(fired == 0 && !is_pending(TIMER_SIG), "the timer fired before its deadline"));
}

int main(void) {
  check("timer_settime(SIGEV_SIGNAL,MONOTONIC)", sig_mono, 100 * MS, 1);
  check("timer_settime(SIGEV_SIGNAL,REALTIME)", sig_real, 100 * MS, 1);
  check("timer_settime(SIGEV_SIGNAL,REALTIME,ABSTIME)", sig_real_abs, 100 * MS, 1);
  check("timer_settime(SIGEV_SIGNAL,MONOTONIC,ABSTIME)", sig_mono_abs, 100 * MS, 1);
  check("timer_settime(SIGEV_SIGNAL,MONOTONIC) periodic x5", sig_mono, 30 * MS, 5);
  check("timer_settime(SIGEV_THREAD,MONOTONIC)", thread_mono, 100 * MS, 1);
  check("timer_settime(SIGEV_THREAD,MONOTONIC,ABSTIME)", thread_mono_abs, 100 * MS, 1);
  check("timer_settime(SIGEV_THREAD,REALTIME,ABSTIME)", thread_real_abs, 100 * MS, 1);
  check("timer_gettime", do_gettime, 50 * MS, 1);
  return 0;
}

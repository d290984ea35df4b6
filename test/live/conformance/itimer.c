/* alarm and ITIMER_REAL interval timers (setitimer/getitimer): the kernel runs them on the real
   clock, so without livesim's timekeeping SIGALRM comes at the wall deadline, early in virtual
   time, and getitimer reports wall time left. */
#include "check.h"
#include <sys/time.h>

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

/* SIGALRM counted by on_alarm and blocked outside wait_alarms, so none is lost between the check of
   the count and the wait. */
static void catch_alarms(void) {
  struct sigaction sa = { 0 };
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGALRM);
  sigprocmask(SIG_BLOCK, &s, NULL);
}
static void wait_alarms(int n) {
  sigset_t none;
  sigemptyset(&none);
  while (alarms < n) sigsuspend(&none);
}

static void do_alarm(const char *call, long long d, int n) {
  (void)n;
  catch_alarms();
  long long t0 = mono();
  alarm((unsigned)(d / SEC));
  wait_alarms(1);
  result(call, d, mono() - t0, 1, NULL);
}

static int arm(long long value, long long interval) {
  struct itimerval it = { tv_ns(interval), tv_ns(value) };
  return setitimer(ITIMER_REAL, &it, NULL);
}

/* A one-shot timer of d, or a periodic one of interval d whose n-th expiry is due at n × d. */
static void do_setitimer(const char *call, long long d, int n) {
  catch_alarms();
  long long t0 = mono();
  if (arm(d, n > 1 ? d : 0) != 0) { failed(call, "setitimer"); return; }
  wait_alarms(n);
  result(call, n * d, mono() - t0, 1, NULL);
}

/* After d of the program's clock, getitimer must report the timer's value less d (less what the
   clock says passed, within a microsecond, the resolution of itimerval). got = value - reported. */
static void do_getitimer(const char *call, long long d, int n) {
  (void)n;
  const long long value = 4 * d;
  catch_alarms();
  if (arm(value, 0) != 0) { failed(call, "setitimer"); return; }
  long long t0 = mono();
  sleep_until(t0 + d);
  long long asked = mono() - t0;
  struct itimerval it;
  if (getitimer(ITIMER_REAL, &it) != 0) { failed(call, "getitimer"); return; }
  long long left = (long long)it.it_value.tv_sec * SEC + it.it_value.tv_usec * 1000LL;
  /* Both in whole µs: the timer's resolution. */
  result(call, asked / 1000 * 1000, value - left, 1, unless(alarms == 0 && !is_pending(SIGALRM), "SIGALRM came before its deadline"));
}

int main(void) {
  check("alarm", do_alarm, 1 * SEC, 1);
  check("setitimer(ITIMER_REAL)", do_setitimer, 100 * MS, 1);
  check("setitimer(ITIMER_REAL) periodic x5", do_setitimer, 30 * MS, 5);
  check("getitimer(ITIMER_REAL)", do_getitimer, 50 * MS, 1);
  return 0;
}

/* Sleeps: the control group of the conformance suite. livesim's shim has made them virtual
   (sleep.c in the shim), so these pass whenever the run itself is sound. */
#include "check.h"

static void do_nanosleep(const char *call, long long d, int n) {
  long long t0 = mono();
  for (int i = 0; i < n; i++) {
    struct timespec req = ts_ns(d);
    if (nanosleep(&req, NULL) != 0) { result(call, n * d, mono() - t0, n, unless(0, "nanosleep: -1 %s", ERRNO_TEXT)); return; }
  }
  result(call, n * d, mono() - t0, n, NULL);
}

static void do_usleep(const char *call, long long d, int n) {
  long long t0 = mono();
  for (int i = 0; i < n; i++) usleep((useconds_t)(d / 1000));
  result(call, n * d, mono() - t0, n, NULL);
}

/* clock_nanosleep on `c`, relative or at an absolute deadline of that clock. */
static void clock_sleep(const char *call, long long d, clockid_t c, int flags) {
  long long t0 = mono();
  struct timespec req = flags ? after(c, d) : ts_ns(d);
  int r = clock_nanosleep(c, flags, &req, NULL);
  result(call, d, mono() - t0, 1, unless(r == 0, "clock_nanosleep: %s", strerror(r)));
}
static void mono_rel(const char *call, long long d, int n) { (void)n; clock_sleep(call, d, CLOCK_MONOTONIC, 0); }
static void real_abs(const char *call, long long d, int n) { (void)n; clock_sleep(call, d, CLOCK_REALTIME, TIMER_ABSTIME); }
static void mono_abs(const char *call, long long d, int n) { (void)n; clock_sleep(call, d, CLOCK_MONOTONIC, TIMER_ABSTIME); }

int main(void) {
  check("nanosleep", do_nanosleep, 100 * MS, 1);
  check("nanosleep x5", do_nanosleep, 30 * MS, 5);
  check("usleep", do_usleep, 70 * MS, 1);
  check("clock_nanosleep(MONOTONIC)", mono_rel, 100 * MS, 1);
  check("clock_nanosleep(REALTIME,ABSTIME)", real_abs, 100 * MS, 1);
  check("clock_nanosleep(MONOTONIC,ABSTIME)", mono_abs, 100 * MS, 1);
  return 0;
}

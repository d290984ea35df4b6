/* timerfd: timerfd_create/timerfd_settime/timerfd_gettime, waited for by a blocking read and inside
   an epoll set beside a socket, relative and absolute, on CLOCK_REALTIME and CLOCK_MONOTONIC. */
#include "check.h"
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

/* Arm a timerfd on clock c for d from now (relative or TFD_TIMER_ABSTIME), periodic with interval
   d when n > 1. */
static int arm(const char *call, clockid_t c, int flags, long long d, int n) {
  int fd = timerfd_create(c, 0);
  if (fd < 0) { failed(call, "timerfd_create"); return -1; }
  struct itimerspec its = { n > 1 ? ts_ns(d) : ts_ns(0), flags ? after(c, d) : ts_ns(d) };
  if (timerfd_settime(fd, flags, &its, NULL) != 0) { failed(call, "timerfd_settime"); return -1; }
  return fd;
}

/* Blocking reads until n expirations have been counted: the n-th is due n × d after the start. */
static void by_read(const char *call, long long d, int n, clockid_t c, int flags) {
  long long t0 = mono();
  int fd = arm(call, c, flags, d, n);
  if (fd < 0) return;
  uint64_t total = 0, count;
  while (total < (uint64_t)n) {
    if (read(fd, &count, sizeof count) != sizeof count) { result(call, n * d, mono() - t0, 1, unless(0, "read: %s", ERRNO_TEXT)); return; }
    total += count;
  }
  result(call, n * d, mono() - t0, 1, unless(total == (uint64_t)n, "%llu expirations, expected %d", (unsigned long long)total, n));
}
static void read_mono(const char *call, long long d, int n) { by_read(call, d, n, CLOCK_MONOTONIC, 0); }
static void read_real(const char *call, long long d, int n) { by_read(call, d, n, CLOCK_REALTIME, 0); }
static void read_real_abs(const char *call, long long d, int n) { by_read(call, d, n, CLOCK_REALTIME, TFD_TIMER_ABSTIME); }
static void read_mono_abs(const char *call, long long d, int n) { by_read(call, d, n, CLOCK_MONOTONIC, TFD_TIMER_ABSTIME); }

/* The timerfd in an epoll set with a socket that stays quiet, waited for without a timeout: the
   timer is the only way out. */
static void by_epoll(const char *call, long long d, int n) {
  (void)n;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { failed(call, "socketpair"); return; }
  int ep = epoll_create1(0);
  long long t0 = mono();
  int fd = arm(call, CLOCK_MONOTONIC, 0, d, 1);
  if (fd < 0) return;
  struct epoll_event e = { .events = EPOLLIN, .data.fd = sv[0] };
  epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e);
  e.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  int r;
  do r = epoll_wait(ep, &e, 1, -1);
  while (r < 0 && errno == EINTR);
  long long got = mono() - t0;
  result(call, d, got, 1, unless(r == 1 && e.data.fd == fd, "epoll_wait returned %d, fd %d (%s)", r, r == 1 ? e.data.fd : -1, ERRNO_TEXT));
}

/* After d of the program's clock, timerfd_gettime must report the value less d. got = value - reported. */
static void do_gettime(const char *call, long long d, int n) {
  (void)n;
  const long long value = 4 * d;
  int fd = arm(call, CLOCK_MONOTONIC, 0, value, 1);
  if (fd < 0) return;
  long long t0 = mono();
  sleep_until(t0 + d);
  long long asked = mono() - t0;
  struct itimerspec its;
  if (timerfd_gettime(fd, &its) != 0) { failed(call, "timerfd_gettime"); return; }
  long long left = its.it_value.tv_sec * SEC + its.it_value.tv_nsec;
  result(call, asked, value - left, 1, unless(left > 0, "the timer had expired"));
}

int main(void) {
  check("timerfd read(MONOTONIC)", read_mono, 100 * MS, 1);
  check("timerfd read(REALTIME)", read_real, 100 * MS, 1);
  check("timerfd read(REALTIME,ABSTIME)", read_real_abs, 100 * MS, 1);
  check("timerfd read(MONOTONIC,ABSTIME)", read_mono_abs, 100 * MS, 1);
  check("timerfd read(MONOTONIC) periodic x5", read_mono, 30 * MS, 5);
  check("timerfd in epoll_wait", by_epoll, 100 * MS, 1);
  check("timerfd_gettime", do_gettime, 50 * MS, 1);
  return 0;
}

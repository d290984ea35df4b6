/* Timeouts of the readiness waits: poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
   epoll_pwait2, each on a pipe that never becomes readable, so the only way out is the timeout
   (0 ready). A kernel timeout on the real clock returns early when the cell is frozen in between
   or its clock runs slower than the wall (cell.speed > 1). */
#include "check.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

static int quiet_fd;   /* read end of a pipe nobody writes to */
static int quiet_ep;   /* an epoll set holding quiet_fd */

static int once_poll(long long d) { struct pollfd p = { quiet_fd, POLLIN, 0 }; return poll(&p, 1, (int)(d / MS)); }
static int once_ppoll(long long d) { struct pollfd p = { quiet_fd, POLLIN, 0 }; struct timespec t = ts_ns(d); return ppoll(&p, 1, &t, NULL); }
static int once_select(long long d) {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(quiet_fd, &r);
  struct timeval t = tv_ns(d);
  return select(quiet_fd + 1, &r, NULL, NULL, &t);
}
static int once_pselect(long long d) {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(quiet_fd, &r);
  struct timespec t = ts_ns(d);
  return pselect(quiet_fd + 1, &r, NULL, NULL, &t, NULL);
}
static int once_epoll_wait(long long d) { struct epoll_event e; return epoll_wait(quiet_ep, &e, 1, (int)(d / MS)); }
static int once_epoll_pwait(long long d) { struct epoll_event e; return epoll_pwait(quiet_ep, &e, 1, (int)(d / MS), NULL); }
static int once_epoll_pwait2(long long d) { struct epoll_event e; struct timespec t = ts_ns(d); return epoll_pwait2(quiet_ep, &e, 1, &t, NULL); }

/* n waits of d with `once`, each of which must time out (return 0). */
static void waits(const char *call, long long d, int n, int (*once)(long long)) {
  long long t0 = mono();
  for (int i = 0; i < n; i++) {
    errno = 0;
    int r = once(d);
    if (r != 0) { result(call, n * d, mono() - t0, n, unless(0, "wait %d returned %d (%s)", i + 1, r, ERRNO_TEXT)); return; }
  }
  result(call, n * d, mono() - t0, n, NULL);
}

#define WAITS(name) static void do_##name(const char *call, long long d, int n) { waits(call, d, n, once_##name); }
WAITS(poll)
WAITS(ppoll)
WAITS(select)
WAITS(pselect)
WAITS(epoll_wait)
WAITS(epoll_pwait)
WAITS(epoll_pwait2)

int main(void) {
  int p[2];
  if (pipe(p) != 0) { perror("pipe"); return 1; }
  quiet_fd = p[0];
  quiet_ep = epoll_create1(0);
  struct epoll_event e = { .events = EPOLLIN, .data.fd = quiet_fd };
  if (quiet_ep < 0 || epoll_ctl(quiet_ep, EPOLL_CTL_ADD, quiet_fd, &e) != 0) { perror("epoll"); return 1; }
  check("poll", do_poll, 100 * MS, 1);
  check("poll x5", do_poll, 30 * MS, 5);
  check("ppoll", do_ppoll, 100 * MS, 1);
  check("select", do_select, 100 * MS, 1);
  check("select x5", do_select, 30 * MS, 5);
  check("pselect", do_pselect, 100 * MS, 1);
  check("epoll_wait", do_epoll_wait, 100 * MS, 1);
  check("epoll_wait x5", do_epoll_wait, 30 * MS, 5);
  check("epoll_pwait", do_epoll_pwait, 100 * MS, 1);
  check("epoll_pwait2", do_epoll_pwait2, 100 * MS, 1);
  return 0;
}

/* The waits of test/live/coop-timers.test.ts: `coop-timers-probe KIND D_NS N` waits N times for D_NS of
   its own (virtual) clock in the way KIND says, and prints for each wait
     W kind i before after wall  the clock (virtual epoch ns) just before the wait began and just
                                 after it ended, and the real time between (ns, raw CLOCK_MONOTONIC)
   then `D kind` (or `X kind why` on a failure). KIND:
     sleep   nanosleep
     poll    poll() with no descriptor (D_NS in whole ms)
     timer   a timerfd armed for D_NS, then a blocking read (the shim's timekeeper fires it)
     cond    pthread_cond_timedwait to before + D_NS on CLOCK_REALTIME */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL

static long long vnow(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (long long)t.tv_sec * SEC + t.tv_nsec;
}
static struct timespec ts(long long ns) { struct timespec t = { ns / SEC, ns % SEC }; return t; }
/* The real clock, by a system call the shim and libfaketime do not see. */
static long long raw_now(void) {
  struct timespec t;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * SEC + t.tv_nsec;
}

static int wait_once(const char *kind, long long d, long long before) {
  if (!strcmp(kind, "sleep")) {
    struct timespec t = ts(d);
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
    return 0;
  }
  if (!strcmp(kind, "poll")) return poll(NULL, 0, (int)(d / 1000000)) < 0 ? -1 : 0;
  if (!strcmp(kind, "timer")) {
    static int fd = -1;
    if (fd < 0) fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec it = { { 0, 0 }, ts(d) };
    uint64_t n;
    if (fd < 0 || timerfd_settime(fd, 0, &it, NULL) != 0) return -1;
    while (read(fd, &n, sizeof n) < 0)
      if (errno != EINTR) return -1;
    return 0;
  }
  if (!strcmp(kind, "cond")) {
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec until = ts(before + d);
    pthread_mutex_lock(&m);
    int r;
    while ((r = pthread_cond_timedwait(&c, &m, &until)) == 0) {}
    pthread_mutex_unlock(&m);
    return r == ETIMEDOUT ? 0 : -1;
  }
  errno = EINVAL;
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  const char *kind = argv[1];
  long long d = atoll(argv[2]);
  int n = atoi(argv[3]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 0; i < n; i++) {
    long long raw = raw_now(), before = vnow();
    if (wait_once(kind, d, before) != 0) {
      printf("X %s %s\n", kind, strerror(errno));
      return 1;
    }
    long long after = vnow();
    printf("W %s %d %lld %lld %lld\n", kind, i, before, after, raw_now() - raw);
  }
  printf("D %s\n", kind);
  return 0;
}

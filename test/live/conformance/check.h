/* The conformance checks' shared frame (test/live/conformance/README.md): every check waits for a
   timeout or a timer and prints one JSON line of what it asked and what it got, measured on the
   program's own CLOCK_MONOTONIC, which is the virtual clock under livesim:
     {"call":"poll","askedNs":100000000,"gotNs":100012345,"waits":1,"clockNs":1704067200123456789}
   waits: how many deadlines the measured span holds one after another (each may be a quantum late);
   clockNs: the clock at the end of the check (a virtual date, 2024, not today's);
   ret: present when the call did not report its timeout the way it should (an early error, data).
   A check that cannot run prints {"call":…,"error":…}; one that never returns, {"call":…,"hung":…}. */
#ifndef LIVESIM_CONFORMANCE_CHECK_H
#define LIVESIM_CONFORMANCE_CHECK_H
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define SEC 1000000000LL
/* A check that has not returned this long after its last deadline (virtual time) is hung: a
   deadline the kernel waits for on the real clock (a virtual date on CLOCK_MONOTONIC lies decades
   ahead of the real one) never comes. */
#define HANG_NS (250 * MS)

static inline long long now_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (long long)t.tv_sec * SEC + t.tv_nsec;
}
static inline long long mono(void) { return now_ns(CLOCK_MONOTONIC); }
static inline struct timespec ts_ns(long long ns) { struct timespec t = { ns / SEC, ns % SEC }; return t; }
static inline struct timeval tv_ns(long long ns) { struct timeval t = { ns / SEC, (ns % SEC) / 1000 }; return t; }
/* The absolute deadline `ns` from now on clock c. */
static inline struct timespec after(clockid_t c, long long ns) { return ts_ns(now_ns(c) + ns); }

/* One check's result: asked and got in ns; ret (or NULL) says how the call returned when that was
   not its timeout. */
static inline void result(const char *call, long long asked, long long got, int waits, const char *ret) {
  printf("{\"call\":\"%s\",\"askedNs\":%lld,\"gotNs\":%lld,\"waits\":%d,\"clockNs\":%lld", call, asked, got, waits, now_ns(CLOCK_MONOTONIC));
  if (ret) printf(",\"ret\":\"%s\"", ret);
  printf("}\n");
  fflush(stdout);
}

/* A check that could not run: what failed, with errno's text. */
static inline void failed(const char *call, const char *what) {
  printf("{\"call\":\"%s\",\"error\":\"%s: %s\"}\n", call, what, strerror(errno));
  fflush(stdout);
}

/* NULL when r is the timeout the call should report, else a description of r (kept until the next
   call). A call that returns early with an error, or with an event that cannot have happened, did
   not wait for its deadline. */
static inline const char *unless(int timed_out, const char *fmt, ...) {
  static char text[160];
  if (timed_out) return NULL;
  va_list a;
  va_start(a, fmt);
  vsnprintf(text, sizeof text, fmt, a);
  va_end(a);
  return text;
}
#define ERRNO_TEXT (errno ? strerror(errno) : "no error")

/* Whether signal sig is pending (blocked, so its handler has not run). */
static inline int is_pending(int sig) {
  sigset_t s;
  sigpending(&s);
  return sigismember(&s, sig);
}

/* Sleep until `deadline` on the virtual CLOCK_MONOTONIC, through signals (the control: livesim's
   sleeps are virtual). */
static inline void sleep_until(long long deadline) {
  struct timespec d = ts_ns(deadline);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR) {}
}

typedef void check_fn(const char *call, long long d, int n);

/* Run one check, fn(call, d, n): n waits of d ns. It runs in a child process, so that its signals,
   timers and threads end with it and a wait that never returns is killed instead of stopping the
   checks after it: the parent waits on its virtual clock (sleeps, the control), up to n × d + HANG_NS,
   then reports it hung. */
static inline void check(const char *call, check_fn *fn, long long d, int n) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) { failed(call, "fork"); return; }
  if (pid == 0) {
    fn(call, d, n);
    fflush(stdout);
    _exit(0);
  }
  long long start = mono(), limit = (long long)n * d + HANG_NS;
  int st = 0;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) { failed(call, "waitpid"); return; }
    if (mono() - start > limit) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      printf("{\"call\":\"%s\",\"askedNs\":%lld,\"hung\":\"no return within %lld ms of virtual time\"}\n", call, (long long)n * d, limit / MS);
      fflush(stdout);
      return;
    }
    sleep_until(mono() + 2 * MS);
  }
  if (WIFSIGNALED(st)) printf("{\"call\":\"%s\",\"error\":\"the check died of signal %d (%s)\"}\n", call, WTERMSIG(st), strsignal(WTERMSIG(st)));
  else if (WEXITSTATUS(st) != 0) printf("{\"call\":\"%s\",\"error\":\"the check exited with %d\"}\n", call, WEXITSTATUS(st));
  fflush(stdout);
}

#endif

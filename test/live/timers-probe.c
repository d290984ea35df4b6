/* The timers of test/live/timers.test.ts: `timers-probe alarm|posix|timerfd` arms each kind of timer
   of one family, waits for it on the program's own (virtual) clock, and prints what it saw, for the
   test to judge against the quanta that drove it:
     E kind i lo hi seen     an expiry: the timer's deadline lies in [lo, hi] (the clock read just
                             before and just after arming it, plus its delay); seen: the clock when
                             the program saw it fire
     R kind lo hi got        a reported value (time left, overruns) that must lie in [lo, hi]
     C kind want got         a value that must be exactly want
   Virtual epoch ns throughout. A wait interrupted by a stop and continue (a signals-mode cell's
   freeze) is taken again. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define SEC 1000000000LL

static long long now_on(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (long long)t.tv_sec * SEC + t.tv_nsec;
}
static long long vnow(void) { return now_on(CLOCK_MONOTONIC); }
static struct timespec ts(long long ns) { struct timespec t = { ns / SEC, ns % SEC }; return t; }
static long long ns(struct timespec t) { return (long long)t.tv_sec * SEC + t.tv_nsec; }
static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }
/* The sync quantum (argv[2], ns): how late the timekeeper may count an expiry. */
static long long quantum;

static void sleep_until(long long deadline) {
  struct timespec d = ts(deadline);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR) {}
}

static void E(const char *kind, int i, long long lo, long long hi, long long seen) { printf("E %s %d %lld %lld %lld\n", kind, i, lo, hi, seen); }
static void R(const char *kind, long long lo, long long hi, long long got) { printf("R %s %lld %lld %lld\n", kind, lo, hi, got); }
static void C(const char *kind, long long want, long long got) { printf("C %s %lld %lld\n", kind, want, got); }

/* Signals: counted by a handler, blocked outside sigsuspend so none comes between a look at the
   count and the wait. */
static volatile sig_atomic_t caught[65];
static volatile pid_t caught_tid;
static siginfo_t last_info;
static void on_signal(int sig, siginfo_t *si, void *u) {
  (void)u;
  caught[sig]++;
  caught_tid = tid();
  last_info = *si;
}
static void catch_signal(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO;
  sigaction(sig, &sa, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  sigprocmask(SIG_BLOCK, &s, NULL);
}
static void wait_signal(int sig, int n) {
  sigset_t none;
  sigemptyset(&none);
  while (caught[sig] < n) sigsuspend(&none);
}

/* ---- alarm, setitimer, getitimer ---- */

static int itimer(long long value, long long interval) {
  struct itimerval it = { { interval / SEC, interval % SEC / 1000 }, { value / SEC, value % SEC / 1000 } };
  return setitimer(ITIMER_REAL, &it, NULL);
}

static void alarms(void) {
  catch_signal(SIGALRM);
  long long a0 = vnow();
  alarm(1);
  long long a1 = vnow();
  wait_signal(SIGALRM, 1);
  E("alarm", 1, a0 + SEC, a1 + SEC, vnow());

  /* alarm(0) returns the seconds left of alarm(2) after 300 ms: 1.7 s, rounded to 2. */
  alarm(2);
  sleep_until(vnow() + 300 * MS);
  C("alarm-left", 2, alarm(0));

  caught[SIGALRM] = 0;
  a0 = vnow();
  itimer(30 * MS, 0);
  a1 = vnow();
  wait_signal(SIGALRM, 1);
  E("itimer", 1, a0 + 30 * MS, a1 + 30 * MS, vnow());

  caught[SIGALRM] = 0;
  a0 = vnow();
  itimer(20 * MS, 20 * MS);
  a1 = vnow();
  for (int i = 1; i <= 5; i++) {
    wait_signal(SIGALRM, i);
    E("itimer-periodic", i, a0 + i * 20 * MS, a1 + i * 20 * MS, vnow());
  }
  itimer(0, 0);

  a0 = vnow();
  itimer(100 * MS, 0);
  a1 = vnow();
  sleep_until(a1 + 30 * MS);
  struct itimerval it;
  long long g0 = vnow();
  getitimer(ITIMER_REAL, &it);
  long long g1 = vnow();
  long long left = it.it_value.tv_sec * SEC + it.it_value.tv_usec * 1000LL;
  /* itimerval has µs: the time left is truncated to them. */
  R("getitimer", 100 * MS - (g1 - a0) - 1000, 100 * MS - (g0 - a1), left);
  itimer(0, 0);
  getitimer(ITIMER_REAL, &it);
  C("getitimer-disarmed", 0, it.it_value.tv_sec * SEC + it.it_value.tv_usec);
}

/* ---- POSIX timers ---- */

#define SIG_A SIGRTMIN
#define SIG_B (SIGRTMIN + 1)

static timer_t make_timer(clockid_t c, int notify, int sig, int value) {
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = notify;
  ev.sigev_signo = sig;
  ev.sigev_value.sival_int = value;
  timer_t t;
  if (timer_create(c, &ev, &t) != 0) {
    printf("X timer_create %s\n", strerror(errno));
    exit(1);
  }
  return t;
}

static void arm(timer_t t, int flags, long long value, long long interval) {
  struct itimerspec its = { ts(interval), ts(value) };
  if (timer_settime(t, flags, &its, NULL) != 0) {
    printf("X timer_settime %s\n", strerror(errno));
    exit(1);
  }
}

/* A relative one-shot timer of 40 ms on clock c: its expiry, and the siginfo it came with. */
static void one_shot(const char *kind, clockid_t c) {
  caught[SIG_A] = 0;
  timer_t t = make_timer(c, SIGEV_SIGNAL, SIG_A, 42);
  long long a0 = vnow();
  arm(t, 0, 40 * MS, 0);
  long long a1 = vnow();
  wait_signal(SIG_A, 1);
  E(kind, 1, a0 + 40 * MS, a1 + 40 * MS, vnow());
  timer_delete(t);
}

static sem_t notified;
static volatile long long notified_at;
static volatile pid_t notified_tid;
static volatile int notified_value;
static volatile size_t notified_stack;
static void on_notify(union sigval v) {
  notified_at = vnow();
  notified_tid = tid();
  notified_value = v.sival_int;
  pthread_attr_t a;
  size_t n = 0;
  if (pthread_getattr_np(pthread_self(), &a) == 0) {
    pthread_attr_getstacksize(&a, &n);
    pthread_attr_destroy(&a);
  }
  notified_stack = n;
  sem_post(&notified);
}

static volatile pid_t helper_tid;
static void *helper(void *arg) {
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIG_B);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  helper_tid = tid();
  for (;;) pause();
  return NULL;
}

static void posix_signals(void) {
  catch_signal(SIG_A);
  one_shot("posix-monotonic", CLOCK_MONOTONIC);
  C("posix-si-code", SI_TIMER, last_info.si_code);
  C("posix-si-value", 42, last_info.si_value.sival_int);
  one_shot("posix-boottime", CLOCK_BOOTTIME);

  /* TIMER_ABSTIME on CLOCK_REALTIME: a virtual date. */
  caught[SIG_A] = 0;
  timer_t t = make_timer(CLOCK_REALTIME, SIGEV_SIGNAL, SIG_A, 1);
  long long at = now_on(CLOCK_REALTIME) + 40 * MS;
  arm(t, TIMER_ABSTIME, at, 0);
  wait_signal(SIG_A, 1);
  E("posix-realtime-abstime", 1, at, at, now_on(CLOCK_REALTIME));

  /* Periodic, 20 ms: every expiry is a signal or an overrun of one. */
  caught[SIG_A] = 0;
  long long a0 = vnow();
  arm(t, 0, 20 * MS, 20 * MS);
  long long a1 = vnow();
  int total = 0, mismatched = 0;
  for (int n = 1; total < 5; n++) {
    wait_signal(SIG_A, n);
    int over = timer_getoverrun(t);
    mismatched += over != last_info.si_overrun;
    total += 1 + over;
    E("posix-periodic", total, a0 + total * 20 * MS, a1 + total * 20 * MS, vnow());
  }
  arm(t, 0, 0, 0);
  /* The handler's siginfo says what timer_getoverrun says. */
  C("posix-periodic-si-overrun", 0, mismatched);

  /* A 10 ms timer whose signal stays blocked for 35 ms, then goes to the handler: its siginfo and
     timer_getoverrun count the expirations missed meanwhile. */
  caught[SIG_A] = 0;
  a0 = vnow();
  arm(t, 0, 10 * MS, 10 * MS);
  a1 = vnow();
  sleep_until(a1 + 35 * MS);
  long long h0 = vnow();
  wait_signal(SIG_A, 1);
  int handler_over = last_info.si_overrun, get_over = timer_getoverrun(t);
  long long h1 = vnow();
  arm(t, 0, 0, 0);
  C("posix-handler-si-overrun", get_over, handler_over);
  /* As posix-overrun below: those due by then, counted up to a quantum late. */
  R("posix-handler-overrun", (h0 - quantum - a1) / (10 * MS) - 1, (h1 - a0) / (10 * MS) - 1, handler_over);

  /* The signal blocked while a 10 ms timer runs 55 ms: one signal, and its overruns. */
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIG_A);
  a0 = vnow();
  arm(t, 0, 10 * MS, 10 * MS);
  a1 = vnow();
  sleep_until(a1 + 55 * MS);
  siginfo_t si;
  while (sigwaitinfo(&s, &si) < 0) {}
  long long w0 = vnow();
  int over = timer_getoverrun(t);
  long long w1 = vnow();
  arm(t, 0, 0, 0);
  /* Expirations due by then, less the one that sent the signal; the timekeeper may count them up to
     a quantum late. */
  R("posix-overrun", (w0 - quantum - a1) / (10 * MS) - 1, (w1 - a0) / (10 * MS) - 1, over);
  /* The siginfo says the same at delivery. */
  C("posix-overrun-siginfo", over, si.si_overrun);
  while (sigtimedwait(&s, &si, &(struct timespec){ 0, 0 }) > 0) {}

  /* timer_gettime after 30 ms of a 100 ms timer. */
  a0 = vnow();
  arm(t, 0, 100 * MS, 0);
  a1 = vnow();
  sleep_until(a1 + 30 * MS);
  struct itimerspec its;
  long long g0 = vnow();
  timer_gettime(t, &its);
  long long g1 = vnow();
  R("posix-gettime", 100 * MS - (g1 - a0), 100 * MS - (g0 - a1), ns(its.it_value));
  arm(t, 0, 0, 0);
  timer_delete(t);
  errno = 0;
  C("posix-deleted-einval", EINVAL, timer_gettime(t, &its) == -1 ? errno : 0);
}

/* SIGEV_THREAD_ID at this (main) thread, while a helper thread takes SIG_B if it is sent to the
   process: the handler must run here. */
static void posix_thread_id(void) {
  catch_signal(SIG_B);
  pthread_t h;
  pthread_create(&h, NULL, helper, NULL);
  while (!helper_tid) sleep_until(vnow() + MS);
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIG_B;
  ev._sigev_un._tid = tid();
  timer_t t;
  timer_create(CLOCK_MONOTONIC, &ev, &t);
  long long a0 = vnow();
  arm(t, 0, 40 * MS, 0);
  long long a1 = vnow();
  wait_signal(SIG_B, 1);
  E("posix-thread-id", 1, a0 + 40 * MS, a1 + 40 * MS, vnow());
  C("posix-thread-id-here", tid(), caught_tid);
  timer_delete(t);
}

static void posix_thread(void) {
  sem_init(&notified, 0, 0);
  timer_t t;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD;
  ev.sigev_notify_function = on_notify;
  ev.sigev_value.sival_int = 7;
  timer_create(CLOCK_MONOTONIC, &ev, &t);
  long long at = vnow() + 40 * MS;
  arm(t, TIMER_ABSTIME, at, 0);
  while (sem_wait(&notified) != 0) {}
  E("posix-sigev-thread", 1, at, at, notified_at);
  C("posix-sigev-thread-value", 7, notified_value);
  C("posix-sigev-thread-elsewhere", 1, notified_tid != tid());
  timer_delete(t);

  /* With attributes the program destroys right after timer_create: the thread gets them anyway. */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 512 * 1024);
  ev.sigev_notify_attributes = &attr;
  timer_create(CLOCK_MONOTONIC, &ev, &t);
  pthread_attr_destroy(&attr);
  arm(t, 0, 10 * MS, 0);
  while (sem_wait(&notified) != 0) {}
  C("posix-sigev-thread-stacksize", 512 * 1024, (long long)notified_stack);
  timer_delete(t);
}

static void posix_none(void) {
  timer_t t = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
  long long a0 = vnow();
  arm(t, 0, 50 * MS, 0);
  long long a1 = vnow();
  sleep_until(a1 + 20 * MS);
  struct itimerspec its;
  long long g0 = vnow();
  timer_gettime(t, &its);
  long long g1 = vnow();
  R("posix-none-gettime", 50 * MS - (g1 - a0), 50 * MS - (g0 - a1), ns(its.it_value));
  sleep_until(a1 + 60 * MS);
  timer_gettime(t, &its);
  C("posix-none-expired", 0, ns(its.it_value));
  timer_delete(t);
}

/* A fork's child has none of its parent's POSIX timers. */
static void posix_fork(void) {
  timer_t t = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
  arm(t, 0, SEC, 0);
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    struct itimerspec its;
    _exit(timer_gettime(t, &its) == -1 && errno == EINVAL ? 0 : 1);
  }
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  C("posix-fork-not-inherited", 0, WIFEXITED(st) ? WEXITSTATUS(st) : 100);
  timer_delete(t);
}

/* ---- timerfd ---- */

static int tfd(clockid_t c, int flags, long long value, long long interval) {
  int fd = timerfd_create(c, 0);
  struct itimerspec its = { ts(interval), ts(value) };
  if (fd < 0 || timerfd_settime(fd, flags, &its, NULL) != 0) {
    printf("X timerfd %s\n", strerror(errno));
    exit(1);
  }
  return fd;
}

static uint64_t read_count(int fd) {
  uint64_t n = 0;
  while (read(fd, &n, sizeof n) < 0 && errno == EINTR) {}
  return n;
}

static void timerfds(void) {
  long long a0 = vnow();
  int fd = tfd(CLOCK_MONOTONIC, 0, 40 * MS, 0);
  long long a1 = vnow();
  uint64_t n = read_count(fd);
  E("timerfd-read", 1, a0 + 40 * MS, a1 + 40 * MS, vnow());
  C("timerfd-read-count", 1, (long long)n);
  close(fd);

  long long at = now_on(CLOCK_REALTIME) + 40 * MS;
  fd = tfd(CLOCK_REALTIME, TFD_TIMER_ABSTIME, at, 0);
  read_count(fd);
  E("timerfd-realtime-abstime", 1, at, at, now_on(CLOCK_REALTIME));
  close(fd);

  a0 = vnow();
  fd = tfd(CLOCK_MONOTONIC, 0, 20 * MS, 20 * MS);
  a1 = vnow();
  long long total = 0;
  while (total < 5) {
    total += (long long)read_count(fd);
    E("timerfd-periodic", (int)total, a0 + total * 20 * MS, a1 + total * 20 * MS, vnow());
  }
  C("timerfd-periodic-count", 5, total);
  struct itimerspec its;
  timerfd_gettime(fd, &its);
  C("timerfd-periodic-interval", 20 * MS, ns(its.it_interval));
  close(fd);

  /* In an epoll set beside a quiet socket: the timer is the only way out. */
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  int ep = epoll_create1(0);
  struct epoll_event e = { .events = EPOLLIN, .data.fd = sv[0] };
  epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e);
  a0 = vnow();
  fd = tfd(CLOCK_MONOTONIC, 0, 40 * MS, 0);
  a1 = vnow();
  e.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  int r;
  do r = epoll_wait(ep, &e, 1, -1);
  while (r < 0 && errno == EINTR);
  E("timerfd-epoll", 1, a0 + 40 * MS, a1 + 40 * MS, vnow());
  C("timerfd-epoll-fd", fd, r == 1 ? e.data.fd : -1);
  close(fd);

  a0 = vnow();
  fd = tfd(CLOCK_MONOTONIC, 0, 40 * MS, 0);
  a1 = vnow();
  struct pollfd p[2] = { { sv[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
  do r = poll(p, 2, -1);
  while (r < 0 && errno == EINTR);
  E("timerfd-poll", 1, a0 + 40 * MS, a1 + 40 * MS, vnow());
  C("timerfd-poll-ready", POLLIN, p[1].revents);
  close(fd);

  a0 = vnow();
  fd = tfd(CLOCK_MONOTONIC, 0, 40 * MS, 0);
  a1 = vnow();
  fd_set rs;
  do {
    FD_ZERO(&rs);
    FD_SET(sv[0], &rs);
    FD_SET(fd, &rs);
    r = select((fd > sv[0] ? fd : sv[0]) + 1, &rs, NULL, NULL, NULL);
  } while (r < 0 && errno == EINTR);
  E("timerfd-select", 1, a0 + 40 * MS, a1 + 40 * MS, vnow());
  C("timerfd-select-ready", 1, FD_ISSET(fd, &rs) != 0);
  close(fd);

  a0 = vnow();
  fd = tfd(CLOCK_MONOTONIC, 0, 100 * MS, 0);
  a1 = vnow();
  sleep_until(a1 + 30 * MS);
  long long g0 = vnow();
  timerfd_gettime(fd, &its);
  long long g1 = vnow();
  R("timerfd-gettime", 100 * MS - (g1 - a0), 100 * MS - (g0 - a1), ns(its.it_value));

  /* Expired and not read, then armed again: the expiration is gone, as the kernel's. */
  its = (struct itimerspec){ ts(0), ts(10 * MS) };
  timerfd_settime(fd, 0, &its, NULL);
  sleep_until(vnow() + 30 * MS);
  its = (struct itimerspec){ ts(0), ts(SEC) };
  timerfd_settime(fd, 0, &its, NULL);
  struct pollfd q = { fd, POLLIN, 0 };
  C("timerfd-rearm-drops-count", 0, poll(&q, 1, 0));
  close(fd);
  errno = 0;
  C("timerfd-closed-gettime", 1, timerfd_gettime(fd, &its) == -1 && (errno == EBADF || errno == EINVAL));
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "";
  quantum = argc > 2 ? atoll(argv[2]) : 0;
  if (!strcmp(what, "alarm")) alarms();
  else if (!strcmp(what, "posix")) {
    posix_signals();
    posix_thread_id();
    posix_thread();
    posix_none();
    posix_fork();
  } else if (!strcmp(what, "timerfd")) timerfds();
  else {
    fprintf(stderr, "usage: timers-probe alarm|posix|timerfd [QUANTUM_NS]\n");
    return 2;
  }
  printf("D %s\n", what);
  return 0;
}

/* The probe of test/live/waits.test.ts: every wait with a timeout that the shim's waits.c takes over,
   each twice: once with nothing to end it but its timeout (variant T), once with an event that a
   helper thread makes after E ms of its own (virtual) clock (variant E). For each it prints
     R <call> <T|E> <start> <end> <event> <result> <extra>
   start and end: the program's CLOCK_MONOTONIC (virtual under livesim) around the call, ns; event:
   the clock just before the helper made the event (0 in T); result: timeout, event or error:<errno>;
   extra: select's written-back timeout, or the SO_*TIMEO getsockopt reports, in ns (else 0).
   Usage: waits-probe D_MS E_MS CALL…  (no CALL: every call; E:CALL: its E variant only). The
   "(real event)" calls make their event after 100 ms of real time (a raw nanosleep), for a clock that
   the test holds at a barrier meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
extern int __poll_chk(struct pollfd *, nfds_t, int, size_t);

static long long now(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
static struct timespec ts(long long ns) { return (struct timespec){ ns / 1000000000LL, ns % 1000000000LL }; }
static struct timespec at(clockid_t c, long long ns) { return ts(now(c) + ns); }
static void sleep_ms(long long ms) { struct timespec t = ts(ms * MS); nanosleep(&t, NULL); }

/* One call under test: setup (main), hold (helper, before the wait), wait (main: 1 event, 0 timeout,
   -1 error), fire (helper: the event, or the release after a T variant), cleanup (main, at the end). */
struct probe {
  const char *name;
  void (*setup)(void);
  void (*hold)(void);
  int (*wait)(long long d, long long *extra);
  void (*fire)(void);
  void (*cleanup)(void);
  int real_ms; /* the event after this much real time, not E_MS of the program's clock */
};

static volatile int held, done, joined;
static volatile long long event_at;
static char variant;
static long long e_ms;
static pthread_t helper, main_thread;
static const struct probe *current;

static void *helper_main(void *arg) {
  (void)arg;
  if (current->hold) current->hold();
  held = 1;
  if (variant == 'E' && current->real_ms) {
    struct timespec t = ts(current->real_ms * MS);
    syscall(SYS_nanosleep, &t, NULL);
    event_at = now(CLOCK_MONOTONIC);
  } else if (variant == 'E') {
    sleep_ms(e_ms);
    event_at = now(CLOCK_MONOTONIC);
  } else {
    while (!done) sleep_ms(1);
  }
  if (current->fire) current->fire();
  return NULL;
}

static int fds[2], ep, lfd, cfd;
static char buf[1 << 16];

/* Readiness waits on a pipe: the helper writes a byte. */
static void pipe_setup(void) {
  if (pipe(fds) != 0) abort();
  ep = epoll_create1(0);
  struct epoll_event e = { .events = EPOLLIN, .data.fd = fds[0] };
  epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &e);
}
static void pipe_fire(void) { if (write(fds[1], "x", 1) != 1) abort(); }
static void pipe_cleanup(void) { close(fds[0]); close(fds[1]); close(ep); }
static int ready(int r) { return r > 0 ? 1 : r == 0 ? 0 : -1; }

static int w_poll(long long d, long long *x) { (void)x; struct pollfd p = { fds[0], POLLIN, 0 }; return ready(poll(&p, 1, (int)(d / MS))); }
static int w_poll_chk(long long d, long long *x) { (void)x; struct pollfd p[1] = { { fds[0], POLLIN, 0 } }; return ready(__poll_chk(p, 1, (int)(d / MS), sizeof p)); }
static int w_ppoll(long long d, long long *x) { (void)x; struct pollfd p = { fds[0], POLLIN, 0 }; struct timespec t = ts(d); return ready(ppoll(&p, 1, &t, NULL)); }
/* select: the set must still hold the pipe when it becomes readable after retries; extra = the
   timeout select wrote back. */
static int w_select(long long d, long long *x) {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  struct timeval t = { d / 1000000000LL, d % 1000000000LL / 1000 };
  int k = select(fds[0] + 1, &r, NULL, NULL, &t);
  *x = t.tv_sec * 1000000000LL + t.tv_usec * 1000LL;
  if (k > 0 && !FD_ISSET(fds[0], &r)) { errno = EBADE; return -1; }
  return ready(k);
}
static int w_pselect(long long d, long long *x) {
  (void)x;
  fd_set r;
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  struct timespec t = ts(d);
  int k = pselect(fds[0] + 1, &r, NULL, NULL, &t, NULL);
  if (k > 0 && !FD_ISSET(fds[0], &r)) { errno = EBADE; return -1; }
  return ready(k);
}
static int w_epoll_wait(long long d, long long *x) { (void)x; struct epoll_event e; return ready(epoll_wait(ep, &e, 1, (int)(d / MS))); }
static int w_epoll_pwait(long long d, long long *x) { (void)x; struct epoll_event e; return ready(epoll_pwait(ep, &e, 1, (int)(d / MS), NULL)); }
static int w_epoll_pwait2(long long d, long long *x) { (void)x; struct epoll_event e; struct timespec t = ts(d); return ready(epoll_pwait2(ep, &e, 1, &t, NULL)); }

/* Locks the helper holds until the event. */
static pthread_mutex_t mutex;
static pthread_rwlock_t rwlock;
static void mutex_setup(void) { pthread_mutex_init(&mutex, NULL); }
static void mutex_hold(void) { pthread_mutex_lock(&mutex); }
static void mutex_fire(void) { pthread_mutex_unlock(&mutex); }
static int locked(int r) { if (r == 0) { return 1; } if (r == ETIMEDOUT) return 0; errno = r; return -1; }
static int w_mutex_timedlock(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); int r = pthread_mutex_timedlock(&mutex, &t); if (!r) pthread_mutex_unlock(&mutex); return locked(r); }
static int w_mutex_clocklock_mono(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_MONOTONIC, d); int r = pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &t); if (!r) pthread_mutex_unlock(&mutex); return locked(r); }
static int w_mutex_clocklock_real(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); int r = pthread_mutex_clocklock(&mutex, CLOCK_REALTIME, &t); if (!r) pthread_mutex_unlock(&mutex); return locked(r); }
static void rw_setup(void) { pthread_rwlock_init(&rwlock, NULL); }
static void rw_hold_write(void) { pthread_rwlock_wrlock(&rwlock); }
static void rw_hold_read(void) { pthread_rwlock_rdlock(&rwlock); }
static void rw_fire(void) { pthread_rwlock_unlock(&rwlock); }
static int rw_done(int r) { if (!r) pthread_rwlock_unlock(&rwlock); return locked(r); }
static int w_rwlock_timedrdlock(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); return rw_done(pthread_rwlock_timedrdlock(&rwlock, &t)); }
static int w_rwlock_timedwrlock(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); return rw_done(pthread_rwlock_timedwrlock(&rwlock, &t)); }
static int w_rwlock_clockrdlock(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_MONOTONIC, d); return rw_done(pthread_rwlock_clockrdlock(&rwlock, CLOCK_MONOTONIC, &t)); }
static int w_rwlock_clockwrlock(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_MONOTONIC, d); return rw_done(pthread_rwlock_clockwrlock(&rwlock, CLOCK_MONOTONIC, &t)); }

/* Semaphores the helper posts. */
static sem_t sem;
static void sem_setup(void) { sem_init(&sem, 0, 0); }
static void sem_fire(void) { sem_post(&sem); }
static void sem_cleanup(void) { sem_destroy(&sem); }
static int waited(int r) { if (r == 0) return 1; return errno == ETIMEDOUT ? 0 : -1; }
static int w_sem_timedwait(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); return waited(sem_timedwait(&sem, &t)); }
static int w_sem_clockwait_mono(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_MONOTONIC, d); return waited(sem_clockwait(&sem, CLOCK_MONOTONIC, &t)); }
static int w_sem_clockwait_real(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); return waited(sem_clockwait(&sem, CLOCK_REALTIME, &t)); }

/* Joins: the helper itself is the thread, and its end the event. */
static int join_result(int r) { if (r == 0) joined = 1; return locked(r); }
static int w_timedjoin(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); return join_result(pthread_timedjoin_np(helper, NULL, &t)); }
static int w_clockjoin(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_MONOTONIC, d); return join_result(pthread_clockjoin_np(helper, NULL, CLOCK_MONOTONIC, &t)); }

/* sigtimedwait: SIGUSR1, blocked in every thread, sent to the main thread. */
static void sig_setup(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
}
static void sig_fire(void) { if (variant == 'E') pthread_kill(main_thread, SIGUSR1); }
static int w_sigtimedwait(long long d, long long *x) {
  (void)x;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  struct timespec t = ts(d);
  int r = sigtimedwait(&s, NULL, &t);
  return r == SIGUSR1 ? 1 : r < 0 && errno == EAGAIN ? 0 : -1;
}

/* Message queues: receive from an empty queue (the helper sends), send into a full one (the helper
   receives). */
static mqd_t mq;
static void mq_setup(void) {
  char name[64];
  snprintf(name, sizeof name, "/livesim-waits-%d", (int)getpid());
  struct mq_attr a = { .mq_maxmsg = 1, .mq_msgsize = 16 };
  mq = mq_open(name, O_CREAT | O_RDWR, 0600, &a);
  if (mq == (mqd_t)-1) abort();
  mq_unlink(name);
}
static void mq_setup_full(void) { mq_setup(); mq_send(mq, "full", 4, 0); }
static void mq_fire_send(void) { mq_send(mq, "x", 1, 0); }
static void mq_fire_receive(void) { char m[16]; mq_receive(mq, m, sizeof m, NULL); }
static void mq_cleanup(void) { mq_close(mq); }
static int w_mq_timedreceive(long long d, long long *x) { (void)x; char m[16]; struct timespec t = at(CLOCK_REALTIME, d); return waited(mq_timedreceive(mq, m, sizeof m, NULL, &t) >= 0 ? 0 : -1); }
static int w_mq_timedsend(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_REALTIME, d); return waited(mq_timedsend(mq, "y", 1, 0, &t)); }

/* Futexes through syscall(): a word the helper changes and wakes; a PI lock the helper holds. */
static int word;
static void futex_setup(void) { word = 0; }
static void futex_fire(void) { __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST); syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
static int woke(long r) { if (r == 0 || (r < 0 && errno == EAGAIN)) return 1; return r < 0 && errno == ETIMEDOUT ? 0 : -1; }
static int w_futex_wait(long long d, long long *x) { (void)x; struct timespec t = ts(d); return woke(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &t, NULL, 0)); }
static int w_futex_bitset_mono(long long d, long long *x) { (void)x; struct timespec t = at(CLOCK_MONOTONIC, d); return woke(syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &t, NULL, FUTEX_BITSET_MATCH_ANY)); }
static int w_futex_bitset_real(long long d, long long *x) {
  (void)x;
  struct timespec t = at(CLOCK_REALTIME, d);
  return woke(syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &t, NULL, FUTEX_BITSET_MATCH_ANY));
}
static void pi_hold(void) { word = (int)gettid(); }
static void pi_unlock(void) {
  int me = (int)gettid();
  if (!__atomic_compare_exchange_n(&word, &me, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) syscall(SYS_futex, &word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0);
}
static int w_futex_lock_pi(long long d, long long *x) {
  (void)x;
  struct timespec t = at(CLOCK_REALTIME, d);
  long r = syscall(SYS_futex, &word, FUTEX_LOCK_PI_PRIVATE, 0, &t, NULL, 0);
  if (r == 0) pi_unlock();
  return r == 0 ? 1 : errno == ETIMEDOUT ? 0 : -1;
}

/* Sockets with SO_RCVTIMEO: a Unix stream pair whose other end the helper writes to; a TCP listener
   the helper connects to. extra = what getsockopt reports. */
static void pair_setup(void) { if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) abort(); }
static void pair_cleanup(void) { close(fds[0]); close(fds[1]); }
static void pair_fire(void) { if (variant == 'E' && write(fds[1], "x", 1) != 1) abort(); }
static long long set_timeo(int fd, int opt, long long d) {
  struct timeval t = { d / 1000000000LL, d % 1000000000LL / 1000 };
  if (setsockopt(fd, SOL_SOCKET, opt, &t, sizeof t) != 0) abort();
  socklen_t len = sizeof t;
  if (getsockopt(fd, SOL_SOCKET, opt, &t, &len) != 0) abort();
  return t.tv_sec * 1000000000LL + t.tv_usec * 1000LL;
}
static int got(ssize_t r) { return r > 0 ? 1 : r < 0 && (errno == EAGAIN || errno == EINPROGRESS) ? 0 : -1; }
static int w_read(long long d, long long *x) { *x = set_timeo(fds[0], SO_RCVTIMEO, d); return got(read(fds[0], buf, 16)); }
static int w_recv(long long d, long long *x) { *x = set_timeo(fds[0], SO_RCVTIMEO, d); return got(recv(fds[0], buf, 16, 0)); }
static int w_recvfrom(long long d, long long *x) { *x = set_timeo(fds[0], SO_RCVTIMEO, d); return got(recvfrom(fds[0], buf, 16, 0, NULL, NULL)); }
static int w_recvmsg(long long d, long long *x) {
  *x = set_timeo(fds[0], SO_RCVTIMEO, d);
  struct iovec v = { buf, 16 };
  struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
  return got(recvmsg(fds[0], &m, 0));
}
static int port;
static void listen_setup(void) {
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4) != 0 || getsockname(lfd, (struct sockaddr *)&a, &len) != 0) abort();
  port = ntohs(a.sin_port);
}
static void connect_fire(void) {
  if (variant != 'E') return;
  cfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (connect(cfd, (struct sockaddr *)&a, sizeof a) != 0) abort();
}
static void listen_cleanup(void) { close(lfd); if (variant == 'E') close(cfd); }
static int accepted(int c) { if (c >= 0) close(c); return got(c >= 0 ? 1 : -1); }
static int w_accept(long long d, long long *x) { *x = set_timeo(lfd, SO_RCVTIMEO, d); return accepted(accept(lfd, NULL, NULL)); }
static int w_accept4(long long d, long long *x) { *x = set_timeo(lfd, SO_RCVTIMEO, d); return accepted(accept4(lfd, NULL, NULL, SOCK_CLOEXEC)); }

/* Sockets with SO_SNDTIMEO: a Unix stream pair whose send buffer is full; the helper drains it. */
static void full_setup(void) {
  pair_setup();
  int small = 4096;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  while (send(fds[0], buf, sizeof buf, MSG_DONTWAIT) > 0 || send(fds[0], buf, 1, MSG_DONTWAIT) > 0) {}
}
static void drain(void) { while (recv(fds[1], buf, sizeof buf, MSG_DONTWAIT) > 0) {} }
static int w_write(long long d, long long *x) { *x = set_timeo(fds[0], SO_SNDTIMEO, d); return got(write(fds[0], buf, 1)); }
static int w_send(long long d, long long *x) { *x = set_timeo(fds[0], SO_SNDTIMEO, d); return got(send(fds[0], buf, 1, 0)); }
static int w_sendto(long long d, long long *x) { *x = set_timeo(fds[0], SO_SNDTIMEO, d); return got(sendto(fds[0], buf, 1, 0, NULL, 0)); }
static int w_sendmsg(long long d, long long *x) {
  *x = set_timeo(fds[0], SO_SNDTIMEO, d);
  struct iovec v = { buf, 1 };
  struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
  return got(sendmsg(fds[0], &m, 0));
}
static int w_writev(long long d, long long *x) { *x = set_timeo(fds[0], SO_SNDTIMEO, d); struct iovec v = { buf, 1 }; return got(writev(fds[0], &v, 1)); }

/* connect with SO_SNDTIMEO to a Unix listener whose queue is full (backlog 0, one connection
   waiting); the helper accepts that one, which lets the connect in. */
static char unix_path[108];
static int waiting;
static void unix_setup(void) {
  snprintf(unix_path, sizeof unix_path, "/tmp/livesim-waits-%d.sock", (int)getpid());
  unlink(unix_path);
  lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strcpy(a.sun_path, unix_path);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 0) != 0) abort();
  waiting = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(waiting, (struct sockaddr *)&a, sizeof a) != 0) abort();
  cfd = socket(AF_UNIX, SOCK_STREAM, 0);
}
static void unix_fire(void) { int c = accept(lfd, NULL, NULL); if (c >= 0) close(c); }
static void unix_cleanup(void) { close(lfd); close(waiting); close(cfd); unlink(unix_path); }
static int w_connect(long long d, long long *x) {
  *x = set_timeo(cfd, SO_SNDTIMEO, d);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strcpy(a.sun_path, unix_path);
  return got(connect(cfd, (struct sockaddr *)&a, sizeof a) == 0 ? 1 : -1);
}

static const struct probe probes[] = {
  { "poll", pipe_setup, NULL, w_poll, pipe_fire, pipe_cleanup },
  { "__poll_chk", pipe_setup, NULL, w_poll_chk, pipe_fire, pipe_cleanup },
  { "ppoll", pipe_setup, NULL, w_ppoll, pipe_fire, pipe_cleanup },
  { "select", pipe_setup, NULL, w_select, pipe_fire, pipe_cleanup },
  { "pselect", pipe_setup, NULL, w_pselect, pipe_fire, pipe_cleanup },
  { "epoll_wait", pipe_setup, NULL, w_epoll_wait, pipe_fire, pipe_cleanup },
  { "epoll_pwait", pipe_setup, NULL, w_epoll_pwait, pipe_fire, pipe_cleanup },
  { "epoll_pwait2", pipe_setup, NULL, w_epoll_pwait2, pipe_fire, pipe_cleanup },
  { "pthread_mutex_timedlock", mutex_setup, mutex_hold, w_mutex_timedlock, mutex_fire, NULL },
  { "pthread_mutex_clocklock(MONOTONIC)", mutex_setup, mutex_hold, w_mutex_clocklock_mono, mutex_fire, NULL },
  { "pthread_mutex_clocklock(REALTIME)", mutex_setup, mutex_hold, w_mutex_clocklock_real, mutex_fire, NULL },
  { "pthread_rwlock_timedrdlock", rw_setup, rw_hold_write, w_rwlock_timedrdlock, rw_fire, NULL },
  { "pthread_rwlock_timedwrlock", rw_setup, rw_hold_read, w_rwlock_timedwrlock, rw_fire, NULL },
  { "pthread_rwlock_clockrdlock", rw_setup, rw_hold_write, w_rwlock_clockrdlock, rw_fire, NULL },
  { "pthread_rwlock_clockwrlock", rw_setup, rw_hold_read, w_rwlock_clockwrlock, rw_fire, NULL },
  { "sem_timedwait", sem_setup, NULL, w_sem_timedwait, sem_fire, sem_cleanup },
  { "sem_clockwait(MONOTONIC)", sem_setup, NULL, w_sem_clockwait_mono, sem_fire, sem_cleanup },
  { "sem_clockwait(REALTIME)", sem_setup, NULL, w_sem_clockwait_real, sem_fire, sem_cleanup },
  { "pthread_timedjoin_np", NULL, NULL, w_timedjoin, NULL, NULL },
  { "pthread_clockjoin_np", NULL, NULL, w_clockjoin, NULL, NULL },
  { "sigtimedwait", sig_setup, NULL, w_sigtimedwait, sig_fire, NULL },
  { "mq_timedreceive", mq_setup, NULL, w_mq_timedreceive, mq_fire_send, mq_cleanup },
  { "mq_timedsend", mq_setup_full, NULL, w_mq_timedsend, mq_fire_receive, mq_cleanup },
  { "futex(FUTEX_WAIT)", futex_setup, NULL, w_futex_wait, futex_fire, NULL },
  { "futex(FUTEX_WAIT_BITSET,MONOTONIC)", futex_setup, NULL, w_futex_bitset_mono, futex_fire, NULL },
  { "futex(FUTEX_WAIT_BITSET,REALTIME)", futex_setup, NULL, w_futex_bitset_real, futex_fire, NULL },
  { "futex(FUTEX_LOCK_PI)", futex_setup, pi_hold, w_futex_lock_pi, pi_unlock, NULL },
  { "read(SO_RCVTIMEO)", pair_setup, NULL, w_read, pair_fire, pair_cleanup },
  { "recv(SO_RCVTIMEO)", pair_setup, NULL, w_recv, pair_fire, pair_cleanup },
  { "recvfrom(SO_RCVTIMEO)", pair_setup, NULL, w_recvfrom, pair_fire, pair_cleanup },
  { "recvmsg(SO_RCVTIMEO)", pair_setup, NULL, w_recvmsg, pair_fire, pair_cleanup },
  { "accept(SO_RCVTIMEO)", listen_setup, NULL, w_accept, connect_fire, listen_cleanup },
  { "accept4(SO_RCVTIMEO)", listen_setup, NULL, w_accept4, connect_fire, listen_cleanup },
  { "write(SO_SNDTIMEO)", full_setup, NULL, w_write, drain, pair_cleanup },
  { "send(SO_SNDTIMEO)", full_setup, NULL, w_send, drain, pair_cleanup },
  { "sendto(SO_SNDTIMEO)", full_setup, NULL, w_sendto, drain, pair_cleanup },
  { "sendmsg(SO_SNDTIMEO)", full_setup, NULL, w_sendmsg, drain, pair_cleanup },
  { "writev(SO_SNDTIMEO)", full_setup, NULL, w_writev, drain, pair_cleanup },
  { "connect(SO_SNDTIMEO)", unix_setup, NULL, w_connect, unix_fire, unix_cleanup },
  { "select(real event)", pipe_setup, NULL, w_select, pipe_fire, pipe_cleanup, 100 },
  { "pselect(real event)", pipe_setup, NULL, w_pselect, pipe_fire, pipe_cleanup, 100 },
};

static void run(const struct probe *p, char v, long long d_ms) {
  current = p;
  variant = v;
  held = done = joined = 0;
  event_at = 0;
  if (p->setup) p->setup();
  if (pthread_create(&helper, NULL, helper_main, NULL) != 0) abort();
  while (!held) sched_yield();
  long long extra = 0;
  long long start = now(CLOCK_MONOTONIC);
  errno = 0;
  int r = p->wait(d_ms * MS, &extra);
  long long end = now(CLOCK_MONOTONIC);
  int e = errno;
  done = 1;
  if (!joined) pthread_join(helper, NULL);
  if (p->cleanup) p->cleanup();
  if (r < 0) printf("R %s %c %lld %lld %lld error:%s %lld\n", p->name, v, start, end, event_at, strerrorname_np(e), extra);
  else printf("R %s %c %lld %lld %lld %s %lld\n", p->name, v, start, end, event_at, r ? "event" : "timeout", extra);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long long d_ms = argc > 1 ? atoll(argv[1]) : 20;
  e_ms = argc > 2 ? atoll(argv[2]) : 8;
  main_thread = pthread_self();
  size_t n = sizeof probes / sizeof *probes;
  for (size_t i = 0; i < n; i++) {
    int wanted = argc <= 3 && !probes[i].real_ms, only_e = 0;
    for (int a = 3; a < argc; a++) {
      wanted |= strcmp(argv[a], probes[i].name) == 0;
      if (strncmp(argv[a], "E:", 2) == 0 && strcmp(argv[a] + 2, probes[i].name) == 0) wanted = only_e = 1;
    }
    if (!wanted) continue;
    if (!only_e) run(&probes[i], 'T', d_ms);
    run(&probes[i], 'E', d_ms);
  }
  printf("done\n");
  return 0;
}

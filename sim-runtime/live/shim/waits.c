/* Timeouts of every wait in virtual time (docs/live.md, "The shim"). A timeout is a kernel timer on
   the real clock: frozen in the middle, it expires during the freeze and returns at the thaw, before
   its virtual deadline; and a program that runs slower than the wall (rate < 1) would see it fire
   early even without a freeze. So every timeout becomes a virtual deadline (now on the program's
   clock + a relative timeout, or the absolute date it gave: on CLOCK_REALTIME and CLOCK_MONOTONIC
   both are virtual epoch dates), the real wait is for what is left of it at the clock's rate
   (real_wait_ns), and a wait that times out while virtual time is left waits again. An event or an
   error returns at once. So a timeout never fires before its virtual deadline, and at most one
   quantum after it (when the cell is frozen as it comes).
   The real waits call glibc's own functions (libc_sym), not libfaketime's, which convert timeouts
   with a stale timestamp file and divide them by its rate. Calls the shim does not take over (no
   timeout, a zero timeout, no fast clock, a call made while the shim initialises or reads the clock)
   pass through as they did before this file, with the block accounting of block.c. */
#include "shim.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* The shim takes a wait over: the fast clock is there, and this is the program's call, not one made
   while the shim initialises or reads the clock. */
static inline int virtual_waits(void) { return state && ready && !in_clock; }

/* A relative timeout as a virtual deadline: now on the program's clock, plus the timeout. */
static long long deadline_after(long long ns) {
  wait_begins();
  return vnow(CLOCK_MONOTONIC) + ns;
}

/* A relative timeout the shim takes over: valid, and short of "forever" (a century: a deadline past
   that would overflow the virtual epoch ns). */
#define MAX_TIMEOUT_S 3000000000LL
static int valid_ts(const struct timespec *t) { return t->tv_sec >= 0 && t->tv_sec < MAX_TIMEOUT_S && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L; }

/* An EINTR of the cell's machinery, not of a signal the program handles: no handler ran in this
   thread since `handled` (handlers.c). The cgroup freezer and signals mode's stop and continue
   interrupt epoll waits and socket calls with a timeout that way; the wait goes on. */
static int cell_eintr(long r, unsigned long handled) { return r < 0 && errno == EINTR && handlers_run == handled; }

/* glibc's definition of a call (libc.so.6 since glibc 2.34; before, the pthread, semaphore and
   message queue calls were in libpthread and librt), never libfaketime's. */
static void *glibc_sym(const char *name) {
  static const char *const libs[] = { "libpthread.so.0", "librt.so.1" };
  void *f = libc_sym(name);
  for (size_t i = 0; !f && i < sizeof libs / sizeof *libs; i++) {
    void *lib = dlopen(libs[i], RTLD_NOW | RTLD_NOLOAD);
    if (lib) f = dlsym(lib, name);
  }
  return f;
}

/* ---- poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2 ---- */

typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
typedef int (*poll_chk_fn)(struct pollfd *, nfds_t, int, size_t);
typedef int (*ppoll_chk_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
typedef int (*pselect_fn)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*epoll_pwait2_fn)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);

/* The definition a call the shim does not take over goes to: the next one (libfaketime's poll,
   select and epoll waits divide a timeout by its rate, which is what a timeout got without the fast
   clock), or glibc's for a call that does not wait (a zero timeout), which libfaketime's would only
   pass on: a poll that does not wait is an event loop's hot path. */
static void *passing(void **next, void **direct, const char *name, int waits) {
  if (!*next) *next = dlsym(RTLD_NEXT, name);
  if (waits) return *next;
  if (!*direct) *direct = glibc_sym(name);
  return *direct ? *direct : *next;
}

static ppoll_fn glibc_ppoll(void) {
  static ppoll_fn f;
  if (!f) f = (ppoll_fn)glibc_sym("ppoll");
  return f;
}

/* poll until a virtual deadline: ppoll (ns precision) for what is left of it, and again while it
   times out with virtual time left. */
static int vpoll(struct pollfd *fds, nfds_t n, const sigset_t *mask, long long deadline) {
  ppoll_fn wait = glibc_ppoll();
  long long real = real_wait_ns(deadline);
  before_block();
  for (;;) {
    struct timespec t = ts_of(real);
    int slot = wait_register(deadline, real);
    int r = after_block(wait(fds, n, &t, mask), 1);
    wait_clear(slot, deadline);
    if (r != 0) return r;
    real = real_wait_ns(deadline);
    if (real == 0) return 0;
    block_begin();
  }
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  static void *next, *direct;
  if (timeout > 0 && virtual_waits() && glibc_ppoll()) return vpoll(fds, n, NULL, deadline_after(timeout * 1000000LL));
  poll_fn pass = (poll_fn)passing(&next, &direct, "poll", timeout != 0);
  if (timeout != 0) before_block();
  return after_block(pass(fds, n, timeout), timeout != 0);
}

SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask) {
  static void *next, *direct;
  int blocking = !t || t->tv_sec != 0 || t->tv_nsec != 0;
  if (t && blocking && valid_ts(t) && virtual_waits() && glibc_ppoll()) return vpoll(fds, n, mask, deadline_after(ns_of(t)));
  ppoll_fn pass = (ppoll_fn)passing(&next, &direct, "ppoll", blocking);
  if (blocking) before_block();
  return after_block(pass(fds, n, t, mask), blocking);
}

/* The fortified entries (_FORTIFY_SOURCE with a known array size: memcached calls __poll_chk): glibc's
   own checks the size (and aborts), the wait is the wrapper's. */
SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen) {
  static poll_chk_fn next;
  if (!next) next = (poll_chk_fn)dlsym(RTLD_NEXT, "__poll_chk");
  if (fdslen / sizeof *fds < n) return next(fds, n, timeout, fdslen);
  return poll(fds, n, timeout);
}

SHIM_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask, size_t fdslen) {
  static ppoll_chk_fn next;
  if (!next) next = (ppoll_chk_fn)dlsym(RTLD_NEXT, "__ppoll_chk");
  if (fdslen / sizeof *fds < n) return next(fds, n, t, mask, fdslen);
  return ppoll(fds, n, t, mask);
}

/* select and pselect: the kernel clears the fd_sets of a wait that times out, so the sets the
   program gave are kept and put back before each retry. Up to SELECT_FDS descriptors (the sets are
   copied on the stack); a select on more passes through. */
#define SELECT_FDS 8192
#define SELECT_WORDS (SELECT_FDS / (8 * (int)sizeof(unsigned long)))

struct fd_sets {
  fd_set *set[3];
  size_t bytes;
  unsigned long saved[3][SELECT_WORDS];
};

static void save_sets(struct fd_sets *s, int n) {
  s->bytes = ((size_t)n + 8 * sizeof(unsigned long) - 1) / (8 * sizeof(unsigned long)) * sizeof(unsigned long);
  for (int i = 0; i < 3; i++)
    if (s->set[i]) memcpy(s->saved[i], s->set[i], s->bytes);
}

static void restore_sets(const struct fd_sets *s) {
  for (int i = 0; i < 3; i++)
    if (s->set[i]) memcpy(s->set[i], s->saved[i], s->bytes);
}

static int vselect(int n, fd_set *r, fd_set *w, fd_set *e, const sigset_t *mask, long long deadline) {
  static pselect_fn wait;
  if (!wait) wait = (pselect_fn)glibc_sym("pselect");
  struct fd_sets sets = { { r, w, e }, 0, { { 0 } } };
  save_sets(&sets, n);
  long long real = real_wait_ns(deadline);
  before_block();
  for (;;) {
    struct timespec t = ts_of(real);
    int slot = wait_register(deadline, real);
    int k = after_block(wait(n, r, w, e, &t, mask), 1);
    wait_clear(slot, deadline);
    if (k != 0) return k;
    real = real_wait_ns(deadline);
    if (real == 0) return 0;
    restore_sets(&sets);
    block_begin();
  }
}

static int select_taken(int n, const struct timespec *t) {
  return n >= 0 && n <= SELECT_FDS && virtual_waits() && (t->tv_sec != 0 || t->tv_nsec != 0) && valid_ts(t);
}

SHIM_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
  static void *next, *direct;
  /* Linux takes any tv_usec >= 0 (it carries whole seconds over). */
  struct timespec t = { -1, 0 };
  if (tv && tv->tv_sec >= 0 && tv->tv_usec >= 0) t = (struct timespec){ tv->tv_sec + tv->tv_usec / 1000000, tv->tv_usec % 1000000 * 1000 };
  if (tv && select_taken(n, &t)) {
    long long deadline = deadline_after(ns_of(&t));
    int k = vselect(n, r, w, e, NULL, deadline);
    /* Linux writes back the time not slept (0 on a timeout); on the program's clock here. */
    int err = errno;
    long long left = k == 0 ? 0 : deadline - vnow(CLOCK_MONOTONIC);
    if (left < 0) left = 0;
    tv->tv_sec = left / 1000000000LL;
    tv->tv_usec = left % 1000000000LL / 1000;
    errno = err;
    return k;
  }
  int blocking = !tv || tv->tv_sec != 0 || tv->tv_usec != 0;
  select_fn pass = (select_fn)passing(&next, &direct, "select", blocking);
  if (blocking) before_block();
  return after_block(pass(n, r, w, e, tv), blocking);
}

SHIM_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *mask) {
  static void *next, *direct;
  if (t && select_taken(n, t)) return vselect(n, r, w, e, mask, deadline_after(ns_of(t)));
  int blocking = !t || t->tv_sec != 0 || t->tv_nsec != 0;
  pselect_fn pass = (pselect_fn)passing(&next, &direct, "pselect", blocking);
  if (blocking) before_block();
  return after_block(pass(n, r, w, e, t, mask), blocking);
}

/* epoll: epoll_pwait2 (Linux 5.11, glibc 2.35) waits with ns precision; without it, epoll_pwait
   with the wait in ms, rounded up (the retry loop ends the wait on the virtual clock anyway). */
static int epoll_real_wait(int epfd, struct epoll_event *ev, int max, long long real, const sigset_t *mask) {
  static epoll_pwait2_fn pwait2;
  static epoll_pwait_fn pwait;
  static int no_pwait2;
  if (!pwait2 && !no_pwait2) {
    pwait2 = (epoll_pwait2_fn)glibc_sym("epoll_pwait2");
    no_pwait2 = !pwait2;
  }
  if (!no_pwait2) {
    struct timespec t = ts_of(real);
    int r = pwait2(epfd, ev, max, &t, mask);
    if (r >= 0 || errno != ENOSYS) return r;
    no_pwait2 = 1;
  }
  if (!pwait) pwait = (epoll_pwait_fn)glibc_sym("epoll_pwait");
  long long ms = (real + 999999) / 1000000;
  return pwait(epfd, ev, max, ms > INT_MAX ? INT_MAX : (int)ms, mask);
}

static int vepoll(int epfd, struct epoll_event *ev, int max, const sigset_t *mask, long long deadline) {
  long long real = real_wait_ns(deadline);
  unsigned long handled = handlers_run;
  before_block();
  for (;;) {
    int slot = wait_register(deadline, real);
    int r = after_block(epoll_real_wait(epfd, ev, max, real, mask), 1);
    wait_clear(slot, deadline);
    if (r != 0 && !cell_eintr(r, handled)) return r;
    real = real_wait_ns(deadline);
    if (real == 0) return 0;
    block_begin();
  }
}

static int epoll_taken(void) {
  static void *pwait;
  if (!pwait) pwait = glibc_sym("epoll_pwait");
  return virtual_waits() && pwait;
}

SHIM_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
  static void *next, *direct;
  if (timeout > 0 && epoll_taken()) return vepoll(epfd, ev, max, NULL, deadline_after(timeout * 1000000LL));
  epoll_wait_fn pass = (epoll_wait_fn)passing(&next, &direct, "epoll_wait", timeout != 0);
  if (timeout != 0) before_block();
  return after_block(pass(epfd, ev, max, timeout), timeout != 0);
}

SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
  static void *next, *direct;
  if (timeout > 0 && epoll_taken()) return vepoll(epfd, ev, max, mask, deadline_after(timeout * 1000000LL));
  epoll_pwait_fn pass = (epoll_pwait_fn)passing(&next, &direct, "epoll_pwait", timeout != 0);
  if (timeout != 0) before_block();
  return after_block(pass(epfd, ev, max, timeout, mask), timeout != 0);
}

SHIM_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *t, const sigset_t *mask) {
  static epoll_pwait2_fn next;
  if (!next) next = (epoll_pwait2_fn)dlsym(RTLD_NEXT, "epoll_pwait2");
  if (!next) {
    errno = ENOSYS;
    return -1;
  }
  int blocking = !t || t->tv_sec != 0 || t->tv_nsec != 0;
  if (t && blocking && valid_ts(t) && epoll_taken()) return vepoll(epfd, ev, max, mask, deadline_after(ns_of(t)));
  if (blocking) before_block();
  return after_block(next(epfd, ev, max, t, mask), blocking);
}

/* ---- Absolute deadlines: timed locks, semaphores, joins, message queues ---- */

/* An absolute deadline the shim takes over: valid, on a clock whose dates are virtual. */
static int virtual_abs(clockid_t clock, const struct timespec *t) {
  return (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC) && t && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L && virtual_waits();
}

/* The real absolute time on `clock` (the real clock glibc's call waits on) to wait until for what is
   left of a virtual deadline; returns the real ns to it. Returns 0 when the deadline has come: *real
   is then now, past by the time the call looks, so glibc tries once without waiting (a lock that can
   be taken is taken, as POSIX asks of a timed lock whose deadline has passed). */
static long long real_until(long long deadline, clockid_t clock, struct timespec *real) {
  long long ns = real_wait_ns(deadline);
  struct timespec now;
  libc_clock_gettime(clock, &now);
  *real = ts_of(ns_of(&now) + ns);
  return ns;
}

/* One try of a timed call with a real absolute deadline: 0, or its error number (ETIMEDOUT: its
   deadline came). */
typedef int (*abs_try)(void *call, clockid_t clock, const struct timespec *real);

/* A call with a virtual absolute deadline: tries until real deadlines on `clock`, again while one
   times out with virtual time left. Returns the last try's 0 or error number. */
static int wait_until(long long deadline, clockid_t clock, abs_try try, void *call) {
  wait_begins();
  before_block();
  for (;;) {
    struct timespec real;
    long long ns = real_until(deadline, clock, &real);
    int slot = wait_register(deadline, ns);
    int r = after_block(try(call, clock, &real), 1);
    wait_clear(slot, deadline);
    if (r != ETIMEDOUT || ns == 0 || virtual_left(deadline) == 0) return r;
    block_begin();
  }
}

/* Each call through its clock variant where the program named a clock, else its REALTIME one:
   glibc before 2.30/2.31 has only the latter. */
typedef int (*obj_timed_fn)(void *, const struct timespec *);
typedef int (*obj_clock_fn)(void *, clockid_t, const struct timespec *);
struct obj_call {
  obj_timed_fn timed;
  obj_clock_fn clocked;
  void *obj;
};

static int try_obj(void *p, clockid_t clock, const struct timespec *real) {
  struct obj_call *c = p;
  return c->clocked ? c->clocked(c->obj, clock, real) : c->timed(c->obj, real);
}

/* A pthread call on obj with an absolute deadline (0 or an error number, as pthread calls return). */
static int obj_wait(obj_timed_fn timed, obj_clock_fn clocked, void *obj, clockid_t clock, const struct timespec *abstime) {
  struct obj_call c = { timed, clocked, obj };
  return wait_until(ns_of(abstime), clock, try_obj, &c);
}

/* Resolves glibc's and the next definition of a call once. */
#define RESOLVE(glibc_var, next_var, name)                                   \
  do {                                                                       \
    if (!glibc_var) glibc_var = (__typeof__(glibc_var))glibc_sym(name);      \
    if (!next_var) next_var = (__typeof__(next_var))dlsym(RTLD_NEXT, name);  \
  } while (0)

/* The REALTIME variant (…timed…) of a pthread call on one object. */
#define TIMED_OBJ_CALL(fn, type)                                                                          \
  SHIM_EXPORT int fn(type *obj, const struct timespec *abstime) {                                          \
    static obj_timed_fn glibc, next;                                                                     \
    RESOLVE(glibc, next, #fn);                                                                           \
    if (!glibc || !virtual_abs(CLOCK_REALTIME, abstime)) return next ? next(obj, abstime) : ENOSYS;      \
    return obj_wait(glibc, NULL, obj, CLOCK_REALTIME, abstime);                                          \
  }

/* The clock variant (…clock…, glibc 2.30+) of a pthread call on one object. */
#define CLOCK_OBJ_CALL(fn, type)                                                                           \
  SHIM_EXPORT int fn(type *obj, clockid_t clock, const struct timespec *abstime) {                         \
    static obj_clock_fn glibc, next;                                                                      \
    RESOLVE(glibc, next, #fn);                                                                            \
    if (!glibc || !virtual_abs(clock, abstime)) return next ? next(obj, clock, abstime) : ENOSYS;         \
    return obj_wait(NULL, glibc, obj, clock, abstime);                                                    \
  }

TIMED_OBJ_CALL(pthread_mutex_timedlock, pthread_mutex_t)
CLOCK_OBJ_CALL(pthread_mutex_clocklock, pthread_mutex_t)
TIMED_OBJ_CALL(pthread_rwlock_timedrdlock, pthread_rwlock_t)
TIMED_OBJ_CALL(pthread_rwlock_timedwrlock, pthread_rwlock_t)
CLOCK_OBJ_CALL(pthread_rwlock_clockrdlock, pthread_rwlock_t)
CLOCK_OBJ_CALL(pthread_rwlock_clockwrlock, pthread_rwlock_t)

/* Semaphores return -1 and set errno: the same loop on the error number. */
typedef int (*sem_timed_fn)(sem_t *, const struct timespec *);
typedef int (*sem_clock_fn)(sem_t *, clockid_t, const struct timespec *);

static int sem_result(int e) {
  if (e == 0) return 0;
  errno = e;
  return -1;
}

static int try_sem(void *p, clockid_t clock, const struct timespec *real) {
  struct obj_call *c = p;
  int r = c->clocked ? c->clocked(c->obj, clock, real) : c->timed(c->obj, real);
  return r == 0 ? 0 : errno;
}

SHIM_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abstime) {
  static sem_timed_fn glibc, next;
  RESOLVE(glibc, next, "sem_timedwait");
  if (!glibc || !virtual_abs(CLOCK_REALTIME, abstime)) return next ? next(sem, abstime) : sem_result(ENOSYS);
  struct obj_call c = { (obj_timed_fn)glibc, NULL, sem };
  return sem_result(wait_until(ns_of(abstime), CLOCK_REALTIME, try_sem, &c));
}

SHIM_EXPORT int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
  static sem_clock_fn glibc, next;
  RESOLVE(glibc, next, "sem_clockwait");
  if (!glibc || !virtual_abs(clock, abstime)) return next ? next(sem, clock, abstime) : sem_result(ENOSYS);
  struct obj_call c = { NULL, (obj_clock_fn)glibc, sem };
  return sem_result(wait_until(ns_of(abstime), clock, try_sem, &c));
}

/* Joins: the thread and where its result goes. */
typedef int (*join_timed_fn)(pthread_t, void **, const struct timespec *);
typedef int (*join_clock_fn)(pthread_t, void **, clockid_t, const struct timespec *);
struct join_call {
  join_timed_fn timed;
  join_clock_fn clocked;
  pthread_t thread;
  void **result;
};

static int try_join(void *p, clockid_t clock, const struct timespec *real) {
  struct join_call *c = p;
  return c->clocked ? c->clocked(c->thread, c->result, clock, real) : c->timed(c->thread, c->result, real);
}

SHIM_EXPORT int pthread_timedjoin_np(pthread_t thread, void **result, const struct timespec *abstime) {
  static join_timed_fn glibc, next;
  RESOLVE(glibc, next, "pthread_timedjoin_np");
  if (!glibc || !virtual_abs(CLOCK_REALTIME, abstime)) return next ? next(thread, result, abstime) : ENOSYS;
  struct join_call c = { glibc, NULL, thread, result };
  return wait_until(ns_of(abstime), CLOCK_REALTIME, try_join, &c);
}

SHIM_EXPORT int pthread_clockjoin_np(pthread_t thread, void **result, clockid_t clock, const struct timespec *abstime) {
  static join_clock_fn glibc, next;
  RESOLVE(glibc, next, "pthread_clockjoin_np");
  if (!glibc || !virtual_abs(clock, abstime)) return next ? next(thread, result, clock, abstime) : ENOSYS;
  struct join_call c = { NULL, glibc, thread, result };
  return wait_until(ns_of(abstime), clock, try_join, &c);
}

/* Message queues: an absolute CLOCK_REALTIME deadline; -1 and errno, like semaphores. */
typedef int (*mq_send_fn)(mqd_t, const char *, size_t, unsigned int, const struct timespec *);
typedef ssize_t (*mq_receive_fn)(mqd_t, char *, size_t, unsigned int *, const struct timespec *);
struct mq_call {
  mq_send_fn send;
  mq_receive_fn receive;
  mqd_t q;
  char *msg;
  size_t len;
  unsigned int prio, *prio_out;
  ssize_t got;
};

static int try_mq(void *p, clockid_t clock, const struct timespec *real) {
  (void)clock;
  struct mq_call *c = p;
  c->got = c->send ? c->send(c->q, c->msg, c->len, c->prio, real) : c->receive(c->q, c->msg, c->len, c->prio_out, real);
  return c->got >= 0 ? 0 : errno;
}

SHIM_EXPORT int mq_timedsend(mqd_t q, const char *msg, size_t len, unsigned int prio, const struct timespec *abstime) {
  static mq_send_fn glibc, next;
  RESOLVE(glibc, next, "mq_timedsend");
  if (!glibc || !virtual_abs(CLOCK_REALTIME, abstime)) return next ? next(q, msg, len, prio, abstime) : sem_result(ENOSYS);
  struct mq_call c = { glibc, NULL, q, (char *)msg, len, prio, NULL, -1 };
  return sem_result(wait_until(ns_of(abstime), CLOCK_REALTIME, try_mq, &c));
}

SHIM_EXPORT ssize_t mq_timedreceive(mqd_t q, char *msg, size_t len, unsigned int *prio, const struct timespec *abstime) {
  static mq_receive_fn glibc, next;
  RESOLVE(glibc, next, "mq_timedreceive");
  if (!glibc || !virtual_abs(CLOCK_REALTIME, abstime)) return next ? next(q, msg, len, prio, abstime) : sem_result(ENOSYS);
  struct mq_call c = { NULL, glibc, q, msg, len, 0, prio, -1 };
  int e = wait_until(ns_of(abstime), CLOCK_REALTIME, try_mq, &c);
  return e == 0 ? c.got : sem_result(e);
}

/* ---- sigtimedwait: a relative timeout ---- */

typedef int (*sigtimedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);

SHIM_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *t) {
  static sigtimedwait_fn glibc, next;
  RESOLVE(glibc, next, "sigtimedwait");
  if (!glibc || !t || (t->tv_sec == 0 && t->tv_nsec == 0) || !valid_ts(t) || !virtual_waits()) {
    int r = next(set, info, t);
    if (r > 0 && info) timers_delivered(r, info); /* a timer's si_overrun (timers.c) */
    return r;
  }
  long long deadline = deadline_after(ns_of(t));
  long long real = real_wait_ns(deadline);
  unsigned long handled = handlers_run;
  before_block();
  for (;;) {
    struct timespec rel = ts_of(real);
    int slot = wait_register(deadline, real);
    int r = after_block(glibc(set, info, &rel), 1);
    wait_clear(slot, deadline);
    if (r > 0 && info) timers_delivered(r, info);
    if (r >= 0 || (errno != EAGAIN && !cell_eintr(r, handled))) return r;
    if (errno == EINTR) errno = EAGAIN;
    real = real_wait_ns(deadline);
    if (real == 0) return r;
    block_begin();
  }
}

/* ---- futex waits through syscall() ---- */

#if SHIM_RAW_SYSCALL
#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13 /* Linux 5.14 */
#endif

/* A futex wait with a timeout: FUTEX_WAIT (relative), FUTEX_WAIT_BITSET and FUTEX_LOCK_PI2
   (absolute, CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME), FUTEX_LOCK_PI (absolute, always
   CLOCK_REALTIME). Returns 0 when the call is not one of those (it passes through). */
static int futex_deadline(long op, const struct timespec *t, long long *deadline, clockid_t *clock, int *relative) {
  if (!t || t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1000000000L) return 0;
  wait_begins();
  *clock = (op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
  *relative = 0;
  switch (op & FUTEX_CMD_MASK) {
  case FUTEX_WAIT:
    if ((t->tv_sec == 0 && t->tv_nsec == 0) || !valid_ts(t)) return 0;
    *relative = 1;
    *deadline = deadline_after(ns_of(t));
    return 1;
  case FUTEX_LOCK_PI:
    *clock = CLOCK_REALTIME;
    *deadline = ns_of(t);
    return 1;
  case FUTEX_WAIT_BITSET:
  case FUTEX_LOCK_PI2:
    *deadline = ns_of(t);
    return 1;
  default:
    return 0;
  }
}

/* The futex call a[0..5] with its timeout replaced, until its virtual deadline: a wake, a changed
   word (EAGAIN), a signal or a lock taken returns at once; ETIMEDOUT with virtual time left waits
   again. Returns the kernel's result (-errno). */
static long vfutex(const long a[6], long long deadline, clockid_t clock, int relative) {
  before_block();
  for (;;) {
    struct timespec t;
    long long real;
    if (relative) {
      real = real_wait_ns(deadline);
      t = ts_of(real);
    } else {
      real = real_until(deadline, clock, &t);
    }
    int slot = wait_register(deadline, real);
    long r = raw_syscall6(SYS_futex, a[0], a[1], a[2], (long)&t, a[4], a[5]);
    after_block(0, 1);
    wait_clear(slot, deadline);
    if (r != -ETIMEDOUT || real == 0 || virtual_left(deadline) == 0) return r;
    block_begin();
  }
}

/* syscall() itself: futex waits with a timeout in virtual time (the calls Rust's std, among others,
   makes), everything else straight to the kernel, as glibc's syscall() does. Six arguments are read
   whatever the call takes, as glibc's does. */
SHIM_EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  long long deadline;
  clockid_t clock;
  int relative;
  if (number == SYS_futex && virtual_waits() && futex_deadline(a[1], (const struct timespec *)a[3], &deadline, &clock, &relative))
    return syscall_result(vfutex(a, deadline, clock, relative));
  return syscall_result(raw_syscall6(number, a[0], a[1], a[2], a[3], a[4], a[5]));
}
#endif

/* ---- SO_RCVTIMEO and SO_SNDTIMEO ---- */

/* The program's socket timeouts, per fd, in virtual ns (0: none). The kernel's own are real timers,
   so they are set, before each try of a blocking call, to what is left of the virtual deadline (as a
   backstop, below); getsockopt answers with the program's. NULL until a program sets one: every
   other read and write pays one load and a branch (redis-server's hot path). Descriptors from
   TIMEOUT_FDS on keep the kernel's timeout, on the wall. */
struct sock_timeouts *sock_timeouts;

static struct sock_timeouts *timeouts_table(void) {
  struct sock_timeouts *t = __atomic_load_n(&sock_timeouts, __ATOMIC_ACQUIRE);
  if (t) return t;
  size_t size = TIMEOUT_FDS * sizeof *t;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (__atomic_compare_exchange_n(&sock_timeouts, &t, (struct sock_timeouts *)p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return p;
  munmap(p, size);
  return t;
}

void timeouts_forget(int fd) {
  struct sock_timeouts *t = sock_timeouts;
  if (t && fd >= 0 && fd < TIMEOUT_FDS) t[fd] = (struct sock_timeouts){ 0, 0 };
}

/* fd `to` now refers to the socket of `from` (dup, dup2, dup3, or a connection accepted on a
   listener, which inherits the listener's timeouts). */
void timeouts_copy(int from, int to) {
  struct sock_timeouts *t = sock_timeouts;
  if (!t || to < 0 || to >= TIMEOUT_FDS || from == to) return;
  t[to] = from >= 0 && from < TIMEOUT_FDS ? t[from] : (struct sock_timeouts){ 0, 0 };
}

static int rcv_option(int name) {
#ifdef SO_RCVTIMEO_NEW
  if (name == SO_RCVTIMEO_NEW) return 1;
#endif
  return name == SO_RCVTIMEO;
}

static int snd_option(int name) {
#ifdef SO_SNDTIMEO_NEW
  if (name == SO_SNDTIMEO_NEW) return 1;
#endif
  return name == SO_SNDTIMEO;
}

/* The _NEW options (Linux 5.1) take 64-bit seconds and µs whatever time_t is. */
struct sock_timeval64 {
  long long sec, usec;
};

static int new_option(int name) {
#ifdef SO_RCVTIMEO_NEW
  if (name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW) return SO_RCVTIMEO_NEW != SO_RCVTIMEO;
#endif
  (void)name;
  return 0;
}

/* The timeout an accepted setsockopt set, in ns: 0 for none (Linux takes a negative one as none). */
static long long option_ns(int name, const void *val, socklen_t len) {
  long long sec, usec;
  if (new_option(name)) {
    if (len < sizeof(struct sock_timeval64)) return 0;
    const struct sock_timeval64 *v = val;
    sec = v->sec;
    usec = v->usec;
  } else {
    if (len < sizeof(struct timeval)) return 0;
    const struct timeval *v = val;
    sec = v->tv_sec;
    usec = v->tv_usec;
  }
  if (sec < 0 || sec >= MAX_TIMEOUT_S || usec < 0) return 0;
  return sec * 1000000000LL + usec * 1000LL;
}

typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);

static setsockopt_fn next_setsockopt(void) {
  static setsockopt_fn f;
  if (!f) f = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
  return f;
}

/* The kernel gets the program's timeout too (for the calls the shim does not wrap: recvmmsg,
   sendfile, …); the wrapped calls replace it before each try. */
SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  int r = next_setsockopt()(fd, level, name, val, len);
  if (r != 0 || level != SOL_SOCKET || !(rcv_option(name) || snd_option(name)) || fd < 0 || fd >= TIMEOUT_FDS) return r;
  long long ns = option_ns(name, val, len);
  struct sock_timeouts *t = ns || sock_timeouts ? timeouts_table() : NULL;
  if (t && rcv_option(name)) t[fd].rcv_ns = ns;
  if (t && snd_option(name)) t[fd].snd_ns = ns;
  return r;
}

SHIM_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  static getsockopt_fn next;
  if (!next) next = (getsockopt_fn)dlsym(RTLD_NEXT, "getsockopt");
  long long ns = level != SOL_SOCKET ? 0 : rcv_option(name) ? rcv_timeout_ns(fd) : snd_option(name) ? snd_timeout_ns(fd) : 0;
  if (ns == 0 || !val || !len) return next(fd, level, name, val, len);
  long long us = ns / 1000;
  socklen_t size = new_option(name) ? sizeof(struct sock_timeval64) : sizeof(struct timeval);
  if (*len < size) {
    errno = EINVAL;
    return -1;
  }
  if (new_option(name)) *(struct sock_timeval64 *)val = (struct sock_timeval64){ us / 1000000, us % 1000000 };
  else *(struct timeval *)val = (struct timeval){ us / 1000000, us % 1000000 };
  *len = size;
  return 0;
}

/* The kernel counts socket timeouts in jiffies (HZ 100 to 1000) on its timer wheel, which ends a wait
   of w up to w/8 and a jiffy late: a backstop of what is left (real_ns) less an eighth and 10 ms ends
   before the deadline, so that the virtual clock decides. At least 1 µs (0 is "no timeout"), which
   the kernel rounds up to a jiffy: the last stretch of a wait that only the kernel's timer can end
   (a send, a Unix connect) may end up to a jiffy of real time late. */
static long long backstop_ns(long long real_ns) {
  long long b = real_ns - real_ns / 8 - 10000000LL;
  return b > 1000 ? b : 1000;
}

static int set_backstop(int fd, int name, long long ns) {
  long long us = (ns + 999) / 1000;
  struct timeval tv = { us / 1000000, us % 1000000 };
  return next_setsockopt()(fd, SOL_SOCKET, name, &tv, sizeof tv);
}

/* A blocking call the shim leaves alone: a non-blocking socket (it never waits), or a descriptor that
   is not one (the table's entry outlived the socket: closed by close_range or a raw system call).
   Otherwise the kernel's timeout is set to the first backstop. */
static int sock_passes(int fd, int name, long long backstop) {
  int e = errno;
  int fl = fcntl(fd, F_GETFL);
  int passes = fl < 0 || (fl & O_NONBLOCK);
  if (!passes && set_backstop(fd, name, backstop) != 0) {
    if (errno == ENOTSOCK) timeouts_forget(fd);
    passes = 1;
  }
  errno = e;
  return passes;
}

/* One try of a socket call: the bytes already sent (`done`) are left out. */
typedef ssize_t (*sock_try)(const void *call, size_t done);

/* A receive or accept on a socket with a virtual SO_RCVTIMEO: wait (ppoll, ns precision) until it
   is readable or the deadline has come, then make the call, with the kernel's timeout as a backstop
   (another thread may have taken what made it readable), and again while it times out with virtual
   time left. */
static ssize_t recv_wait(int fd, long long timeout_ns, sock_try try, const void *call) {
  if (!virtual_waits() || !glibc_ppoll()) return try(call, 0);
  long long deadline = deadline_after(timeout_ns);
  long long real = real_wait_ns(deadline), backstop = backstop_ns(real);
  if (sock_passes(fd, SO_RCVTIMEO, backstop)) return try(call, 0);
  unsigned long handled = handlers_run;
  before_block();
  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    struct timespec t = ts_of(real);
    int slot = wait_register(deadline, real);
    int r = after_block(glibc_ppoll()(&p, 1, &t, NULL), 1);
    wait_clear(slot, deadline);
    if (r < 0) return -1;
    if (r > 0) {
      /* Set again only when the wait took long enough to matter (a system call less per try). */
      long long b = backstop_ns(real_wait_ns(deadline));
      if (b < backstop - 1000000LL) set_backstop(fd, SO_RCVTIMEO, backstop = b);
      block_begin();
      ssize_t n = try(call, 0);
      after_block(0, 1);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && !cell_eintr(n, handled))) return n;
    }
    real = real_wait_ns(deadline);
    if (real == 0) {
      errno = EAGAIN;
      return -1;
    }
    block_begin();
  }
}

/* A send on a socket with a virtual SO_SNDTIMEO: the call itself waits, with the kernel's timeout set
   to the backstop of what is left (poll() cannot stand in: it reports a socket writable only once
   much of its buffer is free, while a send goes on as soon as any is), again while it times out with
   virtual time left; a stream send that sent part goes on with the rest, as a send that the kernel
   let wait the whole time would have. */
static ssize_t send_wait(int fd, long long timeout_ns, sock_try try, const void *call, size_t len) {
  if (!virtual_waits()) return try(call, 0);
  long long deadline = deadline_after(timeout_ns);
  long long real = real_wait_ns(deadline);
  if (sock_passes(fd, SO_SNDTIMEO, backstop_ns(real))) return try(call, 0);
  size_t done = 0;
  unsigned long handled = handlers_run;
  before_block();
  for (;;) {
    int slot = wait_register(deadline, real);
    ssize_t n = try(call, done);
    int e = errno;
    after_block(0, 1);
    wait_clear(slot, deadline);
    if (n > 0) done += (size_t)n;
    int again = n < 0 && (e == EAGAIN || e == EWOULDBLOCK || cell_eintr(n, handled));
    if (again) e = EAGAIN;
    if ((n < 0 && !again) || n == 0 || done >= len || virtual_left(deadline) == 0) {
      if (done) return (ssize_t)done; /* what was sent; an error comes again at the next call */
      errno = e;
      return n;
    }
    real = real_wait_ns(deadline);
    set_backstop(fd, SO_SNDTIMEO, backstop_ns(real));
    block_begin();
  }
}

/* The receiving calls. read() on a socket is a receive; on anything else, and on every socket without
   a timeout, all of this is one load and a branch. */
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*read_chk_fn)(int, void *, size_t, size_t);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recvfrom_chk_fn)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*recv_chk_fn)(int, void *, size_t, size_t, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);

struct recv_call {
  read_fn read;
  recvfrom_fn recvfrom;
  recvmsg_fn recvmsg;
  int fd, flags;
  void *buf;
  size_t n;
  struct sockaddr *from;
  socklen_t *fromlen;
  struct msghdr *msg;
};

static ssize_t try_recv(const void *p, size_t done) {
  (void)done;
  const struct recv_call *c = p;
  if (c->read) return c->read(c->fd, c->buf, c->n);
  if (c->recvfrom) return c->recvfrom(c->fd, c->buf, c->n, c->flags, c->from, c->fromlen);
  return c->recvmsg(c->fd, c->msg, c->flags);
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n) {
  static read_fn next;
  if (!next) next = (read_fn)dlsym(RTLD_NEXT, "read");
  long long t = rcv_timeout_ns(fd);
  if (t == 0 || n == 0) return next(fd, buf, n);
  struct recv_call c = { .read = next, .fd = fd, .buf = buf, .n = n };
  return recv_wait(fd, t, try_recv, &c);
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen) {
  static recvfrom_fn next;
  if (!next) next = (recvfrom_fn)dlsym(RTLD_NEXT, "recvfrom");
  long long t = rcv_timeout_ns(fd);
  if (t == 0 || (flags & MSG_DONTWAIT)) return next(fd, buf, n, flags, from, fromlen);
  struct recv_call c = { .recvfrom = next, .fd = fd, .flags = flags, .buf = buf, .n = n, .from = from, .fromlen = fromlen };
  return recv_wait(fd, t, try_recv, &c);
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
  static recv_fn next;
  if (!next) next = (recv_fn)dlsym(RTLD_NEXT, "recv");
  if (rcv_timeout_ns(fd) == 0 || (flags & MSG_DONTWAIT)) return next(fd, buf, n, flags);
  return recvfrom(fd, buf, n, flags, NULL, NULL);
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  static recvmsg_fn next;
  if (!next) next = (recvmsg_fn)dlsym(RTLD_NEXT, "recvmsg");
  long long t = rcv_timeout_ns(fd);
  if (t == 0 || (flags & MSG_DONTWAIT)) return next(fd, msg, flags);
  struct recv_call c = { .recvmsg = next, .fd = fd, .flags = flags, .msg = msg };
  return recv_wait(fd, t, try_recv, &c);
}

/* The fortified entries (_FORTIFY_SOURCE: PostgreSQL calls __read_chk): glibc's own checks the size
   (and aborts), the wait is the wrapper's. */
SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
  static read_chk_fn next;
  if (!next) next = (read_chk_fn)dlsym(RTLD_NEXT, "__read_chk");
  if (n > buflen || rcv_timeout_ns(fd) == 0) return next(fd, buf, n, buflen);
  return read(fd, buf, n);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags) {
  static recv_chk_fn next;
  if (!next) next = (recv_chk_fn)dlsym(RTLD_NEXT, "__recv_chk");
  if (n > buflen || rcv_timeout_ns(fd) == 0) return next(fd, buf, n, buflen, flags);
  return recvfrom(fd, buf, n, flags, NULL, NULL);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *from, socklen_t *fromlen) {
  static recvfrom_chk_fn next;
  if (!next) next = (recvfrom_chk_fn)dlsym(RTLD_NEXT, "__recvfrom_chk");
  if (n > buflen || rcv_timeout_ns(fd) == 0) return next(fd, buf, n, buflen, flags, from, fromlen);
  return recvfrom(fd, buf, n, flags, from, fromlen);
}

static ssize_t try_accept(const void *p, size_t done) {
  (void)done;
  const struct recv_call *c = p;
  int (*accept4_next)(int, struct sockaddr *, socklen_t *, int) = (int (*)(int, struct sockaddr *, socklen_t *, int))c->buf;
  return accept4_next(c->fd, c->from, c->fromlen, c->flags);
}

/* stamps.c's accept4 (and accept): a listener with SO_RCVTIMEO. */
int timed_accept4(int (*next)(int, struct sockaddr *, socklen_t *, int), int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  struct recv_call c = { .fd = fd, .flags = flags, .buf = (void *)next, .from = addr, .fromlen = len };
  return (int)recv_wait(fd, rcv_timeout_ns(fd), try_accept, &c);
}

/* The sending calls (stamps.c's wrappers call these for sockets with SO_SNDTIMEO). A try after a
   partial send sends the rest: of a buffer, or of up to SEND_IOVS vectors (more, and the partial
   send is returned as it is). */
#define SEND_IOVS 64
struct send_call {
  ssize_t (*write)(int, const void *, size_t);
  ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
  ssize_t (*writev)(int, const struct iovec *, int);
  ssize_t (*sendmsg)(int, const struct msghdr *, int);
  int fd, flags, cnt;
  const void *buf;
  size_t n;
  const struct sockaddr *to;
  socklen_t tolen;
  const struct iovec *iov;
  const struct msghdr *msg;
};

/* The vectors left after `done` bytes, into rest (at most SEND_IOVS); their count, or -1. */
static int iov_rest(const struct iovec *iov, int cnt, size_t done, struct iovec *rest) {
  int i = 0;
  while (i < cnt && done >= iov[i].iov_len) done -= iov[i++].iov_len;
  int k = cnt - i;
  if (k > SEND_IOVS) return -1;
  for (int j = 0; j < k; j++) rest[j] = iov[i + j];
  if (k > 0) {
    rest[0].iov_base = (char *)rest[0].iov_base + done;
    rest[0].iov_len -= done;
  }
  return k;
}

static ssize_t try_send(const void *p, size_t done) {
  const struct send_call *c = p;
  if (c->write) return c->write(c->fd, (const char *)c->buf + done, c->n - done);
  if (c->sendto) return c->sendto(c->fd, (const char *)c->buf + done, c->n - done, c->flags, c->to, c->tolen);
  if (done == 0) return c->writev ? c->writev(c->fd, c->iov, c->cnt) : c->sendmsg(c->fd, c->msg, c->flags);
  struct iovec rest[SEND_IOVS];
  const struct iovec *iov = c->writev ? c->iov : c->msg->msg_iov;
  int cnt = c->writev ? c->cnt : (int)c->msg->msg_iovlen;
  int k = iov_rest(iov, cnt, done, rest);
  if (k <= 0) return 0;
  if (c->writev) return c->writev(c->fd, rest, k);
  /* The rest of a message: its data, not its control data again (descriptors, credentials). */
  struct msghdr m = *c->msg;
  m.msg_iov = rest;
  m.msg_iovlen = (size_t)k;
  m.msg_control = NULL;
  m.msg_controllen = 0;
  return c->sendmsg(c->fd, &m, c->flags);
}

static size_t iov_bytes(const struct iovec *iov, size_t cnt) {
  size_t n = 0;
  for (size_t i = 0; iov && i < cnt; i++) n += iov[i].iov_len;
  return n;
}

ssize_t timed_write(ssize_t (*next)(int, const void *, size_t), int fd, const void *buf, size_t n) {
  struct send_call c = { .write = next, .fd = fd, .buf = buf, .n = n };
  return send_wait(fd, snd_timeout_ns(fd), try_send, &c, n);
}

ssize_t timed_sendto(ssize_t (*next)(int, const void *, size_t, int, const struct sockaddr *, socklen_t), int fd, const void *buf, size_t n, int flags,
                     const struct sockaddr *to, socklen_t tolen) {
  if (flags & MSG_DONTWAIT) return next(fd, buf, n, flags, to, tolen);
  struct send_call c = { .sendto = next, .fd = fd, .flags = flags, .buf = buf, .n = n, .to = to, .tolen = tolen };
  return send_wait(fd, snd_timeout_ns(fd), try_send, &c, n);
}

ssize_t timed_writev(ssize_t (*next)(int, const struct iovec *, int), int fd, const struct iovec *iov, int cnt) {
  struct send_call c = { .writev = next, .fd = fd, .cnt = cnt, .iov = iov };
  return send_wait(fd, snd_timeout_ns(fd), try_send, &c, cnt > 0 ? iov_bytes(iov, (size_t)cnt) : 0);
}

ssize_t timed_sendmsg(ssize_t (*next)(int, const struct msghdr *, int), int fd, const struct msghdr *msg, int flags) {
  if (!msg || (flags & MSG_DONTWAIT)) return next(fd, msg, flags);
  struct send_call c = { .sendmsg = next, .fd = fd, .flags = flags, .msg = msg };
  return send_wait(fd, snd_timeout_ns(fd), try_send, &c, iov_bytes(msg->msg_iov, msg->msg_iovlen));
}

/* A TCP connect whose kernel timeout (the backstop) came first: the handshake goes on in the
   background; wait for it (writable: done, SO_ERROR says how) until the virtual deadline, then
   EINPROGRESS, as Linux returns when SO_SNDTIMEO ends a connect. */
static int connect_finish(int fd, long long deadline) {
  for (;;) {
    long long real = real_wait_ns(deadline);
    if (real == 0) {
      errno = EINPROGRESS;
      return -1;
    }
    struct pollfd p = { fd, POLLOUT, 0 };
    struct timespec t = ts_of(real);
    int slot = wait_register(deadline, real);
    block_begin();
    int r = after_block(glibc_ppoll()(&p, 1, &t, NULL), 1);
    wait_clear(slot, deadline);
    if (r < 0) return -1;
    if (r > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -1;
      if (err == 0) return 0;
      errno = err;
      return -1;
    }
  }
}

/* stamps.c's connect: a blocking connect on a socket with SO_SNDTIMEO. The kernel's timeout ends it
   (the backstop); a TCP connect then goes on in the background (EINPROGRESS: wait for it), a Unix one
   whose listener's queue is full gives up (EAGAIN: try again while virtual time is left). A connect
   the cell's machinery interrupted (EINTR, no handler ran) is tried again: a TCP one then answers
   EALREADY, its handshake going on, and is waited for. */
int timed_connect(int (*next)(int, const struct sockaddr *, socklen_t), int fd, const struct sockaddr *addr, socklen_t len) {
  if (!virtual_waits() || !glibc_ppoll()) return next(fd, addr, len);
  long long deadline = deadline_after(snd_timeout_ns(fd));
  long long real = real_wait_ns(deadline);
  if (sock_passes(fd, SO_SNDTIMEO, backstop_ns(real))) return next(fd, addr, len);
  unsigned long handled = handlers_run;
  int retried = 0;
  before_block();
  for (;;) {
    int slot = wait_register(deadline, real);
    int r = next(fd, addr, len);
    int e = errno;
    after_block(0, 1);
    wait_clear(slot, deadline);
    if (e == EALREADY && retried) e = EINPROGRESS;
    if (r == 0 || (e != EINPROGRESS && e != EAGAIN && !cell_eintr(r, handled))) return r;
    if (e == EINPROGRESS) return connect_finish(fd, deadline);
    retried = 1;
    if (virtual_left(deadline) == 0) {
      errno = EAGAIN;
      return -1;
    }
    real = real_wait_ns(deadline);
    set_backstop(fd, SO_SNDTIMEO, backstop_ns(real));
    block_begin();
  }
}

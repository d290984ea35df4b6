/* What the clock shim's C files share (docs/live.md, "The shim"). Everything here has hidden
   visibility (the shim is built with -fvisibility=hidden): only the functions marked SHIM_EXPORT,
   the calls the shim interposes, are seen by the programs it is preloaded into. */
#ifndef LIVESIM_SHIM_H
#define LIVESIM_SHIM_H
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <time.h>
#include "layout.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_TLS __attribute__((tls_model("initial-exec")))

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);

/* clock.c: the mapped clock state and the fast clock. */
extern volatile int ready;          /* the constructor has run: libfaketime is initialised */
extern __thread int in_clock SHIM_TLS; /* this thread is inside a clock reading (no stamps, no nesting) */
extern volatile long long *state;   /* the clock state (layout.h, W_*), or NULL: no fast clock */
extern volatile const double *state_rate;
extern int state_rw, state_ext;     /* mapped writable; the full STATE_BYTES (overshoot words) */
extern clock_gettime_fn libc_clock_gettime;   /* glibc's, not libfaketime's */
extern cond_clockwait_fn libc_cond_clockwait; /* glibc's */
int limited(clockid_t c);           /* a clock the virtual clock replaces */
long long mono_ns(void);            /* real CLOCK_MONOTONIC ns */
long long thread_cpu_ns(void);      /* this thread's CPU time, ns, or -1 */
long long clock_at(long long at, long long anchor, double rate, long long real);
long long fast_ns_mode(int check_only);
long long fast_ns(void);            /* the virtual epoch ns now, or -1 without a fast clock */

/* Per thread, for telling work from steal and from blocking (clock.c "Steal", block.c). */
extern __thread long long woke_at SHIM_TLS;
extern __thread long long base_at SHIM_TLS;
extern __thread long long base_cpu SHIM_TLS;
extern __thread long long blocked_total SHIM_TLS;
extern __thread long long block_start SHIM_TLS;
extern __thread long long wake_slice SHIM_TLS;
extern __thread long long wake_cpu SHIM_TLS;
extern __thread long long wake_real SHIM_TLS;

/* block.c: a wrapped call that may block. */
void before_block(void);            /* about to block: the barrier first, then block_begin() */
void block_begin(void);             /* from now on (until after_block) the thread may block */
int after_block(int r, int blocking);

/* deadlines.c: the deadline registry (layout.h WAITS_*). Every real wait for a virtual deadline is
   registered while it waits: int s = wait_register(deadline, real_ns) before it, wait_clear(s,
   deadline) when it returns, so that the runtime does not move an idle cooperative cell's clock
   past the deadline before the real wait ends. */
extern volatile long long *wait_table; /* the registry, or NULL (clock.c maps it) */
int wait_register(long long deadline, long long real_ns);
void wait_clear(int slot, long long deadline);
void wait_fired(void);              /* the timekeeper fired: threads it woke may not have run yet */

/* sleep.c: virtual deadlines. */
long long vnow(clockid_t c);        /* the program's clock, epoch ns */
int clock_standing(void);           /* the clock stands outside the run (STATE_FLAG_STANDING) */
void wait_begins(void);             /* a timed wait begins (sleep.c, "Standing clock") */
long long virtual_left(long long deadline); /* virtual ns before deadline (0: it has come) */
long long real_wait_ns(long long deadline); /* real ns to wait for it (0: it has come) */
void *libc_sym(const char *name);   /* glibc's definition, bypassing libfaketime */

/* stamps.c */
void map_stamps(void);

/* timers.c: close(fd) tells it first (a timerfd of the program's is forgotten). */
void timers_fd_closed(int fd);
/* timers.c: a signal the program just took (a handler, sigtimedwait): if it is one of a timer of
   timers.c's, its si_overrun becomes the expirations counted while it was pending, as the kernel's. */
void timers_delivered(int signo, siginfo_t *info);

/* waits.c: socket timeouts (SO_RCVTIMEO, SO_SNDTIMEO) in virtual time. The program's, per fd, in
   virtual ns (0: none); NULL until a program sets one, so that every other read and write pays one
   load and a branch. stamps.c's wrappers of the sending calls, connect, accept and the calls that
   make, copy and close descriptors call in. */
#include <sys/socket.h>
#include <sys/uio.h>
struct sock_timeouts {
  long long rcv_ns, snd_ns;
};
#define TIMEOUT_FDS 65536
extern struct sock_timeouts *sock_timeouts;
static inline long long rcv_timeout_ns(int fd) {
  struct sock_timeouts *t = sock_timeouts;
  return t && fd >= 0 && fd < TIMEOUT_FDS ? t[fd].rcv_ns : 0;
}
static inline long long snd_timeout_ns(int fd) {
  struct sock_timeouts *t = sock_timeouts;
  return t && fd >= 0 && fd < TIMEOUT_FDS ? t[fd].snd_ns : 0;
}
void timeouts_forget(int fd);
void timeouts_copy(int from, int to);
ssize_t timed_write(ssize_t (*next)(int, const void *, size_t), int fd, const void *buf, size_t n);
ssize_t timed_sendto(ssize_t (*next)(int, const void *, size_t, int, const struct sockaddr *, socklen_t), int fd, const void *buf, size_t n, int flags,
                     const struct sockaddr *to, socklen_t tolen);
ssize_t timed_writev(ssize_t (*next)(int, const struct iovec *, int), int fd, const struct iovec *iov, int cnt);
ssize_t timed_sendmsg(ssize_t (*next)(int, const struct msghdr *, int), int fd, const struct msghdr *msg, int flags);
int timed_accept4(int (*next)(int, struct sockaddr *, socklen_t *, int), int fd, struct sockaddr *addr, socklen_t *len, int flags);
int timed_connect(int (*next)(int, const struct sockaddr *, socklen_t), int fd, const struct sockaddr *addr, socklen_t len);

/* handlers.c: the program's signal handlers that ran in this thread (an EINTR with none since a wait
   began is the cell's: a freeze, a stop and continue). */
extern __thread unsigned long handlers_run SHIM_TLS;

/* A system call that does not go through syscall(), which the shim interposes (waits.c): the shim's
   own raw calls (clock readings before libfaketime is ready, possibly under an allocator's lock; naps
   at the barrier) and the calls waits.c passes on. Returns what the kernel returns (-errno on error). */
#if defined(__x86_64__) || defined(__aarch64__)
#define SHIM_RAW_SYSCALL 1
static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return r;
#else
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#endif
}
#else
/* Elsewhere the shim does not interpose syscall() (waits.c), so glibc's is safe to call. */
#define SHIM_RAW_SYSCALL 0
#include <unistd.h>
static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
  long r = syscall(n, a, b, c, d, e, f);
  return r == -1 ? -errno : r;
}
#endif

/* A raw result the way glibc's syscall() returns it: -1 with errno set on error. */
static inline long syscall_result(long r) {
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return -1;
  }
  return r;
}

static inline long long ns_of(const struct timespec *t) { return (long long)t->tv_sec * 1000000000LL + t->tv_nsec; }
static inline struct timespec ts_of(long long ns) { struct timespec t = { ns / 1000000000LL, ns % 1000000000LL }; return t; }

#endif

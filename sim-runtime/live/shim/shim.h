/* What the clock shim's C files share (docs/live.md, "The shim"). Everything here has hidden
   visibility (the shim is built with -fvisibility=hidden): only the functions marked SHIM_EXPORT,
   the calls the shim interposes, are seen by the programs it is preloaded into. */
#ifndef LIVESIM_SHIM_H
#define LIVESIM_SHIM_H
#define _GNU_SOURCE
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

/* sleep.c: virtual deadlines. */
long long vnow(clockid_t c);        /* the program's clock, epoch ns */
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

static inline long long ns_of(const struct timespec *t) { return (long long)t->tv_sec * 1000000000LL + t->tv_nsec; }
static inline struct timespec ts_of(long long ns) { struct timespec t = { ns / 1000000000LL, ns % 1000000000LL }; return t; }

#endif

/* Timers of a live program in virtual time (docs/live.md, "The shim"): alarm, setitimer/getitimer
   (ITIMER_REAL), POSIX timers (timer_create …) on CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME
   and their _ALARM variants, and timerfds. The kernel would run them on the real clock, which goes
   on while a cell is frozen and runs faster than a slowed-down program's clock: they would fire
   early in virtual time. Here every armed timer has a virtual deadline (epoch ns on the program's
   clock: both virtual clocks read the same date), kept in one table per process; a timekeeper
   thread, started at the first arming, waits on the real clock for what is left of the earliest at
   the clock's rate (never longer than the virtual clock can take to get there), looks at the
   virtual clock again at every wake (a wake may be early: a freeze came in between, or the timer
   was re-armed), and fires what is due. So a timer never fires before its deadline, and at most a
   quantum after it (frozen as it comes due, it fires at the next thaw).
   Firing: alarm/ITIMER_REAL sends SIGALRM to the process (as kill() does); SIGEV_SIGNAL queues the
   signal to the process, SIGEV_THREAD_ID to the thread, with si_code SI_TIMER, si_timerid,
   si_overrun and the sigevent's value (a process may queue itself any si_code);
   SIGEV_THREAD runs the function in a new detached thread; SIGEV_NONE does nothing. A
   timerfd is an eventfd, whose reads are a timerfd's (the count of expirations, reset by the read;
   readable while not 0), so read, poll, select and epoll work on it unchanged; the timekeeper adds
   each expiry's count to it. CPU-time clocks (timer_create on CLOCK_*_CPUTIME_ID, ITIMER_VIRTUAL,
   ITIMER_PROF) stay the kernel's: a frozen program uses no CPU, so freezes do not move them. */
#include "shim.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

/* glibc names the SIGEV_THREAD_ID thread only from 2.35 on. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Timers (alarm, POSIX timers, timerfds) a process may have: beyond that timer_create fails with
   EAGAIN and timerfd_create with EMFILE, as at the kernel's limits. Slot 0 is the alarm's. */
#define MAX_TIMERS 4096
#define ALARM_SLOT 0
/* timerfds with a descriptor below this are found by it in O(1) (close() asks at every call). */
#define FD_TRACK 65536
/* Overruns saturate here (DELAYTIMER_MAX). */
#define OVERRUN_MAX 0x7fffffff
/* A timer handle of ours: TAG in the high 32 bits (glibc's are kernel timer ids, below 2^31, or
   negative for SIGEV_THREAD), the slot's generation and index in the low 32 (the si_timerid and
   default sigev_value of its signals). */
#define HANDLE_TAG 0x4c565354ULL
#define GEN_MASK 0x7fffU
/* Thread names are at most 15 characters: ps and /proc/<pid>/task/<tid>/comm show the timekeeper. */
#define KEEPER_NAME "livesim-timers"

enum kind { K_FREE, K_ALARM, K_POSIX, K_TIMERFD };

/* A SIGEV_THREAD timer's notification thread attributes, as values copied out of the program's
   pthread_attr_t at timer_create (it may destroy its own): the timekeeper builds a pthread_attr_t
   from them for each launch, outside the table's lock. */
struct thread_attrs {
  int given;                /* sigev_notify_attributes was not NULL */
  size_t stacksize, guardsize;
  int scope, inherit, policy, has_cpus;
  struct sched_param param;
  cpu_set_t cpus;
};

struct vtimer {
  enum kind kind;
  int notify;               /* SIGEV_* of a POSIX timer */
  int signo;
  pid_t tid;                /* SIGEV_THREAD_ID's thread */
  union sigval value;
  void (*fn)(union sigval); /* SIGEV_THREAD */
  struct thread_attrs attrs; /* SIGEV_THREAD */
  int fd;                   /* timerfd: the eventfd */
  dev_t fd_dev;             /* … and its device and inode, to tell it is still there */
  ino_t fd_ino;
  unsigned gen;             /* handle generation: a deleted timer's handle is EINVAL */
  long long deadline;       /* virtual epoch ns of the next expiry, 0 = disarmed */
  long long interval;       /* ns, 0 = one-shot */
  int heap_pos;             /* index in heap[], -1 when not there */
  int inflight;             /* a signal queued and not seen delivered */
  int overrun_now;          /* expirations while the signal in flight was pending */
  int overrun_last;         /* … of the signal delivered before it */
  int ticked;               /* timerfd: expirations written since the last reset */
};

static struct vtimer slots[MAX_TIMERS];
static int heap[MAX_TIMERS];  /* armed timers (not SIGEV_NONE), earliest deadline first */
static int heap_n;
static unsigned short fd_slot[FD_TRACK]; /* timerfd → slot + 1 (0: not a timerfd of ours) */
static int high_timerfds;     /* timerfds at FD_TRACK and above (found by a scan) */
static unsigned table_gen;    /* moves at every change the timekeeper must look at */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int keeper_running, atfork_done;
/* The virtual deadline the timekeeper waits for (LLONG_MAX: none, it waits for a change; 0: it is
   not waiting, and looks at the table before it does): an arming earlier than that wakes it. */
static long long keeper_target;
/* Its wake-ups and the expiries it fired, for livesim_timers_stats. */
static long long keeper_wakes, keeper_fires;
static pid_t self_pid;
static sigset_t fork_mask;

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* A system call of the shim's own (not through syscall(), which waits.c interposes, nor through
   calls the shim or libfaketime wrap): what the kernel returns, -errno on error. */
static long sys(long n, long a, long b, long c, long d) { return raw_syscall6(n, a, b, c, d, 0, 0); }

static long long real_mono(void) {
  struct timespec t;
  if (libc_clock_gettime) libc_clock_gettime(CLOCK_MONOTONIC, &t);
  else sys(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&t, 0, 0);
  return ns_of(&t);
}

/* The program's virtual clock: both clocks read the same virtual date (sleep.c's deadlines rely on
   it too), so one time line serves every timer. */
static long long vclock(void) { return vnow(CLOCK_REALTIME); }

static int ts_valid(const struct timespec *t) { return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L; }

/* ns of a valid timespec: a delay saturated at ~31 years (far beyond any run), a date at 2096, so
   that a deadline plus a few intervals stays far from overflowing. */
#define DELAY_MAX_S 1000000000LL
#define DATE_MAX_S 4000000000LL
static long long ns_sat(const struct timespec *t) { return t->tv_sec >= DELAY_MAX_S ? DELAY_MAX_S * 1000000000LL : ns_of(t); }
static long long date_ns(const struct timespec *t) { return t->tv_sec >= DATE_MAX_S ? DATE_MAX_S * 1000000000LL : ns_of(t); }

/* Block every signal in this thread while it holds the table: alarm(), setitimer() and
   timer_settime() are async-signal-safe, and a handler re-arming a timer while its thread holds the
   lock would wait for itself. */
static void lock(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, old);
  pthread_mutex_lock(&mu);
}

static void unlock(const sigset_t *old) {
  pthread_mutex_unlock(&mu);
  pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- The heap of armed timers, by deadline. ---- */

static long long dl(int i) { return slots[heap[i]].deadline; }

static void heap_swap(int i, int j) {
  int a = heap[i], b = heap[j];
  heap[i] = b;
  heap[j] = a;
  slots[b].heap_pos = i;
  slots[a].heap_pos = j;
}

static void heap_fix(int i) {
  while (i > 0 && dl(i) < dl((i - 1) / 2)) {
    heap_swap(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_n && dl(l) < dl(m)) m = l;
    if (r < heap_n && dl(r) < dl(m)) m = r;
    if (m == i) return;
    heap_swap(i, m);
    i = m;
  }
}

static void heap_remove(struct vtimer *t) {
  int i = t->heap_pos;
  if (i < 0) return;
  t->heap_pos = -1;
  heap_n--;
  if (i == heap_n) return;
  heap[i] = heap[heap_n];
  slots[heap[i]].heap_pos = i;
  heap_fix(i);
}

static void heap_put(struct vtimer *t) {
  if (t->heap_pos < 0) {
    t->heap_pos = heap_n;
    heap[heap_n++] = (int)(t - slots);
  }
  heap_fix(t->heap_pos);
}

/* ---- Firing. ---- */

static void free_slot(struct vtimer *t);

/* Whether signal signo is pending for the process (tid 0) or thread tid. The caller blocks every
   signal, so sigpending() shows the process's pending set whole. */
static int sig_pending(int signo, pid_t tid) {
  if (tid == 0) {
    sigset_t s;
    return sigpending(&s) == 0 && sigismember(&s, signo) == 1;
  }
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  int fd = (int)sys(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return 0; /* the thread is gone: nothing is pending for it */
  long n = sys(SYS_read, fd, (long)buf, sizeof buf - 1, 0);
  sys(SYS_close, fd, 0, 0, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *p = strstr(buf, "SigPnd:");
  if (!p) return 0;
  unsigned long long mask = strtoull(p + 7, NULL, 16);
  return signo >= 1 && signo <= 64 && ((mask >> (signo - 1)) & 1);
}

static unsigned handle_low(const struct vtimer *t) { return ((t->gen & GEN_MASK) << 16) | (unsigned)(t - slots); }

static void queue_signal(struct vtimer *t, int overrun) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = t->signo;
  si.si_code = SI_TIMER;
  si.si_timerid = (int)handle_low(t);
  si.si_overrun = overrun;
  si.si_value = t->value;
  if (t->notify == SIGEV_THREAD_ID) sys(SYS_rt_tgsigqueueinfo, self_pid, t->tid, t->signo, (long)&si);
  else sys(SYS_rt_sigqueueinfo, self_pid, t->signo, (long)&si, 0);
}

static int add_sat(int a, long long b) { return a + b >= OVERRUN_MAX ? OVERRUN_MAX : (int)(a + b); }

/* k expirations of a signalling timer are due. While the signal of an earlier one is still pending,
   they are overruns (the kernel queues one signal per timer); else a new signal goes out, its
   si_overrun the k − 1 missed now. */
static void fire_signal(struct vtimer *t, long long k) {
  pid_t tid = t->notify == SIGEV_THREAD_ID ? t->tid : 0;
  if (t->inflight && sig_pending(t->signo, tid)) {
    t->overrun_now = add_sat(t->overrun_now, k);
    return;
  }
  if (t->inflight) t->overrun_last = t->overrun_now;
  t->overrun_now = add_sat(0, k - 1);
  t->inflight = 1;
  queue_signal(t, t->overrun_now);
}

struct notification {
  void (*fn)(union sigval);
  union sigval value;
  struct thread_attrs attrs;
};

/* SIGEV_THREAD notifications due, launched by the timekeeper once it has let go of the table:
   pthread_create allocates, and a program's signal handler that interrupted malloc may be waiting
   for the table (timer_settime is async-signal-safe). Only the timekeeper touches them. */
#define LAUNCH_MAX 64
static struct notification launches[LAUNCH_MAX];
static int n_launches;

/* A SIGEV_THREAD notification: the timekeeper blocks every signal and the new thread inherits that;
   glibc's notification threads run with none blocked, so this one unblocks them. */
static void *notify_thread(void *arg) {
  struct notification n = *(struct notification *)arg;
  free(arg);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  n.fn(n.value);
  return NULL;
}

/* k expirations of a SIGEV_THREAD timer: one notification, k − 1 overruns (more, if the
   timekeeper has more notifications to launch than it holds). */
static void fire_thread(struct vtimer *t, long long k) {
  if (!t->fn || n_launches >= LAUNCH_MAX) {
    t->overrun_last = add_sat(t->overrun_last, k);
    return;
  }
  t->overrun_last = add_sat(0, k - 1);
  struct notification *n = &launches[n_launches++];
  n->fn = t->fn;
  n->value = t->value;
  n->attrs = t->attrs;
}

static void build_attr(pthread_attr_t *a, const struct thread_attrs *v) {
  pthread_attr_init(a);
  if (v->given) {
    if (v->stacksize) pthread_attr_setstacksize(a, v->stacksize);
    pthread_attr_setguardsize(a, v->guardsize);
    pthread_attr_setscope(a, v->scope);
    pthread_attr_setinheritsched(a, v->inherit);
    pthread_attr_setschedpolicy(a, v->policy);
    pthread_attr_setschedparam(a, &v->param);
    if (v->has_cpus) pthread_attr_setaffinity_np(a, sizeof v->cpus, &v->cpus);
  }
  pthread_attr_setdetachstate(a, PTHREAD_CREATE_DETACHED);
}

/* Launch the notifications fire_due() queued, each in a new detached thread (glibc's
   pthread_create). The table is not held. */
static void launch_notifications(void) {
  static pthread_create_fn create;
  if (!create) create = (pthread_create_fn)libc_sym("pthread_create");
  for (int i = 0; i < n_launches; i++) {
    struct notification *n = create ? malloc(sizeof *n) : NULL;
    if (!n) continue;
    *n = launches[i];
    pthread_attr_t a;
    build_attr(&a, &n->attrs);
    pthread_t th;
    if (create(&th, &a, notify_thread, n) != 0) free(n);
    pthread_attr_destroy(&a);
  }
  n_launches = 0;
}

/* A timerfd's expirations: added to its eventfd, if the descriptor is still that eventfd (a
   program that replaced it with dup2() or closed it with close_range() did not tell us: eight
   bytes written to whatever took its number would corrupt it). Every eventfd, timerfd and epoll
   descriptor shares one anonymous inode, so this tells an eventfd from a file, socket or pipe. */
static void fire_timerfd(struct vtimer *t, long long k) {
  struct stat st;
  if (sys(SYS_fstat, t->fd, (long)&st, 0, 0) != 0 || st.st_dev != t->fd_dev || st.st_ino != t->fd_ino) {
    free_slot(t); /* gone: its number is not a timerfd of ours any more */
    return;
  }
  uint64_t v = (uint64_t)k;
  if (sys(SYS_write, t->fd, (long)&v, sizeof v, 0) == (long)sizeof v) t->ticked = 1;
}

/* SIGALRM to the process, as kill() sends it (si_code SI_USER; the kernel's is SI_KERNEL, which
   only the thread whose id is the process's may queue itself). */
static void fire_alarm(void) { sys(SYS_kill, self_pid, SIGALRM, 0, 0); }

static void expire(struct vtimer *t, long long k) {
  if (t->kind == K_ALARM) fire_alarm();
  else if (t->kind == K_TIMERFD) fire_timerfd(t, k);
  else if (t->notify == SIGEV_THREAD) fire_thread(t, k);
  else if (t->notify == SIGEV_SIGNAL || t->notify == SIGEV_THREAD_ID) fire_signal(t, k);
}

/* Fire every timer due at virtual time now: a periodic one moves on by whole intervals (k
   expirations at once when the timekeeper came late, as the kernel counts them), a one-shot one is
   disarmed. Holds the table. */
static void fire_due(long long now) {
  for (int guard = 0; heap_n > 0 && dl(0) <= now && guard < MAX_TIMERS; guard++) {
    struct vtimer *t = &slots[heap[0]];
    long long k = 1;
    if (t->interval > 0) {
      k += (now - t->deadline) / t->interval;
      t->deadline += k * t->interval;
      heap_fix(0);
    } else {
      t->deadline = 0;
      heap_remove(t);
    }
    expire(t, k);
    __atomic_fetch_add(&keeper_fires, 1, __ATOMIC_RELAXED);
  }
}

/* ---- The timekeeper. ---- */

/* Wait on the real clock for real_ns (-1: without end) for the virtual deadline target, or until
   an earlier arming: blocked time, neither the program's work nor steal. glibc's own condition
   wait: the shim's would take the deadline as a virtual one. */
static void keeper_wait(long long real_ns, long long target) {
  static cond_clockwait_fn clockwait;
  if (!clockwait) clockwait = libc_cond_clockwait ? libc_cond_clockwait : (cond_clockwait_fn)libc_sym("pthread_cond_clockwait");
  keeper_target = target;
  /* Registered (deadlines.c): a cooperative runtime does not move the clock past target first. */
  int slot = real_ns >= 0 && clockwait ? wait_register(target, real_ns) : -1;
  block_begin();
  int r;
  if (real_ns < 0 || !clockwait) r = pthread_cond_wait(&cv, &mu);
  else {
    struct timespec until = ts_of(real_mono() + real_ns);
    r = clockwait(&cv, &mu, CLOCK_MONOTONIC, &until);
  }
  after_block(r, 1);
  wait_clear(slot, target);
  keeper_target = 0;
  __atomic_fetch_add(&keeper_wakes, 1, __ATOMIC_RELAXED);
}

/* While the clock stands at a barrier short of the deadline (the cell is frozen late, or catches up
   on CPU, or waits for a cooperative runtime), it moves only when the runtime moves the barrier:
   look again this often (real ns) rather than at every ns the deadline is past the barrier. A
   frozen cell's wait ends during the freeze and it looks at the thaw anyway. */
#define STANDING_WAIT_NS 20000LL

/* The clock of the current slice now, computed from the state (the seqlock's words) rather than
   read: no reading of the timekeeper's should count as the program's, and a precise slice nobody
   has read yet (anchor -1) starts at its first reading: then -1, and the caller asks virtual_left,
   which reads only while the barrier is past the deadline. *cap: the barrier (0 = none). */
static long long slice_clock(long long *cap) {
  for (int tries = 0; state && tries < 4; tries++) {
    long long seq = state[W_SEQ];
    if (seq & 1) continue;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    long long at = state[W_AT], anchor = state[W_ANCHOR], barrier = state[W_BARRIER];
    double rate = *state_rate;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (state[W_SEQ] != seq) continue;
    if (at == 0 || anchor == -1 || !(rate > 0)) return -1;
    long long v = clock_at(at, anchor, rate, real_mono());
    *cap = barrier;
    return barrier > 0 && v > barrier ? barrier : v;
  }
  return -1;
}

/* Real ns to wait before looking at the earliest deadline again (0: it has come; *now is then the
   virtual time to fire at). The clock runs at most at its rate while the cell is thawed and stands
   still while it is frozen, so a wait of the virtual time left at that rate never ends after the
   deadline. */
static long long keeper_wait_ns(long long deadline, long long *now) {
  long long cap = 0, v = slice_clock(&cap);
  if (v < 0) {
    long long real_ns = real_wait_ns(deadline);
    if (real_ns == 0) *now = vclock();
    return real_ns;
  }
  if (v >= deadline) {
    *now = v;
    return 0;
  }
  double rate = *state_rate;
  long long real_ns = (long long)((double)(deadline - v) / rate) + 1;
  return cap > 0 && v == cap && real_ns < STANDING_WAIT_NS ? STANDING_WAIT_NS : real_ns;
}

/* The timekeeper's loop. The earliest deadline is read under the table's lock, the time left
   outside it (the fallback reading may wait at a precise slice's barrier: programs arming timers
   must not wait for that), and a change meanwhile (table_gen) makes it look again. */
static void *timekeeper(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, KEEPER_NAME, 0, 0, 0);
  /* The kernel may add the thread's timer slack (50 µs by default) to every wait; a wait that ends
     late by that much at the end of a quantum ends in the next one. */
  prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
  pthread_mutex_lock(&mu);
  for (;;) {
    if (heap_n == 0) {
      keeper_wait(-1, LLONG_MAX);
      continue;
    }
    long long next = dl(0), now = 0;
    unsigned seen = table_gen;
    pthread_mutex_unlock(&mu);
    long long real_ns = keeper_wait_ns(next, &now);
    pthread_mutex_lock(&mu);
    if (real_ns == 0) {
      fire_due(now);
      wait_fired();
      if (n_launches > 0) {
        pthread_mutex_unlock(&mu);
        launch_notifications();
        pthread_mutex_lock(&mu);
      }
    } else if (seen == table_gen) {
      keeper_wait(real_ns, next);
    }
  }
  return NULL;
}

/* For bench/shim-timers.ts (dlsym): the timekeeper's wake-ups (returns from its waits) and the
   expiries it fired, in this process. */
SHIM_EXPORT void livesim_timers_stats(long long out[2]) {
  out[0] = __atomic_load_n(&keeper_wakes, __ATOMIC_RELAXED);
  out[1] = __atomic_load_n(&keeper_fires, __ATOMIC_RELAXED);
}

static void atfork_prepare(void) { lock(&fork_mask); }
static void atfork_parent(void) { unlock(&fork_mask); }

/* The child of a fork has no timers (POSIX timers and interval timers are not inherited) and no
   timekeeper (only the forking thread goes on). Its timerfds are its parent's files: they stay
   timerfds, disarmed here; the parent's timekeeper goes on writing to an inherited one it armed. */
static void atfork_child(void) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  memcpy(&mu, &m, sizeof m);
  memcpy(&cv, &c, sizeof c);
  for (int i = 0; i < MAX_TIMERS; i++) {
    struct vtimer *t = &slots[i];
    t->deadline = 0;
    t->interval = 0;
    t->heap_pos = -1;
    t->inflight = t->overrun_now = t->overrun_last = 0;
    if (t->kind == K_POSIX) {
      t->kind = K_FREE;
      t->gen++;
    }
  }
  heap_n = 0;
  keeper_running = 0;
  keeper_target = 0;
  keeper_wakes = keeper_fires = 0;
  self_pid = 0;
  pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

/* The fork handlers, from the first timer on (the table is held). */
static int ensure_atfork(void) {
  if (!atfork_done && pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0) atfork_done = 1;
  return atfork_done ? 0 : EAGAIN;
}

/* Start the timekeeper (once; the table is held): every signal blocked in it, glibc's
   pthread_create. */
static int start_keeper(void) {
  if (keeper_running) return 0;
  static pthread_create_fn create;
  if (!create) create = (pthread_create_fn)libc_sym("pthread_create");
  if (!create) return ENOSYS;
  if (ensure_atfork() != 0) return EAGAIN;
  self_pid = getpid();
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  /* The caller holds every signal blocked (lock()): the new thread starts with all of them blocked. */
  int r = create(&th, &a, timekeeper, NULL);
  pthread_attr_destroy(&a);
  if (r == 0) keeper_running = 1;
  return r;
}

/* Arm (deadline > 0) or disarm (0) a timer; the table is held. The timekeeper is woken only by a
   deadline earlier than the one it waits for: otherwise its wait ends no later than needed anyway
   (it looks again at every wake), and a program that arms and disarms a timeout around every
   request costs it no wake-up. */
static int arm(struct vtimer *t, long long deadline, long long interval) {
  t->deadline = deadline;
  t->interval = deadline > 0 ? interval : 0;
  table_gen++;
  if (deadline <= 0) {
    t->deadline = 0;
    heap_remove(t);
    return 0;
  }
  if (t->kind == K_POSIX && t->notify == SIGEV_NONE) return 0; /* nothing to fire: gettime computes */
  heap_put(t);
  int r = start_keeper();
  if (r != 0) {
    t->deadline = 0;
    heap_remove(t);
    return r;
  }
  if (keeper_target != 0 && deadline < keeper_target) pthread_cond_signal(&cv);
  return 0;
}

/* The virtual deadline of an it_value: relative to now, or absolute on the program's clock. */
static long long deadline_of(const struct timespec *value, int absolute, long long now) {
  if (value->tv_sec == 0 && value->tv_nsec == 0) return 0;
  return absolute ? date_ns(value) : now + ns_sat(value);
}

/* What is left of a timer, in virtual ns (0: disarmed), moving a periodic SIGEV_NONE timer (which
   nothing fires) past now, as the kernel does when it is read. Holds the table. */
static long long left_of(struct vtimer *t, long long now) {
  if (t->deadline == 0) return 0;
  if (t->deadline <= now && t->interval > 0 && t->heap_pos < 0) t->deadline += ((now - t->deadline) / t->interval + 1) * t->interval;
  return t->deadline > now ? t->deadline - now : 0;
}

static struct vtimer *alloc_slot(enum kind kind) {
  if (ensure_atfork() != 0) return NULL;
  for (int i = 1; i < MAX_TIMERS; i++) {
    struct vtimer *t = &slots[i];
    if (t->kind != K_FREE) continue;
    unsigned gen = t->gen + 1;
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->gen = gen;
    t->heap_pos = -1;
    t->fd = -1;
    return t;
  }
  return NULL;
}

static void free_slot(struct vtimer *t) {
  heap_remove(t);
  if (t->kind == K_TIMERFD) {
    if (t->fd >= 0 && t->fd < FD_TRACK) __atomic_store_n(&fd_slot[t->fd], 0, __ATOMIC_RELAXED);
    else high_timerfds--;
  }
  t->kind = K_FREE;
  t->deadline = 0;
  t->gen++;
  table_gen++;
}

/* Whether the shim should keep a call's timers (the clock is the shim's to read). Before the
   shim's constructor (another library's constructor) glibc's run them on the real clock. */
static int ours(void) { return ready && !in_clock; }

/* ---- alarm, setitimer, getitimer. ---- */

typedef int (*setitimer_fn)(int, const struct itimerval *, struct itimerval *);
typedef int (*getitimer_fn)(int, struct itimerval *);

/* The alarm's slot, set up at its first use (the table is held). */
static struct vtimer *alarm_slot(void) {
  struct vtimer *t = &slots[ALARM_SLOT];
  if (t->kind != K_ALARM) {
    t->kind = K_ALARM;
    t->heap_pos = -1;
    t->fd = -1;
  }
  return t;
}

/* The alarm's setting now, as the kernel reports it: the time left, at least 1 µs while armed. */
static void itimer_get(struct itimerval *out, long long now) {
  struct vtimer *t = alarm_slot();
  long long left = left_of(t, now);
  if (t->deadline != 0 && left < 1000) left = 1000;
  out->it_value.tv_sec = left / 1000000000LL;
  out->it_value.tv_usec = (left % 1000000000LL) / 1000;
  out->it_interval.tv_sec = t->interval / 1000000000LL;
  out->it_interval.tv_usec = (t->interval % 1000000000LL) / 1000;
}

static int tv_valid(const struct timeval *t) { return t->tv_sec >= 0 && t->tv_usec >= 0 && t->tv_usec < 1000000; }

static long long tv_ns(const struct timeval *t) {
  struct timespec s = { t->tv_sec, t->tv_usec * 1000 };
  return ns_sat(&s);
}

/* ITIMER_REAL, the timer alarm() shares. */
static int itimer_real(const struct itimerval *nv, struct itimerval *ov) {
  struct itimerval zero = { { 0, 0 }, { 0, 0 } };
  if (!nv) nv = &zero; /* Linux takes a NULL new value as zero */
  if (!tv_valid(&nv->it_value) || !tv_valid(&nv->it_interval)) { errno = EINVAL; return -1; }
  long long now = vclock();
  sigset_t old;
  lock(&old);
  struct vtimer *t = alarm_slot();
  if (ov) itimer_get(ov, now);
  long long value = tv_ns(&nv->it_value);
  int r = arm(t, value > 0 ? now + value : 0, tv_ns(&nv->it_interval));
  unlock(&old);
  if (r != 0) { errno = r; return -1; }
  return 0;
}

SHIM_EXPORT int setitimer(__itimer_which_t which, const struct itimerval *nv, struct itimerval *ov) {
  if (which == ITIMER_REAL && ours()) return itimer_real(nv, ov);
  /* ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU time: the kernel's. */
  static setitimer_fn next;
  if (!next) next = (setitimer_fn)libc_sym("setitimer");
  return next ? next(which, nv, ov) : (errno = ENOSYS, -1);
}

SHIM_EXPORT int getitimer(__itimer_which_t which, struct itimerval *out) {
  if (which == ITIMER_REAL && ours()) {
    if (!out) { errno = EFAULT; return -1; }
    long long now = vclock();
    sigset_t old;
    lock(&old);
    itimer_get(out, now);
    unlock(&old);
    return 0;
  }
  static getitimer_fn next;
  if (!next) next = (getitimer_fn)libc_sym("getitimer");
  return next ? next(which, out) : (errno = ENOSYS, -1);
}

/* The seconds left of the alarm before, rounded as the kernel does: to the nearest second, and 1
   rather than 0 while one is armed. */
SHIM_EXPORT unsigned int alarm(unsigned int seconds) {
  struct itimerval nv = { { 0, 0 }, { (time_t)seconds, 0 } }, ov;
  if (!ours()) {
    static setitimer_fn next;
    if (!next) next = (setitimer_fn)libc_sym("setitimer");
    if (!next || next(ITIMER_REAL, &nv, &ov) != 0) return 0;
  } else if (itimer_real(&nv, &ov) != 0) {
    return 0;
  }
  unsigned int left = (unsigned int)ov.it_value.tv_sec;
  if (ov.it_value.tv_usec >= 500000 || (left == 0 && ov.it_value.tv_usec > 0)) left++;
  return left;
}

/* ---- POSIX timers. ---- */

typedef int (*timer_create_fn)(clockid_t, struct sigevent *, timer_t *);
typedef int (*timer_settime_fn)(timer_t, int, const struct itimerspec *, struct itimerspec *);
typedef int (*timer_gettime_fn)(timer_t, struct itimerspec *);
typedef int (*timer_id_fn)(timer_t);

/* The clocks whose timers the shim keeps (the _ALARM ones read like their base clocks). */
static int virtual_timer_clock(clockid_t c) {
  return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME || c == CLOCK_REALTIME_ALARM || c == CLOCK_BOOTTIME_ALARM;
}

static int alarm_clock(clockid_t c) { return c == CLOCK_REALTIME_ALARM || c == CLOCK_BOOTTIME_ALARM; }

static int is_ours(timer_t id) { return ((uintptr_t)id >> 32) == HANDLE_TAG; }

/* The slot of one of our handles, or NULL (deleted, or never ours): the table is held. */
static struct vtimer *slot_of(timer_t id) {
  unsigned low = (unsigned)(uintptr_t)id, i = low & 0xffffU;
  if (i == ALARM_SLOT || i >= MAX_TIMERS) return NULL;
  struct vtimer *t = &slots[i];
  return t->kind == K_POSIX && (t->gen & GEN_MASK) == (low >> 16) ? t : NULL;
}

/* A thread of this process (tgkill with signal 0 checks it without sending anything). */
static int own_thread(pid_t tid) { return tid > 0 && sys(SYS_tgkill, getpid(), tid, 0, 0) == 0; }

/* The sigevent's checks, the kernel's (and glibc's for SIGEV_THREAD): 0 or an errno. */
static int check_sigevent(const struct sigevent *ev) {
  switch (ev->sigev_notify) {
  case SIGEV_NONE:
    return 0;
  case SIGEV_THREAD:
    return 0;
  case SIGEV_THREAD_ID:
    if (!own_thread(ev->sigev_notify_thread_id)) return EINVAL;
    /* fall through */
  case SIGEV_SIGNAL:
    return ev->sigev_signo > 0 && ev->sigev_signo < _NSIG ? 0 : EINVAL;
  default:
    return EINVAL;
  }
}

/* The notification thread's attributes as values (detached, whatever the program asked). The
   affinity only when one was set (an unset one reads as every CPU, which would widen a
   signals-mode cell's), the stack address never (one stack for threads that may overlap). */
static void copy_attrs(struct thread_attrs *dst, const pthread_attr_t *src) {
  memset(dst, 0, sizeof *dst);
  if (!src) return;
  dst->given = 1;
  if (pthread_attr_getstacksize(src, &dst->stacksize) != 0) dst->stacksize = 0;
  pthread_attr_getguardsize(src, &dst->guardsize);
  pthread_attr_getscope(src, &dst->scope);
  pthread_attr_getinheritsched(src, &dst->inherit);
  pthread_attr_getschedpolicy(src, &dst->policy);
  pthread_attr_getschedparam(src, &dst->param);
  dst->has_cpus = pthread_attr_getaffinity_np(src, sizeof dst->cpus, &dst->cpus) == 0 && CPU_COUNT(&dst->cpus) < CPU_SETSIZE;
}

/* An _ALARM clock needs what the kernel asks for it (CAP_WAKE_ALARM, a real-time clock device):
   a kernel timer made and deleted at once says whether it would give one (0 or its errno). */
static int alarm_clock_allowed(clockid_t c) {
  static timer_create_fn create;
  static timer_id_fn del;
  if (!create) create = (timer_create_fn)libc_sym("timer_create");
  if (!del) del = (timer_id_fn)libc_sym("timer_delete");
  if (!create || !del) return ENOSYS;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_NONE;
  timer_t k;
  if (create(c, &ev, &k) != 0) return errno;
  del(k);
  return 0;
}

SHIM_EXPORT int timer_create(clockid_t clock, struct sigevent *ev, timer_t *out) {
  if (!virtual_timer_clock(clock) || !ours()) {
    static timer_create_fn next;
    if (!next) next = (timer_create_fn)libc_sym("timer_create");
    return next ? next(clock, ev, out) : (errno = ENOSYS, -1);
  }
  struct sigevent def;
  if (!ev) {
    memset(&def, 0, sizeof def);
    def.sigev_notify = SIGEV_SIGNAL;
    def.sigev_signo = SIGALRM;
  }
  const struct sigevent *e = ev ? ev : &def;
  int r = check_sigevent(e);
  if (r == 0 && alarm_clock(clock)) r = alarm_clock_allowed(clock);
  if (r != 0) { errno = r; return -1; }
  sigset_t old;
  lock(&old);
  struct vtimer *t = alloc_slot(K_POSIX);
  if (t) {
    t->notify = e->sigev_notify;
    t->signo = e->sigev_signo;
    t->tid = e->sigev_notify == SIGEV_THREAD_ID ? e->sigev_notify_thread_id : 0;
    t->value = e->sigev_value;
    if (!ev) t->value.sival_int = (int)handle_low(t); /* the kernel's default: the timer's id */
    if (t->notify == SIGEV_THREAD) {
      t->fn = e->sigev_notify_function;
      copy_attrs(&t->attrs, e->sigev_notify_attributes);
    }
    *out = (timer_t)(uintptr_t)((HANDLE_TAG << 32) | handle_low(t));
  }
  unlock(&old);
  if (!t) { errno = EAGAIN; return -1; }
  return 0;
}

/* A timer's setting now: virtual time left (1 ns for one due and not yet fired, as the kernel
   says, but 0 for a SIGEV_NONE one, which nothing fires) and the interval. */
static void posix_get(struct vtimer *t, struct itimerspec *out, long long now) {
  int armed = t->deadline != 0;
  long long left = left_of(t, now);
  if (armed && left == 0 && t->notify != SIGEV_NONE) left = 1;
  out->it_value = ts_of(left);
  out->it_interval = ts_of(t->interval);
}

SHIM_EXPORT int timer_settime(timer_t id, int flags, const struct itimerspec *nv, struct itimerspec *ov) {
  if (!is_ours(id)) {
    static timer_settime_fn next;
    if (!next) next = (timer_settime_fn)libc_sym("timer_settime");
    return next ? next(id, flags, nv, ov) : (errno = ENOSYS, -1);
  }
  if (!nv || !ts_valid(&nv->it_value) || !ts_valid(&nv->it_interval)) { errno = EINVAL; return -1; }
  long long now = vclock();
  sigset_t old;
  lock(&old);
  struct vtimer *t = slot_of(id);
  int r = EINVAL;
  if (t) {
    if (ov) posix_get(t, ov, now);
    t->overrun_last = 0;
    r = arm(t, deadline_of(&nv->it_value, flags & TIMER_ABSTIME, now), ns_sat(&nv->it_interval));
  }
  unlock(&old);
  if (r != 0) { errno = r; return -1; }
  return 0;
}

SHIM_EXPORT int timer_gettime(timer_t id, struct itimerspec *out) {
  if (!is_ours(id)) {
    static timer_gettime_fn next;
    if (!next) next = (timer_gettime_fn)libc_sym("timer_gettime");
    return next ? next(id, out) : (errno = ENOSYS, -1);
  }
  if (!out) { errno = EFAULT; return -1; }
  long long now = vclock();
  sigset_t old;
  lock(&old);
  struct vtimer *t = slot_of(id);
  if (t) posix_get(t, out, now);
  unlock(&old);
  if (!t) { errno = EINVAL; return -1; }
  return 0;
}

/* The overruns of the timer's last delivered signal. Its last queued one, once no longer pending,
   is that signal, with the expirations counted while it was pending; while it still is, the one
   before. (Only pending signals are seen, not their delivery: a signal of the same number from
   elsewhere, pending at the same time, looks like the timer's.) */
SHIM_EXPORT int timer_getoverrun(timer_t id) {
  if (!is_ours(id)) {
    static timer_id_fn next;
    if (!next) next = (timer_id_fn)libc_sym("timer_getoverrun");
    return next ? next(id) : (errno = ENOSYS, -1);
  }
  sigset_t old;
  lock(&old);
  struct vtimer *t = slot_of(id);
  int r = -1;
  if (t) {
    r = t->overrun_last;
    if ((t->notify == SIGEV_SIGNAL || t->notify == SIGEV_THREAD_ID) && t->inflight)
      r = sig_pending(t->signo, t->notify == SIGEV_THREAD_ID ? t->tid : 0) ? t->overrun_last : t->overrun_now;
    if (t->notify == SIGEV_NONE) r = 0;
  }
  unlock(&old);
  if (!t) errno = EINVAL;
  return r;
}

/* A signal delivered to the program (sigwaitinfo here; shim.h): one of our timers' gets the
   si_overrun the kernel gives at delivery, the expirations counted while it was pending (it was
   queued with those missed until then). */
void timers_delivered(int signo, siginfo_t *info) {
  if (signo <= 0 || !info || info->si_code != SI_TIMER) return;
  unsigned low = (unsigned)info->si_timerid, i = low & 0xffffU;
  if (i == ALARM_SLOT || i >= MAX_TIMERS) return;
  sigset_t old;
  lock(&old);
  struct vtimer *t = &slots[i];
  if (t->kind == K_POSIX && (t->gen & GEN_MASK) == (low >> 16) && t->signo == signo && t->inflight && !sig_pending(t->signo, t->notify == SIGEV_THREAD_ID ? t->tid : 0))
    info->si_overrun = t->overrun_now;
  unlock(&old);
}

typedef int (*sigwaitinfo_fn)(const sigset_t *, siginfo_t *);

SHIM_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info) {
  static sigwaitinfo_fn next;
  if (!next) next = (sigwaitinfo_fn)libc_sym("sigwaitinfo");
  if (!next) { errno = ENOSYS; return -1; }
  siginfo_t mine;
  int sig = next(set, info ? info : &mine);
  if (sig > 0 && info) timers_delivered(sig, info);
  return sig;
}

SHIM_EXPORT int timer_delete(timer_t id) {
  if (!is_ours(id)) {
    static timer_id_fn next;
    if (!next) next = (timer_id_fn)libc_sym("timer_delete");
    return next ? next(id) : (errno = ENOSYS, -1);
  }
  sigset_t old;
  lock(&old);
  struct vtimer *t = slot_of(id);
  if (t) free_slot(t);
  unlock(&old);
  if (!t) { errno = EINVAL; return -1; }
  return 0;
}

/* ---- timerfds. ---- */

typedef int (*timerfd_create_fn)(clockid_t, int);
typedef int (*timerfd_settime_fn)(int, int, const struct itimerspec *, struct itimerspec *);
typedef int (*timerfd_gettime_fn)(int, struct itimerspec *);

/* The slot of timerfd fd, or NULL; the table is held. */
static struct vtimer *timerfd_slot(int fd) {
  if (fd < 0) return NULL;
  if (fd < FD_TRACK) {
    unsigned s = fd_slot[fd];
    return s ? &slots[s - 1] : NULL;
  }
  for (int i = 1; high_timerfds > 0 && i < MAX_TIMERS; i++)
    if (slots[i].kind == K_TIMERFD && slots[i].fd == fd) return &slots[i];
  return NULL;
}

/* close(fd) (stamps.c) tells us before it closes: a timerfd of ours is forgotten, so that its
   number, reused, never gets its expirations. */
void timers_fd_closed(int fd) {
  if (fd < 0) return;
  if (fd < FD_TRACK ? __atomic_load_n(&fd_slot[fd], __ATOMIC_RELAXED) == 0 : __atomic_load_n(&high_timerfds, __ATOMIC_RELAXED) == 0) return;
  sigset_t old;
  lock(&old);
  struct vtimer *t = timerfd_slot(fd);
  if (t) free_slot(t);
  unlock(&old);
}

/* An _ALARM timerfd needs CAP_WAKE_ALARM: a kernel timerfd made and closed at once says. */
static int alarm_timerfd_allowed(clockid_t c) {
  static timerfd_create_fn create;
  if (!create) create = (timerfd_create_fn)libc_sym("timerfd_create");
  int fd = create ? create(c, TFD_CLOEXEC) : (errno = ENOSYS, -1);
  if (fd < 0) return errno;
  sys(SYS_close, fd, 0, 0, 0);
  return 0;
}

SHIM_EXPORT int timerfd_create(clockid_t clock, int flags) {
  if (!virtual_timer_clock(clock) || !ours()) {
    static timerfd_create_fn next;
    if (!next) next = (timerfd_create_fn)libc_sym("timerfd_create");
    return next ? next(clock, flags) : (errno = ENOSYS, -1);
  }
  if (flags & ~(TFD_NONBLOCK | TFD_CLOEXEC)) { errno = EINVAL; return -1; }
  int r = alarm_clock(clock) ? alarm_timerfd_allowed(clock) : 0;
  if (r != 0) { errno = r; return -1; }
  /* TFD_NONBLOCK and TFD_CLOEXEC are EFD_NONBLOCK and EFD_CLOEXEC (O_NONBLOCK, O_CLOEXEC). */
  int fd = eventfd(0, flags);
  if (fd < 0) return -1;
  struct stat st;
  long e = sys(SYS_fstat, fd, (long)&st, 0, 0);
  if (e != 0) {
    sys(SYS_close, fd, 0, 0, 0);
    errno = (int)-e;
    return -1;
  }
  sigset_t old;
  lock(&old);
  struct vtimer *t = alloc_slot(K_TIMERFD);
  if (t) {
    t->fd = fd;
    t->fd_dev = st.st_dev;
    t->fd_ino = st.st_ino;
    if (fd < FD_TRACK) __atomic_store_n(&fd_slot[fd], (unsigned short)(t - slots + 1), __ATOMIC_RELAXED);
    else high_timerfds++;
  }
  unlock(&old);
  if (!t) {
    sys(SYS_close, fd, 0, 0, 0);
    errno = EMFILE;
    return -1;
  }
  return fd;
}

/* Arming a timerfd drops the expirations not read yet, as the kernel's does: read the eventfd
   without blocking (RWF_NOWAIT: the program's descriptor may be a blocking one). */
static void timerfd_reset(struct vtimer *t) {
  if (!t->ticked) return;
  uint64_t v;
  struct iovec io = { &v, sizeof v };
  preadv2(t->fd, &io, 1, -1, RWF_NOWAIT);
  t->ticked = 0;
}

static void timerfd_get(struct vtimer *t, struct itimerspec *out, long long now) {
  out->it_value = ts_of(left_of(t, now));
  out->it_interval = ts_of(t->interval);
}

SHIM_EXPORT int timerfd_settime(int fd, int flags, const struct itimerspec *nv, struct itimerspec *ov) {
  static timerfd_settime_fn next;
  long long now = 0;
  sigset_t old;
  int known = (fd >= 0 && fd < FD_TRACK) ? __atomic_load_n(&fd_slot[fd], __ATOMIC_RELAXED) != 0 : fd >= 0 && __atomic_load_n(&high_timerfds, __ATOMIC_RELAXED) > 0;
  if (known) {
    if (flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) { errno = EINVAL; return -1; }
    if (!nv) { errno = EFAULT; return -1; }
    if (!ts_valid(&nv->it_value) || !ts_valid(&nv->it_interval)) { errno = EINVAL; return -1; }
    now = vclock();
    lock(&old);
    struct vtimer *t = timerfd_slot(fd);
    int r = 0;
    if (t) {
      if (ov) timerfd_get(t, ov, now);
      timerfd_reset(t);
      r = arm(t, deadline_of(&nv->it_value, flags & TFD_TIMER_ABSTIME, now), ns_sat(&nv->it_interval));
    }
    unlock(&old);
    if (t) {
      if (r != 0) { errno = r; return -1; }
      return 0;
    }
  }
  if (!next) next = (timerfd_settime_fn)libc_sym("timerfd_settime");
  return next ? next(fd, flags, nv, ov) : (errno = ENOSYS, -1);
}

SHIM_EXPORT int timerfd_gettime(int fd, struct itimerspec *out) {
  static timerfd_gettime_fn next;
  int known = (fd >= 0 && fd < FD_TRACK) ? __atomic_load_n(&fd_slot[fd], __ATOMIC_RELAXED) != 0 : fd >= 0 && __atomic_load_n(&high_timerfds, __ATOMIC_RELAXED) > 0;
  if (known) {
    if (!out) { errno = EFAULT; return -1; }
    long long now = vclock();
    sigset_t old;
    lock(&old);
    struct vtimer *t = timerfd_slot(fd);
    if (t) timerfd_get(t, out, now);
    unlock(&old);
    if (t) return 0;
  }
  if (!next) next = (timerfd_gettime_fn)libc_sym("timerfd_gettime");
  return next ? next(fd, out) : (errno = ENOSYS, -1);
}

/* The supervisor's side of the seccomp filter (launch.c): each trapped call arrives as a
   notification, which is answered with the virtual clock (vclock.c) or held until its time comes.
   - clock_gettime, gettimeofday, time: the virtual time is written into the caller's memory
     (process_vm_writev) and the call answered 0 (time: the seconds). A reading that reaches a
     precise slice's barrier is held until the runtime moves the clock, as the shim's readings wait
     there (shim/clock.c).
   - nanosleep, clock_nanosleep (only with --sleeps: static C programs; Go re-derives its timers from
     its clock after every wake-up and needs none of this): the deadline is taken on the virtual
     clock and the notification held until the clock reaches it. A sleep is therefore never short
     in virtual time, also across freezes, and late by at most the supervisor's wake-up (or a quantum,
     when the cell is frozen as the deadline comes).
   A held call can end without its answer: a signal, or a freeze of the cell (the freezer wakes the
   waiting thread as a signal would) interrupts it, and the kernel restarts it afterwards (or
   returns EINTR to a handler without SA_RESTART). The answer then fails with ENOENT. A thread makes
   one call at a time, so a new call of the same thread replaces its held one; a sleep the thread
   makes again with the same arguments is the interrupted one restarted and keeps its deadline. */
#include "vexec.h"
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

static int listener = -1;
static unsigned traps;
static struct served stats;

const struct served *serve_stats(void) { return &stats; }

void serve_init(int fd, unsigned trap_set) {
  listener = fd;
  traps = trap_set;
}

/* ---- Held notifications ------------------------------------------------------------------- */

enum held_kind {
  HELD_FREE,
  HELD_SLEEP,   /* a sleep until deadline */
  HELD_BARRIER, /* a clock reading waiting at a precise slice's barrier (sequence seq) */
  HELD_ENDED,   /* a sleep whose deadline came while it was interrupted, kept to recognise its restart */
};

struct held {
  int kind;
  pid_t tid;
  uint64_t id;
  int nr;
  __u64 args[6];
  long long deadline;  /* HELD_SLEEP, HELD_ENDED: virtual epoch ns */
  struct timespec req; /* HELD_SLEEP, HELD_ENDED: what was asked */
  long long seq;       /* HELD_BARRIER */
};

/* One per thread of the program at most (a thread makes one call at a time). */
#define MAX_HELD 4096
static struct held held[MAX_HELD];
static int held_top; /* slots [0, held_top) may be in use */

static struct held *held_of(pid_t tid) {
  for (int i = 0; i < held_top; i++)
    if (held[i].kind != HELD_FREE && held[i].tid == tid) return &held[i];
  return NULL;
}

static void release(struct held *h) {
  if (h->kind == HELD_BARRIER) vclock_waiting(-1);
  h->kind = HELD_FREE;
  while (held_top > 0 && held[held_top - 1].kind == HELD_FREE) held_top--;
}

/* A free slot for tid (its old one, else a free one, else an ended sleep's), or NULL: full. */
static struct held *slot_for(pid_t tid) {
  struct held *h = held_of(tid);
  for (int i = 0; !h && i < MAX_HELD; i++) if (held[i].kind == HELD_FREE) h = &held[i];
  for (int i = 0; !h && i < MAX_HELD; i++) if (held[i].kind == HELD_ENDED) h = &held[i];
  if (!h) return NULL;
  if (h->kind != HELD_FREE) release(h);
  int i = (int)(h - held);
  if (i >= held_top) held_top = i + 1; /* release() may have lowered it below this slot */
  return h;
}

static int count_held(void) {
  int n = 0;
  for (int i = 0; i < held_top; i++) n += held[i].kind == HELD_SLEEP || held[i].kind == HELD_BARRIER;
  return n;
}

/* ---- Answers ------------------------------------------------------------------------------- */

/* 0, or -1: the call is no longer waiting for an answer (interrupted, or its thread is gone). */
static int reply(uint64_t id, long long val, int error, unsigned flags) {
  struct seccomp_notif_resp r = { .id = id, .val = val, .error = error, .flags = flags };
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r) == 0) return 0;
  if (errno == ENOENT) stats.gone++;
  else fprintf(stderr, "vexec: answering a notification: %s\n", strerror(errno));
  return -1;
}

static void pass(uint64_t id) {
  stats.passed++;
  reply(id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

static int write_to(pid_t tid, uint64_t addr, const void *buf, size_t len) {
  struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };
  return process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int read_from(pid_t tid, uint64_t addr, void *buf, size_t len) {
  struct iovec local = { buf, len }, remote = { (void *)addr, len };
  return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* Answer a clock reading (clock_gettime, gettimeofday, time) with virtual epoch ns v. */
static void answer_clock(uint64_t id, pid_t tid, int nr, const __u64 *args, long long v) {
  struct timespec ts = { v / 1000000000LL, v % 1000000000LL };
  stats.clocks++;
  if (nr == SYS_clock_gettime) {
    reply(id, 0, write_to(tid, args[1], &ts, sizeof ts) == 0 ? 0 : -EFAULT, 0);
    return;
  }
  if (nr == SYS_gettimeofday) {
    struct timeval tv = { ts.tv_sec, ts.tv_nsec / 1000 };
    struct timezone tz = { 0, 0 }; /* UTC: the kernel's unless someone set it, and not the cell's business */
    int bad = (args[0] && write_to(tid, args[0], &tv, sizeof tv) != 0) || (args[1] && write_to(tid, args[1], &tz, sizeof tz) != 0);
    reply(id, 0, bad ? -EFAULT : 0, 0);
    return;
  }
  time_t t = ts.tv_sec;
  reply(id, t, args[0] && write_to(tid, args[0], &t, sizeof t) != 0 ? -EFAULT : 0, 0);
}

/* The notification is still waiting (its thread may have died while held: its id is then stale,
   and its thread id may in time be another process's). */
static int still_waiting(uint64_t id) {
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* ---- Calls ---------------------------------------------------------------------------------- */

static void on_clock(const struct seccomp_notif *n) {
  struct held *old = held_of((pid_t)n->pid);
  if (old) release(old);
  struct vreading r = vclock_read();
  if (r.ns < 0) { /* no usable clock state (vclock.c says when): the real clock rather than none */
    pass(n->id);
    return;
  }
  if (r.wait) {
    struct held *h = slot_for((pid_t)n->pid);
    if (h) {
      *h = (struct held){ .kind = HELD_BARRIER, .tid = (pid_t)n->pid, .id = n->id, .nr = n->data.nr, .seq = r.seq };
      memcpy(h->args, n->data.args, sizeof h->args);
      vclock_waiting(1);
      stats.barrier_waits++;
      return;
    }
  }
  answer_clock(n->id, (pid_t)n->pid, n->data.nr, n->data.args, r.ns);
}

/* ns of a timespec, saturated (a sleep of years is a sleep of years, not an overflow). */
static long long ns_sat(const struct timespec *t) {
  if (t->tv_sec > 4000000000LL) return 4000000000LL * 1000000000LL;
  return ns_of_ts(t->tv_sec, t->tv_nsec);
}

static void on_sleep(const struct seccomp_notif *n) {
  int clock_call = n->data.nr == SYS_clock_nanosleep;
  uint64_t req_at = clock_call ? n->data.args[2] : n->data.args[0];
  struct timespec req;
  if (read_from((pid_t)n->pid, req_at, &req, sizeof req) != 0) {
    reply(n->id, 0, -EFAULT, 0);
    return;
  }
  if (req.tv_sec < 0 || req.tv_nsec < 0 || req.tv_nsec >= 1000000000L) {
    reply(n->id, 0, -EINVAL, 0);
    return;
  }
  struct held *old = held_of((pid_t)n->pid);
  long long deadline;
  if (old && (old->kind == HELD_SLEEP || old->kind == HELD_ENDED) && old->nr == n->data.nr && memcmp(old->args, n->data.args, sizeof old->args) == 0 &&
      old->req.tv_sec == req.tv_sec && old->req.tv_nsec == req.tv_nsec) {
    deadline = old->deadline; /* the interrupted sleep, restarted */
    stats.restarts++;
  } else if (clock_call && (n->data.args[1] & TIMER_ABSTIME)) {
    deadline = ns_sat(&req); /* every virtual clock reads the same date */
  } else {
    struct vreading r = vclock_read();
    if (r.ns < 0) {
      pass(n->id);
      return;
    }
    deadline = r.ns + ns_sat(&req);
  }
  stats.sleeps++;
  struct held *h = slot_for((pid_t)n->pid);
  if (!h) { /* thousands of threads asleep at once: this one sleeps on the real clock */
    pass(n->id);
    return;
  }
  *h = (struct held){ .kind = HELD_SLEEP, .tid = (pid_t)n->pid, .id = n->id, .nr = n->data.nr, .deadline = deadline, .req = req };
  memcpy(h->args, n->data.args, sizeof h->args);
  int now = count_held();
  if ((unsigned long)now > stats.held_max) stats.held_max = (unsigned long)now;
}

void serve_one(void) {
  struct seccomp_notif n;
  memset(&n, 0, sizeof n);
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) return; /* EINTR, or ENOENT: the caller is gone */
  stats.notifications++;
  switch (n.data.nr) {
  case SYS_clock_gettime:
  case SYS_gettimeofday:
#ifdef SYS_time
  case SYS_time:
#endif
    on_clock(&n);
    return;
  case SYS_nanosleep:
  case SYS_clock_nanosleep:
    if (traps & TRAP_SLEEPS) {
      on_sleep(&n);
      return;
    }
    break;
  }
  pass(n.id);
}

/* A reading held at the barrier: once the runtime has moved the clock, read again (it may wait at
   the next barrier) and answer. */
static void barrier_moved(struct held *h) {
  if (vclock_seq() == h->seq) return;
  if (!still_waiting(h->id)) {
    release(h);
    return;
  }
  struct vreading r = vclock_read();
  if (r.wait) {
    h->seq = r.seq;
    return;
  }
  struct held done = *h;
  release(h);
  if (r.ns < 0) pass(done.id);
  else answer_clock(done.id, done.tid, done.nr, done.args, r.ns);
}

void serve_held(void) {
  for (int i = 0; i < held_top; i++) {
    struct held *h = &held[i];
    if (h->kind == HELD_BARRIER) barrier_moved(h);
    else if (h->kind == HELD_SLEEP && vclock_left(h->deadline) == 0) {
      /* Answered: done. Not answered (interrupted): kept, for its restart to end at once. */
      if (reply(h->id, 0, 0, 0) == 0) release(h);
      else h->kind = HELD_ENDED;
    }
  }
}

/* How often a reading held at a barrier looks whether the runtime has moved the clock (real ns):
   the shim's waiting readings nap as long (shim/clock.c, wait_moved). */
#define BARRIER_NAP_NS 20000LL

long long serve_timeout_ns(void) {
  long long t = -1;
  for (int i = 0; i < held_top; i++) {
    long long w = held[i].kind == HELD_SLEEP ? vclock_real_wait(held[i].deadline) : held[i].kind == HELD_BARRIER ? BARRIER_NAP_NS : -1;
    if (w >= 0 && (t < 0 || w < t)) t = w;
  }
  return t;
}

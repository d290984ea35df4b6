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
   - epoll_wait, epoll_pwait with a timeout: a program hands the kernel the time left to its next
     timer on its (virtual) clock as a real timeout. Go does, from its netpoller; where the clock runs
     faster than the wall (speed < 1) the wait would end late. The supervisor takes a copy of the
     epoll fd (pidfd_getfd) and holds the call: once the epoll set has events it lets the call run
     (SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel's epoll_wait returns them at once); at the virtual
     deadline it answers 0 (a timeout).
   - futex waits with a timeout (FUTEX_WAIT relative, as Go's runtime sleeps; FUTEX_WAIT_BITSET
     absolute, as glibc's timed waits: condition variables, semaphores, timed locks). The kernel would
     time the relative ones on the wall and take the absolute ones, dates on the virtual clock, for
     dates on its own clock (a MONOTONIC one decades ahead: a hang). The supervisor holds the call and
     looks at the futex word, first every FUTEX_POLL_MIN_NS, backing off to FUTEX_POLL_MAX_NS: once
     it changed (a futex protocol changes the word before it wakes a waiter) it answers 0 (woken), at
     the virtual deadline ETIMEDOUT. A waker's FUTEX_WAKE finds no waiter in the kernel meanwhile,
     which the word covers; the wake-up costs up to the polling interval of real time.
   A held call can end without its answer: a signal, or a freeze of the cell (the freezer wakes the
   waiting thread as a signal would) interrupts it, and the kernel restarts it afterwards (or
   returns EINTR to a handler without SA_RESTART). The answer then fails with ENOENT. A thread makes
   one call at a time, so a new call of the same thread replaces its held one; a sleep the thread
   makes again with the same arguments is the interrupted one restarted and keeps its deadline. */
#include "vexec.h"
#include <errno.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <unistd.h>
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
  HELD_WAIT,    /* an epoll wait until deadline or until fd (a copy of its epoll fd) has events */
  HELD_FUTEX,   /* a futex wait until deadline or until the word at addr is no longer val */
  HELD_ENDED,   /* a sleep or wait that ended while it was interrupted, kept to recognise its restart */
};

struct held {
  int kind;
  pid_t tid;
  uint64_t id;
  int nr;
  __u64 args[6];
  long long deadline;  /* HELD_SLEEP, HELD_WAIT, HELD_ENDED: virtual epoch ns */
  struct timespec req; /* HELD_SLEEP, HELD_ENDED: what was asked */
  long long seq;       /* HELD_BARRIER */
  int fd;              /* HELD_WAIT: the supervisor's copy of the epoll fd */
  uint64_t addr;       /* HELD_FUTEX: the futex word, and the value the waiter expects there */
  uint32_t val;
  long long poll_ns;   /* HELD_FUTEX: the interval between looks at the word, and the next look (real) */
  long long next_look;
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

/* The call is over: no copy of its fd is kept. */
static void ended(struct held *h) {
  if (h->kind == HELD_WAIT) close(h->fd);
  h->kind = HELD_ENDED;
}

static void release(struct held *h) {
  if (h->kind == HELD_BARRIER) vclock_waiting(-1);
  if (h->kind == HELD_WAIT) close(h->fd);
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

static int count_held(void);
static void note_held(void);

static int count_held(void) {
  int n = 0;
  for (int i = 0; i < held_top; i++) n += held[i].kind != HELD_FREE && held[i].kind != HELD_ENDED;
  return n;
}

static void note_held(void) {
  int now = count_held();
  if ((unsigned long)now > stats.held_max) stats.held_max = (unsigned long)now;
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
      *h = (struct held){ .kind = HELD_BARRIER, .tid = (pid_t)n->pid, .id = n->id, .nr = n->data.nr, .seq = r.seq, .fd = -1 };
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
  *h = (struct held){ .kind = HELD_SLEEP, .tid = (pid_t)n->pid, .id = n->id, .nr = n->data.nr, .deadline = deadline, .req = req, .fd = -1 };
  memcpy(h->args, n->data.args, sizeof h->args);
  note_held();
}

/* The thread group of thread tid (pidfd_open wants it), or -1. */
static pid_t tgid_of(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  pid_t tgid = -1;
  while (fgets(buf, sizeof buf, f))
    if (strncmp(buf, "Tgid:", 5) == 0) {
      tgid = (pid_t)atoi(buf + 5);
      break;
    }
  fclose(f);
  return tgid;
}

/* A copy of fd of thread tid's process (pidfd_getfd, Linux 5.6), or -1. */
static int grab_fd(pid_t tid, int fd) {
  pid_t tgid = tgid_of(tid);
  int pidfd = tgid > 0 ? (int)syscall(SYS_pidfd_open, tgid, 0) : -1;
  if (pidfd < 0) return -1;
  int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  close(pidfd);
  return copy;
}

static void on_wait(const struct seccomp_notif *n) {
  pid_t tid = (pid_t)n->pid;
  struct held *old = held_of(tid);
  long long deadline;
  if (old && (old->kind == HELD_WAIT || old->kind == HELD_ENDED) && old->nr == n->data.nr && memcmp(old->args, n->data.args, sizeof old->args) == 0) {
    deadline = old->deadline; /* the interrupted wait, restarted */
    stats.restarts++;
  } else {
    struct vreading r = vclock_read();
    if (r.ns < 0) {
      pass(n->id);
      return;
    }
    deadline = r.ns + (long long)(int)n->data.args[3] * 1000000LL;
  }
  int fd = grab_fd(tid, (int)n->data.args[0]);
  struct held *h = fd >= 0 ? slot_for(tid) : NULL;
  if (!h) { /* no copy of the fd (or thousands of waits at once): a wait on the real clock */
    if (fd >= 0) close(fd);
    pass(n->id);
    return;
  }
  stats.waits++;
  *h = (struct held){ .kind = HELD_WAIT, .tid = tid, .id = n->id, .nr = n->data.nr, .deadline = deadline, .fd = fd };
  memcpy(h->args, n->data.args, sizeof h->args);
  note_held();
}

#define FUTEX_POLL_MIN_NS 50000LL
#define FUTEX_POLL_MAX_NS 2000000LL

static void on_futex(const struct seccomp_notif *n) {
  pid_t tid = (pid_t)n->pid;
  struct timespec ts;
  if (read_from(tid, n->data.args[3], &ts, sizeof ts) != 0) {
    reply(n->id, 0, -EFAULT, 0);
    return;
  }
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L) {
    reply(n->id, 0, -EINVAL, 0);
    return;
  }
  uint32_t word, val = (uint32_t)n->data.args[2];
  if (read_from(tid, n->data.args[0], &word, sizeof word) != 0) {
    reply(n->id, 0, -EFAULT, 0);
    return;
  }
  if (word != val) { /* what the kernel answers when the word is no longer the expected value */
    reply(n->id, 0, -EAGAIN, 0);
    return;
  }
  struct held *old = held_of(tid);
  long long deadline;
  if (old && (old->kind == HELD_FUTEX || old->kind == HELD_ENDED) && old->nr == n->data.nr && memcmp(old->args, n->data.args, sizeof old->args) == 0) {
    deadline = old->deadline; /* the interrupted wait, restarted */
    stats.restarts++;
  } else if (((int)n->data.args[1] & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
    deadline = ns_sat(&ts); /* absolute, on the program's clock: a virtual date */
  } else {
    struct vreading r = vclock_read();
    if (r.ns < 0) {
      pass(n->id);
      return;
    }
    deadline = r.ns + ns_sat(&ts);
  }
  struct held *h = slot_for(tid);
  if (!h) {
    pass(n->id);
    return;
  }
  stats.futexes++;
  *h = (struct held){ .kind = HELD_FUTEX, .tid = tid, .id = n->id, .nr = n->data.nr, .deadline = deadline, .fd = -1, .addr = n->data.args[0], .val = val,
                      .poll_ns = FUTEX_POLL_MIN_NS, .next_look = mono_ns() + FUTEX_POLL_MIN_NS };
  memcpy(h->args, n->data.args, sizeof h->args);
  note_held();
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
#ifdef SYS_epoll_wait
  case SYS_epoll_wait:
#endif
  case SYS_epoll_pwait:
    if (traps & TRAP_WAITS) {
      on_wait(&n);
      return;
    }
    break;
  case SYS_futex:
    if (traps & TRAP_WAITS) {
      on_futex(&n);
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

static int readable(int fd) {
  struct pollfd p = { fd, POLLIN, 0 };
  return poll(&p, 1, 0) > 0;
}

/* A held wait: its events came (the kernel's call runs and returns them), or its deadline (0 events). */
static void wait_over(struct held *h) {
  int ready = readable(h->fd);
  if (!ready && vclock_left(h->deadline) > 0) return;
  stats.waits_ready += ready;
  /* Answered: done. Not answered (interrupted): kept, for its restart to end at once. */
  if (reply(h->id, 0, 0, ready ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0) == 0) release(h);
  else ended(h);
}

/* A held futex wait: its word changed (0: woken), or its deadline came (ETIMEDOUT). */
static void futex_over(struct held *h) {
  int woken = 0;
  long long now = mono_ns();
  if (now >= h->next_look) {
    uint32_t word;
    woken = read_from(h->tid, h->addr, &word, sizeof word) != 0 || word != h->val;
    h->poll_ns = h->poll_ns * 2 > FUTEX_POLL_MAX_NS ? FUTEX_POLL_MAX_NS : h->poll_ns * 2;
    h->next_look = now + h->poll_ns;
  }
  if (!woken && vclock_left(h->deadline) > 0) return;
  stats.futexes_woken += woken;
  if (reply(h->id, 0, woken ? 0 : -ETIMEDOUT, 0) == 0) release(h);
  else ended(h);
}

void serve_held(void) {
  for (int i = 0; i < held_top; i++) {
    struct held *h = &held[i];
    if (h->kind == HELD_BARRIER) barrier_moved(h);
    else if (h->kind == HELD_WAIT) wait_over(h);
    else if (h->kind == HELD_FUTEX) futex_over(h);
    else if (h->kind == HELD_SLEEP && vclock_left(h->deadline) == 0) {
      /* Answered: done. Not answered (interrupted): kept, for its restart to end at once. */
      if (reply(h->id, 0, 0, 0) == 0) release(h);
      else ended(h);
    }
  }
}

int serve_pollfds(struct pollfd *fds, int max) {
  int n = 0;
  for (int i = 0; i < held_top && n < max; i++)
    if (held[i].kind == HELD_WAIT) fds[n++] = (struct pollfd){ held[i].fd, POLLIN, 0 };
  return n;
}

/* How often a reading held at a barrier looks whether the runtime has moved the clock (real ns):
   the shim's waiting readings nap as long (shim/clock.c, wait_moved). */
#define BARRIER_NAP_NS 20000LL

long long serve_timeout_ns(void) {
  long long t = -1;
  for (int i = 0; i < held_top; i++) {
    int k = held[i].kind;
    long long w = k == HELD_SLEEP || k == HELD_WAIT || k == HELD_FUTEX ? vclock_real_wait(held[i].deadline) : k == HELD_BARRIER ? BARRIER_NAP_NS : -1;
    if (k == HELD_FUTEX) {
      long long look = held[i].next_look - mono_ns();
      if (look < w) w = look > 0 ? look : 0;
    }
    if (w >= 0 && (t < 0 || w < t)) t = w;
  }
  return t;
}

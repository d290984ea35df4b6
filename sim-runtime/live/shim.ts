// A small LD_PRELOAD library loaded in front of libfaketime (clock.env() puts it first in LD_PRELOAD).
// Four things, each found by a test in test/live/clock.test.ts (docs/live.md, "The shim"):
//
// 1. Sleeps end at their virtual deadline even when the cell was frozen in between. A sleep is a
//    kernel timer on the real clock: frozen in the middle, it expires during the freeze and returns at
//    the thaw, before its virtual deadline. The shim wraps nanosleep, clock_nanosleep, usleep and
//    sleep: it computes the deadline on the program's (virtual) clock, lets libfaketime sleep, and
//    sleeps again for what is left. pthread_cond_timedwait and pthread_cond_clockwait wait on the real
//    clock for what is left of their virtual deadline (libfaketime converts it with its file, which
//    precise slices leave stale). Timeouts of poll/select/epoll_wait are relative and not converted:
//    event loops re-read the clock and wait again, which has the same effect.
//
// 2. No clock reading straddles a barrier. libfaketime reads the real clock, then the timestamp file;
//    a freeze in between, with the file rewritten before the thaw, combines the old real time with the
//    new offset. The shim brackets each reading with raw CLOCK_MONOTONIC system calls and reads again
//    when the bracket is longer than any reading but shorter than any freeze (20 µs).
//
// 3. The clock stops at the barrier: readings are clamped to the barrier the runtime writes into an
//    8-byte file (LIVESIM_CLOCK_LIMIT) mapped here, so a late freeze never shows a time the next
//    quantum takes back.
//
// 4. libfaketime works with jemalloc (redis-server's allocator). jemalloc calls clock_gettime and
//    pthread_cond_init while it initialises, holding its init lock; if that is libfaketime's first
//    call, libfaketime initialises, calls dlsym, which allocates: either libfaketime sees the
//    recursion ("Unexpected recursive calls to clock_gettime()", then failure) or the allocation waits
//    for the lock jemalloc holds, forever (libfaketime issues #130, #327, #478; not fixed upstream).
//    The shim's constructor initialises libfaketime itself, outside any allocator lock; until then its
//    clock_gettime reads the real clock with a raw system call and its pthread_cond_init(…, NULL) does
//    what glibc does: only library constructors that run before ours can see real time.
//
// The shim is compiled from the source below with the machine's C compiler on first use and cached
// (LIVESIM_FAKETIME_SHIM names a prebuilt one; LIVESIM_FAKETIME_SHIM=off disables it). Without it,
// the four problems above are back (docs/live.md). To prebuild it (for an image without a compiler):
//   node sim-runtime/live/shim.ts [OUTPUT.so]
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { which } from './spawn.ts'

export const SHIM_SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* clock_gettime and pthread_cond_init/destroy in front of libfaketime's (see the comment in
   shim.ts). Until our constructor has initialised libfaketime (and on a nested clock_gettime
   within one thread), they do not enter libfaketime, so that it never initialises (dlsym, malloc)
   from inside an allocator that holds its lock: clock_gettime reads the real clock with a raw
   system call; pthread_cond_init with default attributes does what glibc does (zero the object,
   PTHREAD_COND_INITIALIZER), and pthread_cond_destroy of such an unused object has nothing to do. */
typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*cond_init_fn)(pthread_cond_t *, const pthread_condattr_t *);
typedef int (*cond_destroy_fn)(pthread_cond_t *);
static clock_gettime_fn next_clock_gettime;
static cond_init_fn next_cond_init;
static cond_destroy_fn next_cond_destroy;
static volatile int ready;
static __thread int in_clock __attribute__((tls_model("initial-exec")));

static int raw_clock_gettime(clockid_t clock, struct timespec *tp) { return (int)syscall(SYS_clock_gettime, clock, tp); }

static void resolve(void) {
  if (!next_clock_gettime) next_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
  if (!next_cond_init) next_cond_init = (cond_init_fn)dlvsym(RTLD_NEXT, "pthread_cond_init", "GLIBC_2.3.2");
  if (!next_cond_destroy) next_cond_destroy = (cond_destroy_fn)dlvsym(RTLD_NEXT, "pthread_cond_destroy", "GLIBC_2.3.2");
}

/* The barrier: a virtual time (ns since the epoch, 0 = none) that no reading of this cell may pass,
   in an 8-byte file the runtime rewrites while the cell is frozen (LIVESIM_CLOCK_LIMIT), mapped here.
   If the runtime freezes the cell late (it did not get a CPU in time), the programs' clocks stand
   still at the barrier instead of running past it and going back at the next quantum. */
static volatile const long long *limit;
/* The fast clock: the same file holds, after the barrier, the virtual time (ns since the epoch) at an
   anchor instant, the anchor on the real CLOCK_MONOTONIC, and the rate (a double). A reading is then
   virtual = at + (real monotonic - anchor) * rate, from the vDSO: ~30 ns instead of libfaketime's
   open/fstat/read/close of its timestamp file at every reading (~5 µs, which a program that reads
   the clock a few times per request pays in CPU time, and so in virtual time). */
static volatile long long *state;
static volatile const double *state_rate;
static clock_gettime_fn libc_clock_gettime;
/* glibc's own (not libfaketime's): timed waits on a condition variable (see vcond_wait). */
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
static cond_clockwait_fn libc_cond_clockwait;
/* The state, as 8-byte words (clock.ts writes it, STATE_BYTES):
   0 barrier (virtual epoch ns, 0 = none)   1 virtual epoch ns at the anchor
   2 anchor (real CLOCK_MONOTONIC ns; -1 = "at the first reading": a precise slice, see below)
   3 rate (double)                           4 the planned anchor (for a read-only mapping)
   5 flags: 1 = wait at the barrier         6 readings waiting at the barrier now (the shim counts)
   7 sequence: odd while the runtime writes the state
   8 overshoot (virtual ns; the shim writes it)  9 the barrier (virtual epoch ns) it was measured at
   A precise slice (docs/live.md, "Precise slices") starts the clock at the first reading after the
   thaw, not at the thaw: the wake-up of a program that the runtime woke with data (or that waited at
   the barrier) is not virtual time, since the link latency already has it. And in a precise slice
   a reading that reaches the barrier waits there (a few µs naps) until the runtime moves it: the
   program cannot compute, or send, past the barrier while the freeze is on its way.
   Overshoot (words 8-9, a 128-byte state): a program does not read its clock all the time, so the
   reading that finds the barrier comes some time after the clock passed it; that time (the reading's
   clock minus the barrier, less any of it the thread was kept from its CPU: "Steal" below) is work
   the program did past the barrier. The first reading of the next precise slice, if that slice
   starts at the same barrier, puts the anchor that much earlier, so that the work is counted in the
   next quantum instead of being free, and what does not fit into that slice into the one after.
   Programs about to block (poll, select, epoll_wait with a timeout) check the barrier first, for
   the same reason: the CPU between a program's last reading and its going idle would otherwise not
   count. */
static int state_rw, state_ext;

static void map_limit(void) {
  const char *file = getenv("LIVESIM_CLOCK_LIMIT");
  if (!file || !*file) return;
  int fd = open(file, O_RDWR | O_CLOEXEC);
  state_rw = fd >= 0;
  if (fd < 0) fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  int big = fstat(fd, &st) == 0 && st.st_size >= 64;
  state_ext = big && st.st_size >= 128;
  void *p = mmap(NULL, state_ext ? 128 : big ? 64 : sizeof(long long), state_rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return;
  limit = (volatile const long long *)p;
  if (big && !getenv("LIVESIM_SLOW_CLOCK")) {
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc) libc_clock_gettime = (clock_gettime_fn)dlsym(libc, "clock_gettime");
    if (libc) libc_cond_clockwait = (cond_clockwait_fn)dlsym(libc, "pthread_cond_clockwait");
    if (libc_clock_gettime) {
      state = (volatile long long *)p;
      state_rate = (volatile const double *)((volatile const char *)p + 24);
    }
  }
}

/* Write stamps (LIVESIM_STAMPS): a ring the runtime reads after each quantum (stamps.ts). Before
   every write to a connected IPv4 socket the shim appends (virtual time of the write, offset in the
   socket's stream of its first byte, bytes asked, local port, peer port, peer address), so that the
   runtime stamps each byte it relays with the virtual time the program wrote it, not the time the
   runtime read it. Appended before the system call, a record is there when its bytes are; matched by
   offset, a record of a write that wrote less (or nothing) does no harm: the next one starts where
   the bytes really went. Header: word 0 = entries appended (fetch-add). Entry i at
   64 + (i % STAMP_SLOTS) * 40: seq (i + 1, stored last), vt, off, len (u32), lport (u16), rport (u16),
   raddr (u32, host order, top bit cleared), spare. */
#define STAMP_SLOTS 4096
struct stamp { unsigned long long seq; long long vt; unsigned long long off; unsigned int len; unsigned short lport, rport; unsigned int raddr, spare; };
static volatile unsigned long long *stamp_head;
static struct stamp *stamp_ring;

static void map_stamps(void) {
  const char *file = getenv("LIVESIM_STAMPS");
  if (!file || !*file) return;
  int fd = open(file, O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  size_t size = 64 + (size_t)STAMP_SLOTS * sizeof(struct stamp);
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < size) { close(fd); return; }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return;
  stamp_head = (volatile unsigned long long *)p;
  stamp_ring = (struct stamp *)((char *)p + 64);
}

static int limited(clockid_t c) {
  return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_REALTIME_COARSE || c == CLOCK_MONOTONIC_COARSE ||
         c == CLOCK_MONOTONIC_RAW || c == CLOCK_BOOTTIME;
}

__attribute__((constructor)) static void livesim_shim_init(void) {
  in_clock = 1;
  map_limit();
  map_stamps();
  resolve();
  /* libfaketime initialises here, outside any allocator lock. */
  struct timespec t;
  if (next_clock_gettime) next_clock_gettime(CLOCK_REALTIME, &t);
  if (next_cond_init && next_cond_destroy) {
    pthread_cond_t c;
    if (next_cond_init(&c, NULL) == 0) next_cond_destroy(&c);
  }
  in_clock = 0;
  ready = next_clock_gettime && next_cond_init && next_cond_destroy;
}

/* A clock reading must not straddle a barrier. libfaketime reads the real clock first, then the
   timestamp file; a freeze in between, with the file rewritten before the thaw, would combine the
   old real time with the new offset (an error as large as the frozen span). So bracket the reading
   with two raw CLOCK_MONOTONIC readings and read again when more than 20 µs passed: a freeze always
   lasts longer than that (the driver's lead before a thaw alone is longer), an ordinary reading
   takes 2-10 µs, and a reading that was merely preempted costs one more. */
#define STRADDLE_NS 20000LL

static long long raw_mono_ns(void) {
  struct timespec t;
  raw_clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void nap_ns(long ns) {
  struct timespec t = { 0, ns };
  syscall(SYS_nanosleep, &t, NULL);
}

/* Wait until the runtime moves the state on from sequence seq. For the first WAIT_YIELD_NS yielding
   the CPU between looks (sched_yield: whoever else is runnable here, the runtime first of all, runs;
   with nobody else, the look comes again at once), then in naps with a 1 µs timer slack. Napping from
   the start does not work: on a VM a nanosleep of a few µs often returns without ever leaving the CPU
   (the timer has expired before the switch), so two waiting programs kept the runtime from the CPU
   it needed to move them, until the scheduler tick: the quanta of milliseconds seen in cooperative
   runs. */
#define WAIT_YIELD_NS 1000000LL
static long long mono_ns(void) {
  struct timespec t;
  libc_clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void wait_moved(long long seq) {
  long long t0 = mono_ns();
  while (state[7] == seq && mono_ns() - t0 < WAIT_YIELD_NS) sched_yield();
  if (state[7] == seq) {
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    while (state[7] == seq) nap_ns(20000);
    if (slack > 0) prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
  }
}

/* The anchor of a precise slice that starts at virtual epoch ns at: the first reading's real time,
   moved back by the overshoot measured at that barrier (at rate). What does not fit into this slice
   (an overshoot longer than the slice: a program that works longer than a slice between two
   readings) is this slice's overshoot in turn (carry_rest; the caller records it once it has started
   the slice), so that all of it counts: cut at the slice's length, a program computing 15 µs
   between readings on 6 µs slices got 48 ms of virtual time for 64 ms of CPU. A negative overshoot
   (the thread lost more of the last slice to others than it worked past it: see note_overshoot)
   starts the clock that much later, by at most the slice's length. An overshoot is CPU time (steal
   is taken off), so the bound on what one barrier carries, OVERSHOOT_MAX_NS, is only a guard. */
#define OVERSHOOT_MAX_NS 100000000LL
static __thread long long carry_rest __attribute__((tls_model("initial-exec")));
static long long first_anchor(long long real, long long at, double rate) {
  carry_rest = 0;
  if (!state_ext || state[9] != at) return real;
  long long over = state[8], quantum = state[0] - at;
  if (over > OVERSHOOT_MAX_NS) over = OVERSHOOT_MAX_NS;
  if (over > quantum) {
    carry_rest = over - quantum;
    over = quantum;
  }
  if (over < -quantum) over = -quantum;
  return real - (long long)((double)over / rate);
}

/* When this thread last came back from a wrapped call that may block (0: never): an overshoot is
   work, so it is never more than the time since (the clock counts the wall from the slice's first
   reading on, and a program that blocked in the slice, then woke on a timer while the quantum went
   on, would otherwise bring all that idle wall past the barrier). */
static __thread long long woke_at __attribute__((tls_model("initial-exec")));

/* Steal. The clock runs with the wall, so a thread kept from its CPU in a slice (by the other cells,
   the runtime, anything else on the machine) would have that time counted as its work, also past the
   barrier, and carried. The thread that starts a slice notes the real time, its CPU time
   (CLOCK_THREAD_CPUTIME_ID, a system call before the reading that starts the clock) and its time
   blocked in wrapped calls so far; its reading past the barrier takes off the overshoot whatever of
   the slice's wall was neither CPU nor blocked. Wall and CPU time are read together (the real time
   right after each CPU reading): a system call's half a µs between them, slice after slice, was
   counted as work. */
static __thread long long base_at __attribute__((tls_model("initial-exec")));
static __thread long long base_real __attribute__((tls_model("initial-exec")));
static __thread long long base_cpu __attribute__((tls_model("initial-exec")));
static __thread long long base_blocked __attribute__((tls_model("initial-exec")));
static __thread long long blocked_total __attribute__((tls_model("initial-exec")));
static __thread long long block_start __attribute__((tls_model("initial-exec")));

/* A thread whose last wake came past the barrier of the slice it started (a timeout that ran out
   before the runtime moved the clock): that slice's start (0: the last wake was not past one), and
   the thread's CPU time and the real time then. Its overshoot is then measured from the wake (see
   woke_at), so the steal taken off it is measured from the wake too; the slice's whole steal would
   also take off what the thread lost before it blocked, which delayed nothing after (a program
   preempted between its slice's first reading and a poll() had that much of its work after the
   poll dropped). Read only then: a system call at every wake would cost redis-server a few % of
   its CPU. The state is read without the seqlock: a torn read only picks the other estimate. */
static __thread long long wake_slice __attribute__((tls_model("initial-exec")));
static __thread long long wake_cpu __attribute__((tls_model("initial-exec")));
static __thread long long wake_real __attribute__((tls_model("initial-exec")));

/* The clock of a slice that started at virtual at, anchored at real anchor: its reading at real. */
static long long clock_at(long long at, long long anchor, double rate, long long real) {
  long long d = real - anchor;
  return at + (d > 0 ? (long long)((double)d * rate) : 0);
}

/* Words 8-9: the overshoot at barrier cap, the largest recorded there (a new barrier replaces it). */
static void record_overshoot(long long over, long long cap) {
  if (state[9] != cap || over > state[8]) {
    state[8] = over;
    __sync_synchronize();
    state[9] = cap;
  }
}

static long long thread_cpu_ns(void) {
  struct timespec t;
  if (raw_clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return -1;
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* A reading at or past the barrier cap of the slice that started at at (virtual v, real
   CLOCK_MONOTONIC real): record the overshoot (the largest of the cell's threads at this barrier). */
static void note_overshoot(long long v, long long at, long long cap, long long real, double rate) {
  if (!state_ext) return;
  long long over = v - cap;
  if (woke_at > 0 && real > woke_at && (long long)((double)(real - woke_at) * rate) < over) over = (long long)((double)(real - woke_at) * rate);
  if (base_at == at && base_cpu >= 0) {
    long long cpu = thread_cpu_ns(), cpu_at = mono_ns();
    long long steal = cpu < 0 ? 0
      : wake_slice == at
        ? (cpu_at - wake_real) - (cpu - wake_cpu) /* woke past this barrier, not blocked since */
        : (cpu_at - base_real) - (cpu - base_cpu) - (blocked_total - base_blocked);
    if (steal > 0) over -= (long long)((double)steal * rate);
    /* Less than nothing (the thread lost more of the slice than it worked past the barrier) only if
       it has not blocked since: steal before a wait that ends on the real clock delayed nothing. */
    if (over < 0 && blocked_total != base_blocked) over = 0;
  } else if (over > cap - at) {
    /* Not the thread that started the slice: no CPU time to tell work from steal, so at most the
       slice's length, as before steal was taken off (two processes of one cell on a loaded machine:
       the one kept from its CPU carried milliseconds). */
    over = cap - at;
  }
  record_overshoot(over, cap);
}

/* The fast clock (see state above): virtual epoch ns, or -1 when there is none. A reading that saw
   the state change (the sequence or the anchor), also while it read the real clock, starts over.
   check_only: a program about to block. It waits at the barrier if its clock is there, and starts a
   precise slice's clock only to count an overshoot; returns 0 (no reading for the program). */
static long long fast_ns_mode(int check_only) {
  long long odd_since = 0;
  /* This call waited (at the barrier, or for the runtime's write): from then on the thread did no
     work for its program, so a reading past the barrier is no overshoot. A waiter that was kept from
     a CPU when the runtime moved the clock (both CPUs busy) found itself far past the next barrier;
     counted, that started the slice after it a whole slice early, so every thread of the cell waited
     at once, another late waiter noted a whole slice again, and so on: redis-server answered nothing
     for 1-50 ms of virtual time in C=10 redis-benchmark runs. */
  int waited = 0;
  for (int tries = 0; tries < 1000000; tries++) {
    /* A seqlock (word 7): odd while the runtime rewrites the state (a Cooperative cell is not frozen
       then); a reading that saw it change, also while it read the real clock, starts over. The
       runtime may lose its CPU between the writes: an odd sequence is waited out (spinning, not
       counted as tries) for up to 100 ms, rather than falling back to libfaketime's stale file.
       Spinning, not napping: a sleeping thread would look idle to the cooperative driver. */
    long long seq = state[7];
    if (seq & 1) {
      long long now = mono_ns();
      if (!odd_since) odd_since = now;
      if (now - odd_since < 100000000LL) tries--;
      waited = 1;
      sched_yield(); /* the runtime may need this CPU to finish */
      continue;
    }
    /* Loads are not reordered with loads on x86: an acquire fence (no instruction there) orders the
       state's words after the sequence; a full fence here cost every reading ~30 ns. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    /* About to start a precise slice: the thread's CPU time first, outside the slice (see "Steal");
       and the cache line of the anchor taken for writing (a locked add of 0: the runtime last read
       it, so the compare-and-swap that starts the clock would wait for it, and be counted). */
    long long cpu0 = -1, cpu0_at = 0;
    if (state_ext && state_rw && state[2] == -1) {
      __sync_fetch_and_add(&state[6], 0LL);
      cpu0 = thread_cpu_ns();
      cpu0_at = mono_ns();
    }
    long long at = state[1], anchor = state[2], cap = state[0], flags = state[5];
    double rate = *state_rate;
    if (at == 0 || !(rate > 0)) return -1;
    struct timespec m;
    if (libc_clock_gettime(CLOCK_MONOTONIC, &m) != 0) return -1;
    __sync_synchronize();
    if (state[7] != seq || state[2] != anchor) continue;
    long long real = (long long)m.tv_sec * 1000000000LL + m.tv_nsec;
    if (anchor == -1) {
      /* A precise slice: the first reading starts the clock. */
      if (!state_rw) anchor = state[4];
      else {
        long long a = first_anchor(real, at, rate);
        if (check_only && a >= real) return 0;
        if (!__sync_bool_compare_and_swap(&state[2], -1LL, a)) continue;
        base_at = at;
        base_real = cpu0_at;
        base_cpu = cpu0;
        base_blocked = blocked_total;
        if (carry_rest > 0) record_overshoot(carry_rest, cap);
        /* This reading started the clock: it reads the clock's start (plus the overshoot), not a
           second pass through the loop, whose ~100 ns would count as the program's work. A set()
           since the reading above (the sequence moved) takes the loop again. */
        if (state[7] != seq) continue;
        anchor = a;
      }
    }
    long long v = clock_at(at, anchor, rate, real);
    if (cap > 0 && v >= cap) {
      if ((flags & 1) && state_rw) {
        if (!waited) note_overshoot(v, at, cap, real, rate);
        /* Wait at the barrier until the runtime moves it (a frozen cell waits in the freezer meanwhile). */
        __sync_fetch_and_add(&state[6], 1LL);
        wait_moved(seq);
        __sync_fetch_and_sub(&state[6], 1LL);
        waited = 1;
        continue;
      }
      v = cap;
    }
    return check_only ? 0 : v;
  }
  return -1;
}

static long long fast_ns(void) { return fast_ns_mode(0); }

static int fast_clock(struct timespec *tp) {
  if (!state) return 0;
  long long v = fast_ns();
  if (v < 0) return 0;
  tp->tv_sec = v / 1000000000LL;
  tp->tv_nsec = v % 1000000000LL;
  return 1;
}

int clock_gettime(clockid_t clock, struct timespec *tp) {
  if (!ready || in_clock) return raw_clock_gettime(clock, tp);
  if (limited(clock) && tp && fast_clock(tp)) return 0;
  in_clock = 1;
  int r = 0;
  long long cap = 0;
  for (int tries = 0; tries < 100; tries++) {
    long long before = raw_mono_ns();
    /* The barrier is read inside the bracket too: value and barrier come from the same quantum. */
    cap = limit && limited(clock) ? *limit : 0;
    r = next_clock_gettime(clock, tp);
    if (r != 0 || raw_mono_ns() - before <= STRADDLE_NS) break;
  }
  if (r == 0 && cap > 0 && (long long)tp->tv_sec * 1000000000LL + tp->tv_nsec > cap) {
    tp->tv_sec = cap / 1000000000LL;
    tp->tv_nsec = cap % 1000000000LL;
  }
  in_clock = 0;
  return r;
}

/* time() and gettimeofday() through the guarded clock_gettime, for the same reason. */
time_t time(time_t *out) {
  struct timespec t;
  if (clock_gettime(CLOCK_REALTIME, &t) != 0) return (time_t)-1;
  if (out) *out = t.tv_sec;
  return t.tv_sec;
}

int gettimeofday(struct timeval *tv, void *tz) {
  (void)tz;
  struct timespec t;
  int r = clock_gettime(CLOCK_REALTIME, &t);
  if (r == 0 && tv) {
    tv->tv_sec = t.tv_sec;
    tv->tv_usec = t.tv_nsec / 1000;
  }
  return r;
}

int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr) {
  if (!ready && attr == NULL) {
    memset(cond, 0, sizeof *cond);
    return 0;
  }
  if (!next_cond_init) resolve();
  return next_cond_init ? next_cond_init(cond, attr) : ENOSYS;
}

int pthread_cond_destroy(pthread_cond_t *cond) {
  if (!ready) return 0;
  return next_cond_destroy(cond);
}

typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

static long long ns_of(const struct timespec *t) { return (long long)t->tv_sec * 1000000000LL + t->tv_nsec; }
static struct timespec ts_of(long long ns) { struct timespec t = { ns / 1000000000LL, ns % 1000000000LL }; return t; }
static long long vnow(clockid_t c) { struct timespec t; clock_gettime(c, &t); return ns_of(&t); }

/* Virtual ns left before a virtual deadline (0: it has come). While the barrier is short of the
   deadline, from the barrier alone, without a reading: a sleeper that woke on the real clock before
   its virtual deadline (the simulation runs slower than the wall) sleeps again without reading its
   clock. A reading would start the cell's precise slice, whose clock runs with the wall from then on,
   and a background thread waking ever more often near its deadline (jemalloc's, in redis-server) took
   the slices of the thread with the work: stalls of several ms of virtual time in a busy pair. */
static long long virtual_left(long long deadline) {
  long long cap = state ? state[0] : 0;
  if (cap > 0 && cap < deadline) return deadline - cap;
  long long left = deadline - vnow(CLOCK_REALTIME);
  return left > 0 ? left : 0;
}

/* Sleep until a virtual deadline: sleep (libfaketime's nanosleep, which divides by the rate) for what
   is left, and again until the virtual clock is there. */
static int after_block(int r, int blocking);
static void block_begin(void);

static int vsleep_until(long long deadline, struct timespec *rem) {
  static nanosleep_fn next;
  if (!next) next = (nanosleep_fn)dlsym(RTLD_NEXT, "nanosleep");
  for (;;) {
    long long ns = virtual_left(deadline);
    if (ns == 0) return 0;
    struct timespec req = ts_of(ns), r;
    block_begin();
    int e = after_block(next(&req, &r), 1);
    if (e != 0) {
      if (errno == EINTR && rem) {
        long long left = deadline - vnow(CLOCK_REALTIME);
        *rem = ts_of(left > 0 ? left : 0);
      }
      return -1;
    }
  }
}

static int vsleep(long long ns, struct timespec *rem) {
  return ns <= 0 ? 0 : vsleep_until(vnow(CLOCK_REALTIME) + ns, rem);
}

int nanosleep(const struct timespec *req, struct timespec *rem) {
  if (!req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000L || req->tv_sec < 0) { errno = EINVAL; return -1; }
  return vsleep(ns_of(req), rem);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
  static clock_nanosleep_fn next;
  if (!next) next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
  if (!req) return EINVAL;
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME) return next(clock, flags, req, rem);
  if (flags & TIMER_ABSTIME) {
    /* Not libfaketime's conversion of the deadline: it uses its file, which precise slices leave stale. */
    return vsleep_until(ns_of(req), NULL) != 0 ? errno : 0;
  }
  if (vsleep(ns_of(req), rem) != 0) return errno;
  return 0;
}

int usleep(useconds_t usec) {
  return vsleep((long long)usec * 1000LL, NULL);
}

unsigned int sleep(unsigned int seconds) {
  struct timespec rem = { 0, 0 };
  if (vsleep((long long)seconds * 1000000000LL, &rem) != 0) return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
  return 0;
}

/* Write stamps: which socket an fd is (cached; new sockets and close() forget), the virtual time of
   each write, appended to the ring after the write (so the length is what was written). */
#define FD_CACHE 4096
static unsigned long long fd_key[FD_CACHE]; /* 0 unknown, 1 not a connected IPv4 socket, else 1<<63 | raddr<<32 | lport<<16 | rport */
static unsigned long long fd_off[FD_CACHE]; /* bytes written to the socket so far */

static void forget_fd(int fd) { if (fd >= 0 && fd < FD_CACHE) { fd_key[fd] = 0; fd_off[fd] = 0; } }

static unsigned long long key_of(int fd) {
  if (fd < 0 || fd >= FD_CACHE) return 1;
  if (fd_key[fd]) return fd_key[fd];
  struct sockaddr_in l, r;
  socklen_t ll = sizeof l, rl = sizeof r;
  unsigned long long k = 1;
  int e = errno;
  if (getsockname(fd, (struct sockaddr *)&l, &ll) == 0 && l.sin_family == AF_INET) {
    if (getpeername(fd, (struct sockaddr *)&r, &rl) != 0) { errno = e; return 1; } /* not connected yet: ask again later */
    k = (1ULL << 63) | ((unsigned long long)ntohl(r.sin_addr.s_addr) << 32) | ((unsigned long long)ntohs(l.sin_port) << 16) | ntohs(r.sin_port);
  }
  errno = e;
  fd_key[fd] = k;
  return k;
}

static long long stamp_now(void) {
  if (state) { long long v = fast_ns(); if (v >= 0) return v; }
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return ns_of(&t);
}

static void stamp(int fd, unsigned long long k, long long vt, size_t len) {
  unsigned long long i = __atomic_fetch_add(stamp_head, 1ULL, __ATOMIC_ACQ_REL);
  struct stamp *e = &stamp_ring[i % STAMP_SLOTS];
  e->vt = vt;
  e->off = fd_off[fd];
  e->len = len > 0xffffffffU ? 0xffffffffU : (unsigned int)len;
  e->lport = (unsigned short)(k >> 16);
  e->rport = (unsigned short)k;
  e->raddr = (unsigned int)(k >> 32) & 0x7fffffffU;
  __atomic_store_n(&e->seq, i + 1, __ATOMIC_RELEASE);
}

/* Before a write of len bytes to fd: stamp it if fd is a connected IPv4 socket; returns whether it did. */
static int pre_write(int fd, size_t len) {
  if (!stamp_head || !ready || in_clock) return 0;
  unsigned long long k = key_of(fd);
  if (!(k >> 63)) return 0;
  stamp(fd, k, stamp_now(), len);
  return 1;
}

/* After it: where the socket's next byte goes. */
static ssize_t post_write(int fd, int stamped, ssize_t r) {
  if (stamped && r > 0) __atomic_fetch_add(&fd_off[fd], (unsigned long long)r, __ATOMIC_RELAXED);
  return r;
}

static size_t iov_bytes(const struct iovec *iov, int cnt) {
  size_t n = 0;
  for (int i = 0; iov && i < cnt; i++) n += iov[i].iov_len;
  return n;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*close_fn)(int);
typedef int (*socket_fn)(int, int, int);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

ssize_t write(int fd, const void *buf, size_t n) {
  static write_fn next;
  if (!next) next = (write_fn)dlsym(RTLD_NEXT, "write");
  int st = pre_write(fd, n);
  return post_write(fd, st, next(fd, buf, n));
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  static writev_fn next;
  if (!next) next = (writev_fn)dlsym(RTLD_NEXT, "writev");
  int st = pre_write(fd, iov_bytes(iov, cnt));
  return post_write(fd, st, next(fd, iov, cnt));
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen) {
  static sendto_fn next;
  if (!next) next = (sendto_fn)dlsym(RTLD_NEXT, "sendto");
  int st = to ? 0 : pre_write(fd, n);
  return post_write(fd, st, next(fd, buf, n, flags, to, tolen));
}

ssize_t send(int fd, const void *buf, size_t n, int flags) { return sendto(fd, buf, n, flags, NULL, 0); }

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  static sendmsg_fn next;
  if (!next) next = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
  int st = !msg || msg->msg_name ? 0 : pre_write(fd, iov_bytes(msg->msg_iov, (int)msg->msg_iovlen));
  return post_write(fd, st, next(fd, msg, flags));
}

/* A program about to block (a poll, select or epoll_wait that may wait): first the barrier, if its
   clock is there (see "Overshoot" above). */
static void before_block(void) {
  if (state && state_rw && ready && !in_clock && (state[5] & 1)) fast_ns_mode(1);
  block_begin();
}

/* The thread may block from now on (until after_block): that time is neither work nor steal. */
static void block_begin(void) {
  if (state) block_start = mono_ns();
}

static int after_block(int r, int blocking) {
  if (state && blocking) {
    int e = errno;
    woke_at = mono_ns();
    if (block_start > 0 && woke_at > block_start) blocked_total += woke_at - block_start;
    wake_slice = 0;
    if (state_ext && state_rw && base_at != 0 && base_cpu >= 0 && state[1] == base_at) {
      long long anchor = state[2], cap = state[0];
      double rate = *state_rate;
      if (anchor != -1 && cap > 0 && rate > 0 && clock_at(base_at, anchor, rate, woke_at) >= cap) {
        wake_cpu = thread_cpu_ns();
        wake_real = mono_ns();
        if (wake_cpu >= 0) wake_slice = base_at;
      }
    }
    errno = e;
  }
  block_start = 0;
  return r;
}

typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
  static epoll_wait_fn next;
  if (!next) next = (epoll_wait_fn)dlsym(RTLD_NEXT, "epoll_wait");
  if (timeout != 0) before_block();
  return after_block(next(epfd, ev, max, timeout), timeout != 0);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
  static epoll_pwait_fn next;
  if (!next) next = (epoll_pwait_fn)dlsym(RTLD_NEXT, "epoll_pwait");
  if (timeout != 0) before_block();
  return after_block(next(epfd, ev, max, timeout, mask), timeout != 0);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
  static poll_fn next;
  if (!next) next = (poll_fn)dlsym(RTLD_NEXT, "poll");
  if (timeout != 0) before_block();
  return after_block(next(fds, n, timeout), timeout != 0);
}

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
  static select_fn next;
  if (!next) next = (select_fn)dlsym(RTLD_NEXT, "select");
  int blocking = !tv || tv->tv_sec != 0 || tv->tv_usec != 0;
  if (blocking) before_block();
  return after_block(next(n, r, w, e, tv), blocking);
}

/* Timed waits on a condition variable, with an absolute deadline on the program's (virtual) clock:
   wait on the real CLOCK_MONOTONIC for what is left of it (at the clock's rate), and again while the
   virtual clock is short of the deadline. libfaketime converts such a deadline with its own clock,
   its timestamp file, which precise slices do not rewrite (clock.ts): it keeps the last offset and
   runs ahead at wall speed while the simulation runs slower. Once it was ahead by more than a wait,
   every deadline looked past: redis-server's jemalloc background thread (decay waits of seconds) then
   timed out at once, read its clock, and again, from about 10 s of wall on, taking the CPU its cell
   and the runtime needed (a C=10 redis-benchmark went from 77000 to 9000 GET/s). The clock of the
   condition variable does not matter: both virtual clocks read the same time. */
static int vcond_wait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
  long long deadline = ns_of(abstime);
  for (;;) {
    long long left = virtual_left(deadline);
    if (left == 0) return ETIMEDOUT;
    double rate = *state_rate;
    long long real_ns = (long long)((double)left / (rate > 0 ? rate : 1.0));
    struct timespec real = ts_of(mono_ns() + (real_ns > 0 ? real_ns : 1));
    block_begin();
    int r = after_block(libc_cond_clockwait(c, m, CLOCK_MONOTONIC, &real), 1);
    if (r != ETIMEDOUT) return r;
  }
}

static int virtual_wait(const struct timespec *abstime) {
  return state && libc_cond_clockwait && ready && !in_clock && abstime && abstime->tv_nsec >= 0 && abstime->tv_nsec < 1000000000L;
}

typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
  static cond_timedwait_fn next;
  if (!next) next = (cond_timedwait_fn)dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
  if (!virtual_wait(abstime)) return next ? next(c, m, abstime) : ENOSYS;
  return vcond_wait(c, m, abstime);
}

/* glibc 2.30+; libfaketime 0.9.10 does not wrap it, so without this a virtual deadline (a date in the
   run's base year, also on CLOCK_MONOTONIC) would be waited for on the real clock. */
int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
  static cond_clockwait_fn next;
  if (!next) next = libc_cond_clockwait ? libc_cond_clockwait : (cond_clockwait_fn)dlsym(RTLD_NEXT, "pthread_cond_clockwait");
  if (!limited(clock) || !virtual_wait(abstime)) return next ? next(c, m, clock, abstime) : ENOSYS;
  return vcond_wait(c, m, abstime);
}

int close(int fd) {
  static close_fn next;
  if (!next) next = (close_fn)dlsym(RTLD_NEXT, "close");
  forget_fd(fd);
  return next(fd);
}

int socket(int domain, int type, int protocol) {
  static socket_fn next;
  if (!next) next = (socket_fn)dlsym(RTLD_NEXT, "socket");
  int fd = next(domain, type, protocol);
  forget_fd(fd);
  return fd;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static accept4_fn next;
  if (!next) next = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
  int c = next(fd, addr, len, flags);
  forget_fd(c);
  return c;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) { return accept4(fd, addr, len, 0); }

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static connect_fn next;
  if (!next) next = (connect_fn)dlsym(RTLD_NEXT, "connect");
  forget_fd(fd);
  return next(fd, addr, len);
}
`

let cached: { path?: string; why: string } | undefined

/** The compiled shim, or why there is none. Compiles once per process (and once per machine: cached by source hash). */
export function faketimeShim(): { path?: string; why: string } {
  if (cached) return cached
  const override = process.env.LIVESIM_FAKETIME_SHIM
  if (override === 'off' || override === '0') return (cached = { why: 'disabled by LIVESIM_FAKETIME_SHIM' })
  if (override) {
    return (cached = existsSync(override) ? { path: override, why: `LIVESIM_FAKETIME_SHIM=${override}` } : { why: `LIVESIM_FAKETIME_SHIM=${override} does not exist` })
  }
  const so = path.join(os.tmpdir(), `livesim-faketime-shim-${process.getuid?.() ?? 'u'}`, `shim-${SHIM_HASH}.so`)
  if (existsSync(so)) return (cached = { path: so, why: `cached ${so}` })
  try {
    return (cached = { path: buildShim(so), why: `built ${so}` })
  } catch (e) {
    return (cached = { why: (e as Error).message })
  }
}

const SHIM_HASH = createHash('sha256').update(SHIM_SOURCE).digest('hex').slice(0, 16)

/** Compile the shim to `output` (atomically); returns `output`. */
export function buildShim(output: string): string {
  const cc = which('cc') ?? which('gcc') ?? which('clang')
  if (!cc) throw new Error('no C compiler (cc) to build the libfaketime shim')
  mkdirSync(path.dirname(output), { recursive: true })
  const src = `${output}.${process.pid}.c`
  const tmp = `${output}.${process.pid}.tmp`
  writeFileSync(src, SHIM_SOURCE)
  try {
    execFileSync(cc, ['-O2', '-shared', '-fPIC', '-o', tmp, src, '-ldl'], { stdio: ['ignore', 'ignore', 'pipe'] })
    renameSync(tmp, output)
    return output
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string }
    throw new Error(`building the libfaketime shim failed: ${err.stderr?.toString().trim() || err.message}`, { cause: e })
  } finally {
    rmSync(src, { force: true })
    rmSync(tmp, { force: true })
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2]
  console.log(out ? buildShim(path.resolve(out)) : (faketimeShim().path ?? faketimeShim().why))
}

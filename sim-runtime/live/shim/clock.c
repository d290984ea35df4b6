/* The virtual clock of a live program: clock_gettime, time, gettimeofday (and pthread_cond_init/
   destroy, for libfaketime's sake), read from the clock state the runtime writes (layout.h). The
   shim is an LD_PRELOAD library loaded in front of libfaketime; sleep.c, block.c and stamps.c are its
   other parts (docs/live.md, "The shim"). What this file guarantees:
   - No clock reading straddles a barrier. libfaketime reads the real clock, then its timestamp file;
     a freeze in between, with the file rewritten before the thaw, combines the old real time with
     the new offset. The fast clock reads the state under a seqlock; libfaketime's readings are
     bracketed with raw CLOCK_MONOTONIC system calls and taken again when the bracket is longer than
     any reading but shorter than any freeze (20 µs).
   - The clock stops at the barrier: readings are clamped to it, so a late freeze never shows a time
     the next quantum takes back.
   - libfaketime works with jemalloc (redis-server's allocator). jemalloc calls clock_gettime and
     pthread_cond_init while it initialises, holding its init lock; if that is libfaketime's first
     call, libfaketime initialises, calls dlsym, which allocates: either libfaketime sees the
     recursion ("Unexpected recursive calls to clock_gettime()", then failure) or the allocation
     waits for the lock jemalloc holds, forever (libfaketime issues #130, #327, #478). The shim's
     constructor initialises libfaketime itself, outside any allocator lock; until then its
     clock_gettime reads the real clock with a raw system call and its pthread_cond_init(…, NULL)
     does what glibc does: only library constructors that run before ours can see real time. */
#include "shim.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

/* clock_gettime and pthread_cond_init/destroy in front of libfaketime's (see the comment in
   top of this file). Until our constructor has initialised libfaketime (and on a nested clock_gettime
   within one thread), they do not enter libfaketime, so that it never initialises (dlsym, malloc)
   from inside an allocator that holds its lock: clock_gettime reads the real clock with a raw
   system call; pthread_cond_init with default attributes does what glibc does (zero the object,
   PTHREAD_COND_INITIALIZER), and pthread_cond_destroy of such an unused object has nothing to do. */
typedef int (*cond_init_fn)(pthread_cond_t *, const pthread_condattr_t *);
typedef int (*cond_destroy_fn)(pthread_cond_t *);
static clock_gettime_fn next_clock_gettime;
static cond_init_fn next_cond_init;
static cond_destroy_fn next_cond_destroy;
volatile int ready;
__thread int in_clock SHIM_TLS;

static int raw_clock_gettime(clockid_t clock, struct timespec *tp) { return (int)syscall_result(raw_syscall6(SYS_clock_gettime, clock, (long)tp, 0, 0, 0, 0)); }

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
volatile long long *state;
volatile const double *state_rate;
clock_gettime_fn libc_clock_gettime;
/* glibc's own (not libfaketime's): timed waits on a condition variable (see vcond_wait). */
cond_clockwait_fn libc_cond_clockwait;
/* The state's words are W_* in layout.h (clock.ts writes them).
   A precise slice (docs/live.md, "Precise slices") starts the clock at the first reading after the
   thaw, not at the thaw: the wake-up of a program that the runtime woke with data (or that waited at
   the barrier) is not virtual time, since the link latency already has it. And in a precise slice
   a reading that reaches the barrier waits there (a few µs naps) until the runtime moves it: the
   program cannot compute, or send, past the barrier while the freeze is on its way.
   Overshoot (W_OVERSHOOT, W_OVERSHOOT_AT): a program does not read its clock all the time, so the
   reading that finds the barrier comes some time after the clock passed it; that time (the reading's
   clock minus the barrier, less any of it the thread was kept from its CPU: "Steal" below) is work
   the program did past the barrier. The first reading of the next precise slice, if that slice
   starts at the same barrier, puts the anchor that much earlier, so that the work is counted in the
   next quantum instead of being free, and what does not fit into that slice into the one after.
   Programs about to block (poll, select, epoll_wait with a timeout) check the barrier first, for
   the same reason: the CPU between a program's last reading and its going idle would otherwise not
   count. */
int state_rw, state_ext;

static void map_limit(void) {
  const char *file = getenv("LIVESIM_CLOCK_LIMIT");
  if (!file || !*file) return;
  int fd = open(file, O_RDWR | O_CLOEXEC);
  state_rw = fd >= 0;
  if (fd < 0) fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  int big = fstat(fd, &st) == 0 && st.st_size >= STATE_RUNTIME_BYTES;
  state_ext = big && st.st_size >= STATE_BYTES;
  /* The deadline registry after the state (deadlines.c): written by the programs, so only writable. */
  int registry = state_ext && state_rw && st.st_size >= CLOCK_FILE_BYTES;
  size_t len = registry ? CLOCK_FILE_BYTES : state_ext ? STATE_BYTES : big ? STATE_RUNTIME_BYTES : sizeof(long long);
  void *p = mmap(NULL, len, state_rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return;
  limit = (volatile const long long *)p;
  if (big && !getenv("LIVESIM_SLOW_CLOCK")) {
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc) libc_clock_gettime = (clock_gettime_fn)dlsym(libc, "clock_gettime");
    if (libc) libc_cond_clockwait = (cond_clockwait_fn)dlsym(libc, "pthread_cond_clockwait");
    if (libc_clock_gettime) {
      state = (volatile long long *)p;
      state_rate = (volatile const double *)((volatile const char *)p + W_RATE * 8);
      if (registry) wait_table = (volatile long long *)((volatile char *)p + WAITS_OFFSET);
    }
  }
}

int limited(clockid_t c) {
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
  raw_syscall6(SYS_nanosleep, (long)&t, 0, 0, 0, 0, 0);
}

/* Wait until the runtime moves the state on from sequence seq. First WAIT_SPIN_NS on the CPU (a
   pause between looks at the state's cache line), since a thread that yields goes through the
   scheduler at every look: a PostgreSQL backend under pgbench had ~65 % of its samples in the
   kernel's scheduler, and its own code took ~1.4 times its native time per transaction (estimated,
   one profile each); with the spin, pgbench under livesim went from 0.77 to 0.85 of its native
   tps, the same with 40 µs (bench/README.md, "Live PostgreSQL"); not with one CPU allowed (can_spin).
   Then, for up to WAIT_YIELD_NS,
   yielding the CPU between looks (sched_yield: whoever else is runnable here, the runtime first of all, runs;
   with nobody else, the look comes again at once), then in naps with a 1 µs timer slack. Napping from
   the start does not work: on a VM a nanosleep of a few µs often returns without ever leaving the CPU
   (the timer has expired before the switch), so two waiting programs kept the runtime from the CPU
   it needed to move them, until the scheduler tick: the quanta of milliseconds seen in cooperative
   runs. */
#define WAIT_YIELD_NS 1000000LL
long long mono_ns(void) {
  struct timespec t;
  libc_clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

#define WAIT_SPIN_NS 10000LL
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* Whether a spin can help: with one CPU allowed (a cell that shares its CPU with others, as
   `livesim run` places Cooperative cells on a 2-CPU machine), the spin keeps from the CPU the very
   program the wait is for. Asked once per thread; -1 until then. */
static __thread int spin_helps SHIM_TLS = -1;
static int can_spin(void) {
  if (spin_helps < 0) {
    cpu_set_t set;
    spin_helps = sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1;
  }
  return spin_helps;
}

static void wait_moved(long long seq) {
  long long t0 = mono_ns();
  for (int i = 0; state[W_SEQ] == seq && can_spin(); i++) {
    if ((i & 63) == 63 && mono_ns() - t0 >= WAIT_SPIN_NS) break;
    cpu_relax();
  }
  while (state[W_SEQ] == seq && mono_ns() - t0 < WAIT_YIELD_NS) sched_yield();
  if (state[W_SEQ] == seq) {
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    while (state[W_SEQ] == seq) nap_ns(20000);
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
static __thread long long carry_rest SHIM_TLS;
static long long first_anchor(long long real, long long at, double rate) {
  carry_rest = 0;
  if (!state_ext || state[W_OVERSHOOT_AT] != at) return real;
  long long over = state[W_OVERSHOOT], quantum = state[W_BARRIER] - at;
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
__thread long long woke_at SHIM_TLS;

/* Steal. The clock runs with the wall, so a thread kept from its CPU in a slice (by the other cells,
   the runtime, anything else on the machine) would have that time counted as its work, also past the
   barrier, and carried. The thread that starts a slice notes the real time, its CPU time
   (CLOCK_THREAD_CPUTIME_ID, a system call before the reading that starts the clock) and its time
   blocked in wrapped calls so far; its reading past the barrier takes off the overshoot whatever of
   the slice's wall was neither CPU nor blocked. Wall and CPU time are read together (the real time
   right after each CPU reading): a system call's half a µs between them, slice after slice, was
   counted as work. */
__thread long long base_at SHIM_TLS;
static __thread long long base_real SHIM_TLS;
__thread long long base_cpu SHIM_TLS;
static __thread long long base_blocked SHIM_TLS;
__thread long long blocked_total SHIM_TLS;
__thread long long block_start SHIM_TLS;

/* A thread whose last wake came past the barrier of the slice it started (a timeout that ran out
   before the runtime moved the clock): that slice's start (0: the last wake was not past one), and
   the thread's CPU time and the real time then. Its overshoot is then measured from the wake (see
   woke_at), so the steal taken off it is measured from the wake too; the slice's whole steal would
   also take off what the thread lost before it blocked, which delayed nothing after (a program
   preempted between its slice's first reading and a poll() had that much of its work after the
   poll dropped). Read only then: a system call at every wake would cost redis-server a few % of
   its CPU. The state is read without the seqlock: a torn read only picks the other estimate. */
__thread long long wake_slice SHIM_TLS;
__thread long long wake_cpu SHIM_TLS;
__thread long long wake_real SHIM_TLS;

/* The clock of a slice that started at virtual at, anchored at real anchor: its reading at real. */
long long clock_at(long long at, long long anchor, double rate, long long real) {
  long long d = real - anchor;
  return at + (d > 0 ? (long long)((double)d * rate) : 0);
}

/* Words 8-9: the overshoot at barrier cap, the largest recorded there (a new barrier replaces it). */
static void record_overshoot(long long over, long long cap) {
  if (state[W_OVERSHOOT_AT] != cap || over > state[W_OVERSHOOT]) {
    state[W_OVERSHOOT] = over;
    __sync_synchronize();
    state[W_OVERSHOOT_AT] = cap;
  }
}

long long thread_cpu_ns(void) {
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

/* Work past a barrier that no reading found. The driver ends a cooperative cell's stretch once its
   clock has had the stretch's wall time (coop.ts), and sets the next one, whether or not a program
   has read its clock past the barrier yet: a thread that computes across the barrier without
   reading, then reads (or writes) in the next slice, would start that slice's clock at its reading,
   and the work from the barrier to there would count for nothing. PostgreSQL works 10-20 µs between
   readings on links of ~4 µs, and so got about half of its CPU counted. So the first reading of a
   precise slice also counts, as this slice's overshoot, how far the thread's own CPU time since it
   started its last slice takes it past this slice's start: the slice's value then (base_v) plus
   that CPU time, at rate. CPU time, not the wall: steal and time blocked in calls the shim does not
   wrap are no work. Only while the thread has neither blocked in a wrapped call nor waited at a
   barrier since it started that slice (base_lazy): the work between a wake and the first reading is
   the link's (docs/live.md), and a wait at the barrier burns CPU that is no work. */
static __thread long long base_v SHIM_TLS;
static __thread int base_lazy SHIM_TLS;
static void lazy_overshoot(long long at, double rate, long long cpu) {
  if (!base_lazy || base_at <= 0 || base_at >= at || base_cpu < 0 || cpu < base_cpu) return;
  if (woke_at > base_real || state[W_OVERSHOOT_AT] == at) return;
  long long over = base_v + (long long)((double)(cpu - base_cpu) * rate) - at;
  if (over > 0) record_overshoot(over, at);
}

/* The fast clock (see state above): virtual epoch ns, or -1 when there is none. A reading that saw
   the state change (the sequence or the anchor), also while it read the real clock, starts over.
   check_only: a program about to block. It waits at the barrier if its clock is there, and starts a
   precise slice's clock only to count an overshoot; returns 0 (no reading for the program). */
long long fast_ns_mode(int check_only) {
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
    long long seq = state[W_SEQ];
    if (seq & 1) {
      long long now = mono_ns();
      if (!odd_since) odd_since = now;
      if (now - odd_since < 100000000LL) tries--;
      waited = 1;
      base_lazy = 0;
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
    if (state_ext && state_rw && state[W_ANCHOR] == -1) {
      __sync_fetch_and_add(&state[W_WAITING], 0LL);
      cpu0 = thread_cpu_ns();
      cpu0_at = mono_ns();
    }
    long long at = state[W_AT], anchor = state[W_ANCHOR], cap = state[W_BARRIER], flags = state[W_FLAGS];
    double rate = *state_rate;
    if (at == 0 || !(rate > 0)) return -1;
    struct timespec m;
    if (libc_clock_gettime(CLOCK_MONOTONIC, &m) != 0) return -1;
    __sync_synchronize();
    if (state[W_SEQ] != seq || state[W_ANCHOR] != anchor) continue;
    long long real = (long long)m.tv_sec * 1000000000LL + m.tv_nsec;
    if (anchor == -1) {
      /* A precise slice: the first reading starts the clock. */
      if (!state_rw) anchor = state[W_PLANNED_ANCHOR];
      else {
        if (!waited) lazy_overshoot(at, rate, cpu0);
        long long a = first_anchor(real, at, rate);
        if (check_only && a >= real) return 0;
        if (!__sync_bool_compare_and_swap(&state[W_ANCHOR], -1LL, a)) continue;
        base_at = at;
        base_real = cpu0_at;
        base_cpu = cpu0;
        base_blocked = blocked_total;
        base_v = clock_at(at, a, rate, real);
        base_lazy = 1;
        if (carry_rest > 0) record_overshoot(carry_rest, cap);
        /* This reading started the clock: it reads the clock's start (plus the overshoot), not a
           second pass through the loop, whose ~100 ns would count as the program's work. A set()
           since the reading above (the sequence moved) takes the loop again. */
        if (state[W_SEQ] != seq) continue;
        anchor = a;
      }
    }
    long long v = clock_at(at, anchor, rate, real);
    if (cap > 0 && v >= cap) {
      if ((flags & STATE_FLAG_WAIT) && state_rw) {
        if (!waited) note_overshoot(v, at, cap, real, rate);
        /* Wait at the barrier until the runtime moves it (a frozen cell waits in the freezer meanwhile). */
        __sync_fetch_and_add(&state[W_WAITING], 1LL);
        base_lazy = 0;
        wait_moved(seq);
        __sync_fetch_and_sub(&state[W_WAITING], 1LL);
        waited = 1;
        continue;
      }
      v = cap;
    }
    return check_only ? 0 : v;
  }
  return -1;
}

long long fast_ns(void) { return fast_ns_mode(0); }

static int fast_clock(struct timespec *tp) {
  if (!state || !tp) return 0;
  long long v = fast_ns();
  if (v < 0) return 0;
  tp->tv_sec = v / 1000000000LL;
  tp->tv_nsec = v % 1000000000LL;
  return 1;
}

SHIM_EXPORT int clock_gettime(clockid_t clock, struct timespec *tp) {
  if (!ready || in_clock) return raw_clock_gettime(clock, tp);
  if (limited(clock) && fast_clock(tp)) return 0;
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
SHIM_EXPORT time_t time(time_t *out) {
  struct timespec t;
  if (clock_gettime(CLOCK_REALTIME, &t) != 0) return (time_t)-1;
  if (out) *out = t.tv_sec;
  return t.tv_sec;
}

/* Not inside gettimeofday: glibc declares its argument nonnull, and a program may pass NULL anyway. */
static void set_timeval(struct timeval *tv, const struct timespec *t) {
  if (!tv) return;
  tv->tv_sec = t->tv_sec;
  tv->tv_usec = t->tv_nsec / 1000;
}

SHIM_EXPORT int gettimeofday(struct timeval *tv, void *tz) {
  (void)tz;
  struct timespec t;
  int r = clock_gettime(CLOCK_REALTIME, &t);
  if (r == 0) set_timeval(tv, &t);
  return r;
}

SHIM_EXPORT int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr) {
  if (!ready && attr == NULL) {
    memset(cond, 0, sizeof *cond);
    return 0;
  }
  if (!next_cond_init) resolve();
  return next_cond_init ? next_cond_init(cond, attr) : ENOSYS;
}

SHIM_EXPORT int pthread_cond_destroy(pthread_cond_t *cond) {
  if (!ready) return 0;
  return next_cond_destroy(cond);
}

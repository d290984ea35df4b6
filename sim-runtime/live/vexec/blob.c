/* The fast clock that fast.c copies into a program: its vDSO's clock_gettime, gettimeofday and time
   symbols are pointed here, so Go's runtime, glibc and musl call it where they would call the vDSO.
   It computes the virtual time in the program, from the cell's clock state mapped there, the way the
   supervisor does (vclock.c), and calls the vDSO's own clock_gettime for the real CLOCK_MONOTONIC:
   tens of ns instead of a round trip through the supervisor. What it does not do itself it leaves to
   the supervisor by making the system call, which the filter traps: a precise slice's barrier
   reached (the reading waits there), the runtime in the middle of a write (odd sequence), a
   timezone asked of gettimeofday.
   This code runs copied out of vexec, at another address, with nothing of vexec around it: it is
   all in section vexec_blob, reaches its data (struct blob_data, just before the section's copy)
   through a RIP-relative address of the section's start, calls nothing but through the pointers
   there, and has no switch (a jump table would sit in .rodata) and no library calls. A test
   (vexec.test.ts) checks the object file has no relocation to outside the section; `vexec --check`
   runs it. */
#include "vexec.h"
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#if defined(__x86_64__)

#define BLOB __attribute__((section("vexec_blob"), used, noinline))

extern char __start_vexec_blob[];

/* The data fast.c wrote before the section's copy. */
static inline __attribute__((always_inline)) const struct blob_data *data(void) {
  const char *start;
  __asm__("lea __start_vexec_blob(%%rip), %0" : "=r"(start));
  return (const struct blob_data *)(start - BLOB_DATA_BYTES);
}

static inline __attribute__((always_inline)) long raw_syscall2(long nr, long a, long b) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return r;
}

/* The clocks the virtual clock replaces (launch.c VIRTUAL_CLOCKS; no switch, see above). */
static inline __attribute__((always_inline)) int virtual_clock(clockid_t c) {
  return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_MONOTONIC_RAW || c == CLOCK_REALTIME_COARSE || c == CLOCK_MONOTONIC_COARSE ||
         c == CLOCK_BOOTTIME;
}

/* Virtual epoch ns, or -1: the supervisor must answer (the caller makes the system call). */
BLOB static long long blob_now(const struct blob_data *d) {
  volatile long long *st = d->state;
  for (int tries = 0; tries < 4; tries++) {
    long long seq = st[W_SEQ];
    if (seq & 1) return -1;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    long long at = st[W_AT], anchor = st[W_ANCHOR], cap = st[W_BARRIER], flags = st[W_FLAGS];
    union {
      long long bits;
      double value;
    } rate_word = { .bits = st[W_RATE] };
    double rate = rate_word.value;
    if (at == 0 || !(rate > 0)) return -1;
    struct timespec m;
    if (d->clock_gettime(CLOCK_MONOTONIC, &m) != 0) return -1;
    __sync_synchronize();
    if (st[W_SEQ] != seq || st[W_ANCHOR] != anchor) continue;
    long long real = m.tv_sec * 1000000000LL + m.tv_nsec;
    if (anchor == -1) {
      /* A precise slice: this reading starts the clock, as the supervisor's would. */
      if (!__sync_bool_compare_and_swap(&st[W_ANCHOR], -1LL, real)) continue;
      if (st[W_SEQ] != seq) continue;
      anchor = real;
    }
    long long v = real > anchor ? at + (long long)((double)(real - anchor) * rate) : at;
    if (cap > 0 && v >= cap) {
      if (flags & STATE_FLAG_WAIT) return -1; /* waits at the barrier: the supervisor holds it */
      v = cap;
    }
    return v;
  }
  return -1;
}

BLOB int blob_clock_gettime(clockid_t c, struct timespec *ts) {
  const struct blob_data *d = data();
  if (!virtual_clock(c)) return d->clock_gettime(c, ts);
  long long v = blob_now(d);
  if (v < 0) {
    return (int)raw_syscall2(SYS_clock_gettime, c, (long)ts); /* the vDSO's convention: 0 or -errno */
  }
  ts->tv_sec = v / 1000000000LL;
  ts->tv_nsec = v % 1000000000LL;
  return 0;
}

BLOB int blob_gettimeofday(struct timeval *tv, struct timezone *tz) {
  const struct blob_data *d = data();
  long long v = tz ? -1 : blob_now(d);
  if (v < 0) return (int)raw_syscall2(SYS_gettimeofday, (long)tv, (long)tz);
  if (tv) {
    tv->tv_sec = v / 1000000000LL;
    tv->tv_usec = (v % 1000000000LL) / 1000;
  }
  return 0;
}

BLOB long blob_time(long *t) {
  const struct blob_data *d = data();
  long long v = blob_now(d);
  if (v < 0) return raw_syscall2(SYS_time, (long)t, 0);
  long s = (long)(v / 1000000000LL);
  if (t) *t = s;
  return s;
}

#endif

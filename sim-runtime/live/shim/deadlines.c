/* The deadline registry (docs/live.md, "Cooperative cells"; layout.h WAITS_*): every real wait of the
   shim for a virtual deadline is written into the cell's clock state file while it waits, with the
   real instant it ends. A waiter waits on the real clock for what is left of its deadline at the
   clock's rate (real_wait_ns), which is never late while the cell's clock runs no faster than rate ×
   wall. A frozen cell's clock never does. A cooperative cell's clock did when the cell was idle: the
   runtime called it at its barrier at once, quantum after quantum, and a thread asleep in a timed wait
   woke to find its deadline long past (pgbench's -T alarm, 0.87 s late in 3 s). The runtime reads the
   registry and moves an idle cell's clock only as far as every waiter allows: to where the wall, at
   the clock's rate, reaches the waiter's deadline no sooner than its real wait ends
   (sim-runtime/live/deadlines.ts).
   A slot holds the deadline (virtual epoch ns; 0 = free) and the wake (real CLOCK_MONOTONIC ns). A
   wait claims a free slot with a compare-and-swap of its deadline word and frees it with another
   (not a plain store: a slot taken over as stale, below, may be someone else's by then): two atomic
   operations per real wait, and an untimed wait never registers. The wake is written after the
   claim: the runtime, reading in between, sees the slot's last wake, which is past, and allows the
   deadline itself at most (the waiter is runnable then anyway: its cell is not idle).
   A full table: the wait takes a slot gone stale (WAIT_STALE_NS past its wake: its waiter died in
   the wait, or blocks elsewhere since); failing that it registers nothing but raises the header's
   overflow wake to its own, and while that wake is ahead the runtime moves the cell's clock no
   faster than the wall, as a frozen cell's: safe for any deadline, at the cost of the cell's idle
   skipping. The timekeeper's wait is registered too; when it fires, the threads it wakes have no
   slot, so it notes the time in the header (wait_fired). Without a writable mapping of the whole file
   (no fast clock), nothing is registered. */
#include "shim.h"
#include <stdint.h>

volatile long long *wait_table;

/* The slot this thread had last, + 1 (0: none yet): where it looks first, most likely free again and
   in its cache. A new thread starts at a slot of its own (from its TLS address), not at slot 0. */
static __thread unsigned wait_hint SHIM_TLS;

static volatile long long *slot_at(unsigned s) { return wait_table + WAITS_HEADER_BYTES / 8 + (size_t)s * WAIT_SLOT_WORDS; }

/* Slot s, seen holding `seen` (0: free; else a stale deadline), for this wait: its number, or -1 when
   another thread took it first. */
static int claim(unsigned s, long long seen, long long deadline, long long wake) {
  volatile long long *w = slot_at(s);
  if (!__sync_bool_compare_and_swap(&w[WS_DEADLINE], seen, deadline)) return -1;
  w[WS_WAKE] = wake;
  wait_hint = s + 1;
  return (int)s;
}

/* No slot: the header's overflow wake becomes this wait's, if that is later. */
static void raise_overflow(long long wake) {
  volatile long long *o = &wait_table[WH_OVERFLOW_WAKE];
  for (long long cur = *o; cur < wake; cur = *o)
    if (__sync_bool_compare_and_swap(o, cur, wake)) return;
}

/* A real wait of real_ns for a virtual deadline is about to begin: its slot, or -1 (nothing to
   clear). Call wait_clear(slot, deadline) when the wait returns. */
int wait_register(long long deadline, long long real_ns) {
  if (!wait_table || deadline <= 0 || real_ns <= 0) return -1;
  long long now = mono_ns(), wake = now + real_ns;
  unsigned start = wait_hint ? wait_hint - 1 : (unsigned)((uintptr_t)&wait_hint >> 8) % WAIT_SLOTS;
  for (unsigned k = 0; k < WAIT_SLOTS; k++) {
    unsigned s = (start + k) % WAIT_SLOTS;
    if (slot_at(s)[WS_DEADLINE] != 0) continue;
    int got = claim(s, 0, deadline, wake);
    if (got >= 0) return got;
  }
  for (unsigned s = 0; s < WAIT_SLOTS; s++) {
    volatile long long *w = slot_at(s);
    long long d = w[WS_DEADLINE], ends = w[WS_WAKE];
    if (d == 0 || ends + WAIT_STALE_NS >= now) continue;
    int got = claim(s, d, deadline, wake);
    if (got >= 0) return got;
  }
  raise_overflow(wake);
  return -1;
}

/* A timekeeper (timers.c) fired timers: the threads it woke (a signal, a timerfd's count) may not
   have had a CPU yet, and the runtime, which takes a thread that has not run since it last looked for
   still asleep, looks at every thread for a while (coop.ts). */
void wait_fired(void) {
  if (wait_table) wait_table[WH_FIRED] = mono_ns();
}

/* The wait registered in `slot` for `deadline` has returned. */
void wait_clear(int slot, long long deadline) {
  if (slot < 0 || !wait_table) return;
  __sync_bool_compare_and_swap(&slot_at((unsigned)slot)[WS_DEADLINE], deadline, 0LL);
}

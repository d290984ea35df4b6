/* The memory a live cell shares with the runtime. Generated from sim-runtime/live/shim/layout.ts
   by `npm run gen:shim-layout`: edit that file, not this one. */
#ifndef LIVESIM_LAYOUT_H
#define LIVESIM_LAYOUT_H
#include <stddef.h>
#include <stdint.h>

/* The clock state (LIVESIM_CLOCK_LIMIT): 8-byte words. */
#define STATE_BYTES 128
#define STATE_RUNTIME_BYTES 64
#define W_BARRIER 0 /* the barrier: virtual epoch ns no reading may pass (0 = none) */
#define W_AT 1 /* virtual epoch ns the clock reads at the anchor */
#define W_ANCHOR 2 /* the anchor, real CLOCK_MONOTONIC ns (-1 = at the first reading: a precise slice; the shim writes it then) */
#define W_RATE 3 /* virtual ns per real ns (a float64) */
#define W_PLANNED_ANCHOR 4 /* the planned anchor, for a read-only mapping of a precise slice */
#define W_FLAGS 5 /* STATE_FLAG_* bits */
#define W_WAITING 6 /* readings waiting at the barrier now (the shim counts; the runtime leaves it alone) */
#define W_SEQ 7 /* seqlock sequence: odd while the runtime writes words 0-5 */
#define W_OVERSHOOT 8 /* virtual ns a program worked past the barrier (the shim writes it) */
#define W_OVERSHOOT_AT 9 /* the barrier (virtual epoch ns) the overshoot was measured at (the shim writes it) */
#define STATE_FLAG_WAIT 1
#define STATE_FLAG_FROZEN 2
#define STATE_FLAG_STANDING 4
#define STATE_WORDS (STATE_BYTES / 8)
_Static_assert(9 < STATE_WORDS, "every state word fits in the state");
_Static_assert(W_SEQ * 8 < STATE_RUNTIME_BYTES, "the runtime reads the sequence back");

/* The deadline registry, after the state in the same file: a header, then slots (8-byte words). */
#define WAITS_OFFSET 128
#define WAITS_HEADER_BYTES 64
#define WH_OVERFLOW_WAKE 0 /* the latest real CLOCK_MONOTONIC ns at which a wait that found no slot ends (0 = none; the shim raises it) */
#define WH_FIRED 1 /* real CLOCK_MONOTONIC ns at which a timekeeper last fired timers: a thread it woke may not have had a CPU yet (0 = never) */
#define WAIT_SLOTS 128
#define WAIT_SLOT_BYTES 16
#define WAIT_SLOT_WORDS (WAIT_SLOT_BYTES / 8)
#define WS_DEADLINE 0 /* virtual epoch ns the wait is for (0 = a free slot; claimed and freed by compare-and-swap) */
#define WS_WAKE 1 /* real CLOCK_MONOTONIC ns at which its real wait ends (written right after the claim) */
#define CLOCK_FILE_BYTES 2240
#define WAIT_STALE_NS 50000000LL
_Static_assert(WAITS_OFFSET >= STATE_BYTES && WAITS_OFFSET % 64 == 0, "the registry follows the state, on a cache line");
_Static_assert(1 < WAITS_HEADER_BYTES / 8, "every header word fits in the header");
_Static_assert(1 < WAIT_SLOT_WORDS, "every slot word fits in the slot");
_Static_assert(CLOCK_FILE_BYTES == WAITS_OFFSET + WAITS_HEADER_BYTES + WAIT_SLOTS * WAIT_SLOT_BYTES, "the file holds the registry");

/* The write-stamp ring (LIVESIM_STAMPS). */
#define STAMP_SLOTS 4096
#define STAMP_HEADER_BYTES 64
#define STAMP_ENTRY_BYTES 40
struct stamp {
  uint64_t seq; /* record number + 1, stored last (release) */
  int64_t vt; /* virtual epoch ns of the write */
  uint64_t off; /* offset of the write's first byte in the socket's stream */
  uint32_t len; /* bytes asked (saturated) */
  uint16_t lport; /* the program's local port */
  uint16_t rport; /* the peer's port */
  uint32_t raddr; /* the peer's IPv4 address, host order, top bit cleared */
  uint32_t spare; /* unused */
};
_Static_assert(sizeof(struct stamp) == STAMP_ENTRY_BYTES, "stamp record size");
_Static_assert(offsetof(struct stamp, seq) == 0 && sizeof(((struct stamp *)0)->seq) == 8, "stamp.seq");
_Static_assert(offsetof(struct stamp, vt) == 8 && sizeof(((struct stamp *)0)->vt) == 8, "stamp.vt");
_Static_assert(offsetof(struct stamp, off) == 16 && sizeof(((struct stamp *)0)->off) == 8, "stamp.off");
_Static_assert(offsetof(struct stamp, len) == 24 && sizeof(((struct stamp *)0)->len) == 4, "stamp.len");
_Static_assert(offsetof(struct stamp, lport) == 28 && sizeof(((struct stamp *)0)->lport) == 2, "stamp.lport");
_Static_assert(offsetof(struct stamp, rport) == 30 && sizeof(((struct stamp *)0)->rport) == 2, "stamp.rport");
_Static_assert(offsetof(struct stamp, raddr) == 32 && sizeof(((struct stamp *)0)->raddr) == 4, "stamp.raddr");
_Static_assert(offsetof(struct stamp, spare) == 36 && sizeof(((struct stamp *)0)->spare) == 4, "stamp.spare");

#endif

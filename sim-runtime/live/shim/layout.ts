import { fileURLToPath } from 'node:url'

// The memory a live cell's programs share with the runtime, defined once. The clock shim (the C
// files beside this one) maps two files per cell: the clock state (LIVESIM_CLOCK_LIMIT), which the
// runtime writes (clock.ts) and the shim reads and partly writes, followed by the deadline registry,
// which the shim writes and the runtime reads (coop.ts), and the write-stamp ring
// (LIVESIM_STAMPS), which the shim appends to and the runtime reads (stamps.ts). Both sides take
// their offsets from here: the TypeScript imports this module, the C includes layout.h, which
// `npm run gen:shim-layout` writes from layoutHeader() (a test fails when it is stale, and a test
// compiles layout.h and compares the C compiler's offsets with these).

/** One 8-byte word of the clock state: its index and what it holds. */
interface StateWord {
  readonly index: number
  readonly c: string
  readonly doc: string
}

/**
 * The clock state, 8-byte words (int64 little-endian unless said otherwise). Written by the runtime
 * under a seqlock (word `seq` odd while it writes) unless "shim writes" says otherwise.
 */
export const STATE = {
  barrier: { index: 0, c: 'BARRIER', doc: 'the barrier: virtual epoch ns no reading may pass (0 = none)' },
  at: { index: 1, c: 'AT', doc: 'virtual epoch ns the clock reads at the anchor' },
  anchor: { index: 2, c: 'ANCHOR', doc: 'the anchor, real CLOCK_MONOTONIC ns (-1 = at the first reading: a precise slice; the shim writes it then)' },
  rate: { index: 3, c: 'RATE', doc: 'virtual ns per real ns (a float64)' },
  plannedAnchor: { index: 4, c: 'PLANNED_ANCHOR', doc: 'the planned anchor, for a read-only mapping of a precise slice' },
  flags: { index: 5, c: 'FLAGS', doc: 'STATE_FLAG_* bits' },
  waiting: { index: 6, c: 'WAITING', doc: 'readings waiting at the barrier now (the shim counts; the runtime leaves it alone)' },
  seq: { index: 7, c: 'SEQ', doc: 'seqlock sequence: odd while the runtime writes words 0-5' },
  overshoot: { index: 8, c: 'OVERSHOOT', doc: 'virtual ns a program worked past the barrier (the shim writes it)' },
  overshootAt: { index: 9, c: 'OVERSHOOT_AT', doc: 'the barrier (virtual epoch ns) the overshoot was measured at (the shim writes it)' },
} as const satisfies Record<string, StateWord>

/** Readings that reach the barrier wait there until the runtime moves it (a precise slice). */
export const STATE_FLAG_WAIT = 1
/**
 * The cell is frozen between quanta (CpuTime, WallTime): its clock may jump at a barrier (a freeze
 * that came before the clock reached it), so no real wait reaches across the barrier (sleep.c).
 */
export const STATE_FLAG_FROZEN = 2
/**
 * The clock stands outside the run (start-up, before the first quantum; termination, after the
 * last): nothing moves it, so the shim measures timed waits on it as it would run from the anchor
 * at the rate, and they last their length (sleep.c, "Standing clock").
 */
export const STATE_FLAG_STANDING = 4
/** Size of the clock state file. */
export const STATE_BYTES = 128
/** The words the runtime reads back after a slice: words 0-7. */
export const STATE_RUNTIME_BYTES = 64

/** Byte offset of a state word. */
export function stateOffset(word: keyof typeof STATE): number {
  return STATE[word].index * 8
}

/**
 * The deadline registry (shim/deadlines.c; docs/live.md, "Cooperative cells"), in the clock state
 * file after the state words: every real wait of the cell's programs for a virtual deadline, so that
 * the runtime never moves an idle cooperative cell's clock past a deadline sooner than its waiter,
 * waiting on the real clock, can follow. A header of WAITS_HEADER words, then WAIT_SLOTS slots of
 * WAIT_SLOT words (int64 little-endian). The shim writes it all; the runtime only reads it.
 */
export const WAITS_OFFSET = STATE_BYTES
export const WAITS_HEADER = {
  overflowWake: { index: 0, c: 'OVERFLOW_WAKE', doc: 'the latest real CLOCK_MONOTONIC ns at which a wait that found no slot ends (0 = none; the shim raises it)' },
  fired: { index: 1, c: 'FIRED', doc: 'real CLOCK_MONOTONIC ns at which a timekeeper last fired timers: a thread it woke may not have had a CPU yet (0 = never)' },
} as const satisfies Record<string, StateWord>
export const WAITS_HEADER_BYTES = 64
export const WAIT_SLOT = {
  deadline: { index: 0, c: 'DEADLINE', doc: 'virtual epoch ns the wait is for (0 = a free slot; claimed and freed by compare-and-swap)' },
  wake: { index: 1, c: 'WAKE', doc: 'real CLOCK_MONOTONIC ns at which its real wait ends (written right after the claim)' },
} as const satisfies Record<string, StateWord>
export const WAIT_SLOT_BYTES = 16
/** Waits a cell's programs may make at once before a wait finds no slot (its wake goes into the header). */
export const WAIT_SLOTS = 128
export const WAITS_BYTES = WAITS_HEADER_BYTES + WAIT_SLOTS * WAIT_SLOT_BYTES
/** Size of the clock state file: the state, then the registry. */
export const CLOCK_FILE_BYTES = WAITS_OFFSET + WAITS_BYTES
/**
 * A slot whose wait ended this long ago (real ns) is nobody's any more: its waiter died in the wait
 * (its process exited, or it left the wait by a longjmp or a cancellation) or blocks elsewhere (a
 * condition wait retaking its mutex). The runtime ignores it; a wait that finds no free slot takes it.
 * Longer than a loaded machine delays a thread's wake-up (up to tens of ms on a 2-CPU VM), so that a
 * waiter merely late is not taken for gone.
 */
export const WAIT_STALE_NS = 50_000_000

type CType = 'uint64_t' | 'int64_t' | 'uint32_t' | 'uint16_t'
interface Field {
  readonly name: string
  readonly type: CType
  readonly offset: number
  readonly doc: string
}

/**
 * One record of the write-stamp ring: a write a program made to a connected IPv4 socket. The ring
 * starts after STAMP_HEADER_BYTES, whose first word counts the records appended (the shim
 * fetch-adds it); record i is in slot i % STAMP_SLOTS and is complete when its seq reads i + 1.
 */
export const STAMP_FIELDS = [
  { name: 'seq', type: 'uint64_t', offset: 0, doc: 'record number + 1, stored last (release)' },
  { name: 'vt', type: 'int64_t', offset: 8, doc: 'virtual epoch ns of the write' },
  { name: 'off', type: 'uint64_t', offset: 16, doc: "offset of the write's first byte in the socket's stream" },
  { name: 'len', type: 'uint32_t', offset: 24, doc: 'bytes asked (saturated)' },
  { name: 'lport', type: 'uint16_t', offset: 28, doc: "the program's local port" },
  { name: 'rport', type: 'uint16_t', offset: 30, doc: "the peer's port" },
  { name: 'raddr', type: 'uint32_t', offset: 32, doc: "the peer's IPv4 address, host order, top bit cleared" },
  { name: 'spare', type: 'uint32_t', offset: 36, doc: 'unused' },
] as const satisfies readonly Field[]

export type StampField = (typeof STAMP_FIELDS)[number]['name']

/** Byte offset of a field inside a stamp record. */
export function stampOffset(field: StampField): number {
  return (STAMP_FIELDS.find((f) => f.name === field) as Field).offset
}

/** Ring slots: writes a cell may make between two reads before records are lost. */
export const STAMP_SLOTS = 4096
export const STAMP_ENTRY_BYTES = 40
export const STAMP_HEADER_BYTES = 64
export const STAMPS_BYTES = STAMP_HEADER_BYTES + STAMP_SLOTS * STAMP_ENTRY_BYTES

const SIZES: Record<CType, number> = { uint64_t: 8, int64_t: 8, uint32_t: 4, uint16_t: 2 }

/** The C header: the same constants and the stamp struct, with static assertions on its layout. */
export function layoutHeader(): string {
  const lines = [
    '/* The memory a live cell shares with the runtime. Generated from sim-runtime/live/shim/layout.ts',
    '   by `npm run gen:shim-layout`: edit that file, not this one. */',
    '#ifndef LIVESIM_LAYOUT_H',
    '#define LIVESIM_LAYOUT_H',
    '#include <stddef.h>',
    '#include <stdint.h>',
    '',
    '/* The clock state (LIVESIM_CLOCK_LIMIT): 8-byte words. */',
    `#define STATE_BYTES ${STATE_BYTES}`,
    `#define STATE_RUNTIME_BYTES ${STATE_RUNTIME_BYTES}`,
  ]
  for (const w of Object.values(STATE)) lines.push(`#define W_${w.c} ${w.index} /* ${w.doc} */`)
  lines.push(`#define STATE_FLAG_WAIT ${STATE_FLAG_WAIT}`, `#define STATE_FLAG_FROZEN ${STATE_FLAG_FROZEN}`, `#define STATE_FLAG_STANDING ${STATE_FLAG_STANDING}`, `#define STATE_WORDS (STATE_BYTES / 8)`)
  const maxWord = Math.max(...Object.values(STATE).map((w) => w.index))
  lines.push(`_Static_assert(${maxWord} < STATE_WORDS, "every state word fits in the state");`)
  lines.push(`_Static_assert(W_SEQ * 8 < STATE_RUNTIME_BYTES, "the runtime reads the sequence back");`)
  lines.push('', '/* The deadline registry, after the state in the same file: a header, then slots (8-byte words). */')
  lines.push(`#define WAITS_OFFSET ${WAITS_OFFSET}`, `#define WAITS_HEADER_BYTES ${WAITS_HEADER_BYTES}`)
  for (const w of Object.values(WAITS_HEADER)) lines.push(`#define WH_${w.c} ${w.index} /* ${w.doc} */`)
  lines.push(`#define WAIT_SLOTS ${WAIT_SLOTS}`, `#define WAIT_SLOT_BYTES ${WAIT_SLOT_BYTES}`, `#define WAIT_SLOT_WORDS (WAIT_SLOT_BYTES / 8)`)
  for (const w of Object.values(WAIT_SLOT)) lines.push(`#define WS_${w.c} ${w.index} /* ${w.doc} */`)
  lines.push(`#define CLOCK_FILE_BYTES ${CLOCK_FILE_BYTES}`, `#define WAIT_STALE_NS ${WAIT_STALE_NS}LL`)
  lines.push(`_Static_assert(WAITS_OFFSET >= STATE_BYTES && WAITS_OFFSET % 64 == 0, "the registry follows the state, on a cache line");`)
  lines.push(`_Static_assert(${Math.max(...Object.values(WAITS_HEADER).map((w) => w.index))} < WAITS_HEADER_BYTES / 8, "every header word fits in the header");`)
  lines.push(`_Static_assert(${Math.max(...Object.values(WAIT_SLOT).map((w) => w.index))} < WAIT_SLOT_WORDS, "every slot word fits in the slot");`)
  lines.push(`_Static_assert(CLOCK_FILE_BYTES == WAITS_OFFSET + WAITS_HEADER_BYTES + WAIT_SLOTS * WAIT_SLOT_BYTES, "the file holds the registry");`)
  lines.push('', '/* The write-stamp ring (LIVESIM_STAMPS). */')
  lines.push(`#define STAMP_SLOTS ${STAMP_SLOTS}`, `#define STAMP_HEADER_BYTES ${STAMP_HEADER_BYTES}`, `#define STAMP_ENTRY_BYTES ${STAMP_ENTRY_BYTES}`)
  lines.push('struct stamp {')
  for (const f of STAMP_FIELDS) lines.push(`  ${f.type} ${f.name}; /* ${f.doc} */`)
  lines.push('};')
  lines.push('_Static_assert(sizeof(struct stamp) == STAMP_ENTRY_BYTES, "stamp record size");')
  for (const f of STAMP_FIELDS) {
    lines.push(`_Static_assert(offsetof(struct stamp, ${f.name}) == ${f.offset} && sizeof(((struct stamp *)0)->${f.name}) == ${SIZES[f.type]}, "stamp.${f.name}");`)
  }
  lines.push('', '#endif', '')
  return lines.join('\n')
}

/** Where layout.h is (beside this file). */
export const LAYOUT_HEADER_PATH = fileURLToPath(new URL('./layout.h', import.meta.url))

// The memory shared by the runtime (TypeScript) and the clock shim (C) is defined once, in
// sim-runtime/live/shim/layout.ts. These tests fail when layout.h is stale, when the C compiler lays
// the stamp record out differently from the offsets the runtime reads, when a state the runtime
// writes does not read back, word by word, through layout.h's indices, and when a timed wait the
// shim registers (the deadline registry after the state) does not read back through clock.waits().
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createVirtualClock, DEFAULT_BASE_EPOCH_MS, findLibfaketime } from '../../sim-runtime/live/clock.ts'
import { buildShim, SHIM_DIR } from '../../sim-runtime/live/shim.ts'
import { CLOCK_FILE_BYTES, LAYOUT_HEADER_PATH, layoutHeader, STAMP_ENTRY_BYTES, STAMP_FIELDS, STAMP_HEADER_BYTES, STAMP_SLOTS, STATE, STATE_BYTES, STATE_FLAG_WAIT, STATE_RUNTIME_BYTES, WAIT_SLOT, WAIT_SLOT_BYTES, WAIT_SLOTS, WAIT_STALE_NS, WAITS_HEADER, WAITS_HEADER_BYTES, WAITS_OFFSET } from '../../sim-runtime/live/shim/layout.ts'
import { which } from '../../sim-runtime/live/spawn.ts'
import { waitFor } from './helpers.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'livesim-layout-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const noCc = which('cc') ? '' : ' (skipped: no C compiler here)'

/** Compile a C program that includes layout.h and run it with args; its stdout. */
function runC(name: string, source: string, args: string[] = []): string {
  const src = path.join(dir, `${name}.c`)
  const bin = path.join(dir, name)
  writeFileSync(src, source)
  execFileSync('cc', ['-Wall', '-Wextra', '-Werror', '-I', SHIM_DIR, '-o', bin, src], { stdio: ['ignore', 'ignore', 'pipe'] })
  return execFileSync(bin, args, { encoding: 'utf8' })
}

describe('shim layout', () => {
  it('layout.h is what layout.ts generates (run `npm run gen:shim-layout` after changing the layout)', () => {
    expect(readFileSync(LAYOUT_HEADER_PATH, 'utf8'), 'sim-runtime/live/shim/layout.h is stale').toBe(layoutHeader())
  })

  it.skipIf(noCc !== '')(`the C compiler puts every stamp field and state word where the runtime reads it${noCc}`, () => {
    const fields = STAMP_FIELDS.map((f) => `printf("\\"${f.name}\\": [%zu, %zu],\\n", offsetof(struct stamp, ${f.name}), sizeof(((struct stamp *)0)->${f.name}));`).join('\n')
    const words = Object.values(STATE).map((w) => `printf("\\"W_${w.c}\\": %d,\\n", W_${w.c});`).join('\n')
    const out = runC('offsets', `#include <stdio.h>\n#include "layout.h"\nint main(void) {\nprintf("{\\n");\n${fields}\n${words}\nprintf("\\"sizes\\": [%d, %d, %d, %d, %d, %zu, %d]\\n}\\n", STATE_BYTES, STATE_RUNTIME_BYTES, STATE_FLAG_WAIT, STAMP_SLOTS, STAMP_HEADER_BYTES, sizeof(struct stamp), STAMP_ENTRY_BYTES);\nreturn 0;\n}\n`)
    const c = JSON.parse(out) as Record<string, unknown>
    const size = { uint64_t: 8, int64_t: 8, uint32_t: 4, uint16_t: 2 }
    for (const f of STAMP_FIELDS) expect(c[f.name], `stamp.${f.name}`).toEqual([f.offset, size[f.type]])
    for (const w of Object.values(STATE)) expect(c[`W_${w.c}`], `W_${w.c}`).toBe(w.index)
    expect(c.sizes).toEqual([STATE_BYTES, STATE_RUNTIME_BYTES, STATE_FLAG_WAIT, STAMP_SLOTS, STAMP_HEADER_BYTES, STAMP_ENTRY_BYTES, STAMP_ENTRY_BYTES])
  })

  const noFaketime = findLibfaketime() ? noCc : ' (skipped: libfaketime is not installed: hack/live-deps.sh)'
  it.skipIf(noFaketime !== '')(`a state the runtime writes reads back through layout.h's word indices${noFaketime}`, () => {
    const clock = createVirtualClock(path.join(dir, 'clock'))
    try {
      clock.set(5_000, 0.5, { untilNs: 9_000, precise: true })
      const file = clock.env().LIVESIM_CLOCK_LIMIT as string
      const out = runC(
        'state',
        `#include <stdio.h>\n#include <string.h>\n#include "layout.h"\nint main(int argc, char **argv) {\n(void)argc;\nFILE *f = fopen(argv[1], "rb");\nint64_t w[STATE_WORDS];\nif (!f || fread(w, 8, STATE_WORDS, f) != STATE_WORDS) return 2;\ndouble rate;\nmemcpy(&rate, &w[W_RATE], 8);\nprintf("%lld %lld %lld %g %lld %lld\\n", (long long)w[W_BARRIER], (long long)w[W_AT], (long long)w[W_ANCHOR], rate, (long long)w[W_FLAGS], (long long)w[W_SEQ]);\nreturn 0;\n}\n`,
        [file],
      )
      const base = BigInt(DEFAULT_BASE_EPOCH_MS) * 1_000_000n
      const [barrier, at, anchor, rate, flags, seq] = out.trim().split(' ')
      expect(BigInt(barrier!)).toBe(base + 9_000n)
      expect(BigInt(at!)).toBe(base + 5_000n)
      expect(anchor).toBe('-1') // a precise slice: the first reading anchors it
      expect(Number(rate)).toBe(0.5)
      expect(Number(flags)).toBe(STATE_FLAG_WAIT)
      expect(Number(seq) % 2).toBe(0) // the seqlock is even between writes
      expect(Number(seq)).toBeGreaterThan(0)
    } finally {
      clock.close()
    }
  })

  it.skipIf(noCc !== '')(`the C compiler puts the deadline registry where the runtime reads it${noCc}`, () => {
    const words = [...Object.values(WAITS_HEADER).map((w) => `WH_${w.c}`), ...Object.values(WAIT_SLOT).map((w) => `WS_${w.c}`)]
    const out = runC('waits', `#include <stdio.h>\n#include "layout.h"\nint main(void) {\nprintf("%d %d %d %d %d %lld", WAITS_OFFSET, WAITS_HEADER_BYTES, WAIT_SLOTS, WAIT_SLOT_BYTES, CLOCK_FILE_BYTES, WAIT_STALE_NS);\n${words.map((w) => `printf(" %d", ${w});`).join('\n')}\nreturn 0;\n}\n`)
    const want = [WAITS_OFFSET, WAITS_HEADER_BYTES, WAIT_SLOTS, WAIT_SLOT_BYTES, CLOCK_FILE_BYTES, WAIT_STALE_NS, ...Object.values(WAITS_HEADER).map((w) => w.index), ...Object.values(WAIT_SLOT).map((w) => w.index)]
    expect(out.trim().split(' ').map(Number)).toEqual(want)
  })

  it.skipIf(noFaketime !== '')(`a timed wait of a program under the shim reads back through clock.waits() while it waits, and is gone once it returns${noFaketime}`, async () => {
    const clock = createVirtualClock(path.join(dir, 'clock-waits'))
    const src = path.join(dir, 'waiter.c')
    const bin = path.join(dir, 'waiter')
    // usleep(300 ms), then a poll() of 60 s, then an untimed wait (pause, never registered).
    writeFileSync(src, '#include <poll.h>\n#include <stdio.h>\n#include <unistd.h>\nint main(void) {\nsetvbuf(stdout, NULL, _IONBF, 0);\nusleep(300000);\nputs("slept");\npoll(NULL, 0, 60000);\nputs("polled");\npause();\nreturn 0;\n}\n')
    execFileSync('cc', ['-O2', '-o', bin, src])
    const speed = 2
    const anchor = process.hrtime.bigint()
    clock.set(1_000_000_000, 1 / speed, { anchorNs: anchor })
    const child = spawn(bin, [], { env: { ...process.env, ...clock.env() }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    try {
      await waitFor(() => clock.waits().deadlineNs.length === 1, 10_000, 'the sleep registered')
      const w1 = clock.waits()
      // Its deadline: 300 ms of virtual time after the program's start (the clock started at 1 s); its
      // wake: where the wall, at the clock's rate (1/2), reaches it from the clock's anchor.
      expect(w1.deadlineNs[0]).toBeGreaterThanOrEqual(1_300_000_000)
      expect(w1.deadlineNs[0]).toBeLessThan(1_300_000_000 + (Number(process.hrtime.bigint() - anchor)) / speed)
      expect(Math.abs(w1.wakeNs[0]! - (w1.deadlineNs[0]! - 1_000_000_000) * speed - Number(anchor))).toBeLessThan(5_000_000)
      expect(w1.overflowWakeNs).toBe(0)
      // The sleep's slot is free once it returned: the poll's is the only one.
      await waitFor(() => out.includes('slept'), 10_000, 'the sleep to end')
      await waitFor(() => clock.waits().deadlineNs.length === 1 && clock.waits().deadlineNs[0] !== w1.deadlineNs[0], 10_000, 'the poll registered')
      const w2 = clock.waits()
      expect(w2.deadlineNs[0]! - w1.deadlineNs[0]!).toBeGreaterThanOrEqual(60_000_000_000)
      expect(w2.wakeNs[0]! + WAIT_STALE_NS).toBeGreaterThan(Number(process.hrtime.bigint()))
    } finally {
      child.kill('SIGKILL')
      clock.close()
    }
  })

  it.skipIf(noCc !== '')(`the shim builds from its .c files with -Wall -Wextra -Werror${noCc}`, () => {
    const so = buildShim(path.join(dir, 'shim.so'))
    const exported = execFileSync('nm', ['-D', '--defined-only', so], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[2])
      .filter((s): s is string => !!s)
    // The interposed calls, and nothing of the shim's own internals (hidden visibility).
    for (const call of ['clock_gettime', 'nanosleep', 'poll', 'write', 'pthread_cond_timedwait']) expect(exported).toContain(call)
    for (const internal of ['fast_ns', 'mono_ns', 'state', 'map_stamps']) expect(exported).not.toContain(internal)
  })
})

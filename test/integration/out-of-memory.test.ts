// A runtime that runs out of V8 heap: the run fails saying so in words, naming that runtime's hosts
// and its heap limit; V8's report (a GC trace and a native stack) does not reach the terminal.
import { describe, expect, it, vi } from 'vitest'
import { RunFailed } from '../../sim-runtime/sync/leader.ts'
import { manifest, runProcesses } from '../helpers.ts'

// Two client hosts of a million users each (runtime-0 with --partition 2) and their server (runtime-1).
const m = manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: oom }
spec:
  endTime: 1s
  hosts:
    - name: load
      replicas: 2
      components:
        - name: c
          model: { kind: Client, target: srv/s, closedLoop: { users: 1000000, thinkTime: 1ms } }
    - name: srv
      components:
        - name: s
          model: { kind: Server, workers: 8, service: { distribution: Exponential, mean: 1ms } }
`)

describe('a runtime out of heap', () => {
  it('fails the run as out of memory, naming the runtime, its hosts and its heap limit; no V8 report on stderr', async () => {
    const written: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    })
    let err: unknown
    try {
      err = await runProcesses(m, { partition: 2, runtimeHeapMiB: 64 }).then(
        () => undefined,
        (e: unknown) => e,
      )
    } finally {
      spy.mockRestore()
    }
    expect(err).toBeInstanceOf(RunFailed)
    expect((err as Error).message).toBe(
      'runtime-0 (hosts load-0, load-1) is out of memory: its V8 heap reached its limit of 64 MiB (--max-heap-size=64); ' +
        'lower the modelled state (closed-loop users, open-loop rates and timeouts) or split hosts across more runtimes (--partition)',
    )
    const stderr = written.join('')
    for (const v8Report of ['FATAL ERROR', 'JavaScript heap out of memory', 'Last few GCs', 'Native stack trace']) expect(stderr).not.toContain(v8Report)
  })
})

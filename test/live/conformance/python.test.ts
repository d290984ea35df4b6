// The conformance suite, Python (README.md beside this file): timers.py under Debian's python3
// (/usr/bin/python3, not a pyenv shim on PATH) in one cell of a `livesim run` at cell.speed 4.
// threading.Event.wait is the known hang under plain libfaketime (sem_clockwait on a virtual
// CLOCK_MONOTONIC date); the program kills a check that does not return and reports it hung.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { describe } from 'vitest'
import { skipTitle } from '../helpers.ts'
import { conformanceTests } from './harness.ts'

const PYTHON = '/usr/bin/python3'
const CALLS: Record<string, string[]> = {
  python: [
    'time.sleep',
    'time.sleep x5',
    'select.select',
    'select.select x5',
    'threading.Event.wait',
    'threading.Event.wait x5',
    'queue.Queue.get(timeout)',
    'socket.recv(settimeout)',
    'asyncio.wait_for',
  ],
}
const missing = existsSync(PYTHON) ? undefined : `${PYTHON} does not exist (install Debian's python3)`

describe.skipIf(missing !== undefined)(skipTitle('conformance, Python: timeouts of a Python program in virtual time', missing), () => {
  conformanceTests('conformance-python', '2500ms', CALLS, () => [{ name: 'python', command: [PYTHON, path.join(import.meta.dirname, 'timers.py')] }])
})

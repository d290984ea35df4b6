// The conformance checks that fail today, by `<program>/<call>` (their test names): their timeouts
// or timers still run on the wall clock, or hand the kernel a virtual date. Each is skipped visibly
// ("(skipped: not yet virtual)"); none is marked passing while it fails. Remove an entry as soon as
// its call is virtual: every conformance test file prints the entries that pass now, and
// LIVESIM_CONFORMANCE_PENDING=1 runs them all (to see what each gets). Empty: every check passes.
export const PENDING: readonly string[] = []

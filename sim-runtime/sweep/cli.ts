// The `livesim sweep` and `livesim compare` commands, registered on the CLI. Their code (command.ts
// and what it imports) is loaded when one of them runs: every livesim process parses this CLI,
// runtime processes included, and loading the sweep code cost each of them ~65 ms at start.
import { InvalidArgumentError, type Command } from 'commander'
import type { SweepOptions } from './command.ts'

function positiveInt(v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`a positive integer is needed, got ${JSON.stringify(v)}`)
  return n
}

export function addSweepCommands(program: Command): void {
  program
    .command('sweep')
    .description('Run a SimSweep on this machine: every trial (grid point × seed) as `livesim run` runs it; writes results.csv, results.json, trials/ and report.html.')
    .argument('<file>', 'SimSweep manifest (YAML or JSON)')
    .option('-o, --out <dir>', 'output directory; trials already there with the same spec are reused (default: sweeps/<name>)')
    .option('-j, --parallel <n>', 'trials running at once (default: spec.parallelism, else half the cores, at least 1)', positiveInt)
    .option('-q, --quiet', 'no progress display')
    .action(async (file: string, o: SweepOptions) => (await import('./command.ts')).sweepAction(file, o))

  program
    .command('compare')
    .description('Two results JSON side by side per component: latency percentiles, throughput, errors, with the relative difference.')
    .argument('<a>', 'results JSON (livesim run --out, or a sweep trial)')
    .argument('<b>', 'results JSON to compare with A')
    .option('--json', 'print the rows as JSON')
    .action(async (a: string, b: string, o: { json?: boolean }) => (await import('./command.ts')).compareAction(a, b, o))
}

// What every command module shares: its options, and how it hands its exit
// code back to main. One module per command (inspect.ts, compact.ts, …), each
// exporting `register(program, done)`.

import { Option, type Command } from 'commander'

/** Records a command's exit code (0, 1 or 2; see errors.ts). */
export type Done = (exitCode: number) => void

export interface CommonOptions {
  quiet?: boolean
  progress?: string
  json?: boolean
}

/** Adds --quiet and --progress, the options of every command that reports progress. */
export function withProgressOptions(command: Command): Command {
  return command
    .option('-q, --quiet', 'no progress output')
    .addOption(
      new Option('--progress <mode>', 'progress on stderr: a bar on a terminal, plain lines otherwise (auto)')
        .choices(['auto', 'bar', 'lines', 'none'])
        .default('auto'),
    )
}

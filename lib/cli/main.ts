// The `annvault` command line (bin/annvault.js runs `main`). Built on
// commander; each command is one module registering itself here.

import { Command, CommanderError } from 'commander'
import { version } from '../version'
import { type Done } from './command'
import { CliError, describeError, EXIT_COULD_NOT_RUN, EXIT_OK } from './errors'
import * as backup from './backup'
import * as compact from './compact'
import * as get from './get'
import * as inspect from './inspect'
import * as migrate from './migrate'
import * as search from './search'
import * as snapshot from './snapshot'
import * as transfer from './transfer'
import * as verify from './verify'

const COMMANDS: { register(program: Command, done: Done): void }[] = [inspect, verify, compact, search, get, transfer, snapshot, migrate, backup]

/** Runs the CLI on `argv` (as `process.argv`: node, script, args…) and resolves to its exit code. */
export async function run(argv: string[]): Promise<number> {
  let exitCode = EXIT_OK
  const done: Done = (code) => {
    exitCode = code
  }
  const program = new Command()
    .name('annvault')
    .description('Look inside, check, search, compact, export, snapshot, migrate and back up annvault data.')
    .version(version)
    // Errors and help come back as exceptions, so exit codes stay ours (2 for bad arguments).
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
  for (const command of COMMANDS) command.register(program, done)
  try {
    await program.parseAsync(argv)
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has printed the message (or the help) already.
      const shown = error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
      return shown ? EXIT_OK : EXIT_COULD_NOT_RUN
    }
    if (error instanceof CliError) {
      process.stderr.write(`annvault: ${describeError(error)}\n`)
      return error.exitCode
    }
    throw error
  }
  return exitCode
}

/**
 * The process entry point. Sets the exit code and lets the process end by itself: read-only
 * commands leave their store open on purpose (see open.ts), and stdout is drained before exit.
 */
export function main(): void {
  run(process.argv).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      // Not an expected failure: a bug, shown in full.
      process.stderr.write(`annvault: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exitCode = EXIT_COULD_NOT_RUN
    },
  )
}

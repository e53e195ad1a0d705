// How the CLI fails: one readable line and an exit code, never a stack trace
// for an expected failure.
//   0  done, nothing wrong
//   1  done, and something was not found or a problem was found
//   2  could not run: bad arguments, the collection is held by another
//      process, a damaged file (the line names the store's error code)

import { VectorStoreError } from '../../index'

export const EXIT_OK = 0
export const EXIT_PROBLEM = 1
export const EXIT_COULD_NOT_RUN = 2

/** An expected failure: `message` is shown as is, and the process exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The store's error, when the failure is one. */
    readonly storeError?: VectorStoreError,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

/** `error` as one line: the store's message with its kind and stable code, e.g. `[IN_USE 5001]`. */
export function describeError(error: unknown): string {
  if (error instanceof CliError) {
    return error.storeError ? `${error.message} [${error.storeError.kind} ${error.storeError.code}]` : error.message
  }
  if (error instanceof VectorStoreError) return `${error.message} [${error.kind} ${error.code}]`
  return error instanceof Error ? error.message : String(error)
}

/** Wraps a store error met while working on `what` (e.g. "collection 'docs'") as a could-not-run failure. */
export function storeFailure(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error
  if (error instanceof VectorStoreError) {
    const hint = error.kind === 'IN_USE' ? ' (another process has it open; stop it first)' : ''
    return new CliError(`${what}: ${error.message}${hint}`, EXIT_COULD_NOT_RUN, error)
  }
  // Not a store error: a bug here or in the store, shown with its stack.
  throw error
}

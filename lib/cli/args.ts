// Parsing the JSON-valued arguments (--vector, --filter, ids). A value that
// does not parse is a could-not-run failure (exit 2), never guessed at.

import { readFileSync } from 'node:fs'
import { CliError, EXIT_COULD_NOT_RUN } from './errors'

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new CliError(`${what} is not valid JSON: ${(error as Error).message}`, EXIT_COULD_NOT_RUN)
  }
}

/** `--vector`: a JSON array of numbers, or `@file` holding one. */
export function parseVector(value: string): number[] {
  let text = value
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8')
    } catch (error) {
      throw new CliError(`--vector: cannot read ${value.slice(1)}: ${(error as Error).message}`, EXIT_COULD_NOT_RUN)
    }
  }
  const vector = parseJson(text, '--vector')
  if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number')) {
    throw new CliError('--vector must be a JSON array of numbers (or @file holding one)', EXIT_COULD_NOT_RUN)
  }
  return vector
}

/** `--filter`: a JSON object in annvault's filter language (the store validates it). */
export function parseFilter(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  const filter = parseJson(value, '--filter')
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new CliError('--filter must be a JSON object, e.g. \'{"kind":"doc"}\'', EXIT_COULD_NOT_RUN)
  }
  return filter as Record<string, unknown>
}

export function parseLimit(value: string): number {
  const limit = Number(value)
  if (!Number.isSafeInteger(limit) || limit < 1 || String(limit) !== value.trim()) {
    throw new CliError(`-k must be a positive integer, got '${value}'`, EXIT_COULD_NOT_RUN)
  }
  return limit
}

/**
 * The ids `text` can mean, in the order to try them. Ids keep their type in annvault (`1` and
 * `"1"` differ): with --id-type auto, an integer literal is tried as a number, then as a string.
 */
export function candidateIds(text: string, idType: string): (string | number)[] {
  const asNumber = Number(text)
  const isInteger = /^-?\d+$/.test(text) && Number.isSafeInteger(asNumber)
  if (idType === 'string') return [text]
  if (idType === 'number') {
    if (!isInteger) throw new CliError(`--id-type number: '${text}' is not a safe integer`, EXIT_COULD_NOT_RUN)
    return [asNumber]
  }
  return isInteger ? [asNumber, text] : [text]
}

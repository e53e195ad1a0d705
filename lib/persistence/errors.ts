/**
 * `PersistenceError`: the one error class of the key-value API, with the
 * Lumix codes 5000–5005 on `err.code` and structured `err.details`.
 *
 * The addon rejects with an `annvault:{json}` envelope (see `src/error.rs`);
 * {@link fromAddonError} turns it into a `PersistenceError`:
 *
 * | addon code (kind)                    | becomes | why |
 * |--------------------------------------|---------|-----|
 * | 5001 IN_USE                          | 5001    | a second opener is an initialization error |
 * | 5002 IO                              | 5002    | storage operation |
 * | 5003, 5004                           | same    | key format, serialization |
 * | 5005 DATABASE                        | 5005    | SQLite failure or not a database; `details.file` |
 * | 5006 CORRUPT                         | 5005    | a corrupt file is a database error; `details.file` names it |
 * | 5007 WRITES_DISABLED                 | 5002    | a storage operation was refused |
 * | 5008 CONFIG_MISMATCH, 5009 LEGACY_FORMAT | 5001 | the storage cannot be opened as asked |
 * | 1008 INVALID_ARGUMENT of `key`, `pattern`, `tableName` | 5003 | an invalid name |
 * | 1012 CLOSED                          | 5001    | `details.state = 'closed'` (see the manager) |
 * | anything else (1013 POISONED, 1014 INTERNAL, …) | 5000 | generic |
 *
 * The addon's own code and kind stay on `details.addonCode` / `details.addonKind`.
 */

export const PersistenceErrorCode = Object.freeze({
  GENERIC: 5000,
  INITIALIZATION: 5001,
  STORAGE: 5002,
  INVALID_KEY: 5003,
  SERIALIZATION: 5004,
  DATABASE: 5005,
} as const)

export type PersistenceErrorCodeValue = (typeof PersistenceErrorCode)[keyof typeof PersistenceErrorCode]

export class PersistenceError extends Error {
  static readonly GENERIC = PersistenceErrorCode.GENERIC
  static readonly INITIALIZATION = PersistenceErrorCode.INITIALIZATION
  static readonly STORAGE = PersistenceErrorCode.STORAGE
  static readonly INVALID_KEY = PersistenceErrorCode.INVALID_KEY
  static readonly SERIALIZATION = PersistenceErrorCode.SERIALIZATION
  static readonly DATABASE = PersistenceErrorCode.DATABASE

  readonly code: number
  readonly details: Record<string, unknown>

  constructor(
    message: string,
    code: number = PersistenceErrorCode.GENERIC,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PersistenceError'
    this.code = code
    this.details = details
  }
}

const ENVELOPE_PREFIX = 'annvault:'

interface Envelope {
  code: number
  kind: string
  operation?: string
  message: string
  details?: Record<string, unknown>
}

const NAME_ARGUMENTS = new Set(['key', 'pattern', 'tableName'])

function mapCode(envelope: Envelope): number {
  const details = envelope.details ?? {}
  switch (envelope.code) {
    case 5001:
    case 5002:
    case 5003:
    case 5004:
    case 5005:
      return envelope.code
    case 5006:
      return PersistenceErrorCode.DATABASE
    case 5007:
      return PersistenceErrorCode.STORAGE
    case 5008:
    case 5009:
    case 1012:
      return PersistenceErrorCode.INITIALIZATION
    case 1008:
      return NAME_ARGUMENTS.has(String(details.argument)) ? PersistenceErrorCode.INVALID_KEY : PersistenceErrorCode.GENERIC
    default:
      return PersistenceErrorCode.GENERIC
  }
}

/**
 * Turns whatever the addon (or an adapter) threw into a `PersistenceError`:
 * an existing `PersistenceError` passes through, an envelope is mapped as
 * the table above says, anything else becomes code 5000 with the original
 * as `cause`.
 */
export function fromAddonError(error: unknown, operation: string, adapter?: string): PersistenceError {
  if (error instanceof PersistenceError) return error
  // Not `instanceof Error`: errors made by the addon belong to the main realm, not to a vm context (jest).
  const raw = (error as { message?: unknown } | null)?.message
  const message = typeof raw === 'string' ? raw : String(error)
  if (message.startsWith(ENVELOPE_PREFIX)) {
    let envelope: Envelope | undefined
    try {
      envelope = JSON.parse(message.slice(ENVELOPE_PREFIX.length)) as Envelope
    } catch {
      envelope = undefined
    }
    if (envelope && typeof envelope.code === 'number') {
      const details: Record<string, unknown> = {
        ...(envelope.details ?? {}),
        operation,
        addonCode: envelope.code,
        addonKind: envelope.kind,
      }
      if (adapter !== undefined) details.adapter = adapter
      if (envelope.code === 1012) details.state = 'closed'
      return new PersistenceError(envelope.message, mapCode(envelope), details)
    }
  }
  // An adapter's own error carrying the engine's code and kind (NativeAdapter): mapped like an envelope.
  const coded = error as { code?: unknown; kind?: unknown; details?: unknown } | null
  if (coded && typeof coded.code === 'number' && typeof coded.kind === 'string') {
    const own = typeof coded.details === 'object' && coded.details !== null ? (coded.details as Record<string, unknown>) : {}
    const envelope: Envelope = { code: coded.code, kind: coded.kind, message, details: own }
    const details: Record<string, unknown> = { ...own, operation, addonCode: coded.code, addonKind: coded.kind }
    if (adapter !== undefined) details.adapter = adapter
    if (coded.code === 1012) details.state = 'closed'
    return new PersistenceError(message, mapCode(envelope), details, { cause: error })
  }
  const details: Record<string, unknown> = { operation }
  if (adapter !== undefined) details.adapter = adapter
  return new PersistenceError(`${operation} failed: ${message}`, PersistenceErrorCode.GENERIC, details, { cause: error })
}

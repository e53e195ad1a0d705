/**
 * `StorageError`: what `StorageManager`, its storages and its backups
 * reject with. It extends {@link PersistenceError} (so `instanceof
 * PersistenceError` holds and the key-value codes keep their meaning) and
 * adds the codes the manager needs that the key-value API has none for:
 *
 * | code | name            | when |
 * |------|-----------------|------|
 * | 5002 | STORAGE         | (PersistenceError) a file-system call failed; `details.file`, `details.errno` |
 * | 5003 | INVALID_KEY     | (PersistenceError) a key that is empty, too long or would escape its storage |
 * | 5004 | SERIALIZATION   | (PersistenceError) a value that cannot be stored as given |
 * | 5101 | CONFIG          | the configuration does not parse or is invalid; `details.key` names the key (`persistence.storages.file.base_path`) |
 * | 5102 | UNKNOWN_STORAGE | no storage of that name; `details.storage` |
 * | 5103 | CORRUPT_PACK    | a pack file whose bytes are damaged (magic, header, checksum, length); `details.file` |
 * | 5104 | BACKUP          | a backup could not be written (permission, disk full …) or none is configured; `details.path` |
 * | 5105 | BACKUP_CORRUPT  | a backup fails its manifest's sizes or SHA-256; `details.problems` |
 * | 5106 | NOT_FOUND       | no backup with that id; `details.id` |
 *
 * Errors of the underlying adapters (`PersistenceError` 5000–5005) and of
 * the vector store (`VectorStoreError`) pass through unchanged.
 */

import { PersistenceError } from '../persistence/errors'

export const StorageErrorCode = Object.freeze({
  STORAGE: 5002,
  INVALID_KEY: 5003,
  SERIALIZATION: 5004,
  CONFIG: 5101,
  UNKNOWN_STORAGE: 5102,
  CORRUPT_PACK: 5103,
  BACKUP: 5104,
  BACKUP_CORRUPT: 5105,
  NOT_FOUND: 5106,
} as const)

export type StorageErrorCodeValue = (typeof StorageErrorCode)[keyof typeof StorageErrorCode]

export class StorageError extends PersistenceError {
  static readonly CONFIG = StorageErrorCode.CONFIG
  static readonly UNKNOWN_STORAGE = StorageErrorCode.UNKNOWN_STORAGE
  static readonly CORRUPT_PACK = StorageErrorCode.CORRUPT_PACK
  static readonly BACKUP = StorageErrorCode.BACKUP
  static readonly BACKUP_CORRUPT = StorageErrorCode.BACKUP_CORRUPT
  static readonly NOT_FOUND = StorageErrorCode.NOT_FOUND

  constructor(message: string, code: number, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, code, details, options)
    this.name = 'StorageError'
  }
}

/** A failed file-system call as a 5002 `StorageError` naming the file; a `PersistenceError` passes through. */
export function ioError(error: unknown, operation: string, file: string, storage?: string): PersistenceError {
  if (error instanceof PersistenceError) return error
  const e = error as NodeJS.ErrnoException
  const details: Record<string, unknown> = { operation, file: e?.path ?? file, errno: e?.code }
  if (storage !== undefined) details.storage = storage
  return new StorageError(`${operation} failed on ${e?.path ?? file}: ${e?.message ?? String(error)}`, StorageErrorCode.STORAGE, details, {
    cause: error,
  })
}

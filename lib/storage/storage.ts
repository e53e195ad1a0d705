/**
 * `Storage`: what every storage of a {@link StorageManager} answers, in
 * camelCase and in the Python layer's names (`list_keys`), so code ported
 * from that layer reads the same. Every method rejects with a typed error;
 * none resolves `false` to hide a failure. `retrieve` of an absent key
 * resolves `null` (as Python's `None`).
 */

import type { StorageType } from './config'

export interface RetrieveOptions {
  /** Pack storage: resolve to a Readable of the value's bytes instead of the value. */
  stream?: boolean
}

/** What a storage's backup step reports for the manifest. */
export interface StorageBackupResult {
  /** Why the storage has no files in the backup (`cache`: memory only). */
  skipped?: string
  /** Entries / points / packs copied, when the storage counts them. */
  count?: number
}

export interface Storage {
  readonly name: string
  readonly type: StorageType
  /** Writes `data` under `key`, replacing what was there. */
  store(key: string, data: unknown): Promise<void>
  /** The value stored under `key`, or `null` when there is none. */
  retrieve(key: string, options?: RetrieveOptions): Promise<any>
  /** Removes `key`; resolves whether it existed. */
  delete(key: string): Promise<boolean>
  /** Keys starting with `prefix` (all when omitted), sorted. */
  listKeys(prefix?: string): Promise<string[]>
  list_keys(prefix?: string): Promise<string[]>
  close(): Promise<void>
  /** Writes a consistent copy into `dest` (which does not exist yet); writes may go on meanwhile. */
  backupTo(dest: string): Promise<StorageBackupResult>
  /** Replaces the storage's contents with the copy at `src` (as `backupTo` wrote it), atomically. */
  restoreFrom(src: string): Promise<void>
  /** The paths on disk that a restore swaps (for the crash recovery at open). */
  readonly paths: string[]
}

/**
 * Lets calls run side by side, except while a restore (`shut`) runs: it
 * waits for the calls in flight, and calls made meanwhile wait for it and
 * then run against the restored storage.
 */
export class Gate {
  private shutting: Promise<void> | null = null
  private readonly inFlight = new Set<Promise<unknown>>()

  async run<T>(work: () => Promise<T>): Promise<T> {
    while (this.shutting) await this.shutting
    const pending = work()
    this.inFlight.add(pending)
    try {
      return await pending
    } finally {
      this.inFlight.delete(pending)
    }
  }

  /** Runs `work` alone; a second `shut` waits for the first. */
  async shut<T>(work: () => Promise<T>): Promise<T> {
    while (this.shutting) await this.shutting
    let open!: () => void
    this.shutting = new Promise<void>((resolve) => (open = resolve))
    try {
      await Promise.allSettled([...this.inFlight])
      return await work()
    } finally {
      this.shutting = null
      open()
    }
  }
}

/** One at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work)
    this.tail = next.catch(() => undefined)
    return next
  }
}

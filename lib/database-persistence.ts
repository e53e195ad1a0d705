/**
 * `DatabasePersistence`: the persistence API that ruvector-extensions
 * documents, over an annvault vector store (README, "DatabasePersistence").
 *
 * Saves go to a directory of their own (`baseDir`): a full save in the chosen
 * format, then deltas of what changed, each checksummed and listed in a
 * manifest written last and atomically (annvault-core `snapshots::saves`).
 * The work runs in Rust off the JS thread; this file checks arguments,
 * serialises the calls of one instance and runs the auto-save timer.
 */

import { createHash } from 'node:crypto'
import { createReadStream, promises as fsp } from 'node:fs'
import * as nodePath from 'node:path'
import type { Progress } from './progress'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const annvault = require('../index.js')
const internal = annvault.__internal

export type PersistenceFormat = 'json' | 'binary' | 'sqlite' | 'annvault'
export type PersistenceCompression = 'none' | 'gzip' | 'brotli'

/** A progress event (the shape shared by every `onProgress`: README, "Progress"). */
export type PersistenceProgress = Progress

export interface DatabasePersistenceOptions {
  /** Directory of the saves and snapshots (created if missing). Default `./data`. */
  baseDir?: string
  /** Format of full saves: JSON, `binary` (MessagePack), SQLite, or annvault's own bundle. Default `json`. */
  format?: PersistenceFormat
  /** Compression of every file written. Default `none`. */
  compression?: PersistenceCompression
  /** Milliseconds between auto-saves; given, auto-save starts at once. */
  autoSaveInterval?: number
  /** Snapshots kept: creating one more deletes the oldest. */
  maxSnapshots?: number
  /** Progress of saves, loads, snapshots, restores, exports and imports. */
  onProgress?: (progress: PersistenceProgress) => void
  /** Called with an auto-save's failure; without it the failure rejects the next call. */
  onAutoSaveError?: (error: Error) => void
}

export interface SaveResult {
  /** `full`, `incremental`, or `unchanged` (an incremental save that had nothing to write). */
  kind: 'full' | 'incremental' | 'unchanged'
  /** Why an incremental save wrote a full save. */
  reason: string | null
  file: string | null
  /** Bytes this save wrote to its data file. */
  bytes: number
  upserts: number
  deletes: number
  count: number
  chainFiles: number
  chainBytes: number
  cleanupError: string | null
}

export interface LoadResult {
  count: number
  files: number
  bytes: number
  savedAt: number
}

export interface SnapshotMetadata {
  id: string
  name: string
  createdAt: number
  count: number
  bytes: number
  checksum: string
  format: string
  compression: string
  metadata: unknown
}

export interface ExportOptions {
  path: string
  format?: PersistenceFormat | 'jsonl' | 'msgpack'
  /** `true`: the instance's compression (gzip when that is `none`); `false`: none; or a name. */
  compress?: boolean | PersistenceCompression
  /** Replace a file at `path` (atomically). Default false: an existing file is refused. */
  overwrite?: boolean
}

export interface ExportResult {
  path: string
  format: string
  compression: string
  count: number
  bytes: number
  /** SHA-256 of the file, also written to `<path>.sha256`. */
  checksum: string
}

export interface ImportOptions {
  path: string
  /** Replace the store's points (true) or merge into them (false, the default). */
  clear?: boolean
  /** `true`: `<path>.sha256` must exist and match; `false`: not read; default: checked when present. */
  verifyChecksum?: boolean
}

export interface ImportResult {
  count: number
  format: string
  compression: string
  checksumVerified: boolean
}

const FORMATS: Record<string, string> = {
  json: 'json',
  binary: 'msgpack',
  sqlite: 'sqlite',
  annvault: 'annvault',
}
const EXPORT_FORMATS: Record<string, string> = { ...FORMATS, jsonl: 'jsonl', msgpack: 'msgpack' }
const COMPRESSIONS = ['none', 'gzip', 'brotli']
const OPTION_KEYS = ['baseDir', 'format', 'compression', 'autoSaveInterval', 'maxSnapshots', 'onProgress', 'onAutoSaveError']

function invalid(operation: string, argument: string, message: string): Error {
  return internal.storeError('INVALID_ARGUMENT', operation, message, { argument })
}

function choice(value: unknown, table: Record<string, string>, name: string, operation: string, fallback: string): string {
  if (value === undefined) return table[fallback]
  if (typeof value !== 'string' || !Object.prototype.hasOwnProperty.call(table, value)) {
    throw invalid(operation, name, `${name} must be one of ${Object.keys(table).join(', ')}, got ${internal.describe(value)}`)
  }
  return table[value]
}

function compressionOf(value: unknown, name: string, operation: string): string {
  if (value === undefined) return 'none'
  if (typeof value !== 'string' || !COMPRESSIONS.includes(value)) {
    throw invalid(operation, name, `${name} must be 'none', 'gzip' or 'brotli', got ${internal.describe(value)}`)
  }
  return value
}

function positiveInteger(value: unknown, name: string, operation: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(operation, name, `${name} must be an integer from 1 to ${max}, got ${internal.describe(value)}`)
  }
  return value
}

function optionsObject(value: unknown, known: string[], operation: string): Record<string, unknown> {
  const copy = internal.readOptions(value ?? {}, 'options', operation)
  internal.checkKnown(copy, new Set(known), 'options', operation)
  return copy
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Writes `text` to `path` atomically: temp, fsync, rename, fsync of the directory. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const dir = nodePath.dirname(path)
  const tmp = nodePath.join(dir, `.${nodePath.basename(path)}.${process.pid}.${Date.now()}.tmp`)
  const file = await fsp.open(tmp, 'w')
  try {
    await file.writeFile(text)
    await file.sync()
  } finally {
    await file.close()
  }
  try {
    await fsp.rename(tmp, path)
  } catch (error) {
    await fsp.rm(tmp, { force: true })
    throw error
  }
  const handle = await fsp.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

interface NativeSaveDir {
  save(onProgress?: (event: string) => void): Promise<string>
  saveIncremental(onProgress?: (event: string) => void): Promise<string>
  load(onProgress?: (event: string) => void): Promise<string>
  createSnapshot(name: string, metadata: string | undefined, max: number | undefined, onProgress?: (event: string) => void): Promise<string>
  listSnapshots(): Promise<string>
  restoreSnapshot(idOrName: string, onProgress?: (event: string) => void): Promise<string>
  deleteSnapshot(idOrName: string): Promise<string>
  close(): void
}

/** The parts of an annvault store DatabasePersistence uses. */
interface Store {
  connect(): Promise<void>
  isConnected(): boolean
  export(path: string, options: Record<string, unknown>): Promise<Record<string, unknown>>
  import(path: string, options: Record<string, unknown>): Promise<Record<string, unknown>>
}

export class DatabasePersistence {
  readonly baseDir: string
  readonly format: PersistenceFormat
  readonly compression: PersistenceCompression
  readonly maxSnapshots: number | undefined
  readonly autoSaveInterval: number | undefined
  #store: Store
  #native: string
  #onProgress: ((progress: PersistenceProgress) => void) | undefined
  #onAutoSaveError: ((error: Error) => void) | undefined
  #saves: Promise<NativeSaveDir> | null = null
  #queue: Promise<unknown> = Promise.resolve()
  #timer: NodeJS.Timeout | null = null
  #autoSaveError: Error | null = null
  #shutdown = false

  constructor(store: unknown, options?: DatabasePersistenceOptions) {
    const operation = 'DatabasePersistence'
    if (!(store instanceof annvault.InMemoryVectorStore)) {
      throw invalid(operation, 'store', `store must be an annvault vector store (InMemoryVectorStore or VectorDB), got ${internal.describe(store)}`)
    }
    const o = optionsObject(options, OPTION_KEYS, operation)
    const baseDir = o.baseDir ?? './data'
    if (typeof baseDir !== 'string' || baseDir.length === 0) {
      throw invalid(operation, 'baseDir', `baseDir must be a non-empty string, got ${internal.describe(baseDir)}`)
    }
    this.#store = store as Store
    this.baseDir = nodePath.resolve(baseDir)
    this.#native = choice(o.format, FORMATS, 'format', operation, 'json')
    this.format = (o.format ?? 'json') as PersistenceFormat
    this.compression = compressionOf(o.compression, 'compression', operation) as PersistenceCompression
    this.autoSaveInterval = positiveInteger(o.autoSaveInterval, 'autoSaveInterval', operation, 0x7fffffff)
    this.maxSnapshots = positiveInteger(o.maxSnapshots, 'maxSnapshots', operation, 0xffffffff)
    for (const key of ['onProgress', 'onAutoSaveError']) {
      if (o[key] !== undefined && typeof o[key] !== 'function') {
        throw invalid(operation, key, `${key} must be a function, got ${internal.describe(o[key])}`)
      }
    }
    this.#onProgress = o.onProgress as ((progress: PersistenceProgress) => void) | undefined
    this.#onAutoSaveError = o.onAutoSaveError as ((error: Error) => void) | undefined
    if (this.autoSaveInterval !== undefined) this.startAutoSave()
  }

  /** Runs `work` after every earlier call of this instance, translating errors. */
  #run<T>(operation: string, work: () => Promise<T>, reportBackground = true): Promise<T> {
    const next = this.#queue.then(() =>
      internal.call(operation, async () => {
        if (this.#shutdown) {
          throw invalid(operation, 'persistence', 'shutdown() was called; create a new DatabasePersistence')
        }
        if (reportBackground && this.#autoSaveError !== null) {
          const failure = this.#autoSaveError
          this.#autoSaveError = null
          throw failure
        }
        return work()
      }),
    )
    this.#queue = next.catch(() => undefined)
    return next
  }

  async #dir(): Promise<NativeSaveDir> {
    if (!this.#store.isConnected()) await this.#store.connect()
    if (this.#saves === null) {
      const opening = internal.nativeOf(this.#store, 'DatabasePersistence').openSaveDir(this.baseDir, this.#native, this.compression)
      this.#saves = opening
      opening.catch(() => {
        if (this.#saves === opening) this.#saves = null
      })
    }
    return this.#saves as Promise<NativeSaveDir>
  }

  async #call<T>(call: (dir: NativeSaveDir, progress: ((event: string) => void) | undefined) => Promise<string>): Promise<T> {
    const dir = await this.#dir()
    const relay = internal.progressRelay(this.#onProgress)
    return relay.settle(JSON.parse(await call(dir, relay.callback)))
  }

  /** Writes the whole store as a new base; earlier saves' files go once it is durable. */
  save(): Promise<SaveResult> {
    return this.#run('save', () => this.#call((d, p) => d.save(p)))
  }

  /** Writes what changed since the last save or load of this instance; a full save when it cannot tell. */
  saveIncremental(): Promise<SaveResult> {
    return this.#run('saveIncremental', () => this.#call((d, p) => d.saveIncremental(p)))
  }

  /** Replaces the store's points with the saved state, after checking every file; atomic. */
  load(): Promise<LoadResult> {
    return this.#run('load', () => this.#call((d, p) => d.load(p)))
  }

  /** Saves incrementally, then keeps the saved files under a snapshot (hard links where possible). */
  createSnapshot(name: string, metadata?: Record<string, unknown>): Promise<SnapshotMetadata> {
    return this.#run('createSnapshot', async () => {
      const key = internal.snapshotKey(name, 'name', 'createSnapshot')
      const text = internal.metadataText(metadata, 'createSnapshot')
      return this.#call((d, p) => d.createSnapshot(key, text, this.maxSnapshots, p))
    })
  }

  /** Every snapshot, oldest first. */
  listSnapshots(): Promise<SnapshotMetadata[]> {
    return this.#run('listSnapshots', async () => JSON.parse(await (await this.#dir()).listSnapshots()))
  }

  /** Verifies a snapshot (by id, or name), then makes it the store's state, atomically. */
  restoreSnapshot(id: string): Promise<SnapshotMetadata> {
    return this.#run('restoreSnapshot', async () => {
      const key = internal.snapshotKey(id, 'id', 'restoreSnapshot')
      return this.#call((d, p) => d.restoreSnapshot(key, p))
    })
  }

  /** Deletes a snapshot (by id, or name); resolves to its description. */
  deleteSnapshot(id: string): Promise<SnapshotMetadata> {
    return this.#run('deleteSnapshot', async () => {
      const key = internal.snapshotKey(id, 'id', 'deleteSnapshot')
      return JSON.parse(await (await this.#dir()).deleteSnapshot(key))
    })
  }

  /** Writes the store to one file (the store's export) and its SHA-256 to `<path>.sha256`. */
  export(options: ExportOptions): Promise<ExportResult> {
    return this.#run('export', async () => {
      const o = optionsObject(options, ['path', 'format', 'compress', 'overwrite'], 'export')
      const path = internal.checkPath(o.path, 'export')
      const format = choice(o.format, EXPORT_FORMATS, 'format', 'export', this.format)
      let compression: string
      if (o.compress === undefined) compression = this.compression
      else if (o.compress === true) compression = this.compression === 'none' ? 'gzip' : this.compression
      else if (o.compress === false) compression = 'none'
      else compression = compressionOf(o.compress, 'compress', 'export')
      if (o.overwrite !== undefined && typeof o.overwrite !== 'boolean') {
        throw invalid('export', 'overwrite', `overwrite must be a boolean, got ${internal.describe(o.overwrite)}`)
      }
      await this.#dir()
      const result = await this.#store.export(path, {
        format,
        compression,
        overwrite: o.overwrite === true,
        ...(this.#onProgress ? { onProgress: this.#onProgress } : {}),
      })
      const checksum = await sha256File(path)
      await writeAtomic(`${path}.sha256`, `${checksum}  ${nodePath.basename(path)}\n`)
      return { ...result, checksum } as ExportResult
    })
  }

  /** Reads an export into the store, all or nothing (the store's import), after its checksum. */
  import(options: ImportOptions): Promise<ImportResult> {
    return this.#run('import', async () => {
      const o = optionsObject(options, ['path', 'clear', 'verifyChecksum'], 'import')
      const path = internal.checkPath(o.path, 'import')
      for (const key of ['clear', 'verifyChecksum']) {
        if (o[key] !== undefined && typeof o[key] !== 'boolean') {
          throw invalid('import', key, `${key} must be a boolean, got ${internal.describe(o[key])}`)
        }
      }
      let checksumVerified = false
      if (o.verifyChecksum !== false) {
        let expected: string | null = null
        try {
          expected = (await fsp.readFile(`${path}.sha256`, 'utf8')).split(/\s+/)[0]
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
          if (o.verifyChecksum === true) {
            throw internal.storeError('CORRUPT', 'import', `${path}.sha256 is missing and verifyChecksum is true`, { file: `${path}.sha256` })
          }
        }
        if (expected !== null) {
          const actual = await sha256File(path)
          if (actual !== expected) {
            throw internal.storeError('CORRUPT', 'import', `${path} does not match its checksum in ${path}.sha256`, {
              file: path,
              expected,
              actual,
            })
          }
          checksumVerified = true
        }
      }
      await this.#dir()
      const result = await this.#store.import(path, {
        mode: o.clear === true ? 'replace' : 'merge',
        ...(this.#onProgress ? { onProgress: this.#onProgress } : {}),
      })
      return { ...result, checksumVerified } as ImportResult
    })
  }

  /** Saves incrementally every `autoSaveInterval` ms (default 60 s); the timer never keeps the process alive. */
  startAutoSave(): void {
    if (this.#shutdown) {
      throw invalid('startAutoSave', 'persistence', 'shutdown() was called; create a new DatabasePersistence')
    }
    if (this.#timer !== null) return
    let running = false
    this.#timer = setInterval(() => {
      if (running) return
      running = true
      this.#run('autoSave', () => this.#call((d, p) => d.saveIncremental(p)), false)
        .catch((error: Error) => {
          if (this.#onAutoSaveError) this.#onAutoSaveError(error)
          else this.#autoSaveError = error
        })
        .finally(() => {
          running = false
        })
    }, this.autoSaveInterval ?? 60_000)
    this.#timer.unref()
  }

  stopAutoSave(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Stops auto-save, saves incrementally, and releases `baseDir`. */
  async shutdown(): Promise<void> {
    this.stopAutoSave()
    if (this.#shutdown) return
    try {
      await this.#run('shutdown', () => this.#call((d, p) => d.saveIncremental(p)))
    } finally {
      this.#shutdown = true
      const saves = this.#saves
      this.#saves = null
      if (saves !== null) await saves.then((d) => d.close(), () => undefined)
    }
  }
}

/**
 * A vector store configured the way ruvector's `VectorDB` is (`{ dimension }`):
 * an annvault `InMemoryVectorStore` kept in memory only (DatabasePersistence
 * persists it), connected on first use by DatabasePersistence or `connect()`.
 */
// Typed in index.d.ts as a subclass of InMemoryVectorStore (this file cannot import those types:
// index.d.ts re-exports from the compiled one).
const StoreClass = annvault.InMemoryVectorStore as new (config: Record<string, unknown>) => Store

export class VectorDB extends StoreClass {
  constructor(options: Record<string, unknown> = {}) {
    super({ type: 'in-memory', annPersistIndex: false, collectionName: 'vectordb', ...options })
  }
}

/**
 * `NativeAdapter`: the `PersistenceAdapter` over annvault's own key-value
 * engine (`crates/core/src/kv`), through the `NativeKv` class of the addon.
 *
 * A write is queued to the engine's commit thread and resolves once it is
 * in the write-ahead log (after `fdatasync` with `durability: 'fsync'`, the
 * default; every write queued while a commit runs shares the next one's
 * append and fsync), a batch is one log record (all or nothing), a second
 * opener of the same path is refused with code 5001, and a damaged log or
 * checkpoint is a typed error naming the file (code 5006), never an empty
 * store. `get` reads the in-memory table on the JS thread (`getSync`) unless
 * the values found exceed {@link SYNC_GET_MAX_BYTES}; `find`, `keys` and
 * `stats` run on the libuv pool.
 */

import type { Progress } from '../progress'
import type { AdapterStats, EncodedValue, PersistenceAdapter, RawEntry, RawWrite } from './adapter'

/** What the addon's `NativeKv` returns for one entry. */
interface NativeEntry {
  key: string
  json?: string | null
  binary?: Uint8Array | null
  metadata: string
  createdAt: number
  updatedAt: number
  expiresAt?: number | null
}

interface NativeWrite {
  key: string
  json?: string
  binary?: Uint8Array
  metadata: string
  expiresAt?: number
}

interface NativeStats {
  totalEntries: number
  size: number
  lastSync?: number | null
}

interface NativeKv {
  get(keys: string[], now: number): Promise<(NativeEntry | null)[]>
  getSync(keys: string[], now: number, maxBytes: number): (NativeEntry | null)[] | null
  set(writes: NativeWrite[], now: number): Promise<void>
  onSettled(callback: () => void): void
  setQueued(writes: NativeWrite[], now: number, ticket: number): void
  takeSettled(): { ok: number[]; failed: number[] }
  takeError(ticket: number): void
  delete(keys: string[], now: number): Promise<boolean[]>
  find(pattern: string, now: number): Promise<NativeEntry[]>
  keys(pattern: string | undefined | null, now: number): Promise<string[]>
  clear(): Promise<void>
  stats(now: number): Promise<NativeStats>
  maintain(now: number, onProgress?: (event: string) => void): Promise<{ swept: number; progressEvents: number }>
  checkpoint(onProgress?: (event: string) => void): Promise<number>
  backupTo(dest: string): Promise<number>
  close(): Promise<void>
}

interface Binding {
  openKv(config: { path: string; durability?: string }): Promise<NativeKv>
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding: Binding = require('../../native.js')

const ENVELOPE_PREFIX = 'annvault:'

/**
 * Value and metadata bytes a `get` copies on the JS thread; past this, the
 * entries are read on the libuv pool. 256 KiB copy and convert in well
 * under a millisecond.
 */
export const SYNC_GET_MAX_BYTES = 256 * 1024

export interface NativeAdapterOptions {
  /** Directory of the table (created if missing; one opener at a time). */
  path: string
  /**
   * `'fsync'` (default): a write resolves once `fdatasync`ed, survives a power cut.
   * `'flush'`: once written to the OS, survives the process being killed.
   */
  durability?: 'fsync' | 'flush'
}

/** A progress event of a checkpoint, as the vector store's `onProgress` gets it (README, "Progress"). */
export type NativeAdapterProgress = Progress

/** Options of `maintain` and `checkpoint`. */
export interface NativeAdapterCheckpointOptions {
  /**
   * Progress of the checkpoint: operation `checkpoint`, phase `write`, in
   * bytes of the checkpoint file (total 0 when nothing changed since the
   * last one), at a bounded rate. A callback that throws is ignored.
   */
  onProgress?: (event: NativeAdapterProgress) => void
}

interface Relay {
  callback: ((event: string) => void) | undefined
  settle<T extends { progressEvents: number }>(result: T): Promise<Omit<T, 'progressEvents'>>
}

/** The vector store's relay of native progress events (index.js), loaded on first use. */
function progressRelay(options: NativeAdapterCheckpointOptions | undefined, operation: string): Relay {
  const onProgress = options?.onProgress
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw Object.assign(new TypeError(`onProgress must be a function, got ${typeof onProgress}`), {
      code: 1008,
      kind: 'INVALID_ARGUMENT',
      details: { argument: 'onProgress' },
      operation,
    })
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const internal = require('../../index.js').__internal as { progressRelay(f: unknown): Relay }
  return internal.progressRelay(onProgress)
}

/** An error from the engine, with its stable `code`, `kind` and `details`. */
export interface NativeAdapterError extends Error {
  code: number
  kind: string
  details: Record<string, unknown>
  operation: string
}

/**
 * Turns the addon's error envelope into an error carrying `code`, `kind`
 * and `details` (as `index.js` does for the vector store).
 *
 * These are the engine's own codes (an adapter speaks the engine's
 * language); `DefaultPersistenceManager` maps them to the Lumix codes
 * 5000–5005 through `fromAddonError`.
 */
function fromNative(error: unknown, operation: string): NativeAdapterError {
  // Duck-typed: an error from the addon may come from another realm (a vm context, jest).
  const raw = (error as { message?: unknown } | null)?.message
  const message = typeof raw === 'string' ? raw : String(error)
  if (!message.startsWith(ENVELOPE_PREFIX)) {
    return Object.assign(new Error(`internal error in ${operation}: ${message}`, { cause: error }), {
      name: 'PersistenceError',
      code: 5000,
      kind: 'PERSISTENCE',
      details: {},
      operation,
    })
  }
  const envelope = JSON.parse(message.slice(ENVELOPE_PREFIX.length)) as {
    code: number
    kind: string
    message: string
    operation: string
    details?: Record<string, unknown>
  }
  return Object.assign(new Error(envelope.message), {
    name: 'PersistenceError',
    code: envelope.code,
    kind: envelope.kind,
    details: envelope.details ?? {},
    operation: envelope.operation,
  })
}

function closedError(operation: string): NativeAdapterError {
  return Object.assign(new Error(`the native adapter is not open (init() not called, or closed): ${operation}`), {
    name: 'PersistenceError',
    code: 1012,
    kind: 'CLOSED',
    details: {},
    operation,
  })
}

function decode(entry: NativeEntry): RawEntry {
  const value: EncodedValue =
    entry.binary != null ? { kind: 'binary', bytes: entry.binary } : { kind: 'json', text: entry.json ?? 'null' }
  return {
    key: entry.key,
    value,
    metadata: entry.metadata,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
    expiresAt: entry.expiresAt ?? null,
  }
}

function encode(write: RawWrite): NativeWrite {
  const out: NativeWrite = { key: write.key, metadata: write.metadata }
  if (write.value.kind === 'binary') out.binary = write.value.bytes
  else out.json = write.value.text
  if (write.expiresAt !== null) out.expiresAt = write.expiresAt
  return out
}

export class NativeAdapter implements PersistenceAdapter {
  readonly name = 'native'
  readonly path: string
  readonly durability: 'fsync' | 'flush'
  private kv: NativeKv | null = null
  /** Writes queued with `setQueued`, by ticket, until the commit thread settles them. */
  private readonly waiting = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>()
  private nextTicket = 0

  constructor(options: NativeAdapterOptions) {
    if (options === null || typeof options !== 'object' || typeof options.path !== 'string' || options.path === '') {
      throw Object.assign(new TypeError('NativeAdapter needs { path: string }'), {
        code: 1008,
        kind: 'INVALID_ARGUMENT',
        details: { argument: 'path' },
      })
    }
    this.path = options.path
    this.durability = options.durability ?? 'fsync'
  }

  private async run<T>(operation: string, work: (kv: NativeKv) => Promise<T>): Promise<T> {
    const kv = this.kv
    if (kv === null) throw closedError(operation)
    try {
      return await work(kv)
    } catch (error) {
      throw fromNative(error, operation)
    }
  }

  async init(): Promise<void> {
    if (this.kv !== null) return
    try {
      const kv = await binding.openKv({ path: this.path, durability: this.durability })
      kv.onSettled(() => this.settle(kv))
      this.kv = kv
    } catch (error) {
      throw fromNative(error, 'init')
    }
  }

  /**
   * Writes the table as of this call into `dest` (a directory that must
   * not exist) as a directory `NativeAdapter` opens, times included;
   * writes go on meanwhile. Resolves to the number of entries copied.
   */
  backupTo(dest: string): Promise<number> {
    return this.run('backupTo', (kv) => kv.backupTo(dest))
  }

  get(keys: string[], now: number): Promise<(RawEntry | null)[]> {
    return this.run('get', async (kv) => (await kv.get(keys, now)).map((e) => (e === null ? null : decode(e))))
  }

  getSync(keys: string[], now: number): (RawEntry | null)[] | null {
    const kv = this.kv
    if (kv === null) throw closedError('get')
    let entries: (NativeEntry | null)[] | null
    try {
      entries = kv.getSync(keys, now, SYNC_GET_MAX_BYTES)
    } catch (error) {
      throw fromNative(error, 'get')
    }
    return entries === null ? null : entries.map((e) => (e === null ? null : decode(e)))
  }

  /**
   * Queues the batch to the commit thread. The Promise settles when the
   * group it joined is durable (or refused): the commit thread wakes this
   * adapter once per group and {@link settle} resolves every write of it,
   * rather than napi settling a Promise of its own per write.
   */
  set(writes: RawWrite[], now: number): Promise<void> {
    const kv = this.kv
    if (kv === null) return Promise.reject(closedError('set'))
    const ticket = this.nextTicket
    this.nextTicket = (ticket + 1) >>> 0
    try {
      kv.setQueued(writes.map(encode), now, ticket)
    } catch (error) {
      return Promise.reject(fromNative(error, 'set'))
    }
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(ticket, { resolve, reject })
    })
  }

  /** Settles the writes the commit thread reports done. */
  private settle(kv: NativeKv): void {
    const { ok, failed } = kv.takeSettled()
    for (const ticket of ok) {
      const waiter = this.waiting.get(ticket)
      if (waiter === undefined) continue
      this.waiting.delete(ticket)
      waiter.resolve()
    }
    for (const ticket of failed) {
      const waiter = this.waiting.get(ticket)
      if (waiter === undefined) continue
      this.waiting.delete(ticket)
      try {
        kv.takeError(ticket)
        waiter.reject(fromNative(new Error('the write was refused'), 'set'))
      } catch (error) {
        waiter.reject(fromNative(error, 'set'))
      }
    }
  }

  delete(keys: string[], now: number): Promise<boolean[]> {
    return this.run('delete', (kv) => kv.delete(keys, now))
  }

  find(pattern: string, now: number): Promise<RawEntry[]> {
    return this.run('find', async (kv) => (await kv.find(pattern, now)).map(decode))
  }

  keys(pattern: string | undefined, now: number): Promise<string[]> {
    return this.run('keys', (kv) => kv.keys(pattern, now))
  }

  clear(): Promise<void> {
    return this.run('clear', (kv) => kv.clear())
  }

  stats(now: number): Promise<AdapterStats> {
    return this.run('stats', async (kv) => {
      const s = await kv.stats(now)
      return { totalEntries: s.totalEntries, size: s.size, lastSync: s.lastSync ?? null }
    })
  }

  /**
   * Sweeps the entries expired at `now`, then checkpoints (which also
   * compacts the log away); `options.onProgress` hears the checkpoint.
   */
  async maintain(now: number, options?: NativeAdapterCheckpointOptions): Promise<void> {
    const relay = progressRelay(options, 'maintain')
    await this.run('maintain', async (kv) => relay.settle(await kv.maintain(now, relay.callback)))
  }

  /**
   * Writes a checkpoint now (the table as of this call, then a manifest
   * naming it; the log it covers is removed); `options.onProgress` hears it.
   */
  async checkpoint(options?: NativeAdapterCheckpointOptions): Promise<void> {
    const relay = progressRelay(options, 'checkpoint')
    await this.run('checkpoint', async (kv) => relay.settle({ progressEvents: await kv.checkpoint(relay.callback) }))
  }

  /** Checkpoints and releases the directory. Closing twice is a no-op; other calls then reject (code 1012). */
  async close(): Promise<void> {
    if (this.kv === null) return
    await this.run('close', (kv) => kv.close())
    // Later calls reject as closed; init() opens the directory again.
    this.kv = null
  }
}

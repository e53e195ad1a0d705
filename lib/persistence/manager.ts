/**
 * `DefaultPersistenceManager`: the key-value API of the Lumix persistence
 * system over any {@link PersistenceAdapter}.
 *
 * The manager owns what every adapter must agree on (see `adapter.ts`):
 * key rules, turning values into `EncodedValue`s and back, pattern syntax,
 * TTL arithmetic and the clock. Every failure rejects with a
 * {@link PersistenceError}; nothing is swallowed.
 *
 * Values: a `Buffer` / `Uint8Array` is stored as raw bytes and read back as a
 * `Buffer`. Anything else is stored as JSON and must survive the trip: plain
 * objects, arrays, strings, finite numbers, booleans, `null`, and `Date`s,
 * which are stored as their ISO string and **read back as that string**.
 * `undefined`, functions, symbols, BigInts, NaN / ±Infinity, cycles, class
 * instances (Map, Set, RegExp, …) and nested typed arrays anywhere inside
 * the value or the metadata reject with 5004 and nothing is written.
 */

import type { AdapterStats, EncodedValue, PersistenceAdapter, RawEntry, RawWrite } from './adapter'
import { fromAddonError, PersistenceError, PersistenceErrorCode } from './errors'
import { parseGlob } from './glob'

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024

/** Keys read per page by {@link DefaultPersistenceManager.iterate}. */
export const DEFAULT_PAGE_SIZE = 256

export interface PersistenceEntry<T = any> {
  key: string
  value: T
  metadata: Record<string, any>
  createdAt: Date
  updatedAt: Date
  /** When the entry stops being visible; `null` = never. */
  expiresAt: Date | null
}

export interface SetOptions {
  /** Seconds until the entry expires (a positive number); absent: the adapter's default (none, except a MemoryAdapter with `ttl`). */
  ttl?: number
}

export interface SetManyEntry<T = any> {
  key: string
  value: T
  metadata?: Record<string, any>
  ttl?: number
}

export interface PersistenceStats {
  totalEntries: number
  size: number
  lastSync: Date | null
}

export interface IterateOptions {
  /** Entries read per adapter call (default 256). */
  pageSize?: number
}

type State = 'new' | 'opening' | 'open' | 'closed'

export class DefaultPersistenceManager {
  readonly adapter: PersistenceAdapter
  private state: State = 'new'
  private opening: Promise<void> | null = null
  private readonly inFlight = new Set<Promise<unknown>>()

  constructor(adapter: PersistenceAdapter) {
    if (adapter === null || typeof adapter !== 'object' || typeof (adapter as PersistenceAdapter).init !== 'function') {
      throw new PersistenceError('DefaultPersistenceManager needs a PersistenceAdapter', PersistenceErrorCode.INITIALIZATION)
    }
    this.adapter = adapter
  }

  /** Opens the adapter. Calling it again while open (or opening) waits for the same opening. */
  init(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(this.closedError('init'))
    if (this.opening) return this.opening
    this.state = 'opening'
    this.opening = this.adapter.init().then(
      () => {
        if (this.state === 'opening') this.state = 'open'
      },
      (error: unknown) => {
        if (this.state === 'opening') this.state = 'new'
        this.opening = null
        throw fromAddonError(error, 'init', this.adapter.name)
      },
    )
    return this.opening
  }

  set<T = any>(key: string, value: T, metadata?: Record<string, any>, options?: SetOptions): Promise<void> {
    // Not an async function: one Promise layer less per set (the hot path
    // of a write-heavy app); a bad key or value still rejects, never throws.
    const now = Date.now()
    let write: RawWrite
    try {
      write = this.encodeWrite(key, value, metadata, options?.ttl, now, 'set')
    } catch (error) {
      return Promise.reject(error)
    }
    return this.run('set', () => this.adapter.set([write], now))
  }

  /** Writes every entry or none. */
  async setMany(entries: Array<SetManyEntry>, options?: SetOptions): Promise<void> {
    if (!Array.isArray(entries)) throw argumentError('setMany', 'entries', 'an array of { key, value, metadata?, ttl? }')
    const now = Date.now()
    const writes = entries.map((entry, index) => {
      if (entry === null || typeof entry !== 'object') {
        throw argumentError('setMany', `entries[${index}]`, 'an object { key, value, metadata?, ttl? }')
      }
      return this.encodeWrite(entry.key, entry.value, entry.metadata, entry.ttl ?? options?.ttl, now, 'setMany', index)
    })
    if (writes.length === 0) return this.checkOpen('setMany')
    await this.run('setMany', () => this.adapter.set(writes, now))
  }

  async get<T = any>(key: string): Promise<PersistenceEntry<T> | null> {
    checkKey(key, 'get')
    const now = Date.now()
    const [raw] = this.getSync('get', [key], now) ?? (await this.run('get', () => this.adapter.get([key], now)))
    return raw ? decodeEntry<T>(raw) : null
  }

  async getMany<T = any>(keys: string[]): Promise<Array<PersistenceEntry<T> | null>> {
    if (!Array.isArray(keys)) throw argumentError('getMany', 'keys', 'an array of keys')
    keys.forEach((key, index) => checkKey(key, 'getMany', index))
    if (keys.length === 0) {
      await this.checkOpen('getMany')
      return []
    }
    const now = Date.now()
    const raws = this.getSync('getMany', keys, now) ?? (await this.run('getMany', () => this.adapter.get(keys, now)))
    return raws.map((raw) => (raw ? decodeEntry<T>(raw) : null))
  }

  async has(key: string): Promise<boolean> {
    checkKey(key, 'has')
    const now = Date.now()
    const [raw] = this.getSync('has', [key], now) ?? (await this.run('has', () => this.adapter.get([key], now)))
    return raw !== null && raw !== undefined
  }

  /** Resolves to whether a live entry existed. */
  async delete(key: string): Promise<boolean> {
    checkKey(key, 'delete')
    const now = Date.now()
    const [existed] = await this.run('delete', () => this.adapter.delete([key], now))
    return existed
  }

  /** Removes the keys in one atomic step; per key, whether a live entry existed. */
  async deleteMany(keys: string[]): Promise<boolean[]> {
    if (!Array.isArray(keys)) throw argumentError('deleteMany', 'keys', 'an array of keys')
    keys.forEach((key, index) => checkKey(key, 'deleteMany', index))
    if (keys.length === 0) {
      await this.checkOpen('deleteMany')
      return []
    }
    const now = Date.now()
    return this.run('deleteMany', () => this.adapter.delete(keys, now))
  }

  /** Entries whose key matches the glob pattern (`user:*`), in key order. */
  async find<T = any>(pattern: string): Promise<Array<PersistenceEntry<T>>> {
    parseGlob(pattern)
    const now = Date.now()
    const raws = await this.run('find', () => this.adapter.find(pattern, now))
    return raws.map((raw) => decodeEntry<T>(raw))
  }

  /** Keys matching the pattern (every key when omitted), in key order. */
  async keys(pattern?: string): Promise<string[]> {
    if (pattern !== undefined) parseGlob(pattern)
    const now = Date.now()
    return this.run('keys', () => this.adapter.keys(pattern, now))
  }

  /**
   * The matching entries, read a page at a time: the matching keys are
   * listed once, their entries are read `pageSize` at a time, so values
   * never all sit in memory. An entry deleted or expired after the listing
   * is skipped; one written after it is not visited.
   */
  async *iterate<T = any>(pattern = '*', options?: IterateOptions): AsyncGenerator<PersistenceEntry<T>, void, undefined> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE
    if (!Number.isInteger(pageSize) || pageSize < 1) throw argumentError('iterate', 'pageSize', 'a positive integer')
    const keys = await this.keys(pattern)
    for (let start = 0; start < keys.length; start += pageSize) {
      const page = keys.slice(start, start + pageSize)
      const now = Date.now()
      const raws = await this.run('iterate', () => this.adapter.get(page, now))
      for (const raw of raws) if (raw) yield decodeEntry<T>(raw)
    }
  }

  async stats(): Promise<PersistenceStats> {
    const now = Date.now()
    const stats: AdapterStats = await this.run('stats', () => this.adapter.stats(now))
    return {
      totalEntries: stats.totalEntries,
      size: stats.size,
      lastSync: stats.lastSync === null ? null : new Date(stats.lastSync),
    }
  }

  /** Sweeps expired entries, then the adapter's own housekeeping. */
  async maintain(): Promise<void> {
    const now = Date.now()
    await this.run('maintain', () => this.adapter.maintain(now))
  }

  /** Removes every entry, durably. */
  async clear(): Promise<void> {
    await this.run('clear', () => this.adapter.clear())
  }

  /**
   * Refuses new calls at once, waits for those in flight, then closes the
   * adapter. A second close resolves; any other call after it rejects with
   * 5001 (`details.state === 'closed'`).
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return
    const opening = this.opening
    this.state = 'closed'
    if (!opening) return
    try {
      await opening
    } catch {
      return // never opened: nothing to close
    }
    await Promise.allSettled([...this.inFlight])
    try {
      await this.adapter.close()
    } catch (error) {
      throw fromAddonError(error, 'close', this.adapter.name)
    }
  }

  // ------------------------------------------------------------ internals

  private closedError(operation: string): PersistenceError {
    return new PersistenceError(`the persistence manager is closed (${operation})`, PersistenceErrorCode.INITIALIZATION, {
      operation,
      state: 'closed',
      adapter: this.adapter.name,
    })
  }

  private async checkOpen(operation: string): Promise<void> {
    if (this.state === 'opening' && this.opening) await this.opening
    if (this.state === 'open') return
    if (this.state === 'closed') throw this.closedError(operation)
    throw new PersistenceError(`call init() before ${operation}()`, PersistenceErrorCode.INITIALIZATION, {
      operation,
      state: 'uninitialized',
      adapter: this.adapter.name,
    })
  }

  /**
   * The adapter's synchronous read when it has one and the manager is open
   * (the callers are async: a throw here rejects their Promise); `null`:
   * take the asynchronous path.
   */
  private getSync(operation: string, keys: string[], now: number): (RawEntry | null)[] | null {
    if (this.state !== 'open' || this.adapter.getSync === undefined) return null
    try {
      return this.adapter.getSync(keys, now)
    } catch (error) {
      throw fromAddonError(error, operation, this.adapter.name)
    }
  }

  private run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') return this.checkOpen(operation).then(() => this.track(operation, call))
    // Open (the common case): no await, so no extra Promise and microtask turn.
    return this.track(operation, call)
  }

  /** Runs `call`, known to `close()` until it settles, its errors mapped to PersistenceError. */
  private track<T>(operation: string, call: () => Promise<T>): Promise<T> {
    let pending: Promise<T>
    try {
      pending = call()
    } catch (error) {
      return Promise.reject(fromAddonError(error, operation, this.adapter.name))
    }
    this.inFlight.add(pending)
    return pending.then(
      (value) => {
        this.inFlight.delete(pending)
        return value
      },
      (error: unknown) => {
        this.inFlight.delete(pending)
        throw fromAddonError(error, operation, this.adapter.name)
      },
    )
  }

  private encodeWrite(
    key: string,
    value: unknown,
    metadata: unknown,
    ttl: unknown,
    now: number,
    operation: string,
    index?: number,
  ): RawWrite {
    checkKey(key, operation, index)
    return {
      key,
      value: encodeValue(value, key),
      metadata: encodeMetadata(metadata, key),
      expiresAt: expiry(ttl, now, operation),
    }
  }
}

// ---------------------------------------------------------------- keys

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Throws 5003 unless `key` is a string of 1–1,024 UTF-8 bytes without NUL. */
export function checkKey(key: unknown, operation: string, index?: number): asserts key is string {
  const where = index === undefined ? '' : ` at index ${index}`
  const fail = (reason: string) =>
    new PersistenceError(`invalid key${where}: ${reason}`, PersistenceErrorCode.INVALID_KEY, {
      operation,
      ...(index === undefined ? {} : { index }),
      ...(typeof key === 'string' ? { key: key.length > 64 ? `${key.slice(0, 64)}…` : key } : {}),
    })
  if (typeof key !== 'string') throw fail(`a key must be a string, got ${key === null ? 'null' : typeof key}`)
  if (key.length === 0) throw fail('a key must not be empty')
  const bytes = Buffer.byteLength(key, 'utf8')
  if (bytes > MAX_KEY_BYTES) throw fail(`a key is at most ${MAX_KEY_BYTES} UTF-8 bytes, this one is ${bytes}`)
  if (key.includes('\0')) throw fail('a key must not contain NUL (\\0)')
  if (LONE_SURROGATE.test(key)) throw fail('a key must be valid Unicode (it has a lone surrogate)')
}

// -------------------------------------------------------------- values

function serializationError(key: string, path: string, reason: string, cause?: unknown): PersistenceError {
  return new PersistenceError(
    `cannot store ${path} of key ${JSON.stringify(key)}: ${reason}`,
    PersistenceErrorCode.SERIALIZATION,
    { key, path },
    cause === undefined ? undefined : { cause },
  )
}

function isBinary(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array
}

export function encodeValue(value: unknown, key: string): EncodedValue {
  if (isBinary(value)) {
    return { kind: 'binary', bytes: new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice() }
  }
  return { kind: 'json', text: toJson(value, key, 'value') }
}

function encodeMetadata(metadata: unknown, key: string): string {
  if (metadata === undefined || metadata === null) return '{}'
  if (!isPlainObject(metadata)) {
    throw serializationError(key, 'metadata', 'metadata must be a plain object')
  }
  return toJson(metadata, key, 'metadata')
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * JSON text of `value`, read exactly once (a getter cannot show a check one
 * value and the text another), or 5004 naming the first part JSON would
 * drop or change.
 */
function toJson(value: unknown, key: string, root: string): string {
  const stack = new Set<object>()
  const walk = (v: unknown, path: string): string => {
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v)
      case 'boolean':
        return v ? 'true' : 'false'
      case 'number':
        if (!Number.isFinite(v)) throw serializationError(key, path, `${v} has no JSON form`)
        return JSON.stringify(v)
      case 'undefined':
        throw serializationError(key, path, 'undefined has no JSON form')
      case 'function':
        throw serializationError(key, path, 'a function has no JSON form')
      case 'symbol':
        throw serializationError(key, path, 'a symbol has no JSON form')
      case 'bigint':
        throw serializationError(key, path, 'a BigInt has no JSON form (store it as a string)')
    }
    if (v === null) return 'null'
    const object = v as object
    if (object instanceof Date) {
      const time = object.getTime()
      if (Number.isNaN(time)) throw serializationError(key, path, 'an invalid Date has no JSON form')
      return JSON.stringify(object.toISOString())
    }
    if (stack.has(object)) throw serializationError(key, path, 'the value contains a cycle')
    stack.add(object)
    try {
      if (Array.isArray(object)) {
        const parts: string[] = new Array(object.length)
        for (let i = 0; i < object.length; i++) {
          if (!(i in object)) throw serializationError(key, `${path}[${i}]`, 'a sparse array hole has no JSON form')
          parts[i] = walk(object[i], `${path}[${i}]`)
        }
        return `[${parts.join(',')}]`
      }
      if (!isPlainObject(object)) {
        const what = isBinary(object)
          ? 'binary data is stored raw only as the whole value'
          : `a ${object.constructor?.name ?? 'non-plain'} object has no faithful JSON form (use plain objects, arrays and Dates)`
        throw serializationError(key, path, what)
      }
      const parts: string[] = []
      for (const name of Object.keys(object)) {
        const child = (object as Record<string, unknown>)[name]
        parts.push(`${JSON.stringify(name)}:${walk(child, `${path}.${name}`)}`)
      }
      return `{${parts.join(',')}}`
    } finally {
      stack.delete(object)
    }
  }
  try {
    return walk(value, root)
  } catch (error) {
    if (error instanceof PersistenceError) throw error
    // A getter or Proxy trap threw, or the value nests deeper than the stack.
    throw serializationError(key, root, `reading it failed: ${error instanceof Error ? error.message : String(error)}`, error)
  }
}

function expiry(ttl: unknown, now: number, operation: string): number | null {
  if (ttl === undefined || ttl === null) return null
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw argumentError(operation, 'ttl', 'a positive number of seconds')
  }
  return now + Math.max(1, Math.round(ttl * 1000))
}

function argumentError(operation: string, argument: string, expected: string): PersistenceError {
  return new PersistenceError(`${operation}: ${argument} must be ${expected}`, PersistenceErrorCode.GENERIC, {
    operation,
    argument,
  })
}

// ------------------------------------------------------------ decoding

export function decodeValue(value: EncodedValue): any {
  if (value.kind === 'binary') {
    const bytes = value.bytes
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  return JSON.parse(value.text)
}

function decodeEntry<T>(raw: RawEntry): PersistenceEntry<T> {
  return {
    key: raw.key,
    value: decodeValue(raw.value) as T,
    metadata: JSON.parse(raw.metadata),
    createdAt: new Date(raw.createdAt),
    updatedAt: new Date(raw.updatedAt),
    expiresAt: raw.expiresAt === null ? null : new Date(raw.expiresAt),
  }
}

/**
 * `annvault/keyv`: `KeyvAnnvault`, a Keyv storage adapter over annvault's
 * key-value persistence, so `new Keyv({ store: new KeyvAnnvault({ path }) })`
 * works.
 *
 * Keyv hands the store keys already prefixed `namespace:` and values it has
 * serialized itself (with their own `expires`); it also tells the store its
 * namespace (`store.namespace`), which scopes `clear()` and `iterator()`.
 * The TTL Keyv passes (milliseconds) becomes the entry's TTL, so expired
 * entries leave storage too, not only Keyv's view of it.
 *
 * Errors: unlike Keyv's own SQL adapters, a failing call rejects with the
 * `PersistenceError` (Keyv emits it as `'error'` and, by default, turns it
 * into `false` / `undefined` for its caller — that is Keyv's choice).
 */

import { EventEmitter } from 'node:events'

import type { PersistenceAdapter } from './persistence/adapter'
import { PersistenceError, PersistenceErrorCode } from './persistence/errors'
import { escapeGlob } from './persistence/glob'
import { DefaultPersistenceManager } from './persistence/manager'

export interface KeyvAnnvaultOptions {
  /** Any PersistenceAdapter (SQLiteAdapter, FileAdapter, MemoryAdapter, …); the store opens and closes it. */
  adapter?: PersistenceAdapter
  /** A directory for annvault's native key-value engine (`NativeAdapter({ path })`). */
  path?: string
  /** A manager shared with other code or stores; it is opened if needed and never closed by this store. */
  manager?: DefaultPersistenceManager
}

/** Keys read per page by `iterator()`. */
const ITERATOR_PAGE = 256

function nativeAdapter(path: string): PersistenceAdapter {
  let module: { NativeAdapter?: new (options: { path: string }) => PersistenceAdapter }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    module = require('./persistence/native-adapter')
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    if (e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('native-adapter')) {
      module = {}
    } else throw error
  }
  if (typeof module.NativeAdapter !== 'function') {
    throw new PersistenceError(
      'KeyvAnnvault({ path }) needs the native key-value engine (NativeAdapter), which this build does not have yet; ' +
        'pass { adapter: new SQLiteAdapter({ filename }) } or another adapter instead',
      PersistenceErrorCode.INITIALIZATION,
      { path },
    )
  }
  return new module.NativeAdapter({ path })
}

export class KeyvAnnvault extends EventEmitter {
  /** Set by Keyv: the namespace of the Keyv instance using this store. */
  namespace?: string
  /** Keyv only wires `keyv.iterator()` for stores whose `opts.dialect` it lists; ours follows the SQL adapters' iterator protocol. */
  readonly opts: { dialect: string; url: string }
  readonly ttlSupport = true
  readonly manager: DefaultPersistenceManager
  private readonly ownsManager: boolean
  private opening: Promise<void> | null = null

  constructor(options: KeyvAnnvaultOptions) {
    super()
    const given = [options?.adapter, options?.path, options?.manager].filter((o) => o !== undefined).length
    if (given !== 1) {
      throw new PersistenceError('KeyvAnnvault needs exactly one of { adapter }, { path } or { manager }', PersistenceErrorCode.INITIALIZATION)
    }
    if (options.manager) {
      this.manager = options.manager
      this.ownsManager = false
    } else {
      this.manager = new DefaultPersistenceManager(options.adapter ?? nativeAdapter(options.path as string))
      this.ownsManager = true
    }
    this.opts = { dialect: 'sqlite', url: `annvault://${options.path ?? this.manager.adapter.name}` }
  }

  private ready(): Promise<void> {
    this.opening ??= this.manager.init()
    return this.opening
  }

  async get<Value>(key: string): Promise<Value | undefined> {
    await this.ready()
    const entry = await this.manager.get<Value>(key)
    return entry === null ? undefined : entry.value
  }

  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    await this.ready()
    const entries = await this.manager.getMany<Value>(keys)
    return entries.map((entry) => (entry === null ? undefined : entry.value))
  }

  /** `ttl` in milliseconds, as Keyv passes it. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.ready()
    await this.manager.set(key, value, undefined, ttlOption(ttl))
    return true
  }

  /** All entries in one atomic write. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]> {
    await this.ready()
    await this.manager.setMany(entries.map((e) => ({ key: e.key, value: e.value, ...ttlOption(e.ttl) })))
    return entries.map(() => true)
  }

  async delete(key: string): Promise<boolean> {
    await this.ready()
    return this.manager.delete(key)
  }

  /** Resolves to whether any of the keys existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    await this.ready()
    return (await this.manager.deleteMany(keys)).some(Boolean)
  }

  async has(key: string): Promise<boolean> {
    await this.ready()
    return this.manager.has(key)
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    await this.ready()
    return (await this.manager.getMany(keys)).map((entry) => entry !== null)
  }

  /** Removes the namespace's entries (every entry when the store has no namespace). */
  async clear(): Promise<void> {
    await this.ready()
    if (this.namespace === undefined || this.namespace === '') {
      await this.manager.clear()
      return
    }
    const keys = await this.manager.keys(`${escapeGlob(this.namespace)}:*`)
    for (let start = 0; start < keys.length; start += ITERATOR_PAGE) {
      await this.manager.deleteMany(keys.slice(start, start + ITERATOR_PAGE))
    }
  }

  /** `[key, value]` of the namespace's entries (every entry without one), in key order, read a page at a time. */
  async *iterator<Value>(namespace?: string): AsyncGenerator<[string, Value], void, undefined> {
    await this.ready()
    const pattern = namespace ? `${escapeGlob(namespace)}:*` : '*'
    for await (const entry of this.manager.iterate<Value>(pattern, { pageSize: ITERATOR_PAGE })) {
      yield [entry.key, entry.value]
    }
  }

  /** Closes the adapter this store opened (a shared `{ manager }` stays open). */
  async disconnect(): Promise<void> {
    if (this.ownsManager) await this.manager.close()
  }
}

function ttlOption(ttl: number | undefined): { ttl?: number } {
  return typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0 ? { ttl: ttl / 1000 } : {}
}

export default KeyvAnnvault

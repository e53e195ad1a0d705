/**
 * `SQLiteAdapter`: entries in a table of a real SQLite database (bundled
 * SQLite through rusqlite, in the addon: `crates/core/src/sqlite_kv/`, whose
 * doc comment draws the table). WAL journal, `synchronous=FULL` by default
 * (a resolved write survives power loss), one row per entry, pattern search
 * by the primary key range of the pattern's literal prefix. Every call runs
 * on the libuv pool, never on the JS thread.
 *
 * The file opens in `sqlite3`, Python or any SQLite tool. A file that is
 * not a database, or a table of that name with other columns, rejects
 * `init()` with 5005 naming the file.
 */

import type { AdapterStats, PersistenceAdapter, RawEntry, RawWrite } from './adapter'
import { fromAddonError, PersistenceError, PersistenceErrorCode } from './errors'

interface Binding {
  openSqliteKv(config: { filename: string; tableName: string; synchronous?: string }): Promise<NativeSqliteKv>
}

// Loaded on first use, so that the memory and file adapters work without
// the addon. The path resolves to the package root from lib/persistence/
// and from dist/persistence/.
let binding: Binding | null = null
function addon(): Binding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  binding ??= require('../../native.js') as Binding
  return binding
}

interface NativeEntry {
  key: string
  kind: string
  text?: string | null
  bytes?: Buffer | null
  metadata: string
  createdAt: number
  updatedAt: number
  expiresAt?: number | null
}

interface NativeSqliteKv {
  get(keys: string[], now: number): Promise<Array<NativeEntry | null>>
  set(
    writes: Array<{ key: string; kind: string; text?: string; bytes?: Uint8Array; metadata: string; expiresAt?: number }>,
    now: number,
  ): Promise<void>
  delete(keys: string[], now: number): Promise<boolean[]>
  find(pattern: string, now: number): Promise<NativeEntry[]>
  keys(pattern: string | undefined | null, now: number): Promise<string[]>
  clear(): Promise<void>
  stats(now: number): Promise<{ totalEntries: number; size: number; lastSync?: number | null }>
  maintain(now: number): Promise<void>
  backupTo(dest: string): Promise<void>
  close(): Promise<void>
}

export type SQLiteSynchronous = 'full' | 'normal' | 'off'

export interface SQLiteAdapterOptions {
  /** The database file (created if missing). */
  filename: string
  /** Table of the entries: letters, digits and `_`, not starting with a digit or `sqlite_`. Default `app_data`. */
  tableName?: string
  /** `PRAGMA synchronous`: 'full' (default) syncs every commit; 'normal' may lose the last commits on power loss. */
  synchronous?: SQLiteSynchronous
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/

function toRaw(entry: NativeEntry): RawEntry {
  return {
    key: entry.key,
    value: entry.kind === 'binary' ? { kind: 'binary', bytes: entry.bytes as Buffer } : { kind: 'json', text: entry.text as string },
    metadata: entry.metadata,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
    expiresAt: entry.expiresAt ?? null,
  }
}

export class SQLiteAdapter implements PersistenceAdapter {
  readonly name = 'sqlite'
  readonly filename: string
  readonly tableName: string
  readonly synchronous: SQLiteSynchronous
  private db: NativeSqliteKv | null = null
  private state: 'new' | 'open' | 'closed' = 'new'
  private opening: Promise<void> | null = null

  constructor(options: SQLiteAdapterOptions) {
    if (!options || typeof options.filename !== 'string' || options.filename.length === 0) {
      throw new PersistenceError('SQLiteAdapter needs { filename }', PersistenceErrorCode.INITIALIZATION, { adapter: 'sqlite' })
    }
    const tableName = options.tableName ?? 'app_data'
    if (typeof tableName !== 'string' || !TABLE_NAME.test(tableName) || tableName.toLowerCase().startsWith('sqlite_')) {
      throw new PersistenceError(
        `invalid tableName ${JSON.stringify(tableName)}: 1-64 ASCII letters, digits or '_', not starting with a digit or 'sqlite_'`,
        PersistenceErrorCode.INVALID_KEY,
        { adapter: 'sqlite', argument: 'tableName' },
      )
    }
    const synchronous = options.synchronous ?? 'full'
    if (!['full', 'normal', 'off'].includes(synchronous)) {
      throw new PersistenceError(`invalid synchronous ${JSON.stringify(synchronous)}: 'full', 'normal' or 'off'`, PersistenceErrorCode.INITIALIZATION, {
        adapter: 'sqlite',
        argument: 'synchronous',
      })
    }
    this.filename = options.filename
    this.tableName = tableName
    this.synchronous = synchronous
  }

  /** Opens the database; a second call while opening or open waits for the same opening. */
  init(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(this.stateError('init'))
    this.opening ??= addon()
      .openSqliteKv({ filename: this.filename, tableName: this.tableName, synchronous: this.synchronous })
      .then(
        (db) => {
          this.db = db
          this.state = 'open'
        },
        (error: unknown) => {
          this.opening = null
          throw fromAddonError(error, 'init', this.name)
        },
      )
    return this.opening
  }

  async get(keys: string[], now: number): Promise<(RawEntry | null)[]> {
    const entries = await this.call('get', (db) => db.get(keys, now))
    return entries.map((e) => (e ? toRaw(e) : null))
  }

  async set(writes: RawWrite[], now: number): Promise<void> {
    const native = writes.map((w) => ({
      key: w.key,
      kind: w.value.kind,
      ...(w.value.kind === 'json' ? { text: w.value.text } : { bytes: w.value.bytes }),
      metadata: w.metadata,
      ...(w.expiresAt === null ? {} : { expiresAt: w.expiresAt }),
    }))
    await this.call('set', (db) => db.set(native, now))
  }

  delete(keys: string[], now: number): Promise<boolean[]> {
    return this.call('delete', (db) => db.delete(keys, now))
  }

  async find(pattern: string, now: number): Promise<RawEntry[]> {
    return (await this.call('find', (db) => db.find(pattern, now))).map(toRaw)
  }

  keys(pattern: string | undefined, now: number): Promise<string[]> {
    return this.call('keys', (db) => db.keys(pattern ?? null, now))
  }

  clear(): Promise<void> {
    return this.call('clear', (db) => db.clear())
  }

  async stats(now: number): Promise<AdapterStats> {
    const s = await this.call('stats', (db) => db.stats(now))
    return { totalEntries: s.totalEntries, size: s.size, lastSync: s.lastSync ?? null }
  }

  maintain(now: number): Promise<void> {
    return this.call('maintain', (db) => db.maintain(now))
  }

  /**
   * A consistent copy of the database at `dest` (a file that must not
   * exist), by SQLite's `VACUUM INTO` on a connection of its own: writes
   * go on meanwhile. The copy is fsynced.
   */
  backupTo(dest: string): Promise<void> {
    return this.call('backupTo', (db) => db.backupTo(dest))
  }

  async close(): Promise<void> {
    await this.call('close', (db) => db.close())
    this.state = 'closed'
    this.db = null
  }

  private stateError(operation: string): PersistenceError {
    const closed = this.state === 'closed'
    return new PersistenceError(
      closed ? `the SQLite adapter is closed (${operation})` : `the SQLite adapter is not initialized (${operation})`,
      PersistenceErrorCode.INITIALIZATION,
      { adapter: 'sqlite', operation, state: closed ? 'closed' : 'uninitialized', file: this.filename },
    )
  }

  private async call<T>(operation: string, work: (db: NativeSqliteKv) => Promise<T>): Promise<T> {
    if (this.state !== 'open' || this.db === null) throw this.stateError(operation)
    try {
      return await work(this.db)
    } catch (error) {
      throw fromAddonError(error, operation, this.name)
    }
  }
}

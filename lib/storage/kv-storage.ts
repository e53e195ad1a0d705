/**
 * `KvStorage`: a storage of type `file`, `database`, `cache` or `native`,
 * a `DefaultPersistenceManager` over the matching adapter (FileAdapter,
 * SQLiteAdapter, MemoryAdapter with the configured TTL, NativeAdapter).
 * Values are what that manager takes: JSON values, and Buffers stored raw.
 *
 * Backups, each a copy as of one point of the storage's write order:
 * - `file`: the entries' files, hard-linked (or copied) inside the
 *   adapter's write queue (see `FileAdapter.backupTo`);
 * - `database`: `VACUUM INTO` on a second connection (SQLite's consistent
 *   read snapshot in WAL mode), file `<name>.db`;
 * - `native`: the engine's `backupTo`, a key-value directory written from
 *   the table copied under its read lock;
 * - `cache`: memory only, nothing to copy (the manifest says so).
 *
 * Restore closes the adapter, builds the copy beside the live path, swaps
 * it in (see `fsutil.ts`) and opens a new adapter; calls made meanwhile
 * wait and then run against the restored data.
 */

import { promises as fs } from 'node:fs'
import * as path from 'node:path'

import type { PersistenceAdapter } from '../persistence/adapter'
import { FileAdapter } from '../persistence/file-adapter'
import { escapeGlob } from '../persistence/glob'
import { DefaultPersistenceManager } from '../persistence/manager'
import { MemoryAdapter } from '../persistence/memory-adapter'
import { NativeAdapter } from '../persistence/native-adapter'
import { SQLiteAdapter } from '../persistence/sqlite-adapter'
import type { StorageSpec } from './config'
import { ioError } from './errors'
import { copyFileDurable, copyTreeDurable, fsyncPath, STAGING_SUFFIX, swapIn } from './fsutil'
import { Gate, type Storage, type StorageBackupResult } from './storage'

type KvSpec = Extract<StorageSpec, { type: 'file' | 'database' | 'cache' | 'native' }>

function makeAdapter(spec: KvSpec): PersistenceAdapter {
  switch (spec.type) {
    case 'file':
      return new FileAdapter({ basePath: spec.basePath })
    case 'database':
      return new SQLiteAdapter({ filename: spec.dbPath, tableName: spec.table, synchronous: spec.synchronous })
    case 'cache':
      return new MemoryAdapter(spec.ttl === undefined ? {} : { ttl: spec.ttl })
    case 'native':
      return new NativeAdapter({ path: spec.path, durability: spec.durability })
  }
}

export class KvStorage implements Storage {
  readonly name: string
  readonly type: KvSpec['type']
  readonly paths: string[]
  private manager: DefaultPersistenceManager
  private readonly gate = new Gate()

  private constructor(
    private readonly spec: KvSpec,
    manager: DefaultPersistenceManager,
  ) {
    this.name = spec.name
    this.type = spec.type
    this.manager = manager
    this.paths = spec.type === 'file' ? [spec.basePath] : spec.type === 'database' ? [spec.dbPath] : spec.type === 'native' ? [spec.path] : []
  }

  static async open(spec: KvSpec): Promise<KvStorage> {
    if (spec.type === 'database') {
      try {
        await fs.mkdir(path.dirname(spec.dbPath), { recursive: true })
      } catch (error) {
        throw ioError(error, 'create the directory of', spec.dbPath, spec.name)
      }
    }
    const manager = new DefaultPersistenceManager(makeAdapter(spec))
    await manager.init()
    return new KvStorage(spec, manager)
  }

  /** The key-value manager underneath, for what this interface does not cover (TTL, metadata, find). */
  get persistence(): DefaultPersistenceManager {
    return this.manager
  }

  store(key: string, data: unknown): Promise<void> {
    return this.gate.run(() => this.manager.set(key, data))
  }

  retrieve(key: string): Promise<any> {
    return this.gate.run(async () => {
      const entry = await this.manager.get(key)
      return entry === null ? null : entry.value
    })
  }

  delete(key: string): Promise<boolean> {
    return this.gate.run(() => this.manager.delete(key))
  }

  listKeys(prefix = ''): Promise<string[]> {
    return this.gate.run(() => this.manager.keys(`${escapeGlob(String(prefix))}*`))
  }

  list_keys(prefix?: string): Promise<string[]> {
    return this.listKeys(prefix)
  }

  close(): Promise<void> {
    return this.gate.shut(() => this.manager.close())
  }

  backupTo(dest: string): Promise<StorageBackupResult> {
    return this.gate.run(async (): Promise<StorageBackupResult> => {
      const adapter = this.manager.adapter
      switch (this.spec.type) {
        case 'cache':
          return { skipped: 'a cache is kept in memory only' }
        case 'file':
          return { count: await (adapter as FileAdapter).backupTo(dest) }
        case 'database':
          await mkdir(dest, this.name)
          await (adapter as SQLiteAdapter).backupTo(path.join(dest, 'database.db'))
          return {}
        case 'native':
          return { count: await (adapter as NativeAdapter).backupTo(dest) }
      }
    })
  }

  async restoreFrom(src: string): Promise<void> {
    const spec = this.spec
    if (spec.type === 'cache') return
    await this.gate.shut(async () => {
      await this.manager.close()
      // From here the storage is closed: whatever happens, a new manager is
      // opened over what is on disk (the old state or the restored one).
      try {
        const live = this.paths[0]
        const staged = live + STAGING_SUFFIX
        try {
          await fs.rm(staged, { recursive: true, force: true })
          if (spec.type === 'database') {
            await copyFileDurable(path.join(src, 'database.db'), staged)
            // The old database was closed, its WAL checkpointed into it;
            // a stale -wal beside the new file would be replayed into it.
            await fs.rm(`${live}-wal`, { force: true })
            await fs.rm(`${live}-shm`, { force: true })
          } else {
            await copyTreeDurable(src, staged, (rel) => rel.split('/').pop() === 'LOCK')
          }
          await fsyncPath(path.dirname(live))
          await swapIn(live, staged)
        } catch (error) {
          await fs.rm(staged, { recursive: true, force: true }).catch(() => undefined)
          throw ioError(error, 'restore', live, this.name)
        }
      } finally {
        const manager = new DefaultPersistenceManager(makeAdapter(spec))
        await manager.init()
        this.manager = manager
      }
    })
  }
}

async function mkdir(dir: string, storage: string): Promise<void> {
  try {
    await fs.mkdir(dir)
  } catch (error) {
    throw ioError(error, 'create', dir, storage)
  }
}

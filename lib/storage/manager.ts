/**
 * `StorageManager`: several storages chosen by a YAML (or JSON, or object)
 * configuration — the persistence layer of the Xeno engine, with annvault's
 * stores underneath — plus hot backups with retention and schedules.
 *
 * ```js
 * const manager = await StorageManager.fromConfig('config/storage.yaml', { onBackupError: (e) => log(e) })
 * await manager.store('database', 'proof:1', { steps: 12 })
 * await manager.retrieve('database', 'proof:1')     // { steps: 12 }
 * await manager.store('k', 'v')                     // the default storage
 * await manager.backupNow()
 * ```
 *
 * Storage methods take the storage's name first, as the Python manager's
 * do; leaving it out uses `default_storage` (`store(key, data)`,
 * `retrieve(key)`, `delete(key)`, `listKeys()`). Everything rejects with a
 * typed error (`StorageError` / `PersistenceError`, see `errors.ts`);
 * nothing resolves `false` to hide a failure.
 *
 * Schedules: with `backup.enabled` and a `schedule`, a backup is due
 * `interval` after the newest complete backup (at once when there is
 * none, or when it came due while the process was down). `fromConfig`
 * checks at open and starts a due backup in the background (`idle()`
 * waits for it); a timer, `unref()`ed, runs the next one. A failed backup
 * goes to `onBackupError` and `stats().backups`, and leaves no backup that
 * `listBackups()` returns.
 */

import type { BackupSpec, StorageConfig, StorageSpec } from './config'
import { loadConfig } from './config'
import type { BackupInfo, BackupStorageInfo, BackupVerifyResult } from './backup-set'
import { BackupSet, backupError } from './backup-set'
import { StorageError, StorageErrorCode } from './errors'
import { recoverSwap } from './fsutil'
import { KvStorage } from './kv-storage'
import { PackStorage } from './pack-storage'
import type { RetrieveOptions, Storage } from './storage'
import { Mutex } from './storage'
import { VectorStorage } from './vector-storage'

export interface StorageManagerOptions {
  /** Directory relative paths of an object config resolve against (default: the working directory). */
  baseDir?: string
  /** Called with the error of a scheduled backup that failed (also counted in `stats()`). */
  onBackupError?: (error: Error) => void
  /** The clock (Unix ms) backups are timed and named by; default `Date.now`. */
  clock?: () => number
  /**
   * Run the configured backup schedule (default true). `false`: backups are taken only when asked
   * (`backupNow`), as the `annvault backup` command opens the manager.
   */
  schedule?: boolean
}

export interface RestoreOptions {
  /** Only these storages (default: every storage the backup holds files of). */
  storages?: string[]
}

export interface StorageManagerStats {
  storages: Array<{ name: string; type: string }>
  defaultStorage: string
  backups: {
    enabled: boolean
    schedule: string | null
    retention: number | null
    running: boolean
    succeeded: number
    failed: number
    lastBackupId: string | null
    lastBackupAt: Date | null
    lastError: Error | null
    lastErrorAt: Date | null
    nextBackupAt: Date | null
  }
}

/** Longest a timer may wait (setTimeout's limit); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

async function openStorage(spec: StorageSpec): Promise<Storage> {
  switch (spec.type) {
    case 'pack':
      return PackStorage.open(spec)
    case 'vectors':
      return VectorStorage.open(spec)
    default:
      return KvStorage.open(spec)
  }
}

export class StorageManager {
  readonly config: StorageConfig
  private readonly storages: Map<string, Storage>
  private readonly backups: BackupSet | null
  private readonly backupTurn = new Mutex()
  private readonly clock: () => number
  private readonly onBackupError: ((error: Error) => void) | undefined
  private timer: NodeJS.Timeout | null = null
  /** Backups started and not yet settled. */
  private readonly pending = new Set<Promise<unknown>>()
  private closing = false
  private closed = false
  private nextAt: number | null = null
  private counts = { succeeded: 0, failed: 0 }
  private last: { id: string | null; at: number | null; error: Error | null; errorAt: number | null } = {
    id: null,
    at: null,
    error: null,
    errorAt: null,
  }

  private constructor(config: StorageConfig, storages: Map<string, Storage>, options: StorageManagerOptions) {
    this.config = config
    this.storages = storages
    this.backups = config.backup ? new BackupSet(config.backup.path) : null
    this.clock = options.clock ?? Date.now
    this.onBackupError = options.onBackupError
  }

  /**
   * Loads the configuration (a file path, or an object), opens every
   * storage (finishing or undoing a restore a crash cut short), and, when a
   * scheduled backup is due, starts it.
   */
  static async fromConfig(pathOrObject: string | Record<string, unknown>, options: StorageManagerOptions = {}): Promise<StorageManager> {
    const config = await loadConfig(pathOrObject, { baseDir: options.baseDir })
    const storages = new Map<string, Storage>()
    try {
      for (const spec of config.storages.values()) {
        for (const p of 'basePath' in spec ? [spec.basePath] : 'dbPath' in spec ? [spec.dbPath] : spec.type === 'native' || spec.type === 'pack' ? [spec.type === 'pack' ? spec.packPath : spec.path] : []) {
          await recoverSwap(p)
        }
        storages.set(spec.name, await openStorage(spec))
      }
    } catch (error) {
      await Promise.allSettled([...storages.values()].map((s) => s.close()))
      throw error
    }
    const manager = new StorageManager(config, storages, options)
    if (options.schedule !== false) await manager.startSchedule()
    return manager
  }

  get defaultStorage(): string {
    return this.config.defaultStorage
  }

  /** Storage names in config order. */
  storageNames(): string[] {
    return [...this.storages.keys()]
  }

  /** The storage of that name (the default one when omitted); 5102 when there is none. */
  getStorage(name?: string): Storage {
    this.checkOpen('getStorage')
    const key = name ?? this.config.defaultStorage
    const storage = this.storages.get(key)
    if (!storage) {
      throw new StorageError(`no storage named ${JSON.stringify(key)} (have: ${this.storageNames().join(', ')})`, StorageErrorCode.UNKNOWN_STORAGE, {
        storage: key,
      })
    }
    return storage
  }

  get_storage(name?: string): Storage {
    return this.getStorage(name)
  }

  /** `store(storage, key, data)`, or `store(key, data)` for the default storage. */
  async store(...args: [string, string, unknown] | [string, unknown]): Promise<void> {
    if (args.length >= 3) return this.getStorage(args[0]).store(args[1] as string, args[2])
    return this.getStorage().store(args[0], args[1])
  }

  /** `retrieve(storage, key, options?)`, or `retrieve(key)` for the default storage; `null` when absent. */
  async retrieve(storageOrKey: string, key?: string | RetrieveOptions, options?: RetrieveOptions): Promise<any> {
    if (typeof key === 'string') return this.getStorage(storageOrKey).retrieve(key, options)
    return this.getStorage().retrieve(storageOrKey, key)
  }

  /** `delete(storage, key)`, or `delete(key)` for the default storage; resolves whether it existed. */
  async delete(storageOrKey: string, key?: string): Promise<boolean> {
    if (key !== undefined) return this.getStorage(storageOrKey).delete(key)
    return this.getStorage().delete(storageOrKey)
  }

  /** Keys of a storage (the default one when omitted) starting with `prefix`. */
  async listKeys(storage?: string, prefix?: string): Promise<string[]> {
    return this.getStorage(storage).listKeys(prefix)
  }

  list_keys(storage?: string, prefix?: string): Promise<string[]> {
    return this.listKeys(storage, prefix)
  }

  // ---------------------------------------------------------------- backups

  private backupSet(operation: string): BackupSet {
    this.checkOpen(operation)
    if (!this.backups) {
      throw new StorageError(`${operation}: the config has no persistence.backup section`, StorageErrorCode.BACKUP, { key: 'persistence.backup' })
    }
    return this.backups
  }

  /**
   * Backs up every storage, each as of one point of its write order while
   * writes go on, into `<backup.path>/<id>/`, then applies retention.
   * Backups run one at a time.
   */
  backupNow(): Promise<BackupInfo> {
    const backups = this.backupSet('backupNow')
    const run = this.backupTurn.run(() => this.runBackup(backups))
    const settled: Promise<unknown> = run.then(
      (): boolean => this.pending.delete(settled),
      (): boolean => this.pending.delete(settled),
    )
    this.pending.add(settled)
    return run
  }

  backup_now(): Promise<BackupInfo> {
    return this.backupNow()
  }

  private async runBackup(backups: BackupSet): Promise<BackupInfo> {
    const createdAt = this.clock()
    const { id, dir } = await backups.begin(createdAt)
    let result: BackupInfo
    try {
      const storages: Record<string, BackupStorageInfo> = {}
      for (const [name, storage] of this.storages) {
        try {
          const outcome = await storage.backupTo(`${dir}/${name}`)
          storages[name] = { type: storage.type, ...outcome }
        } catch (error) {
          throw backupError(`backup of storage ${name} failed: ${(error as Error).message}`, dir, error, { storage: name })
        }
      }
      result = await backups.commit(id, dir, createdAt, storages)
    } catch (error) {
      await backups.discard(dir)
      throw error
    }
    this.counts.succeeded++
    this.last.id = id
    this.last.at = createdAt
    await this.applyRetention(backups)
    return result
  }

  private async applyRetention(backups: BackupSet): Promise<void> {
    const retention = (this.config.backup as BackupSpec).retention
    const all = await backups.list()
    for (const old of all.slice(0, Math.max(0, all.length - retention))) await backups.remove(old.id)
  }

  /** Complete backups, oldest first. */
  listBackups(): Promise<BackupInfo[]> {
    return this.backupSet('listBackups').list()
  }

  list_backups(): Promise<BackupInfo[]> {
    return this.listBackups()
  }

  /** Checks every file of a backup against its manifest (5106 for an unknown id). */
  verifyBackup(id: string): Promise<BackupVerifyResult> {
    return this.backupSet('verifyBackup').verify(id)
  }

  verify_backup(id: string): Promise<BackupVerifyResult> {
    return this.verifyBackup(id)
  }

  /**
   * Verifies the backup (a damaged one is refused with 5105, nothing
   * changed), then restores each chosen storage, atomically per storage:
   * a storage holds its old contents or the backup's, never a mix. Calls
   * to a storage wait while it is being restored.
   */
  async restoreBackup(id: string, options: RestoreOptions = {}): Promise<{ id: string; storages: string[] }> {
    const backups = this.backupSet('restoreBackup')
    const manifest = await backups.manifest(id)
    const names = options.storages ?? Object.keys(manifest.storages).filter((n) => !manifest.storages[n].skipped)
    if (!Array.isArray(names)) throw new StorageError('restoreBackup: storages must be an array of names', StorageErrorCode.CONFIG, { key: 'storages' })
    for (const name of names) {
      const storage = this.getStorage(name)
      const saved = manifest.storages[name]
      if (!saved) throw new StorageError(`backup ${id} holds no storage ${name}`, StorageErrorCode.UNKNOWN_STORAGE, { storage: name, id })
      if (saved.type !== storage.type) {
        throw new StorageError(`backup ${id} holds storage ${name} as type ${saved.type}, the config has ${storage.type}`, StorageErrorCode.UNKNOWN_STORAGE, {
          storage: name,
          id,
        })
      }
    }
    const report = await backups.verify(id)
    if (!report.ok) {
      throw new StorageError(`backup ${id} fails its checksums (${report.problems.length} problem(s)); nothing restored`, StorageErrorCode.BACKUP_CORRUPT, {
        id,
        problems: report.problems,
      })
    }
    for (const name of names) {
      if (manifest.storages[name].skipped) continue
      await this.getStorage(name).restoreFrom(`${backups.root}/${id}/${name}`)
    }
    return { id, storages: names }
  }

  restore_backup(id: string, options?: RestoreOptions): Promise<{ id: string; storages: string[] }> {
    return this.restoreBackup(id, options)
  }

  /** Resolves once no backup is running (one started at open or by the timer included). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  stats(): StorageManagerStats {
    const backup = this.config.backup
    return {
      storages: [...this.storages.values()].map((s) => ({ name: s.name, type: s.type })),
      defaultStorage: this.config.defaultStorage,
      backups: {
        enabled: backup?.enabled ?? false,
        schedule: backup?.schedule ? (backup.schedule.kind === 'interval' ? `${backup.schedule.intervalMs}ms` : backup.schedule.kind) : null,
        retention: backup?.retention ?? null,
        running: this.pending.size > 0,
        succeeded: this.counts.succeeded,
        failed: this.counts.failed,
        lastBackupId: this.last.id,
        lastBackupAt: this.last.at === null ? null : new Date(this.last.at),
        lastError: this.last.error,
        lastErrorAt: this.last.errorAt === null ? null : new Date(this.last.errorAt),
        nextBackupAt: this.nextAt === null ? null : new Date(this.nextAt),
      },
    }
  }

  // -------------------------------------------------------------- schedule

  private async startSchedule(): Promise<void> {
    const backup = this.config.backup
    if (!backup?.enabled || !backup.schedule || !this.backups) return
    let newest
    try {
      newest = (await this.backups.list()).at(-1)
    } catch (error) {
      // A backup directory that cannot be listed (a damaged manifest, no
      // permission) must not keep the storages from opening: it is
      // reported as a failed backup, and the schedule tries again later.
      this.failed(error as Error)
      this.arm(this.clock() + backup.schedule.intervalMs)
      return
    }
    if (newest) {
      this.last.id = newest.id
      this.last.at = newest.createdAt.getTime()
    }
    const due = newest ? newest.createdAt.getTime() + backup.schedule.intervalMs : this.clock()
    this.arm(due)
  }

  private failed(error: Error): void {
    this.counts.failed++
    this.last.error = error
    this.last.errorAt = this.clock()
    if (this.onBackupError) {
      try {
        this.onBackupError(error)
      } catch {
        // The callback's own failure must not stop the schedule; the error is in stats().
      }
    }
  }

  /** Runs a backup at `due` (now, if it is past) and arms the next. */
  private arm(due: number): void {
    if (this.closing) return
    this.nextAt = due
    const wait = due - this.clock()
    if (wait <= 0) {
      void this.scheduledBackup()
      return
    }
    this.timer = setTimeout(() => {
      this.timer = null
      if (this.clock() >= due) void this.scheduledBackup()
      else this.arm(due)
    }, Math.min(wait, MAX_TIMER_MS))
    this.timer.unref()
  }

  private async scheduledBackup(): Promise<void> {
    const schedule = (this.config.backup as BackupSpec).schedule
    if (this.closing || !schedule) return
    try {
      await this.backupNow()
    } catch (error) {
      this.failed(error as Error)
    }
    this.arm(this.clock() + schedule.intervalMs)
  }

  // ------------------------------------------------------------------ close

  private checkOpen(operation: string): void {
    if (this.closed) {
      throw new StorageError(`the storage manager is closed (${operation})`, 5001, { operation, state: 'closed' })
    }
  }

  /** Stops the schedule, waits for a running backup, closes every storage. A second close resolves. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closing = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.nextAt = null
    await this.idle()
    this.closed = true
    const results = await Promise.allSettled([...this.storages.values()].map((s) => s.close()))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
  }
}

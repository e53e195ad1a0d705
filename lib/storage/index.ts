/** `annvault/storage`: `StorageManager` (storages from a YAML config, pack storage, hot backups). */

export { StorageManager } from './manager'
export type { RestoreOptions, StorageManagerOptions, StorageManagerStats } from './manager'
export { StorageError, StorageErrorCode } from './errors'
export type { StorageErrorCodeValue } from './errors'
export { loadConfig, normalizeConfig } from './config'
export type { BackupSpec, Schedule, StorageConfig, StorageSpec, StorageType } from './config'
export { PackStorage, PackKind, checkPackKey, PACK_MAGIC, PACK_END_MAGIC, PACK_VERSION } from './pack-storage'
export { KvStorage } from './kv-storage'
export { VectorStorage } from './vector-storage'
export type { RetrieveOptions, Storage, StorageBackupResult } from './storage'
export { BACKUP_FORMAT, MANIFEST_FILE } from './backup-set'
export type { BackupFile, BackupInfo, BackupManifest, BackupStorageInfo, BackupVerifyResult, VerifyProblem } from './backup-set'

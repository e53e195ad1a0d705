/**
 * `annvault/persistence`: the key-value API of the Lumix persistence system
 * (`DefaultPersistenceManager`) and its adapters.
 */

export type { AdapterStats, EncodedValue, PersistenceAdapter, RawEntry, RawWrite } from './adapter'
export { fromAddonError, PersistenceError, PersistenceErrorCode } from './errors'
export type { PersistenceErrorCodeValue } from './errors'
export { compareKeys, escapeGlob, parseGlob } from './glob'
export type { Glob } from './glob'
export { DefaultPersistenceManager, DEFAULT_PAGE_SIZE, MAX_KEY_BYTES } from './manager'
export type { IterateOptions, PersistenceEntry, PersistenceStats, SetManyEntry, SetOptions } from './manager'
export { MemoryAdapter } from './memory-adapter'
export type { MemoryAdapterOptions } from './memory-adapter'
export { FileAdapter } from './file-adapter'
export type { FileAdapterOptions } from './file-adapter'
export { SQLiteAdapter } from './sqlite-adapter'
export { NativeAdapter, SYNC_GET_MAX_BYTES } from './native-adapter'
export type { NativeAdapterOptions, NativeAdapterError, NativeAdapterProgress, NativeAdapterCheckpointOptions } from './native-adapter'
export type { SQLiteAdapterOptions, SQLiteSynchronous } from './sqlite-adapter'

/**
 * A point id. Comes back as the type it went in: `1` and `"1"` are different ids. A string id is
 * 1–512 bytes of UTF-8 without NUL and must be well-formed UTF-16 (a lone surrogate such as
 * `'\uD800'` is rejected with `INVALID_ID`, never stored as another id); a number is a safe integer.
 */
export type Id = string | number

/**
 * A vector: an array of numbers, or a typed array of numbers (Float32Array, Float64Array or an
 * integer one such as Int32Array); every element is rounded to the nearest f32. Elements are never
 * coerced: strings, booleans, null, arrays or objects as elements are rejected (`INVALID_ARGUMENT`),
 * and so are BigInt64Array and BigUint64Array, DataView and anything else.
 */
export type Vector =
  | number[]
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array

/** A JSON value, as payloads and filters may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/**
 * A payload: a plain JSON object (plain objects, arrays, strings, finite numbers, booleans, null),
 * nesting objects and arrays at most 64 levels deep (the payload itself is level 1). Each property is
 * read once, and what was read is what is stored.
 */
export type Payload = Record<string, unknown>

export interface VectorStoreResult {
  id: Id
  /** Present on search results: higher is closer (see `Distance`). */
  score?: number
  /** Present on `get` results. */
  vector?: number[]
  payload: Payload
}

export interface SearchResult extends VectorStoreResult {
  score: number
}

export interface StoredPoint extends VectorStoreResult {
  vector: number[]
}

export type FilterScalar = string | number | boolean

export interface RangeCondition {
  gte?: number
  gt?: number
  lte?: number
  lt?: number
}

export interface AnyCondition {
  any: FilterScalar[]
}

export interface AllCondition {
  all: FilterScalar[]
}

/** The field is present and neither equals the value nor (an array) holds it. */
export interface NotEqualCondition {
  ne: FilterScalar
}

/** The field is present and neither equals nor (an array) holds any of the values. */
export interface NoneOfCondition {
  nin: FilterScalar[]
}

/** `true`: the field is present (whatever its value, `null` included); `false`: it is absent. */
export interface ExistsCondition {
  exists: boolean
}

/** The field is a string containing this substring (case-sensitive), or an array holding such a string. */
export interface ContainsCondition {
  contains: string
}

export type FieldCondition =
  | FilterScalar
  | RangeCondition
  | AnyCondition
  | AllCondition
  | NotEqualCondition
  | NoneOfCondition
  | ExistsCondition
  | ContainsCondition

/**
 * Groups of whole filters, nestable (at most 32 groups deep): `or` matches when one of its
 * filters does (`[]`: none), `and` when all do, `not` when its filter does not. The keys
 * `or`, `and` and `not` are groups, so payload fields with those names cannot be selected on.
 */
export interface FilterGroups {
  or?: SearchFilters[]
  and?: SearchFilters[]
  not?: SearchFilters
}

/**
 * Conditions on top-level payload fields (and groups), all of which must hold.
 * A scalar matches a field equal to it (or an array field holding it).
 * A filter is plain JSON like a payload, at most 64 levels deep.
 */
export type SearchFilters = FilterGroups & {
  [field: string]: FieldCondition | SearchFilters[] | SearchFilters | undefined
}

/**
 * - `Cosine` (default): cosine similarity in [-1, 1];
 * - `Dot`: the dot product;
 * - `Euclidean`: `1 / (1 + distance)`, in (0, 1].
 *
 * In a config the name is matched ignoring ASCII case (`'cosine'` is `'Cosine'`); the store
 * reports the spelling above.
 */
export type Distance = 'Cosine' | 'Dot' | 'Euclidean'

/**
 * Every option but `collectionName` may be left out, or be `undefined`, for its default. `null`
 * is not a default: it is rejected (`INVALID_ARGUMENT`) like any value of the wrong type, and so
 * is an unknown option. The config is read once (a getter is called once).
 */
export interface VectorStoreConfig {
  /** The only backend: 'in-memory' (the default). */
  type?: 'in-memory'
  /**
   * 1–128 bytes; no path separators, no `..`, none of `: * ? " < > |`, well-formed UTF-16
   * (no lone surrogate).
   */
  collectionName: string
  /** 1–65536. Default 1536. */
  dimension?: number
  /** Largest number of points; an insert that would pass it is rejected whole. */
  maxVectors?: number
  /** Default 'Cosine'. Matched ignoring ASCII case. */
  distance?: Distance | Lowercase<Distance> | Uppercase<Distance>
  /**
   * Directory holding `<collectionName>/`, the collection's files. Default './data/vector-storage'.
   * A non-empty, well-formed UTF-16 string.
   */
  persistencePath?: string
  /**
   * The in-memory storage document's name for `persistencePath`, accepted as written there. Giving
   * both with different paths is INVALID_ARGUMENT.
   */
  annIndexPath?: string
  /** false: keep the collection in memory only and touch no file. Default true. */
  annPersistIndex?: boolean
  /**
   * When a write's Promise resolves: 'fsync' (default) after the WAL record is fsynced (survives a
   * power cut); 'flush' after it is written to the OS (survives the process being killed).
   */
  durability?: 'fsync' | 'flush'
  /**
   * What opening does with a corrupt WAL: 'strict' (default) refuses with a PersistenceError naming
   * the file and offset; 'truncate' keeps what precedes the damage and moves the rest to `recovered-<ms>/`.
   */
  recovery?: 'strict' | 'truncate'
  /** Checkpoint snapshot compression: 'none' (default), 'gzip' or 'brotli'. */
  compression?: 'none' | 'gzip' | 'brotli'
  /** WAL size in bytes that starts a background checkpoint. Default 64 MiB. */
  checkpointWalBytes?: number
  /** createSnapshot() keeps only the newest this many named snapshots (older ones are deleted after it succeeds). */
  maxSnapshots?: number
  /**
   * With durability 'flush': fsync the WAL every this many ms, so a power cut loses at most that
   * window. (With 'fsync' every write is durable already; no timer runs.) The timer never keeps
   * the process alive; a failed fsync rejects the next write and disables writes until reconnect.
   */
  autoSaveIntervalMs?: number
  /** Checkpoint every this many ms when there were writes since the last checkpoint (a timer that never keeps the process alive). */
  checkpointIntervalMs?: number
  /**
   * 'auto' (default): exact search below `annMinDatasetSize` points, an HNSW graph from there on;
   * 'flat': always exact; 'hnsw': a graph as soon as there is data; 'faiss': a faiss index (any
   * factory string, see `faiss`) as soon as there is data, in builds with the faiss feature.
   */
  annAlgorithm?: 'auto' | 'flat' | 'hnsw' | 'faiss'
  /** Size from which 'auto' uses the graph. Default 1000. */
  annMinDatasetSize?: number
  /**
   * How long `disconnect()` and `checkpoint()` wait for the indexer to take in every point before
   * they save the graph, in ms (0 to 3600000; default 60000; 0: save what is indexed now).
   */
  annCloseWaitMs?: number
  /**
   * Progress of the open (`connect()`, `createVectorStore`): operation 'open', phases 'load' (the
   * checkpoint), 'replay' (the WAL, in bytes) and 'graph' (attaching the saved graph). Then, for as
   * long as the store lives, its background work: operation 'checkpoint' (WAL-size and
   * `checkpointIntervalMs` checkpoints, the one `disconnect()` writes) and 'rebuild' (graph builds
   * from scratch, phase 'build'). See README, "Progress events".
   */
  onProgress?: (event: ProgressEvent) => void
  /** Graph parameters. Defaults: m 16, efConstruction 100, efSearch 64. */
  hnsw?: HnswOptions
  /** With `annAlgorithm: 'faiss'` only (INVALID_ARGUMENT otherwise). */
  faiss?: FaissOptions
  /** Where the data is served from (README: "Vectors on disk"). Given on each open. */
  storage?: StorageOptions
}

export interface StorageOptions {
  /**
   * 'memory' (default): the vectors live in the process's memory. 'disk': they are served from
   * memory maps of the checkpoint files (the page cache holds what searches read), and only those
   * written since the last checkpoint stay in memory; the graph's copy stays in memory. Needs a
   * persistent store with uncompressed checkpoints (INVALID_ARGUMENT otherwise).
   */
  vectors?: 'memory' | 'disk'
}

/** The faiss engine (README: "faiss"). */
export interface FaissOptions {
  /** A faiss index factory string, e.g. 'HNSW32,Flat' (the default), 'IVF256,Flat', 'IVF256,PQ32'. */
  index?: string
  /** IVF cells visited per search (faiss's default: 1). */
  nprobe?: number
  /** Points an index that needs training (IVF, PQ) is trained on first; until then they are searched exactly. Default 10000. */
  trainPoints?: number
}

export interface HnswOptions {
  /** Links per node and layer (layer 0 keeps 2·m), 2–128. */
  m?: number
  /** Candidate list width while building, 1–65536. */
  efConstruction?: number
  /** Candidate list width while searching, 1–65536; can be given per query too. */
  efSearch?: number
  /**
   * How the graph stores its own copy of the vectors. Results are always ranked on the exact
   * f32 vectors, so this trades recall at a given efSearch for memory and speed, never scores.
   * 'auto' (default): 'i8' for Cosine from 64 dimensions up, else 'f32'. 'i8' and 'f16' are for
   * Cosine collections only.
   */
  quantization?: 'auto' | 'i8' | 'f16' | 'f32'
}

/** Any other key is rejected with `INVALID_ARGUMENT`. */
export interface SearchOptions {
  /**
   * Overrides the configured `hnsw.efSearch` for this query (wider: better recall, slower): an
   * integer from 1 to 65536, like the configured one.
   */
  efSearch?: number
}

export interface IndexStats {
  /** What a search uses right now. */
  algorithm: 'flat' | 'hnsw' | 'faiss'
  configured: 'auto' | 'flat' | 'hnsw' | 'faiss'
  /** Points in the graph, tombstones included. */
  graphSize: number
  /** How the graph stores its vectors, while there is a graph. */
  quantization: 'i8' | 'f16' | 'f32' | null
  /**
   * Points a search for their own vector does not reach through the graph; every search ranks them
   * exactly. At most 0.5 % of the points (at least 64).
   */
  pinned: number
  /** Such points past that budget, found by the audits since this process opened the graph. */
  unfindable: number
  /**
   * Why `pinned` is small: points an audit found unreachable and inserted again under a new label
   * (a point is pinned only if its own vector misses it after that too), since the graph was
   * built or opened.
   */
  reinserted: number
  /** Rechecks of older points whose sample found the graph sound, since the graph was built or opened. */
  rechecks: number
  /** Audits of every point (a recheck whose sample found points cut off), since then. */
  fullAudits: number
  /** Links per node of the graph in use: `hnsw.m`, or more after a weak graph's rebuild; null for faiss. */
  connectivity: number | null
  /** Milliseconds the indexer spent since the open inserting into the graph (re-inserts included). */
  insertMs: number
  /** Milliseconds spent building graphs from scratch (first builds and rebuilds) since the open. */
  buildMs: number
  /** Milliseconds spent auditing the graph since the open. */
  auditMs: number
  /** Graph entries of deleted or replaced points that searches skip; a rebuild clears them. */
  tombstones: number
  /** Live points not yet in the graph: searched exactly until the indexer takes them. */
  unindexed: number
  /** Graphs built (or rebuilt) by this process since the store was opened. */
  builds: number
  lastBuildMs: number | null
  /** Whether the graph was loaded from the files saved with the last checkpoint. */
  loadedFromDisk: boolean
  /** Why the graph was rebuilt on open or could not be saved, if it was. */
  warning: string | null
}

/**
 * The invalid bytes at the end of the last WAL file that open cut away. Both kinds are taken for
 * a write that a crash interrupted, which was never acknowledged, and are cut in 'strict' mode too.
 */
export interface TornTail {
  /** The WAL file. */
  file: string
  /** Byte offset of the first cut byte: where the invalid record starts. */
  offset: number
  /**
   * 'incomplete': the last record is cut short (fewer bytes than its length field says);
   * 'damaged': the record is all there but fails its checksum, length or sequence check (a bit
   * flip, or garbage or zeros a power cut left in it).
   */
  kind: 'incomplete' | 'damaged'
  /** The check it failed. */
  reason: string
}

export interface StoreStats {
  count: number
  persistent: boolean
  /** The collection's directory. */
  path: string | null
  /** Bytes of the collection's files on disk (WAL files counted with the zeros reserved after their records). */
  bytesOnDisk: number
  /** Bytes of the records in the WAL since the last checkpoint (what `checkpointWalBytes` is compared with). */
  walBytes: number
  /** Last WAL sequence number written. */
  sequence: number
  /** When the last checkpoint was published (ms since the epoch). */
  lastCheckpointMs: number | null
  lastCheckpointError: string | null
  /** Why writes are refused (after a failed write or fsync), until the store is reconnected. */
  writesDisabled: string | null
  recoveredSnapshotPoints: number
  replayedRecords: number
  /** Bytes cut from the end of the last WAL file on open (a torn tail; see `tornTail`). */
  tornBytes: number
  /** What the torn tail cut on open was, if there was one. */
  tornTail: TornTail | null
  recoveredTo: string | null
  index: IndexStats
  /** Where the vectors are served from: `storage.vectors` as opened. */
  vectorStorage: 'memory' | 'disk'
  /**
   * Vectors held in the process's own memory: every point's in 'memory' mode; in 'disk' mode those
   * written (or overwritten) since the last checkpoint.
   */
  vectorsInMemory: number
  /** The auto-save timers and what they did (in-memory backend). */
  autoSave?: AutoSaveStats
}

export interface AutoSaveStats {
  /** The fsync timer's period; null when none runs (not configured, or durability 'fsync'). */
  autoSaveIntervalMs: number | null
  checkpointIntervalMs: number | null
  /** Timed WAL fsyncs done. */
  syncs: number
  /** Timed checkpoints done (ticks with no write since the last checkpoint do nothing). */
  checkpoints: number
  /** The last timed fsync's or checkpoint's failure, if any. */
  lastError: string | null
}

export interface VectorStore {
  /** Inserts (or overwrites) a batch: all of it or, on any error, none of it. */
  insert(vectors: Vector[], ids: Id[], payloads: Payload[]): Promise<void>
  /** The `limit` (default 10) closest points that match `filters`, best first. */
  search(query: Vector, limit?: number, filters?: SearchFilters, options?: SearchOptions): Promise<SearchResult[]>
  /** Resolves to true once the background indexer is idle, false if `timeoutMs` (default 600000) passes first. */
  waitForIndex(timeoutMs?: number): Promise<boolean>
  get(id: Id): Promise<StoredPoint | null>
  /** Replaces the vector and payload of an existing point (error NOT_FOUND otherwise). */
  update(id: Id, vector: Vector, payload: Payload): Promise<void>
  /** Removes a point; removing a missing id is not an error. */
  delete(id: Id): Promise<void>
  /** Removes every point of the collection; the store stays connected. */
  deleteCollection(): Promise<void>
  /** The first `limit` (default 100) matching points in id order, and how many match in all. */
  list(filters?: SearchFilters, limit?: number): Promise<[VectorStoreResult[], number]>
  /** Number of points. */
  count(): Promise<number>
  /** Writes a checkpoint now; `onProgress` receives operation 'checkpoint'. */
  checkpoint(options?: { onProgress?: (event: ProgressEvent) => void }): Promise<void>
  /** Same as checkpoint(). */
  flush(options?: { onProgress?: (event: ProgressEvent) => void }): Promise<void>
  stats(): Promise<StoreStats>
  /** Writes the older backend's `ann_metadata.json` and `payloads.json` into `dir`. */
  exportLegacy(dir: string): Promise<void>
  /** Writes the collection as of this call to `path`, atomically; see the README. */
  export(path: string, options?: ExportOptions): Promise<ExportResult>
  /** Reads an export into the collection: validated whole first, then applied; nothing changes on a bad file. */
  import(path: string, options?: ImportOptions): Promise<ImportResult>
  /** Reads and checks every file of the collection; changes nothing. */
  verify(options?: { onProgress?: (event: ProgressEvent) => void }): Promise<VerifyResult>
  connect(): Promise<void>
  disconnect(): Promise<void>
  isConnected(): boolean
  getBackendType(): 'in-memory' | 'pgvector'
  getDimension(): number
  getCollectionName(): string
}

export interface ResolvedVectorStoreConfig {
  type: 'in-memory'
  collectionName: string
  dimension: number
  distance: Distance
  maxVectors: number | undefined
  persistencePath: string
  annPersistIndex: boolean
  durability: 'fsync' | 'flush'
  recovery: 'strict' | 'truncate'
  compression: 'none' | 'gzip' | 'brotli'
  checkpointWalBytes: number | undefined
  maxSnapshots: number | undefined
  autoSaveIntervalMs: number | undefined
  checkpointIntervalMs: number | undefined
  annAlgorithm: 'auto' | 'flat' | 'hnsw' | 'faiss'
  annMinDatasetSize: number
  annCloseWaitMs: number
  onProgress: ((event: ProgressEvent) => void) | undefined
  hnsw: HnswOptions | undefined
  faiss: FaissOptions | undefined
}

// The class's instance side is the interface of the same name (declaration
// merging): the VectorStore methods plus getConfig().
export interface InMemoryVectorStore extends VectorStore {
  getConfig(): ResolvedVectorStoreConfig
  /**
   * Takes a named snapshot of the collection as of this call (writes go on meanwhile). `name`
   * defaults to the id; unsafe or taken names are INVALID_NAME. See README, "Named snapshots and auto-save".
   */
  createSnapshot(
    name?: string,
    options?: { metadata?: JsonValue; onProgress?: (event: ProgressEvent) => void },
  ): Promise<SnapshotInfo>
  /** Every named snapshot, oldest first. */
  listSnapshots(): Promise<SnapshotInfo[]>
  /**
   * Checks the snapshot against its SHA-256 (CORRUPT if damaged, nothing changed), then makes it
   * the collection's state atomically. Unknown id or name: NOT_FOUND.
   */
  restoreSnapshot(idOrName: string, options?: { onProgress?: (event: ProgressEvent) => void }): Promise<SnapshotInfo>
  /** Deletes a named snapshot (NOT_FOUND if there is none); resolves to what it was. */
  deleteSnapshot(idOrName: string): Promise<SnapshotInfo>
}

/** A named snapshot. */
export interface SnapshotInfo {
  id: string
  name: string
  /** ms since the epoch. */
  createdAt: number
  /** Last WAL sequence number it holds: its place in the write order. */
  sequence: number
  /** Points it holds. */
  count: number
  /** Bytes of its files (hard links to the collection's files where the file system allows). */
  bytes: number
  /** SHA-256 of its contents, hex. */
  checksum: string
  metadata: JsonValue
}

export declare class InMemoryVectorStore {
  /** Validates `config`; call `connect()` before use. */
  constructor(config: VectorStoreConfig)
}

export interface VectorStoreInfo {
  type: 'in-memory'
  collectionName: string
  dimension: number
  distance: Distance
  maxVectors: number | null
  persistencePath: string
  persistent: boolean
  durability: 'fsync' | 'flush'
  annAlgorithm: 'auto' | 'flat' | 'hnsw'
  connected: boolean
}

export interface HealthStatus {
  healthy: boolean
  connected: boolean
  vectorCount: number | null
  error: string | null
}

export declare class VectorStoreManager {
  constructor(config: VectorStoreConfig | PgVectorStoreConfig)
  connect(): Promise<void>
  disconnect(): Promise<void>
  getStore(): InMemoryVectorStore
  getInfo(): VectorStoreInfo
  healthCheck(): Promise<HealthStatus>
}

export interface VectorStoreHandle {
  manager: VectorStoreManager
  store: InMemoryVectorStore
}

/**
 * The same API on PostgreSQL + pgvector (README: "PostgreSQL + pgvector"); needs the `pg` package.
 * Every write is committed (durable) when it resolves; `checkpoint()` and `flush()` have nothing to do.
 */
export interface PgVectorStoreConfig {
  type: 'pgvector'
  /** Same rules as the embedded store's; the table is `av_<16 hex of its SHA-256>`. */
  collectionName: string
  /** 1–16000 (pgvector's `vector` limit). Default 1536. Over 2000, searches are exact (no HNSW index). */
  dimension?: number
  distance?: Distance | Lowercase<Distance> | Uppercase<Distance>
  maxVectors?: number
  /** A libpq URL; give this or `pool`. */
  connectionString?: string
  /** An existing `pg.Pool`, which `disconnect()` leaves open. */
  pool?: unknown
  annAlgorithm?: 'auto' | 'flat' | 'hnsw'
  annMinDatasetSize?: number
  /** pgvector's bounds: m 2–100, efConstruction 4–1000, efSearch 1–1000. */
  hnsw?: { m?: number; efConstruction?: number; efSearch?: number }
}

export interface PgVectorStoreHandle {
  manager: VectorStoreManager
  store: VectorStore
}

/** Creates a store and connects it. */
export declare function createVectorStore(config: VectorStoreConfig): Promise<VectorStoreHandle>
export declare function createVectorStore(config: PgVectorStoreConfig): Promise<PgVectorStoreHandle>

/** Creates an in-memory store that keeps its data under `persistencePath`, and connects it. */
export declare function createPersistentInMemoryStore(
  collectionName: string,
  dimension?: number,
  persistencePath?: string,
): Promise<VectorStoreHandle>

export type ErrorKind =
  | 'DIMENSION_MISMATCH'
  | 'NON_FINITE_VALUE'
  | 'LENGTH_MISMATCH'
  | 'INVALID_ID'
  | 'DUPLICATE_ID'
  | 'INVALID_PAYLOAD'
  | 'INVALID_FILTER'
  | 'INVALID_ARGUMENT'
  | 'CAPACITY_EXCEEDED'
  | 'INVALID_NAME'
  | 'NOT_FOUND'
  | 'CLOSED'
  | 'POISONED'
  | 'INTERNAL'
  | 'IN_USE'
  | 'IO'
  | 'CORRUPT'
  | 'WRITES_DISABLED'
  | 'CONFIG_MISMATCH'
  | 'LEGACY_FORMAT'

/** Stable numeric codes by kind (1000–1999: input and usage; 5000–5999: persistence). */
export declare const ErrorCodes: Readonly<Record<ErrorKind, number>>

export declare class VectorStoreError extends Error {
  constructor(
    message: string,
    operation?: string,
    options?: { code?: number; kind?: string; details?: Record<string, unknown>; cause?: unknown },
  )
  /** The store method that failed, e.g. 'insert'. */
  operation: string
  /** Stable numeric code, see `ErrorCodes`. */
  code: number
  /** Stable name of the code, e.g. 'INVALID_ID'. */
  kind: string
  /** Structured facts about the failure (batch index, limits, …). */
  details: Record<string, unknown>
}

export declare class VectorDimensionError extends VectorStoreError {
  constructor(
    expectedDimension: number,
    actualDimension: number,
    operation?: string,
    options?: { message?: string; details?: Record<string, unknown> },
  )
  expectedDimension: number
  actualDimension: number
}

export declare class PersistenceError extends VectorStoreError {
  constructor(
    message: string,
    code?: number,
    details?: Record<string, unknown>,
    options?: { operation?: string; kind?: string },
  )
}

// ------------------------------------------------ export, import, verify

export type ExportFormat = 'annvault' | 'json' | 'jsonl' | 'msgpack' | 'sqlite' | 'parquet'
export type ExportCompression = 'none' | 'gzip' | 'brotli'

/** A progress event: at a phase's start and end, and at most one per whole percent and per 50 ms between. */
export interface ProgressEvent {
  operation: 'export' | 'import' | 'verify' | 'restore' | 'open' | 'checkpoint' | 'snapshot' | 'rebuild'
  /**
   * export: 'write'; import: 'validate', then 'apply' (and 'write' for mode 'replace'); verify: 'read';
   * restore: 'verify', 'load', 'write'; open: 'load', 'replay', 'graph'; checkpoint: 'index' (on
   * disconnect, first), 'write' (the snapshot's points; total 0 when nothing changed), 'graph' (the
   * graph saved beside it, in points), then for checkpoint() 'index' and 'graph' again when the
   * indexer took in more; snapshot: 'files', 'write'; rebuild: 'build' (points inserted).
   */
  phase: string
  current: number
  total: number
  /** 0–100. */
  percentage: number
  message: string
}

export interface ExportOptions {
  /** Default 'annvault'. */
  format?: ExportFormat
  /** Default 'none'. */
  compression?: ExportCompression
  /** Only the points whose payload matches (the `search` filter syntax). */
  filter?: SearchFilters
  /** Replace an existing file at `path` (atomically). Default false: an existing path is refused. */
  overwrite?: boolean
  /** Called with progress events; an exception it throws is ignored. */
  onProgress?: (event: ProgressEvent) => void
}

export interface ExportResult {
  path: string
  format: ExportFormat
  compression: ExportCompression
  count: number
  bytes: number
}

export interface ImportOptions {
  /** 'merge' (default): upsert the file's points; 'replace': the collection becomes the file's points. */
  mode?: 'merge' | 'replace'
  onProgress?: (event: ProgressEvent) => void
}

export interface ImportResult {
  count: number
  format: ExportFormat
  compression: ExportCompression
}

export interface VerifiedFile {
  file: string
  bytes: number
  ok: boolean
  error?: string
}

export interface VerifyResult {
  ok: boolean
  files: VerifiedFile[]
  /** Points the files hold (the snapshot with the WAL replayed). */
  count: number
  problems: string[]
}

// -------------------------------- DatabasePersistence (lib/database-persistence.ts; README "DatabasePersistence")
// Declared here by hand, as the rest of this file is (index.d.ts cannot re-export dist/: the lib
// build reads index.d.ts). Keep in step with lib/database-persistence.ts.

export type PersistenceFormat = 'json' | 'binary' | 'sqlite' | 'annvault'
export type PersistenceCompression = 'none' | 'gzip' | 'brotli'
/** A `ProgressEvent` whose `operation` is any of DatabasePersistence's (save, load, snapshot, …). */
export type PersistenceProgress = Omit<ProgressEvent, 'operation'> & { operation: string }
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
export interface PersistenceExportOptions {
  path: string
  format?: PersistenceFormat | 'jsonl' | 'msgpack'
  /** `true`: the instance's compression (gzip when that is `none`); `false`: none; or a name. */
  compress?: boolean | PersistenceCompression
  /** Replace a file at `path` (atomically). Default false: an existing file is refused. */
  overwrite?: boolean
}
export interface PersistenceExportResult {
  path: string
  format: string
  compression: string
  count: number
  bytes: number
  /** SHA-256 of the file, also written to `<path>.sha256`. */
  checksum: string
}
export interface PersistenceImportOptions {
  path: string
  /** Replace the store's points (true) or merge into them (false, the default). */
  clear?: boolean
  /** `true`: `<path>.sha256` must exist and match; `false`: not read; default: checked when present. */
  verifyChecksum?: boolean
}
export interface PersistenceImportResult {
  count: number
  format: string
  compression: string
  checksumVerified: boolean
}
export declare class DatabasePersistence {
  readonly baseDir: string
  readonly format: PersistenceFormat
  readonly compression: PersistenceCompression
  readonly maxSnapshots: number | undefined
  readonly autoSaveInterval: number | undefined
  constructor(store: InMemoryVectorStore, options?: DatabasePersistenceOptions)
  /** Writes the whole store as a new base; earlier saves' files go once it is durable. */
  save(): Promise<SaveResult>
  /** Writes what changed since the last save or load of this instance; a full save when it cannot tell. */
  saveIncremental(): Promise<SaveResult>
  /** Replaces the store's points with the saved state, after checking every file; atomic. */
  load(): Promise<LoadResult>
  /** Saves incrementally, then keeps the saved files under a snapshot (hard links where possible). */
  createSnapshot(name: string, metadata?: Record<string, unknown>): Promise<SnapshotMetadata>
  /** Every snapshot, oldest first. */
  listSnapshots(): Promise<SnapshotMetadata[]>
  /** Verifies a snapshot (by id, or name), then makes it the store's state, atomically. */
  restoreSnapshot(id: string): Promise<SnapshotMetadata>
  /** Deletes a snapshot (by id, or name); resolves to its description. */
  deleteSnapshot(id: string): Promise<SnapshotMetadata>
  /** Writes the store to one file (the store's export) and its SHA-256 to `<path>.sha256`. */
  export(options: PersistenceExportOptions): Promise<PersistenceExportResult>
  /** Reads an export into the store, all or nothing (the store's import), after its checksum. */
  import(options: PersistenceImportOptions): Promise<PersistenceImportResult>
  /** Saves incrementally every `autoSaveInterval` ms (default 60 s); the timer never keeps the process alive. */
  startAutoSave(): void
  stopAutoSave(): void
  /** Stops auto-save, saves incrementally, and releases `baseDir`. */
  shutdown(): Promise<void>
}

/**
 * A store configured the way ruvector's `VectorDB` is (`new VectorDB({ dimension: 384 })`): kept in
 * memory only (`annPersistIndex: false`, collection 'vectordb'), for `DatabasePersistence` to persist.
 */
export declare class VectorDB extends InMemoryVectorStore {
  constructor(options?: Partial<VectorStoreConfig>)
}

// ------------------------------------------------ StorageManager
// Storages from a YAML config, pack storage, hot backups (README: "Storage manager (YAML)"). The class is
// lib/storage/manager.ts; its compiled declarations, with every type, are at 'annvault/storage'. This file
// cannot import them (lib/ imports this file), so the public surface is declared here and
// __test__/storage-manager.test.ts holds the two to each other.

export type StorageManagerStorageType = 'file' | 'database' | 'cache' | 'native' | 'pack' | 'vectors'

/** One storage of a StorageManager: camelCase and Python names. */
export interface StorageManagerStorage {
  readonly name: string
  readonly type: StorageManagerStorageType
  store(key: string, data: unknown): Promise<void>
  /** null when absent; a pack storage returns a Readable with `{ stream: true }`. */
  retrieve(key: string, options?: { stream?: boolean }): Promise<any>
  delete(key: string): Promise<boolean>
  listKeys(prefix?: string): Promise<string[]>
  list_keys(prefix?: string): Promise<string[]>
  close(): Promise<void>
}

export interface StorageBackupInfo {
  id: string
  createdAt: Date
  path: string
  storages: Record<string, { type: StorageManagerStorageType; count?: number; skipped?: string }>
  files: number
  bytes: number
}

export interface StorageBackupVerifyResult {
  id: string
  ok: boolean
  files: number
  bytes: number
  problems: Array<{ path: string; problem: 'missing' | 'size' | 'sha256' | 'unlisted'; expected?: string | number; actual?: string | number }>
}

export declare class StorageManager {
  private constructor()
  static fromConfig(
    pathOrObject: string | Record<string, unknown>,
    options?: { baseDir?: string; onBackupError?: (error: Error) => void; clock?: () => number; schedule?: boolean },
  ): Promise<StorageManager>
  readonly defaultStorage: string
  storageNames(): string[]
  getStorage(name?: string): StorageManagerStorage
  get_storage(name?: string): StorageManagerStorage
  store(storage: string, key: string, data: unknown): Promise<void>
  store(key: string, data: unknown): Promise<void>
  retrieve(storage: string, key: string, options?: { stream?: boolean }): Promise<any>
  retrieve(key: string): Promise<any>
  delete(storage: string, key: string): Promise<boolean>
  delete(key: string): Promise<boolean>
  listKeys(storage?: string, prefix?: string): Promise<string[]>
  list_keys(storage?: string, prefix?: string): Promise<string[]>
  backupNow(): Promise<StorageBackupInfo>
  backup_now(): Promise<StorageBackupInfo>
  listBackups(): Promise<StorageBackupInfo[]>
  list_backups(): Promise<StorageBackupInfo[]>
  verifyBackup(id: string): Promise<StorageBackupVerifyResult>
  verify_backup(id: string): Promise<StorageBackupVerifyResult>
  restoreBackup(id: string, options?: { storages?: string[] }): Promise<{ id: string; storages: string[] }>
  restore_backup(id: string, options?: { storages?: string[] }): Promise<{ id: string; storages: string[] }>
  /** Resolves once no backup is running. */
  idle(): Promise<void>
  stats(): {
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
  close(): Promise<void>
}

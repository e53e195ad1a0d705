/**
 * The contract between `DefaultPersistenceManager` and its storage adapters.
 *
 * The manager owns everything the adapters must agree on — key rules (1–1,024
 * UTF-8 bytes, no NUL: code 5003), turning a JS value into an `EncodedValue`
 * and back (code 5004 for what JSON cannot carry faithfully), glob syntax,
 * TTL arithmetic, the clock — so that every adapter behaves the same and the
 * shared behaviour suite (`__test__/persistence-adapters.test.ts`) can hold
 * them to it. Adapters own storage: atomicity, durability, the `createdAt`
 * kept across overwrites, expiry filtering and sweeping, pattern search.
 */

/** A value as adapters store it: JSON text, or raw bytes for a Buffer / Uint8Array value. */
export type EncodedValue = { kind: 'json'; text: string } | { kind: 'binary'; bytes: Uint8Array }

/** One stored entry as an adapter returns it. Times are Unix milliseconds. */
export interface RawEntry {
  key: string
  value: EncodedValue
  /** JSON text of an object (`"{}"` when the entry has no metadata). */
  metadata: string
  createdAt: number
  updatedAt: number
  /** When the entry stops being visible; `null` = never. */
  expiresAt: number | null
}

/** One write of a `set` batch. */
export interface RawWrite {
  key: string
  value: EncodedValue
  metadata: string
  expiresAt: number | null
}

export interface AdapterStats {
  /** Live (unexpired) entries. */
  totalEntries: number
  /** Bytes the adapter occupies on disk (in memory for the memory adapter). */
  size: number
  /** When data was last made durable (Unix ms), `null` if never / not applicable. */
  lastSync: number | null
}

/**
 * Glob patterns (`find`, `keys`): `*` any run of characters (including none,
 * `:` and `/` too), `?` exactly one character, `[abc]` / `[a-z]` / `[!abc]` one
 * character of (not of) a set, `\` makes the next character literal. A pattern
 * matches the whole key. Adapters must serve a pattern with a literal prefix
 * (`user:*`) without scanning keys outside that prefix.
 */
export interface PersistenceAdapter {
  /** Short name for error messages and stats (`native`, `sqlite`, `file`, `memory`). */
  readonly name: string
  /** Opens or creates the storage. A second opener of a native path / a corrupt file rejects. */
  init(): Promise<void>
  /** `now` is the manager's clock (Unix ms): entries with `expiresAt <= now` are absent. */
  get(keys: string[], now: number): Promise<(RawEntry | null)[]>
  /**
   * Optional fast path for `get`: the entries at once, on the calling
   * thread, for an adapter whose state is in memory; `null` when it would
   * take more than a few microseconds (large values), and `get` serves it.
   * Throws what `get` would reject with.
   */
  getSync?(keys: string[], now: number): (RawEntry | null)[] | null
  /**
   * Writes the batch atomically (all or nothing) and durably per the adapter's
   * durability setting. Each entry's `createdAt` is the existing live entry's
   * (an expired one counts as absent) or `now`; `updatedAt` is `now`.
   */
  set(writes: RawWrite[], now: number): Promise<void>
  /** Removes the keys atomically; per key, whether a live entry existed. */
  delete(keys: string[], now: number): Promise<boolean[]>
  /** Live entries whose key matches the pattern, in key order (UTF-8 byte order). */
  find(pattern: string, now: number): Promise<RawEntry[]>
  /** Live keys matching the pattern (all keys when omitted), in key order. */
  keys(pattern: string | undefined, now: number): Promise<string[]>
  /** Removes every entry, durably. */
  clear(): Promise<void>
  stats(now: number): Promise<AdapterStats>
  /** Housekeeping: sweep expired entries, then the adapter's own (checkpoint, compaction, PRAGMA optimize …). */
  maintain(now: number): Promise<void>
  /** Flushes and releases the storage (lock, handles). Later calls reject with a closed error. */
  close(): Promise<void>
}

/**
 * `MemoryAdapter`: entries in memory, keys kept sorted, optional TTL — the
 * cache storage of the Xeno engine, done as the adapter contract asks.
 *
 * `ttl` (seconds) applies to every write that names no TTL of its own: the
 * entry expires `ttl` seconds after it was written. An expired entry is
 * never returned; it is removed when a call meets it and by `maintain()`.
 * Nothing survives `close()` or the process.
 */

import type { AdapterStats, EncodedValue, PersistenceAdapter, RawEntry, RawWrite } from './adapter'
import { PersistenceError, PersistenceErrorCode } from './errors'
import { compareKeys, parseGlob } from './glob'

export interface MemoryAdapterOptions {
  /** Seconds an entry lives after it was written when its write names no TTL. Default: forever. */
  ttl?: number
}

interface Slot {
  value: EncodedValue
  metadata: string
  createdAt: number
  updatedAt: number
  expiresAt: number | null
  bytes: number
}

function copyValue(value: EncodedValue): EncodedValue {
  return value.kind === 'binary' ? { kind: 'binary', bytes: Uint8Array.prototype.slice.call(value.bytes) } : value
}

function sizeOf(key: string, value: EncodedValue, metadata: string): number {
  const valueBytes = value.kind === 'binary' ? value.bytes.byteLength : Buffer.byteLength(value.text)
  return Buffer.byteLength(key) + valueBytes + Buffer.byteLength(metadata)
}

export class MemoryAdapter implements PersistenceAdapter {
  readonly name = 'memory'
  private readonly ttlMs: number | null
  private readonly slots = new Map<string, Slot>()
  /** Every key of `slots`, in key order. */
  private sorted: string[] = []
  private bytes = 0
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(options: MemoryAdapterOptions = {}) {
    const ttl = options.ttl
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0)) {
      throw new PersistenceError('MemoryAdapter: ttl must be a positive number of seconds', PersistenceErrorCode.INITIALIZATION, {
        adapter: 'memory',
        argument: 'ttl',
      })
    }
    this.ttlMs = ttl === undefined ? null : Math.max(1, Math.round(ttl * 1000))
  }

  async init(): Promise<void> {
    if (this.state === 'closed') throw this.stateError('init')
    this.state = 'open'
  }

  async get(keys: string[], now: number): Promise<(RawEntry | null)[]> {
    this.check('get')
    return keys.map((key) => {
      const slot = this.live(key, now)
      return slot ? this.entry(key, slot) : null
    })
  }

  async set(writes: RawWrite[], now: number): Promise<void> {
    this.check('set')
    for (const write of writes) {
      const previous = this.live(write.key, now)
      const slot: Slot = {
        value: copyValue(write.value),
        metadata: write.metadata,
        createdAt: previous ? previous.createdAt : now,
        updatedAt: now,
        expiresAt: write.expiresAt ?? (this.ttlMs === null ? null : now + this.ttlMs),
        bytes: sizeOf(write.key, write.value, write.metadata),
      }
      this.put(write.key, slot)
    }
  }

  async delete(keys: string[], now: number): Promise<boolean[]> {
    this.check('delete')
    return keys.map((key) => {
      const existed = this.live(key, now) !== null
      this.remove(key)
      return existed
    })
  }

  async find(pattern: string, now: number): Promise<RawEntry[]> {
    this.check('find')
    return this.scan(pattern, now).map(([key, slot]) => this.entry(key, slot))
  }

  async keys(pattern: string | undefined, now: number): Promise<string[]> {
    this.check('keys')
    return this.scan(pattern ?? '*', now).map(([key]) => key)
  }

  async clear(): Promise<void> {
    this.check('clear')
    this.slots.clear()
    this.sorted = []
    this.bytes = 0
  }

  async stats(now: number): Promise<AdapterStats> {
    this.check('stats')
    let live = 0
    for (const slot of this.slots.values()) if (slot.expiresAt === null || slot.expiresAt > now) live++
    return { totalEntries: live, size: this.bytes, lastSync: null }
  }

  async maintain(now: number): Promise<void> {
    this.check('maintain')
    for (const [key, slot] of this.slots) {
      if (slot.expiresAt !== null && slot.expiresAt <= now) this.remove(key)
    }
  }

  async close(): Promise<void> {
    this.check('close')
    this.state = 'closed'
    this.slots.clear()
    this.sorted = []
    this.bytes = 0
  }

  // ------------------------------------------------------------ internals

  private check(operation: string): void {
    if (this.state !== 'open') throw this.stateError(operation)
  }

  private stateError(operation: string): PersistenceError {
    const closed = this.state === 'closed'
    return new PersistenceError(
      closed ? `the memory adapter is closed (${operation})` : `the memory adapter is not initialized (${operation})`,
      PersistenceErrorCode.INITIALIZATION,
      { adapter: 'memory', operation, state: closed ? 'closed' : 'uninitialized' },
    )
  }

  /** The live slot of `key`; an expired one is removed on the way. */
  private live(key: string, now: number): Slot | null {
    const slot = this.slots.get(key)
    if (!slot) return null
    if (slot.expiresAt !== null && slot.expiresAt <= now) {
      this.remove(key)
      return null
    }
    return slot
  }

  private entry(key: string, slot: Slot): RawEntry {
    return {
      key,
      value: copyValue(slot.value),
      metadata: slot.metadata,
      createdAt: slot.createdAt,
      updatedAt: slot.updatedAt,
      expiresAt: slot.expiresAt,
    }
  }

  /** First index whose key is ≥ `key`. */
  private lowerBound(key: string): number {
    let low = 0
    let high = this.sorted.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (compareKeys(this.sorted[mid], key) < 0) low = mid + 1
      else high = mid
    }
    return low
  }

  private put(key: string, slot: Slot): void {
    const previous = this.slots.get(key)
    if (previous) this.bytes -= previous.bytes
    else this.sorted.splice(this.lowerBound(key), 0, key)
    this.slots.set(key, slot)
    this.bytes += slot.bytes
  }

  private remove(key: string): void {
    const slot = this.slots.get(key)
    if (!slot) return
    this.slots.delete(key)
    this.bytes -= slot.bytes
    this.sorted.splice(this.lowerBound(key), 1)
  }

  /** Live matches in key order, reading only the keys that start with the literal prefix. */
  private scan(pattern: string, now: number): Array<[string, Slot]> {
    const glob = parseGlob(pattern)
    const out: Array<[string, Slot]> = []
    const expired: string[] = []
    for (let i = this.lowerBound(glob.prefix); i < this.sorted.length; i++) {
      const key = this.sorted[i]
      if (!key.startsWith(glob.prefix)) break
      if (!glob.matches(key)) continue
      const slot = this.slots.get(key)!
      if (slot.expiresAt !== null && slot.expiresAt <= now) expired.push(key)
      else out.push([key, slot])
    }
    for (const key of expired) this.remove(key)
    return out
  }
}

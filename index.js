'use strict'

// The annvault façade: the public API shapes, error classes, and argument
// packing. Validation and all work happen in the Rust core (binding.js loads
// it); this file only checks what Rust cannot see (that a payload is plain
// JSON), packs vectors into one Float32Array, and turns the core's error
// envelopes into the exported classes.

const native = require('./binding.js')

const CODES = Object.freeze(native.errorCodes())
const ENVELOPE_PREFIX = 'annvault:'

const DEFAULT_DIMENSION = 1536
const DEFAULT_PERSISTENCE_PATH = './data/vector-storage'
const DEFAULT_SEARCH_LIMIT = 10
const DEFAULT_LIST_LIMIT = 100

// ---------------------------------------------------------------- errors

class VectorStoreError extends Error {
  /**
   * @param {string} message
   * @param {string} [operation]
   * @param {{ code?: number, kind?: string, details?: Record<string, unknown>, cause?: unknown }} [options]
   */
  constructor(message, operation = 'unknown', options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'VectorStoreError'
    this.operation = operation
    this.code = options.code ?? CODES.INTERNAL
    this.kind = options.kind ?? 'INTERNAL'
    this.details = options.details ?? {}
  }
}

class VectorDimensionError extends VectorStoreError {
  /**
   * @param {number} expectedDimension
   * @param {number} actualDimension
   * @param {string} [operation]
   * @param {{ message?: string, details?: Record<string, unknown> }} [options]
   */
  constructor(expectedDimension, actualDimension, operation = 'unknown', options = {}) {
    super(
      options.message ?? `vector has dimension ${actualDimension}, expected ${expectedDimension}`,
      operation,
      {
        code: CODES.DIMENSION_MISMATCH,
        kind: 'DIMENSION_MISMATCH',
        details: options.details ?? { expectedDimension, actualDimension },
      },
    )
    this.name = 'VectorDimensionError'
    this.expectedDimension = expectedDimension
    this.actualDimension = actualDimension
  }
}

class PersistenceError extends VectorStoreError {
  /**
   * @param {string} message
   * @param {number} [code]
   * @param {Record<string, unknown>} [details]
   * @param {{ operation?: string, kind?: string }} [options]
   */
  constructor(message, code = 5000, details = {}, options = {}) {
    super(message, options.operation ?? 'unknown', {
      code,
      kind: options.kind ?? 'PERSISTENCE',
      details,
    })
    this.name = 'PersistenceError'
  }
}

function storeError(kind, operation, message, details) {
  return new VectorStoreError(message, operation, { code: CODES[kind], kind, details })
}

/** Turns an error from the native layer into an exported error class. */
function fromNative(error, operation) {
  const message = error && typeof error.message === 'string' ? error.message : ''
  if (!message.startsWith(ENVELOPE_PREFIX)) {
    return new VectorStoreError(`internal error in ${operation}: ${message || String(error)}`, operation, {
      cause: error,
    })
  }
  const envelope = JSON.parse(message.slice(ENVELOPE_PREFIX.length))
  const details = envelope.details ?? {}
  switch (envelope.class) {
    case 'VectorDimensionError':
      return new VectorDimensionError(details.expectedDimension, details.actualDimension, envelope.operation, {
        message: envelope.message,
        details,
      })
    case 'PersistenceError':
      return new PersistenceError(envelope.message, envelope.code, details, {
        operation: envelope.operation,
        kind: envelope.kind,
      })
    default:
      return new VectorStoreError(envelope.message, envelope.operation, {
        code: envelope.code,
        kind: envelope.kind,
        details,
      })
  }
}

function translate(error, operation) {
  return error instanceof VectorStoreError ? error : fromNative(error, operation)
}

async function call(operation, run) {
  try {
    return await run()
  } catch (error) {
    throw translate(error, operation)
  }
}

const DONE = Promise.resolve()

// Batches up to this many floats go through `insertSmall` (read in place, maybe applied at once).
const SMALL_BATCH_FLOATS = 16 * 1024

// ------------------------------------------------------- argument packing

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return Object.prototype.toString.call(value).slice(8, -1)
  return typeof value
}

function isVectorLike(value) {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))
}

/** One vector as a fresh Float32Array (never aliasing the caller's memory). */
function toFloat32(vector, operation, what) {
  if (!isVectorLike(vector)) {
    throw storeError('INVALID_ARGUMENT', operation, `${what} must be an array of numbers or a Float32Array, got ${describe(vector)}`, {
      argument: 'vector',
    })
  }
  return Float32Array.from(vector)
}

/** Packs a batch of vectors back to back, with their lengths. */
function packVectors(vectors, operation) {
  const lengths = new Uint32Array(vectors.length)
  let total = 0
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i]
    if (!isVectorLike(v)) {
      throw storeError('INVALID_ARGUMENT', operation, `vector at batch index ${i} must be an array of numbers or a Float32Array, got ${describe(v)}`, {
        argument: 'vectors',
        index: i,
      })
    }
    lengths[i] = v.length
    total += v.length
  }
  const flat = new Float32Array(total)
  let offset = 0
  for (let i = 0; i < vectors.length; i++) {
    flat.set(vectors[i], offset)
    offset += lengths[i]
  }
  return { flat, lengths }
}

/**
 * Throws unless `value` is plain JSON: null, booleans, strings, finite
 * numbers, arrays and plain objects, without cycles. JSON.stringify would
 * otherwise drop `undefined` and functions, turn NaN into null and Dates into
 * strings: silent changes a database must not make.
 */
function assertPlainJson(value, path, fail, ancestors = []) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return
    case 'number':
      if (!Number.isFinite(value)) fail(`${path} is ${value}, which JSON cannot hold`)
      return
    case 'object':
      break
    default:
      fail(`${path} is ${describe(value)}, which is not JSON`)
  }
  if (value === null) return
  if (ancestors.includes(value)) fail(`${path} is a circular reference`)
  ancestors.push(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) assertPlainJson(value[i], `${path}[${i}]`, fail, ancestors)
  } else {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      fail(`${path} is a ${describe(value)}, not a plain object`)
    }
    for (const key of Object.keys(value)) assertPlainJson(value[key], `${path}.${key}`, fail, ancestors)
  }
  ancestors.pop()
}

function isPlainObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function payloadJson(payload, operation, index) {
  const at = index === undefined ? '' : ` at batch index ${index}`
  const fail = (reason) => {
    throw storeError('INVALID_PAYLOAD', operation, `invalid payload${at}: ${reason}`, { index: index ?? null })
  }
  if (!isPlainObject(payload)) fail(`a payload must be a plain object, got ${describe(payload)}`)
  assertPlainJson(payload, 'payload', fail)
}

function filterJson(filters, operation) {
  if (filters === undefined || filters === null) return undefined
  const fail = (reason) => {
    throw storeError('INVALID_FILTER', operation, `invalid filter: ${reason}`, {})
  }
  if (!isPlainObject(filters)) fail(`a filter must be a plain object, got ${describe(filters)}`)
  assertPlainJson(filters, 'filter', fail)
  return JSON.stringify(filters)
}

function checkLimit(limit, operation) {
  if (typeof limit !== 'number') {
    throw storeError('INVALID_ARGUMENT', operation, `invalid limit: must be a positive integer, got ${describe(limit)}`, {
      argument: 'limit',
    })
  }
  return limit
}

function checkArray(value, name, operation) {
  if (!Array.isArray(value)) {
    throw storeError('INVALID_ARGUMENT', operation, `${name} must be an array, got ${describe(value)}`, { argument: name })
  }
}

// ------------------------------------------------------------ config

const CONFIG_KEYS = new Set([
  'type',
  'collectionName',
  'dimension',
  'maxVectors',
  'distance',
  'persistencePath',
  'annPersistIndex',
  'durability',
  'recovery',
  'compression',
  'checkpointWalBytes',
  'annAlgorithm',
  'annMinDatasetSize',
  'hnsw',
])

const HNSW_KEYS = new Set(['m', 'efConstruction', 'efSearch', 'quantization'])

function hnswOf(config, operation) {
  const hnsw = config.hnsw
  if (hnsw === undefined) return undefined
  if (!isPlainObject(hnsw)) {
    throw storeError('INVALID_ARGUMENT', operation, `hnsw must be an object, got ${describe(hnsw)}`, { argument: 'hnsw' })
  }
  for (const key of Object.keys(hnsw)) {
    if (!HNSW_KEYS.has(key) && hnsw[key] !== undefined) {
      throw storeError('INVALID_ARGUMENT', operation, `unsupported hnsw option '${key}' (known: m, efConstruction, efSearch, quantization)`, {
        argument: `hnsw.${key}`,
      })
    }
    if (key === 'quantization') {
      if (hnsw[key] !== undefined && typeof hnsw[key] !== 'string') {
        throw storeError('INVALID_ARGUMENT', operation, `hnsw.quantization must be a string, got ${describe(hnsw[key])}`, {
          argument: 'hnsw.quantization',
        })
      }
      continue
    }
    if (hnsw[key] !== undefined && typeof hnsw[key] !== 'number') {
      throw storeError('INVALID_ARGUMENT', operation, `hnsw.${key} must be a number, got ${describe(hnsw[key])}`, {
        argument: `hnsw.${key}`,
      })
    }
  }
  return { m: hnsw.m, efConstruction: hnsw.efConstruction, efSearch: hnsw.efSearch, quantization: hnsw.quantization }
}

function optionalOf(config, key, type, operation) {
  const value = config[key]
  if (value !== undefined && typeof value !== type) {
    throw storeError('INVALID_ARGUMENT', operation, `${key} must be a ${type}, got ${describe(value)}`, { argument: key })
  }
  return value
}

function normalizeConfig(config) {
  const operation = 'createVectorStore'
  if (!isPlainObject(config)) {
    throw storeError('INVALID_ARGUMENT', operation, `config must be an object, got ${describe(config)}`, { argument: 'config' })
  }
  for (const key of Object.keys(config)) {
    if (!CONFIG_KEYS.has(key) && config[key] !== undefined) {
      throw storeError(
        'INVALID_ARGUMENT',
        operation,
        `unsupported config option '${key}' (this version knows: ${[...CONFIG_KEYS].join(', ')})`,
        { argument: key },
      )
    }
  }
  const type = config.type ?? 'in-memory'
  if (type !== 'in-memory') {
    throw storeError('INVALID_ARGUMENT', operation, `config.type must be 'in-memory', got ${JSON.stringify(type)}`, {
      argument: 'type',
    })
  }
  if (typeof config.collectionName !== 'string') {
    throw storeError('INVALID_NAME', operation, `collectionName must be a string, got ${describe(config.collectionName)}`, {})
  }
  const dimension = config.dimension ?? DEFAULT_DIMENSION
  if (typeof dimension !== 'number') {
    throw storeError('INVALID_ARGUMENT', operation, `dimension must be a positive integer, got ${describe(dimension)}`, {
      argument: 'dimension',
    })
  }
  if (config.maxVectors !== undefined && typeof config.maxVectors !== 'number') {
    throw storeError('INVALID_ARGUMENT', operation, `maxVectors must be a positive integer, got ${describe(config.maxVectors)}`, {
      argument: 'maxVectors',
    })
  }
  if (config.distance !== undefined && typeof config.distance !== 'string') {
    throw storeError('INVALID_ARGUMENT', operation, `distance must be 'Cosine', 'Dot' or 'Euclidean'`, { argument: 'distance' })
  }
  const persistencePath = config.persistencePath ?? DEFAULT_PERSISTENCE_PATH
  if (typeof persistencePath !== 'string' || persistencePath.length === 0) {
    throw storeError('INVALID_ARGUMENT', operation, `persistencePath must be a non-empty string`, { argument: 'persistencePath' })
  }
  return {
    type,
    collectionName: config.collectionName,
    dimension,
    distance: config.distance ?? 'Cosine',
    maxVectors: config.maxVectors,
    persistencePath,
    annPersistIndex: optionalOf(config, 'annPersistIndex', 'boolean', operation) ?? true,
    durability: optionalOf(config, 'durability', 'string', operation) ?? 'fsync',
    recovery: optionalOf(config, 'recovery', 'string', operation) ?? 'strict',
    compression: optionalOf(config, 'compression', 'string', operation) ?? 'none',
    checkpointWalBytes: optionalOf(config, 'checkpointWalBytes', 'number', operation),
    annAlgorithm: optionalOf(config, 'annAlgorithm', 'string', operation) ?? 'auto',
    annMinDatasetSize: optionalOf(config, 'annMinDatasetSize', 'number', operation) ?? 1000,
    hnsw: hnswOf(config, operation),
  }
}

// ------------------------------------------------------------ the store

class InMemoryVectorStore {
  #config
  #native = null
  #opening = null

  /** @param {import('./index').VectorStoreConfig} config */
  constructor(config) {
    this.#config = normalizeConfig(config)
  }

  #open(operation) {
    const store = this.#native
    if (store === null || !store.isOpen) {
      throw storeError('CLOSED', operation, 'the store is not connected; call connect() first', {})
    }
    return store
  }

  async connect() {
    return call('connect', async () => {
      if (this.#opening) return this.#opening
      if (this.#native === null) {
        const c = this.#config
        this.#opening = native.openStore({
          collectionName: c.collectionName,
          dimension: c.dimension,
          distance: c.distance,
          maxVectors: c.maxVectors,
          persistencePath: c.annPersistIndex ? c.persistencePath : undefined,
          durability: c.durability,
          recovery: c.recovery,
          compression: c.compression,
          checkpointWalBytes: c.checkpointWalBytes,
          annAlgorithm: c.annAlgorithm,
          annMinDatasetSize: c.annMinDatasetSize,
          hnsw: c.hnsw,
        })
        try {
          this.#native = await this.#opening
        } finally {
          this.#opening = null
        }
      } else if (!this.#native.isOpen) {
        await this.#native.reopen()
      }
    })
  }

  async disconnect() {
    return call('disconnect', async () => {
      if (this.#native !== null && this.#native.isOpen) await this.#native.close()
    })
  }

  isConnected() {
    return this.#native !== null && this.#native.isOpen
  }

  // Not `async`: a write the native layer applied at once resolves without
  // another trip through the microtask queue. Errors still reject, never throw.
  insert(vectors, ids, payloads) {
    try {
      const store = this.#open('insert')
      checkArray(vectors, 'vectors', 'insert')
      checkArray(ids, 'ids', 'insert')
      checkArray(payloads, 'payloads', 'insert')
      for (let i = 0; i < payloads.length; i++) payloadJson(payloads[i], 'insert', i)
      const { flat, lengths } = packVectors(vectors, 'insert')
      // null: applied already (small batch, no fsync needed, nothing ahead of it).
      const json = JSON.stringify(payloads)
      const pending =
        flat.length <= SMALL_BATCH_FLOATS
          ? store.insertSmall(flat, lengths, ids, json)
          : store.insert(flat, lengths, ids, json)
      if (pending == null) return DONE
      return pending.then(
        () => undefined,
        (error) => {
          throw translate(error, 'insert')
        },
      )
    } catch (error) {
      return Promise.reject(translate(error, 'insert'))
    }
  }

  // Not `async`: a search the native layer ran at once (a graph walk, or a
  // scan of a small collection) resolves without another microtask hop.
  search(query, limit = DEFAULT_SEARCH_LIMIT, filters, options) {
    try {
      const store = this.#open('search')
      const vector = toFloat32(query, 'search', 'query')
      let efSearch
      if (options !== undefined && options !== null) {
        if (!isPlainObject(options)) {
          throw storeError('INVALID_ARGUMENT', 'search', `options must be an object, got ${describe(options)}`, { argument: 'options' })
        }
        efSearch = options.efSearch
        if (efSearch !== undefined && typeof efSearch !== 'number') {
          throw storeError('INVALID_ARGUMENT', 'search', `efSearch must be a number, got ${describe(efSearch)}`, { argument: 'efSearch' })
        }
      }
      const result = store.search(vector, checkLimit(limit, 'search'), filterJson(filters, 'search'), efSearch)
      if (typeof result === 'string') return Promise.resolve(JSON.parse(result))
      return result.then(JSON.parse, (error) => {
        throw translate(error, 'search')
      })
    } catch (error) {
      return Promise.reject(translate(error, 'search'))
    }
  }

  /**
   * Resolves to true once the background indexer is idle (graph built and the tail indexed),
   * false if `timeoutMs` (default 10 minutes) passes first.
   */
  async waitForIndex(timeoutMs = 600000) {
    return call('waitForIndex', async () => {
      if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
        throw storeError('INVALID_ARGUMENT', 'waitForIndex', `timeoutMs must be a non-negative number, got ${describe(timeoutMs)}`, {
          argument: 'timeoutMs',
        })
      }
      return this.#open('waitForIndex').waitForIndex(timeoutMs)
    })
  }

  async get(id) {
    return call('get', async () => {
      const json = await this.#open('get').get(id)
      return json === null ? null : JSON.parse(json)
    })
  }

  async update(id, vector, payload) {
    return call('update', async () => {
      const store = this.#open('update')
      const packed = toFloat32(vector, 'update', 'vector')
      payloadJson(payload, 'update')
      await store.update(id, packed, JSON.stringify(payload))
    })
  }

  async delete(id) {
    return call('delete', async () => {
      await this.#open('delete').delete(id)
    })
  }

  async deleteCollection() {
    return call('deleteCollection', async () => {
      await this.#open('deleteCollection').clear()
    })
  }

  async list(filters, limit = DEFAULT_LIST_LIMIT) {
    return call('list', async () => {
      const store = this.#open('list')
      const json = await store.list(filterJson(filters, 'list'), checkLimit(limit, 'list'))
      const page = JSON.parse(json)
      return [page.records, page.total]
    })
  }

  async count() {
    return call('count', async () => this.#open('count').count())
  }

  /** Writes a checkpoint now: snapshot and manifest, then the WAL it covers is removed. */
  async checkpoint() {
    return call('checkpoint', async () => this.#open('checkpoint').checkpoint())
  }

  /** Same as checkpoint(). */
  async flush() {
    return this.checkpoint()
  }

  async stats() {
    return call('stats', async () => JSON.parse(await this.#open('stats').stats()))
  }

  /** Writes ann_metadata.json and payloads.json (the older backend's layout) into `dir`. */
  async exportLegacy(dir) {
    return call('exportLegacy', async () => {
      if (typeof dir !== 'string' || dir.length === 0) {
        throw storeError('INVALID_ARGUMENT', 'exportLegacy', `dir must be a non-empty string, got ${describe(dir)}`, {
          argument: 'dir',
        })
      }
      await this.#open('exportLegacy').exportLegacy(dir)
    })
  }

  getBackendType() {
    return 'in-memory'
  }

  getDimension() {
    return this.#config.dimension
  }

  getCollectionName() {
    return this.#config.collectionName
  }

  getConfig() {
    return { ...this.#config }
  }
}

// ---------------------------------------------------------- the manager

class VectorStoreManager {
  #store

  /** @param {import('./index').VectorStoreConfig} config */
  constructor(config) {
    this.#store = new InMemoryVectorStore(config)
  }

  async connect() {
    await this.#store.connect()
  }

  async disconnect() {
    await this.#store.disconnect()
  }

  getStore() {
    return this.#store
  }

  getInfo() {
    const config = this.#store.getConfig()
    return {
      type: 'in-memory',
      collectionName: config.collectionName,
      dimension: config.dimension,
      distance: config.distance,
      maxVectors: config.maxVectors ?? null,
      persistencePath: config.persistencePath,
      persistent: config.annPersistIndex,
      durability: config.durability,
      annAlgorithm: config.annAlgorithm,
      connected: this.#store.isConnected(),
    }
  }

  async healthCheck() {
    if (!this.#store.isConnected()) {
      return { healthy: false, connected: false, vectorCount: null, error: 'not connected' }
    }
    try {
      const vectorCount = await this.#store.count()
      return { healthy: true, connected: true, vectorCount, error: null }
    } catch (error) {
      return { healthy: false, connected: this.#store.isConnected(), vectorCount: null, error: error.message }
    }
  }
}

// ---------------------------------------------------------- factories

async function createVectorStore(config) {
  const manager = new VectorStoreManager(config)
  await manager.connect()
  return { manager, store: manager.getStore() }
}

async function createPersistentInMemoryStore(
  collectionName,
  dimension = DEFAULT_DIMENSION,
  persistencePath = DEFAULT_PERSISTENCE_PATH,
) {
  return createVectorStore({ type: 'in-memory', collectionName, dimension, persistencePath })
}

module.exports = {
  createPersistentInMemoryStore,
  createVectorStore,
  InMemoryVectorStore,
  VectorStoreManager,
  VectorStoreError,
  VectorDimensionError,
  PersistenceError,
  ErrorCodes: CODES,
}

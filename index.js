'use strict'

// The annvault façade: the public API shapes, error classes, and argument
// packing. Validation and all work happen in the Rust core (binding.js loads
// it); this file only checks what Rust cannot see (that a payload is plain
// JSON, that vector elements are numbers rather than values JS would coerce,
// what a caller's getter or Proxy throws), reads each argument once, packs
// vectors into one Float32Array, and turns the core's error envelopes into
// the exported classes.

const native = require('./native.js')

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
//
// Everything the caller passes is read exactly once, in a walk that also
// validates it, and what crosses into Rust is built from that one read:
// a getter, a Proxy or a `toJSON` cannot show the validation one value and
// the store another. Anything the caller's objects throw while being read
// (a getter, a Proxy trap, a `valueOf`) becomes a typed error of the
// argument being read, with the thrown value as its `cause`.

const { types } = require('node:util')

/**
 * Deepest nesting of objects and arrays in a payload or a filter (the
 * payload or filter object itself is level 1). The Rust core checks the
 * same limit (`MAX_JSON_DEPTH` in crates/core/src/collection.rs), so
 * nothing accepted here is refused there.
 */
const MAX_JSON_DEPTH = 64

const isWellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (text) => text.isWellFormed()
    : (text) => !/\p{Surrogate}/u.test(text)

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return Object.prototype.toString.call(value).slice(8, -1)
  return typeof value
}

/** `describe` for values that may be hostile (a revoked Proxy throws even from Array.isArray). */
function safeDescribe(value) {
  try {
    return describe(value)
  } catch {
    return typeof value
  }
}

function messageOf(error) {
  try {
    return error instanceof Error ? error.message : String(error)
  } catch {
    return 'an exception'
  }
}

/** Rethrows `error` as a typed error unless it is one already. */
function inputError(error, kind, operation, what, details) {
  if (error instanceof VectorStoreError) return error
  return new VectorStoreError(`could not read ${what}: ${messageOf(error)}`, operation, {
    code: CODES[kind],
    kind,
    details,
    cause: error,
  })
}

function isPlainObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

// Vectors. A vector is an array whose every element is a number, or a typed
// array of numbers (Float32Array, Float64Array, the integer ones); each
// element is rounded to the nearest f32. Elements are never coerced: '1',
// true, null or [1] are rejected, not turned into numbers. BigInt64Array and
// BigUint64Array hold BigInts, not numbers, and are rejected too.

function vectorError(operation, argument, index, message, extra) {
  return storeError('INVALID_ARGUMENT', operation, message, { argument, index: index ?? null, ...extra })
}

/** The length of `vector`, after checking that it is an array or a typed array of numbers. */
function vectorLength(vector, operation, argument, index, what) {
  if (Array.isArray(vector)) return vector.length
  if (types.isTypedArray(vector)) {
    if (types.isBigInt64Array(vector) || types.isBigUint64Array(vector)) {
      throw vectorError(operation, argument, index, `${what} is a ${describe(vector)}: vector elements must be numbers, not BigInts`)
    }
    return vector.length
  }
  throw vectorError(operation, argument, index, `${what} must be an array of numbers or a Float32Array, got ${describe(vector)}`)
}

/** Copies `length` elements of `vector` into `out` at `offset`, checking each is a number. */
function copyVector(vector, length, out, offset, operation, argument, index, what) {
  if (!Array.isArray(vector)) {
    // A typed array: every element is a number. Its length can only have
    // changed if a caller's getter resized its buffer meanwhile.
    if (vector.length !== length) {
      throw vectorError(operation, argument, index, `${what} changed length while it was being read`)
    }
    out.set(vector, offset)
    return
  }
  for (let j = 0; j < length; j++) {
    const x = vector[j]
    if (typeof x !== 'number') {
      throw vectorError(
        operation,
        argument,
        index,
        `${what} has a value of type ${safeDescribe(x)} at position ${j}: vector elements must be numbers (nothing is converted)`,
        { position: j },
      )
    }
    out[offset + j] = x
  }
}

/** One vector as a fresh Float32Array (never aliasing the caller's memory). */
function toFloat32(vector, operation, what) {
  try {
    const length = vectorLength(vector, operation, what, null, what)
    const out = new Float32Array(length)
    copyVector(vector, length, out, 0, operation, what, null, what)
    return out
  } catch (error) {
    throw inputError(error, 'INVALID_ARGUMENT', operation, what, { argument: what })
  }
}

/** Packs a batch of vectors back to back, with their lengths. */
function packVectors(vectors, operation) {
  let i = 0
  try {
    const count = vectors.length
    const list = new Array(count)
    const lengths = new Uint32Array(count)
    let total = 0
    for (; i < count; i++) {
      const v = vectors[i]
      const length = vectorLength(v, operation, 'vectors', i, `vector at batch index ${i}`)
      list[i] = v
      lengths[i] = length
      total += length
    }
    const flat = new Float32Array(total)
    let offset = 0
    for (i = 0; i < count; i++) {
      copyVector(list[i], lengths[i], flat, offset, operation, 'vectors', i, `vector at batch index ${i}`)
      offset += lengths[i]
    }
    return { flat, lengths }
  } catch (error) {
    throw inputError(error, 'INVALID_ARGUMENT', operation, `the vector at batch index ${i}`, { argument: 'vectors', index: i })
  }
}

/** A fresh array of the ids (each read once); Rust checks each one. */
function copyIds(ids, operation) {
  let i = 0
  try {
    const count = ids.length
    const out = new Array(count)
    for (; i < count; i++) out[i] = ids[i]
    return out
  } catch (error) {
    throw inputError(error, 'INVALID_ID', operation, `the id at batch index ${i}`, { index: i })
  }
}

// Payloads and filters: plain JSON (null, booleans, strings, finite numbers,
// arrays and plain objects, at most MAX_JSON_DEPTH levels, no cycles),
// turned into JSON text by the walk that checks them. JSON.stringify would
// drop `undefined` and functions, turn NaN into null and Dates into strings,
// and read every getter a second time.

/** Why a value is not plain JSON; caught by the walk's caller. */
class NotJson {
  constructor(reason) {
    this.reason = reason
  }
}

/**
 * A walk's position: the keys and the objects from the root down. One per
 * call, not shared: a caller's getter may start another insert mid-walk.
 */
function newWalk() {
  return { keys: [], objects: [] }
}

function walkPath(walk, root) {
  const keys = walk.keys
  const step = (key) => (typeof key === 'number' ? `[${key}]` : `.${key}`)
  if (keys.length <= 8) return root + keys.map(step).join('')
  return `${root}${keys.slice(0, 3).map(step).join('')}…(${keys.length - 5} more)…${keys.slice(-2).map(step).join('')}`
}

// Characters a JSON string must escape, and lone surrogates (which JSON
// cannot carry as UTF-8 and which Rust would reject).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

function stringText(text) {
  if (!NEEDS_ESCAPE.test(text)) return '"' + text + '"'
  if (!isWellFormed(text)) throw new NotJson('is a string with a lone surrogate (not well-formed UTF-16)')
  return JSON.stringify(text)
}

function valueText(value, walk) {
  switch (typeof value) {
    case 'string':
      return stringText(value)
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson(`is ${value}, which JSON cannot hold`)
      return '' + value
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object':
      return value === null ? 'null' : objectText(value, walk)
    default:
      throw new NotJson(`is ${describe(value)}, which is not JSON`)
  }
}

function objectText(value, walk) {
  const { keys, objects } = walk
  if (objects.length >= MAX_JSON_DEPTH) {
    throw new NotJson(
      objects.includes(value)
        ? 'is a circular reference'
        : `nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep (the limit)`,
    )
  }
  objects.push(value)
  let text
  if (Array.isArray(value)) {
    const length = value.length
    text = '['
    for (let i = 0; i < length; i++) {
      keys.push(i)
      if (i > 0) text += ','
      text += valueText(value[i], walk)
      keys.pop()
    }
    text += ']'
  } else {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) throw new NotJson(`is a ${describe(value)}, not a plain object`)
    const names = Object.keys(value)
    text = '{'
    for (let i = 0; i < names.length; i++) {
      const key = names[i]
      keys.push(key)
      if (i > 0) text += ','
      text += stringText(key) + ':' + valueText(value[key], walk)
      keys.pop()
    }
    text += '}'
  }
  objects.pop()
  return text
}

/**
 * The JSON text of a plain object, or a typed `kind` error. `root` names the
 * value in messages ('payload', 'filter').
 */
function plainObjectText(value, kind, operation, root, at, details) {
  const walk = newWalk()
  try {
    if (!isPlainObject(value)) throw new NotJson(`must be a plain object, got ${describe(value)}`)
    return objectText(value, walk)
  } catch (error) {
    const path = walkPath(walk, root)
    if (error instanceof NotJson) {
      throw storeError(kind, operation, `invalid ${root}${at}: ${path} ${error.reason}`, details)
    }
    throw inputError(error, kind, operation, `${path}${at}`, details)
  }
}

function payloadText(payload, operation, index) {
  const at = index === undefined ? '' : ` at batch index ${index}`
  return plainObjectText(payload, 'INVALID_PAYLOAD', operation, 'payload', at, { index: index ?? null })
}

/** The payloads of a batch as one JSON array. */
function payloadsText(payloads, operation) {
  let i = 0
  try {
    const count = payloads.length
    let text = '['
    for (; i < count; i++) {
      if (i > 0) text += ','
      text += payloadText(payloads[i], operation, i)
    }
    return text + ']'
  } catch (error) {
    throw inputError(error, 'INVALID_PAYLOAD', operation, `the payload at batch index ${i}`, { index: i })
  }
}

function filterText(filters, operation) {
  if (filters === undefined || filters === null) return undefined
  return plainObjectText(filters, 'INVALID_FILTER', operation, 'filter', '', {})
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
  let isArray
  try {
    isArray = Array.isArray(value)
  } catch (error) {
    throw inputError(error, 'INVALID_ARGUMENT', operation, name, { argument: name })
  }
  if (!isArray) {
    throw storeError('INVALID_ARGUMENT', operation, `${name} must be an array, got ${safeDescribe(value)}`, { argument: name })
  }
}

/** Reads the search options once: only `efSearch` is known (1–65536, checked in Rust). */
function searchOptions(options) {
  const operation = 'search'
  if (options === undefined || options === null) return undefined
  let efSearch
  try {
    if (!isPlainObject(options)) {
      throw storeError('INVALID_ARGUMENT', operation, `options must be an object, got ${describe(options)}`, { argument: 'options' })
    }
    for (const key of Object.keys(options)) {
      const value = options[key]
      if (key === 'efSearch') {
        efSearch = value
      } else if (value !== undefined) {
        throw storeError('INVALID_ARGUMENT', operation, `unsupported search option '${key}' (known: efSearch)`, {
          argument: `options.${key}`,
        })
      }
    }
  } catch (error) {
    throw inputError(error, 'INVALID_ARGUMENT', operation, 'the search options', { argument: 'options' })
  }
  if (efSearch !== undefined && typeof efSearch !== 'number') {
    throw storeError('INVALID_ARGUMENT', operation, `efSearch must be an integer from 1 to 65536, got ${describe(efSearch)}`, {
      argument: 'efSearch',
    })
  }
  return efSearch
}

// ------------------------------------------------------------ config
//
// `undefined` (or leaving a key out) means the default; `null` and values
// of the wrong type are errors, never a default. The config is read once:
// a getter is called once and what it returned is what is validated and used.

const CONFIG_KEYS = new Set([
  'type',
  'collectionName',
  'dimension',
  'maxVectors',
  'distance',
  'persistencePath',
  'annIndexPath',
  'annPersistIndex',
  'durability',
  'recovery',
  'compression',
  'checkpointWalBytes',
  'maxSnapshots',
  'autoSaveIntervalMs',
  'checkpointIntervalMs',
  'annAlgorithm',
  'annMinDatasetSize',
  'annCloseWaitMs',
  'onProgress',
  'hnsw',
  'faiss',
  'storage',
])

const STORAGE_KEYS = new Set(['vectors'])

const FAISS_KEYS = new Set(['index', 'nprobe', 'trainPoints'])

const HNSW_KEYS = new Set(['m', 'efConstruction', 'efSearch', 'quantization'])

/** Distance names are matched ignoring ASCII case; the canonical spelling is kept. */
const DISTANCES = ['Cosine', 'Dot', 'Euclidean']

/** A plain copy of a config object's own keys, each read once. */
function readOptions(value, name, operation) {
  let key = name
  try {
    if (!isPlainObject(value)) {
      throw storeError('INVALID_ARGUMENT', operation, `${name} must be an object, got ${describe(value)}`, { argument: name })
    }
    const copy = {}
    for (key of Object.keys(value)) copy[key] = value[key]
    return copy
  } catch (error) {
    const argument = key === name ? name : `${name === 'config' ? '' : `${name}.`}${key}`
    throw inputError(error, 'INVALID_ARGUMENT', operation, argument, { argument })
  }
}

function checkKnown(options, known, name, operation) {
  for (const key of Object.keys(options)) {
    if (!known.has(key) && options[key] !== undefined) {
      const argument = name === 'config' ? key : `${name}.${key}`
      throw storeError(
        'INVALID_ARGUMENT',
        operation,
        `unsupported ${name === 'config' ? 'config' : name} option '${key}' (this version knows: ${[...known].join(', ')})`,
        { argument },
      )
    }
  }
}

/** `options[key]`: undefined, or a value of type `type`; null is an error. */
function optionOf(options, key, type, operation, name = key) {
  const value = options[key]
  if (value === undefined) return undefined
  if (typeof value !== type) {
    const got = value === null ? 'null (leave the option out, or pass undefined, for the default)' : describe(value)
    throw storeError('INVALID_ARGUMENT', operation, `${name} must be a ${type}, got ${got}`, { argument: name })
  }
  return value
}

function faissOf(config, operation) {
  if (config.faiss === undefined) return undefined
  const faiss = readOptions(config.faiss, 'faiss', operation)
  checkKnown(faiss, FAISS_KEYS, 'faiss', operation)
  return {
    index: optionOf(faiss, 'index', 'string', operation, 'faiss.index'),
    nprobe: optionOf(faiss, 'nprobe', 'number', operation, 'faiss.nprobe'),
    trainPoints: optionOf(faiss, 'trainPoints', 'number', operation, 'faiss.trainPoints'),
  }
}

function hnswOf(config, operation) {
  if (config.hnsw === undefined) return undefined
  const hnsw = readOptions(config.hnsw, 'hnsw', operation)
  checkKnown(hnsw, HNSW_KEYS, 'hnsw', operation)
  return {
    m: optionOf(hnsw, 'm', 'number', operation, 'hnsw.m'),
    efConstruction: optionOf(hnsw, 'efConstruction', 'number', operation, 'hnsw.efConstruction'),
    efSearch: optionOf(hnsw, 'efSearch', 'number', operation, 'hnsw.efSearch'),
    quantization: optionOf(hnsw, 'quantization', 'string', operation, 'hnsw.quantization'),
  }
}

function storageOf(config, operation) {
  if (config.storage === undefined) return undefined
  const storage = readOptions(config.storage, 'storage', operation)
  checkKnown(storage, STORAGE_KEYS, 'storage', operation)
  return { vectors: optionOf(storage, 'vectors', 'string', operation, 'storage.vectors') }
}

function wellFormedPath(path, name, operation) {
  if (path.length === 0) {
    throw storeError('INVALID_ARGUMENT', operation, `${name} must be a non-empty string`, { argument: name })
  }
  if (!isWellFormed(path)) {
    throw storeError('INVALID_ARGUMENT', operation, `${name} must be well-formed UTF-16 (it holds a lone surrogate)`, {
      argument: name,
    })
  }
  return path
}

function positiveIntegerOption(config, key, operation) {
  const value = optionOf(config, key, 'number', operation)
  if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 0xffffffff)) {
    throw storeError('INVALID_ARGUMENT', operation, `${key} must be a positive integer, got ${value}`, { argument: key })
  }
  return value
}

/** A timer period: at least 1 ms, at most what `setInterval` takes (2^31 - 1 ms). */
function intervalOption(config, key, operation) {
  const value = optionOf(config, key, 'number', operation)
  if (value !== undefined && !(Number.isFinite(value) && value >= 1 && value <= 0x7fffffff)) {
    throw storeError('INVALID_ARGUMENT', operation, `${key} must be a number of milliseconds from 1 to 2147483647, got ${value}`, {
      argument: key,
    })
  }
  return value
}

function normalizeConfig(input) {
  const operation = 'createVectorStore'
  const config = readOptions(input, 'config', operation)
  checkKnown(config, CONFIG_KEYS, 'config', operation)
  const type = optionOf(config, 'type', 'string', operation) ?? 'in-memory'
  if (type !== 'in-memory') {
    throw storeError('INVALID_ARGUMENT', operation, `config.type must be 'in-memory' or 'pgvector', got ${JSON.stringify(type)}`, {
      argument: 'type',
    })
  }
  const collectionName = config.collectionName
  if (typeof collectionName !== 'string') {
    throw storeError('INVALID_NAME', operation, `collectionName must be a string, got ${describe(collectionName)}`, {})
  }
  if (!isWellFormed(collectionName)) {
    throw storeError('INVALID_NAME', operation, 'collectionName must be well-formed UTF-16 (it holds a lone surrogate)', {})
  }
  const dimension = optionOf(config, 'dimension', 'number', operation) ?? DEFAULT_DIMENSION
  const distanceName = optionOf(config, 'distance', 'string', operation) ?? 'Cosine'
  const folded = distanceName.toLowerCase()
  // An unknown name goes to Rust as it is, which rejects it on connect.
  const distance = DISTANCES.find((d) => d.toLowerCase() === folded && /^[a-z]+$/i.test(distanceName)) ?? distanceName
  // `annIndexPath` is the in-memory storage document's name for the same setting.
  const pathOption = optionOf(config, 'persistencePath', 'string', operation)
  const indexPath = optionOf(config, 'annIndexPath', 'string', operation)
  if (pathOption !== undefined && indexPath !== undefined && pathOption !== indexPath) {
    throw storeError(
      'INVALID_ARGUMENT',
      operation,
      `annIndexPath (${JSON.stringify(indexPath)}) and persistencePath (${JSON.stringify(pathOption)}) name the same setting: give one, or the same path`,
      { argument: 'annIndexPath' },
    )
  }
  const persistencePath = wellFormedPath(
    pathOption ?? indexPath ?? DEFAULT_PERSISTENCE_PATH,
    pathOption === undefined && indexPath !== undefined ? 'annIndexPath' : 'persistencePath',
    operation,
  )
  return {
    type,
    collectionName,
    dimension,
    distance,
    maxVectors: optionOf(config, 'maxVectors', 'number', operation),
    persistencePath,
    annPersistIndex: optionOf(config, 'annPersistIndex', 'boolean', operation) ?? true,
    durability: optionOf(config, 'durability', 'string', operation) ?? 'fsync',
    recovery: optionOf(config, 'recovery', 'string', operation) ?? 'strict',
    compression: optionOf(config, 'compression', 'string', operation) ?? 'none',
    checkpointWalBytes: optionOf(config, 'checkpointWalBytes', 'number', operation),
    maxSnapshots: positiveIntegerOption(config, 'maxSnapshots', operation),
    autoSaveIntervalMs: intervalOption(config, 'autoSaveIntervalMs', operation),
    checkpointIntervalMs: intervalOption(config, 'checkpointIntervalMs', operation),
    annAlgorithm: optionOf(config, 'annAlgorithm', 'string', operation) ?? 'auto',
    annMinDatasetSize: optionOf(config, 'annMinDatasetSize', 'number', operation) ?? 1000,
    annCloseWaitMs: optionOf(config, 'annCloseWaitMs', 'number', operation) ?? 60000,
    onProgress: progressOption(config, operation),
    hnsw: hnswOf(config, operation),
    faiss: faissOf(config, operation),
    storage: storageOf(config, operation),
  }
}

// ------------------------------------------------ export, import, verify

function checkPath(path, operation) {
  if (typeof path !== 'string') {
    throw storeError('INVALID_ARGUMENT', operation, `path must be a non-empty string, got ${describe(path)}`, { argument: 'path' })
  }
  return wellFormedPath(path, 'path', operation)
}

/** A plain copy of an options object (undefined: none), with only `known` keys. */
function transferOptions(options, known, operation) {
  if (options === undefined) return {}
  const copy = readOptions(options, 'options', operation)
  checkKnown(copy, new Set(known), 'options', operation)
  return copy
}

function progressOption(options, operation) {
  const value = options.onProgress
  if (value === undefined) return undefined
  if (typeof value !== 'function') {
    throw storeError('INVALID_ARGUMENT', operation, `onProgress must be a function, got ${describe(value)}`, {
      argument: 'onProgress',
    })
  }
  return value
}

function exportOptions(options) {
  const operation = 'export'
  const o = transferOptions(options, ['format', 'compression', 'filter', 'overwrite', 'onProgress'], operation)
  return {
    format: optionOf(o, 'format', 'string', operation),
    compression: optionOf(o, 'compression', 'string', operation),
    filter: o.filter,
    overwrite: optionOf(o, 'overwrite', 'boolean', operation) ?? false,
    onProgress: progressOption(o, operation),
  }
}

/**
 * Delivers the native layer's progress events (JSON text, queued from the
 * worker thread) to `onProgress`. A callback that throws is the caller's
 * observer failing, not the operation: its exception is dropped. The
 * operation settles once every event it queued has been delivered.
 */
function progressRelay(onProgress) {
  if (onProgress === undefined) {
    return { callback: undefined, settle: async (result) => strip(result) }
  }
  let delivered = 0
  const callback = (text) => {
    delivered++
    try {
      onProgress(JSON.parse(text))
    } catch {
      // See above: an observer's failure does not fail the operation.
    }
  }
  const settle = async (result) => {
    // Queued events reach the JS thread within a few turns of the loop; the
    // bound only guards against waiting forever on a queue Node closed.
    for (let turn = 0; delivered < result.progressEvents && turn < 10000; turn++) {
      await new Promise((resolve) => setImmediate(resolve))
    }
    return strip(result)
  }
  return { callback, settle }
}

function strip(result) {
  delete result.progressEvents
  return result
}

// ------------------------------------------------------ named snapshots

function snapshotKey(value, name, operation) {
  if (typeof value !== 'string') {
    throw storeError('INVALID_NAME', operation, `${name} must be a string, got ${describe(value)}`, {})
  }
  if (!isWellFormed(value)) {
    throw storeError('INVALID_NAME', operation, `${name} must be well-formed UTF-16 (it holds a lone surrogate)`, { name: value })
  }
  return value
}

function metadataText(value, operation) {
  if (value === undefined) return undefined
  let text
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw inputError(error, 'INVALID_ARGUMENT', operation, 'metadata', { argument: 'metadata' })
  }
  if (text === undefined) {
    throw storeError('INVALID_ARGUMENT', operation, `metadata must be a JSON value, got ${describe(value)}`, { argument: 'metadata' })
  }
  return text
}

// ------------------------------------------------------------ the store

// The open native store of an InMemoryVectorStore, for DatabasePersistence (dist/database-persistence.js).
let nativeOf

class InMemoryVectorStore {
  static {
    nativeOf = (store, operation) => store.#open(operation)
  }

  #config
  #native = null
  #opening = null
  // Auto-save: the interval timers (unref'ed), what they did, and the
  // error of a timed fsync or checkpoint not yet reported by a write.
  #timers = []
  #autoSave = { syncs: 0, checkpoints: 0, lastError: null }
  #backgroundError = null
  // Delivers the config's onProgress events: the open's, then background checkpoints' and graph builds'.
  #progress = null

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
        const relay = progressRelay(c.onProgress)
        this.#opening = native.openStore(
          {
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
          annCloseWaitMs: c.annCloseWaitMs,
          hnsw: c.hnsw,
          faiss: c.faiss,
          vectorStorage: c.storage?.vectors,
          },
          relay.callback,
        )
        try {
          this.#native = await this.#opening
        } finally {
          this.#opening = null
        }
        this.#progress = relay
        await relay.settle({ progressEvents: this.#native.openProgressEvents })
      } else if (!this.#native.isOpen) {
        await this.#native.reopen()
      }
      this.#startTimers()
    })
  }

  async disconnect() {
    return call('disconnect', async () => {
      this.#stopTimers()
      if (this.#native !== null && this.#native.isOpen) {
        await this.#native.close()
        // The close's checkpoint reported to the config's onProgress: deliver it before resolving.
        await this.#progress?.settle({ progressEvents: this.#native.progressEvents })
      }
    })
  }

  /**
   * Auto-save timers (README, "Named snapshots and auto-save"). Unref'ed: they never keep the
   * process alive. A tick is skipped while the previous one runs. A failure is kept and rejects
   * the next write (then it is cleared), and shows in `stats().autoSave.lastError`.
   */
  #startTimers() {
    const c = this.#config
    if (this.#timers.length > 0 || !c.annPersistIndex) return
    // Under 'fsync' every write is durable when it resolves: nothing to sync on a timer.
    if (c.autoSaveIntervalMs !== undefined && c.durability === 'flush') {
      this.#every(c.autoSaveIntervalMs, 'autoSave', async (store) => {
        await store.syncWal()
        this.#autoSave.syncs++
      })
    }
    if (c.checkpointIntervalMs !== undefined) {
      this.#every(c.checkpointIntervalMs, 'checkpoint', async (store) => {
        if (await store.checkpointIfChanged()) this.#autoSave.checkpoints++
      })
    }
  }

  #every(ms, operation, run) {
    let running = false
    const timer = setInterval(() => {
      const store = this.#native
      if (running || store === null || !store.isOpen) return
      running = true
      run(store)
        .catch((error) => {
          const failure = translate(error, operation)
          // A disconnect between the check above and the call: not a failure of the data.
          if (failure.code === CODES.CLOSED) return
          this.#backgroundError = failure
          this.#autoSave.lastError = failure.message
        })
        .finally(() => {
          running = false
        })
    }, ms)
    timer.unref()
    this.#timers.push(timer)
  }

  #stopTimers() {
    for (const timer of this.#timers) clearInterval(timer)
    this.#timers = []
  }

  /** The open native store for a write; throws a timed fsync's or checkpoint's failure first, once. */
  #writable(operation) {
    const failure = this.#backgroundError
    if (failure !== null) {
      this.#backgroundError = null
      throw failure
    }
    return this.#open(operation)
  }

  isConnected() {
    return this.#native !== null && this.#native.isOpen
  }

  // Not `async`: a write the native layer applied at once resolves without
  // another trip through the microtask queue. Errors still reject, never throw.
  insert(vectors, ids, payloads) {
    try {
      const store = this.#writable('insert')
      checkArray(vectors, 'vectors', 'insert')
      checkArray(ids, 'ids', 'insert')
      checkArray(payloads, 'payloads', 'insert')
      const json = payloadsText(payloads, 'insert')
      const { flat, lengths } = packVectors(vectors, 'insert')
      const idList = copyIds(ids, 'insert')
      // null: applied already (small batch, no fsync needed, nothing ahead of it).
      const pending =
        flat.length <= SMALL_BATCH_FLOATS
          ? store.insertSmall(flat, lengths, idList, json)
          : store.insert(flat, lengths, idList, json)
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
      const efSearch = searchOptions(options)
      const result = store.search(vector, checkLimit(limit, 'search'), filterText(filters, 'search'), efSearch)
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
      const store = this.#writable('update')
      const packed = toFloat32(vector, 'update', 'vector')
      await store.update(id, packed, payloadText(payload, 'update'))
    })
  }

  async delete(id) {
    return call('delete', async () => {
      await this.#writable('delete').delete(id)
    })
  }

  async deleteCollection() {
    return call('deleteCollection', async () => {
      await this.#writable('deleteCollection').clear()
    })
  }

  async list(filters, limit = DEFAULT_LIST_LIMIT) {
    return call('list', async () => {
      const store = this.#open('list')
      const json = await store.list(filterText(filters, 'list'), checkLimit(limit, 'list'))
      const page = JSON.parse(json)
      return [page.records, page.total]
    })
  }

  async count() {
    return call('count', async () => this.#open('count').count())
  }

  /**
   * Writes a checkpoint now: snapshot and manifest, then the WAL it covers is removed.
   * `options.onProgress` receives operation 'checkpoint' (README, "Progress events").
   */
  async checkpoint(options) {
    return call('checkpoint', async () => {
      const o = transferOptions(options, ['onProgress'], 'checkpoint')
      const store = this.#writable('checkpoint')
      const progress = progressRelay(progressOption(o, 'checkpoint'))
      const progressEvents = await store.checkpoint(progress.callback)
      await progress.settle({ progressEvents })
    })
  }

  /** Same as checkpoint(). */
  async flush(options) {
    return this.checkpoint(options)
  }

  async stats() {
    return call('stats', async () => {
      const stats = JSON.parse(await this.#open('stats').stats())
      const c = this.#config
      stats.autoSave = {
        autoSaveIntervalMs: c.durability === 'flush' ? (c.autoSaveIntervalMs ?? null) : null,
        checkpointIntervalMs: c.checkpointIntervalMs ?? null,
        ...this.#autoSave,
      }
      return stats
    })
  }

  /** Writes ann_metadata.json and payloads.json (the older backend's layout) into `dir`. */
  async exportLegacy(dir) {
    return call('exportLegacy', async () => {
      if (typeof dir !== 'string') {
        throw storeError('INVALID_ARGUMENT', 'exportLegacy', `dir must be a non-empty string, got ${describe(dir)}`, {
          argument: 'dir',
        })
      }
      await this.#open('exportLegacy').exportLegacy(wellFormedPath(dir, 'dir', 'exportLegacy'))
    })
  }

  /**
   * Writes the collection as of this call to `path` (see README, "Export, import and verify").
   * Resolves to `{ path, format, compression, count, bytes }`.
   */
  async export(path, options) {
    return call('export', async () => {
      const o = exportOptions(options)
      const store = this.#open('export')
      const progress = progressRelay(o.onProgress)
      const result = JSON.parse(
        await store.export(checkPath(path, 'export'), o.format, o.compression, filterText(o.filter, 'export'), o.overwrite, progress.callback),
      )
      return progress.settle(result)
    })
  }

  /** Reads an export into the collection, all or nothing. Resolves to `{ count, format, compression }`. */
  async import(path, options) {
    return call('import', async () => {
      const o = transferOptions(options, ['mode', 'onProgress'], 'import')
      const mode = optionOf(o, 'mode', 'string', 'import')
      const store = this.#writable('import')
      const progress = progressRelay(progressOption(o, 'import'))
      const result = JSON.parse(await store.import(checkPath(path, 'import'), mode, progress.callback))
      return progress.settle(result)
    })
  }

  /** Reads and checks every file of the collection, changing nothing. */
  async verify(options) {
    return call('verify', async () => {
      const o = transferOptions(options, ['onProgress'], 'verify')
      const store = this.#open('verify')
      const progress = progressRelay(progressOption(o, 'verify'))
      const result = JSON.parse(await store.verify(progress.callback))
      return progress.settle(result)
    })
  }

  /**
   * Takes a named snapshot of the collection as of this call (README, "Named snapshots and
   * auto-save"). Resolves to `{ id, name, createdAt, sequence, count, bytes, checksum, metadata }`.
   */
  async createSnapshot(name, options) {
    return call('createSnapshot', async () => {
      const operation = 'createSnapshot'
      const key = name === undefined ? undefined : snapshotKey(name, 'name', operation)
      const o = transferOptions(options, ['metadata', 'onProgress'], operation)
      const metadata = metadataText(o.metadata, operation)
      const store = this.#writable(operation)
      const progress = progressRelay(progressOption(o, operation))
      return progress.settle(JSON.parse(await store.createSnapshot(key, metadata, this.#config.maxSnapshots, progress.callback)))
    })
  }

  /** Every named snapshot of the collection, oldest first. */
  async listSnapshots() {
    return call('listSnapshots', async () => JSON.parse(await this.#open('listSnapshots').listSnapshots()))
  }

  /**
   * Verifies the snapshot's checksum, then makes it the collection's state, atomically; writes
   * made after this call apply on top of it. Resolves to the snapshot's description.
   */
  async restoreSnapshot(idOrName, options) {
    return call('restoreSnapshot', async () => {
      const operation = 'restoreSnapshot'
      const key = snapshotKey(idOrName, 'idOrName', operation)
      const o = transferOptions(options, ['onProgress'], operation)
      const store = this.#writable(operation)
      const progress = progressRelay(progressOption(o, operation))
      return progress.settle(JSON.parse(await store.restoreSnapshot(key, progress.callback)))
    })
  }

  /** Deletes a named snapshot; resolves to its description. */
  async deleteSnapshot(idOrName) {
    return call('deleteSnapshot', async () => {
      const key = snapshotKey(idOrName, 'idOrName', 'deleteSnapshot')
      return JSON.parse(await this.#open('deleteSnapshot').deleteSnapshot(key))
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

/** The backend `config.type` names: 'pgvector' is loaded only when asked for (it needs `pg`). */
function storeFor(config) {
  let type
  try {
    type = isPlainObject(config) ? config.type : undefined
  } catch {
    type = undefined
  }
  if (type === 'pgvector') return new (require('./dist/pgvector.js').PgVectorStore)(config)
  return new InMemoryVectorStore(config)
}

class VectorStoreManager {
  #store

  /** @param {import('./index').VectorStoreConfig} config */
  constructor(config) {
    this.#store = storeFor(config)
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
    if (this.#store.getBackendType() !== 'in-memory') return this.#store.getInfo()
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

// The ruvector-extensions API (lib/database-persistence.ts), loaded on first use.
for (const name of ['DatabasePersistence', 'VectorDB']) {
  Object.defineProperty(module.exports, name, {
    enumerable: true,
    get: () => require('./dist/database-persistence.js')[name],
  })
}

// StorageManager (lib/storage, compiled to dist/): loaded on first use, so
// that requiring the vector store does not load the storage layer.
Object.defineProperty(module.exports, 'StorageManager', {
  enumerable: true,
  get: () => require('./dist/storage/index.js').StorageManager,
})

// For the other backends of the same API (dist/pgvector.js): the same argument
// checks and error classes, so every backend refuses the same input the same
// way. Not part of the public API.
Object.defineProperty(module.exports, '__internal', {
  value: Object.freeze({
    native,
    storeError,
    translate,
    call,
    nativeOf,
    progressRelay,
    snapshotKey,
    metadataText,
    checkPath,
    describe,
    isPlainObject,
    readOptions,
    checkKnown,
    optionOf,
    hnswOf,
    checkArray,
    packVectors,
    copyIds,
    payloadsText,
    payloadText,
    filterText,
    toFloat32,
    checkLimit,
    searchOptions,
    isWellFormed,
    DISTANCES,
    DEFAULT_DIMENSION,
    DEFAULT_SEARCH_LIMIT,
    DEFAULT_LIST_LIMIT,
  }),
})

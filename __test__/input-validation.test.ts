// Input rules (issue #12, sections 2–5): bounded per-query options, values rejected instead of
// silently changed, the caller's own exceptions reported as typed input errors (never INTERNAL),
// and what recovery reports about a damaged last WAL record. Every rejection is checked to leave
// the store as it was.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  createPersistentInMemoryStore,
  createVectorStore,
  ErrorCodes,
  VectorStoreError,
  type InMemoryVectorStore,
  type Payload,
  type SearchFilters,
  type Vector,
  type VectorStoreConfig,
} from '../index'
import { damage, diskContents, inChild, rejectionOf, storeHarness, trimWal } from './fixtures'

const stores = storeHarness({ collectionName: 'input' })

/** What a store from `seeded()` holds; `unchanged()` checks it still does. */
const SEED: Array<{ id: string | number; vector: number[]; payload: Payload }> = [
  { id: 'a', vector: [1, 0, 0], payload: { n: 1 } },
  { id: 7, vector: [0, 1, 0], payload: { n: 2, tags: ['x'] } },
  { id: '\uFFFD', vector: [0, 0, 1], payload: { n: 3 } },
]

async function seeded(config: Partial<VectorStoreConfig> = {}): Promise<InMemoryVectorStore> {
  const { store } = await stores.make({ dimension: 3, ...config })
  await store.insert(
    SEED.map((p) => p.vector),
    SEED.map((p) => p.id),
    SEED.map((p) => p.payload),
  )
  return store
}

async function unchanged(store: InMemoryVectorStore): Promise<void> {
  expect(await store.count()).toBe(SEED.length)
  for (const point of SEED) expect(await store.get(point.id)).toEqual(point)
}

async function expectKind(promise: Promise<unknown>, kind: keyof typeof ErrorCodes, operation?: string) {
  const error = await rejectionOf(promise, VectorStoreError)
  expect({ kind: error.kind, code: error.code }).toEqual({ kind, code: ErrorCodes[kind] })
  if (operation) expect(error.operation).toBe(operation)
  return error
}

/** Expects `kind` with the caller's exception as the cause. */
async function expectCause(promise: Promise<unknown>, kind: keyof typeof ErrorCodes, cause: unknown) {
  const error = await expectKind(promise, kind)
  expect(error.cause).toBe(cause)
  return error
}

const as = <T>(value: unknown): T => value as T

/** `{ a: { a: … 1 } }` with `levels` objects in all, or `{ a: [[… 1]] }` with arrays inside. */
function nested(levels: number, arrays = false): Payload {
  let inner: unknown = 1
  for (let i = 1; i < levels; i++) inner = arrays ? [inner] : { a: inner }
  return { a: inner }
}

describe('section 2: per-query search options', () => {
  test.each([0, -1, 1.5, NaN, Infinity, 65537, 1e8, 2 ** 31, '64', null, true])(
    'efSearch %p is INVALID_ARGUMENT, on a graph and on a flat store',
    async (efSearch) => {
      for (const annAlgorithm of ['hnsw', 'flat'] as const) {
        const store = await seeded({ annAlgorithm })
        const error = await expectKind(
          store.search([1, 0, 0], 2, undefined, { efSearch: as<number>(efSearch) }),
          'INVALID_ARGUMENT',
          'search',
        )
        expect(error.message).toMatch(/efSearch/)
        await unchanged(store)
      }
    },
  )

  test('efSearch 1 and 65536 are accepted', async () => {
    const store = await seeded({ annAlgorithm: 'hnsw' })
    await store.waitForIndex()
    for (const efSearch of [1, 65536]) {
      const hits = await store.search([1, 0, 0], 1, undefined, { efSearch })
      expect(hits.map((h) => h.id)).toEqual(['a'])
    }
  })

  test('unknown search options are rejected; undefined ones are ignored', async () => {
    const store = await seeded()
    for (const options of [{ ef: 10 }, { efsearch: 10 }, { efSearch: 10, exact: true }]) {
      const error = await expectKind(store.search([1, 0, 0], 1, undefined, as(options)), 'INVALID_ARGUMENT', 'search')
      expect(error.message).toMatch(/unsupported search option/)
    }
    await expectKind(store.search([1, 0, 0], 1, undefined, as([])), 'INVALID_ARGUMENT')
    await expectKind(store.search([1, 0, 0], 1, undefined, as('fast')), 'INVALID_ARGUMENT')
    expect(await store.search([1, 0, 0], 1, undefined, as({ efSearch: undefined, other: undefined }))).toHaveLength(1)
    expect(await store.search([1, 0, 0], 1, null as unknown as undefined, null as unknown as undefined)).toHaveLength(1)
    await unchanged(store)
  })

  test('a limit far beyond the collection returns every point from the graph', async () => {
    const store = await seeded({ annAlgorithm: 'hnsw' })
    await store.waitForIndex()
    const hits = await store.search([1, 0, 0], 2 ** 32 - 1)
    expect(hits.map((h) => h.id).sort()).toEqual(['\uFFFD', 'a', 7].sort())
    await unchanged(store)
  })
})

describe('section 3: ids and names must be well-formed UTF-16', () => {
  test('a lone surrogate is INVALID_ID in insert, get, update and delete, never an alias of U+FFFD', async () => {
    const store = await seeded()
    for (const bad of ['\uD800', '\uDBFF', '\uDC00', 'x\uD83D', '\uDE00y']) {
      await expectKind(store.insert([[1, 1, 1]], [bad], [{}]), 'INVALID_ID', 'insert')
      await expectKind(store.get(bad), 'INVALID_ID', 'get')
      await expectKind(store.update(bad, [1, 1, 1], {}), 'INVALID_ID', 'update')
      await expectKind(store.delete(bad), 'INVALID_ID', 'delete')
    }
    await unchanged(store)
  })

  test("['\\uD800', '\\uDC00'] in one batch is INVALID_ID, not DUPLICATE_ID", async () => {
    const store = await seeded()
    const error = await expectKind(store.insert([[1, 1, 1], [2, 2, 2]], ['\uD800', '\uDC00'], [{}, {}]), 'INVALID_ID')
    expect(error.details.index).toBe(0)
    // The bad id second: the whole batch is still refused.
    await expectKind(store.insert([[1, 1, 1], [2, 2, 2]], ['fine', '\uDC00'], [{}, {}]), 'INVALID_ID')
    await unchanged(store)
  })

  test('surrogate pairs and a real U+FFFD are ordinary ids', async () => {
    const store = await seeded()
    await store.insert([[1, 2, 3]], ['\uD83D\uDE00'], [{ emoji: '\uD83D\uDE00' }])
    expect(await store.get('\uD83D\uDE00')).toEqual({ id: '\uD83D\uDE00', vector: [1, 2, 3], payload: { emoji: '\uD83D\uDE00' } })
    expect((await store.get('\uFFFD'))?.payload).toEqual({ n: 3 })
    expect(await store.count()).toBe(SEED.length + 1)
  })

  test('a collection name or path with a lone surrogate creates nothing', async () => {
    const root = stores.dir()
    await expectKind(createPersistentInMemoryStore('a\uD800', 3, root), 'INVALID_NAME', 'createVectorStore')
    await expectKind(createVectorStore({ collectionName: '\uDFFFb', dimension: 3, persistencePath: root }), 'INVALID_NAME')
    await expectKind(createPersistentInMemoryStore('ok', 3, join(root, 'p\uD800')), 'INVALID_ARGUMENT')
    expect(diskContents(root)).toEqual({})
    const store = await seeded()
    await expectKind(store.exportLegacy(join(root, 'e\uDC00')), 'INVALID_ARGUMENT', 'exportLegacy')
    expect(diskContents(root)).toEqual({})
  })

  test('payload strings and keys with a lone surrogate are INVALID_PAYLOAD', async () => {
    const store = await seeded()
    for (const payload of [{ s: '\uD800' }, { ['k\uDC00']: 1 }, { list: ['ok', 'a\uD800b'] }]) {
      const error = await expectKind(store.insert([[1, 1, 1]], ['new'], [payload]), 'INVALID_PAYLOAD', 'insert')
      expect(error.message).toMatch(/surrogate/)
      await expectKind(store.update('a', [1, 1, 1], payload), 'INVALID_PAYLOAD', 'update')
    }
    await expectKind(store.search([1, 0, 0], 1, { s: '\uD800' }), 'INVALID_FILTER')
    await unchanged(store)
  })
})

describe('section 3: vector elements must be numbers', () => {
  const valueOfCalls: string[] = []
  const coercible = { valueOf: () => (valueOfCalls.push('valueOf'), 1) }
  test.each([
    ['strings', ['1', '2', '3']],
    ['booleans and null', [true, false, null]],
    ['arrays', [[1], [2], [3]]],
    ['an object with valueOf', [coercible, 0, 0]],
    ['undefined', [undefined, 0, 0]],
    // eslint-disable-next-line no-sparse-arrays
    ['a hole', [1, , 3]],
    ['a bigint', [1n, 0, 0]],
    ['a Number object', [Object(1), 0, 0]],
  ])('%s are INVALID_ARGUMENT in insert, update and search', async (_name, bad) => {
    const store = await seeded()
    const vector = as<number[]>(bad)
    const error = await expectKind(store.insert([[1, 1, 1], vector], ['x', 'y'], [{}, {}]), 'INVALID_ARGUMENT', 'insert')
    expect(error.details).toMatchObject({ argument: 'vectors', index: 1 })
    await expectKind(store.update('a', vector, {}), 'INVALID_ARGUMENT', 'update')
    await expectKind(store.search(vector), 'INVALID_ARGUMENT', 'search')
    expect(valueOfCalls).toEqual([])
    await unchanged(store)
  })

  test.each([
    ['BigInt64Array', () => new BigInt64Array(3)],
    ['BigUint64Array', () => new BigUint64Array([1n, 2n, 3n])],
    ['DataView', () => new DataView(new ArrayBuffer(12))],
  ])('a %s is INVALID_ARGUMENT, not INTERNAL', async (_name, make) => {
    const store = await seeded()
    const vector = as<Vector>(make())
    await expectKind(store.insert([vector], ['x'], [{}]), 'INVALID_ARGUMENT', 'insert')
    await expectKind(store.update('a', vector, {}), 'INVALID_ARGUMENT', 'update')
    await expectKind(store.search(vector), 'INVALID_ARGUMENT', 'search')
    await unchanged(store)
  })

  test('typed arrays of numbers are accepted and rounded to f32', async () => {
    const store = await seeded()
    await store.insert(
      [new Float64Array([0.1, 2, 3]), new Int32Array([-4, 5, 6]), new Uint8Array([7, 8, 255]), new Int8Array([-1, 0, 1])],
      ['f64', 'i32', 'u8', 'i8'],
      [{}, {}, {}, {}],
    )
    // Stored as the f32 nearest 0.1, which reads back as 0.1 (its shortest decimal form).
    expect((await store.get('f64'))?.vector).toEqual([0.1, 2, 3])
    expect((await store.get('i32'))?.vector).toEqual([-4, 5, 6])
    expect((await store.get('u8'))?.vector).toEqual([7, 8, 255])
    expect((await store.get('i8'))?.vector).toEqual([-1, 0, 1])
    await store.update('a', new Float64Array([1, 0, 0]), { n: 1 })
    expect((await store.search(new Int16Array([1, 0, 0]), 1))[0].id).toBe('a')
    expect(await store.count()).toBe(SEED.length + 4)
  })

  test('a vector element whose valueOf throws is INVALID_ARGUMENT and valueOf is never called', async () => {
    const store = await seeded()
    let calls = 0
    const hostile = {
      valueOf() {
        calls++
        throw new Error('valueOf')
      },
    }
    await expectKind(store.insert([as<number[]>([0, hostile, 0])], ['x'], [{}]), 'INVALID_ARGUMENT', 'insert')
    await expectKind(store.search(as<number[]>([hostile, 0, 0])), 'INVALID_ARGUMENT', 'search')
    expect(calls).toBe(0)
    await unchanged(store)
  })
})

describe('section 3: config values', () => {
  const base = () => ({ collectionName: 'cfg', dimension: 3, persistencePath: stores.dir() })

  test.each([
    'type',
    'dimension',
    'distance',
    'maxVectors',
    'persistencePath',
    'annPersistIndex',
    'durability',
    'recovery',
    'compression',
    'checkpointWalBytes',
    'annAlgorithm',
    'annMinDatasetSize',
    'annCloseWaitMs',
    'hnsw',
  ])('%s: null is INVALID_ARGUMENT, not the default', async (key) => {
    const error = await expectKind(createVectorStore(as({ ...base(), [key]: null })), 'INVALID_ARGUMENT', 'createVectorStore')
    expect(error.details.argument).toBe(key)
    expect(error.message).toMatch(/null/)
  })

  test.each(['m', 'efConstruction', 'efSearch', 'quantization'])('hnsw.%s: null is INVALID_ARGUMENT', async (key) => {
    const error = await expectKind(createVectorStore(as({ ...base(), hnsw: { [key]: null } })), 'INVALID_ARGUMENT')
    expect(error.details.argument).toBe(`hnsw.${key}`)
  })

  test('null dimension or path in createPersistentInMemoryStore writes nothing, not even ./data', async () => {
    await stores.inTempCwd(async (cwd) => {
      await expectKind(createPersistentInMemoryStore('cfg', as<number>(null)), 'INVALID_ARGUMENT')
      await expectKind(createPersistentInMemoryStore('cfg', 3, as<string>(null)), 'INVALID_ARGUMENT')
      await expectKind(createVectorStore(as({ collectionName: 'cfg', dimension: 3, persistencePath: null })), 'INVALID_ARGUMENT')
      expect(readdirSync(cwd)).toEqual([])
    })
  })

  test('annCloseWaitMs: 0 to 3600000 whole ms, default 60000; anything else is INVALID_ARGUMENT', async () => {
    expect((await stores.make({ dimension: 3 })).store.getConfig().annCloseWaitMs).toBe(60000)
    expect((await stores.make({ dimension: 3, annCloseWaitMs: 0 })).store.getConfig().annCloseWaitMs).toBe(0)
    for (const value of [-1, 1.5, 3600001, Infinity, '5']) {
      const error = await expectKind(createVectorStore(as({ ...base(), annCloseWaitMs: value })), 'INVALID_ARGUMENT')
      expect(error.details.argument).toBe('annCloseWaitMs')
    }
  })

  test('undefined means the default', async () => {
    const { manager, store } = await stores.make({ dimension: undefined, distance: undefined, hnsw: { efSearch: undefined } })
    expect(store.getDimension()).toBe(1536)
    expect(manager.getInfo().distance).toBe('Cosine')
  })

  test('wrong types are INVALID_ARGUMENT', async () => {
    for (const [key, value] of [
      ['dimension', '3'],
      ['distance', 1],
      ['persistencePath', 5],
      ['persistencePath', ''],
      ['annPersistIndex', 'yes'],
      ['maxVectors', '10'],
    ] as const) {
      const error = await expectKind(createVectorStore(as({ ...base(), [key]: value })), 'INVALID_ARGUMENT')
      expect(error.details.argument).toBe(key)
    }
  })

  test('distance names are matched ignoring ASCII case and reported as Cosine, Dot, Euclidean', async () => {
    for (const [name, canonical] of [
      ['cosine', 'Cosine'],
      ['COSINE', 'Cosine'],
      ['dot', 'Dot'],
      ['eUcLiDeAn', 'Euclidean'],
    ] as const) {
      const { manager, store } = await stores.make({ collectionName: `d-${name}`, distance: as(name) })
      expect(manager.getInfo().distance).toBe(canonical)
      expect(store.getConfig().distance).toBe(canonical)
    }
    for (const bad of ['Cos', 'Cosine ', 'euclid', 'L2', '']) {
      await expectKind(createVectorStore({ ...base(), distance: as(bad) }), 'INVALID_ARGUMENT')
    }
  })

  test('a collection created as Cosine reopens as cosine (same distance, no CONFIG_MISMATCH)', async () => {
    const path = stores.dir()
    const first = await stores.make({ persistencePath: path, distance: 'Cosine' })
    await first.store.insert([[1, 2, 3]], ['p'], [{}])
    await first.manager.disconnect()
    const again = await stores.make({ persistencePath: path, distance: as('cosine') })
    expect((await again.store.get('p'))?.vector).toEqual([1, 2, 3])
  })
})

describe('section 3: payloads are read once and stored as validated', () => {
  test('a getter is called once: valid then undefined stores the valid value', async () => {
    const store = await seeded()
    let reads = 0
    const payload = {
      get n() {
        reads++
        return reads === 1 ? 42 : undefined
      },
    }
    await store.insert([[1, 1, 1]], ['g'], [payload])
    expect(reads).toBe(1)
    expect((await store.get('g'))?.payload).toEqual({ n: 42 })
    // The getter's next (and only) read in this update returns undefined: refused, payload kept.
    await expectKind(store.update('g', [2, 2, 2], payload), 'INVALID_PAYLOAD', 'update')
    expect(reads).toBe(2)
    expect(await store.get('g')).toEqual({ id: 'g', vector: [1, 1, 1], payload: { n: 42 } })
    expect(await store.count()).toBe(SEED.length + 1)
  })

  test('a getter returning undefined on its only read is refused, and the old payload stays', async () => {
    const store = await seeded()
    let reads = 0
    const payload = {
      get n() {
        reads++
        return reads === 1 ? undefined : 1
      },
    }
    await expectKind(store.update('a', [1, 0, 0], payload), 'INVALID_PAYLOAD', 'update')
    expect(reads).toBe(1)
    await unchanged(store)
  })

  test("the payloads array's own toJSON is not what gets stored", async () => {
    const store = await seeded()
    const payloads = Object.assign([{ kept: true }], { toJSON: () => [{ swapped: true }] })
    await store.insert([[1, 1, 1]], ['t'], payloads)
    expect((await store.get('t'))?.payload).toEqual({ kept: true })
  })

  test('toJSON inside a payload is refused, not called', async () => {
    const store = await seeded()
    let called = false
    const payload = {
      x: 1,
      toJSON() {
        called = true
        return { x: 2 }
      },
    }
    await expectKind(store.insert([[1, 1, 1]], ['t'], [payload]), 'INVALID_PAYLOAD')
    expect(called).toBe(false)
    await unchanged(store)
  })

  test('a Proxy payload is read once per key and stored as read', async () => {
    const store = await seeded()
    const gets: string[] = []
    let flip = 0
    const payload = new Proxy(
      { a: 1, b: 'two' },
      {
        get(target, key, receiver) {
          gets.push(String(key))
          if (key === 'a') return ++flip
          return Reflect.get(target, key, receiver)
        },
      },
    )
    await store.insert([[1, 1, 1]], ['p'], [payload])
    expect(gets).toEqual(['a', 'b'])
    expect((await store.get('p'))?.payload).toEqual({ a: 1, b: 'two' })
  })
})

describe("section 4: the caller's exceptions are typed input errors with their cause", () => {
  const boom = new Error('boom')
  const thrower = () => {
    throw boom
  }

  test('a payload getter that throws is INVALID_PAYLOAD', async () => {
    const store = await seeded()
    const payload = { ok: 1, nested: { get bad() { return thrower() } } }
    const error = await expectCause(store.insert([[1, 1, 1]], ['x'], [payload]), 'INVALID_PAYLOAD', boom)
    expect(error.message).toMatch(/payload\.nested\.bad/)
    expect(error.details.index).toBe(0)
    await expectCause(store.update('a', [1, 1, 1], payload), 'INVALID_PAYLOAD', boom)
    await unchanged(store)
  })

  test('a filter getter that throws is INVALID_FILTER in search and list', async () => {
    const store = await seeded()
    const filter = as<SearchFilters>({ get n() { return thrower() } })
    await expectCause(store.search([1, 0, 0], 1, filter), 'INVALID_FILTER', boom)
    await expectCause(store.list(filter), 'INVALID_FILTER', boom)
    await unchanged(store)
  })

  test('Proxies that throw, in every argument, are typed errors of that argument', async () => {
    const store = await seeded()
    const hostile = <T extends object>(target: T) =>
      new Proxy(target, { get: thrower, ownKeys: thrower, getPrototypeOf: thrower, has: thrower })
    await expectCause(store.insert(hostile([[1, 1, 1]]), ['x'], [{}]), 'INVALID_ARGUMENT', boom)
    await expectCause(store.insert([hostile([1, 1, 1])], ['x'], [{}]), 'INVALID_ARGUMENT', boom)
    await expectCause(store.insert([[1, 1, 1]], hostile(['x']), [{}]), 'INVALID_ID', boom)
    await expectCause(store.insert([[1, 1, 1]], ['x'], hostile([{}])), 'INVALID_PAYLOAD', boom)
    await expectCause(store.insert([[1, 1, 1]], ['x'], [hostile({})]), 'INVALID_PAYLOAD', boom)
    await expectCause(store.update('a', hostile([1, 1, 1]), {}), 'INVALID_ARGUMENT', boom)
    await expectCause(store.update('a', [1, 1, 1], hostile({})), 'INVALID_PAYLOAD', boom)
    await expectCause(store.search(hostile([1, 1, 1])), 'INVALID_ARGUMENT', boom)
    await expectCause(store.search([1, 1, 1], 1, hostile({})), 'INVALID_FILTER', boom)
    await expectCause(store.search([1, 1, 1], 1, undefined, hostile({})), 'INVALID_ARGUMENT', boom)
    await expectCause(store.list(hostile({})), 'INVALID_FILTER', boom)
    await unchanged(store)
  })

  test('a revoked Proxy is a typed error too', async () => {
    const store = await seeded()
    const revoked = () => {
      const { proxy, revoke } = Proxy.revocable({}, {})
      revoke()
      return proxy
    }
    await expectKind(store.insert([[1, 1, 1]], ['x'], [revoked()]), 'INVALID_PAYLOAD')
    await expectKind(store.insert(as(revoked()), ['x'], [{}]), 'INVALID_ARGUMENT')
    await expectKind(store.search([1, 1, 1], 1, as(revoked())), 'INVALID_FILTER')
    await unchanged(store)
  })

  test('a config getter or Proxy that throws is INVALID_ARGUMENT, not a plain Error', async () => {
    const path = stores.dir()
    await expectCause(createVectorStore(as({ collectionName: 'c', persistencePath: path, get dimension() { return thrower() } })), 'INVALID_ARGUMENT', boom)
    await expectCause(createVectorStore(as({ collectionName: 'c', persistencePath: path, hnsw: { get m() { return thrower() } } })), 'INVALID_ARGUMENT', boom)
    await expectCause(createVectorStore(as(new Proxy({ collectionName: 'c' }, { ownKeys: thrower }))), 'INVALID_ARGUMENT', boom)
    expect(diskContents(path)).toEqual({})
  })

  test.each([
    ['objects', false],
    ['arrays', true],
  ])('payloads and filters nested 5,000 deep (%s) are rejected, not a stack overflow', async (_name, arrays) => {
    const store = await seeded()
    const deep = nested(5000, arrays)
    const error = await expectKind(store.insert([[1, 1, 1]], ['x'], [deep]), 'INVALID_PAYLOAD', 'insert')
    expect(error.message).toMatch(/64 levels/)
    await expectKind(store.update('a', [1, 1, 1], deep), 'INVALID_PAYLOAD', 'update')
    await expectKind(store.search([1, 1, 1], 1, as(deep)), 'INVALID_FILTER', 'search')
    await expectKind(store.list(as(deep)), 'INVALID_FILTER', 'list')
    await unchanged(store)
  })

  test('64 levels are accepted by the façade and the core, and survive a reopen; 65 are not', async () => {
    const store = await seeded()
    for (const arrays of [false, true]) {
      await expectKind(store.insert([[1, 1, 1]], ['too-deep'], [nested(65, arrays)]), 'INVALID_PAYLOAD')
      await expectKind(store.search([1, 1, 1], 1, as(nested(65, arrays))), 'INVALID_FILTER')
    }
    await unchanged(store)
    await store.insert([[1, 1, 1], [2, 2, 2]], ['deep-o', 'deep-a'], [nested(64), nested(64, true)])
    await store.update('a', [1, 0, 0], nested(64))
    await store.disconnect()
    await store.connect()
    expect((await store.get('deep-o'))?.payload).toEqual(nested(64))
    expect((await store.get('deep-a'))?.payload).toEqual(nested(64, true))
    expect((await store.get('a'))?.payload).toEqual(nested(64))
  })

  test("a 64-level payload survives a WAL replay and the older backend's layout (export, import)", async () => {
    const path = stores.dir()
    inChild(path, "let p = 1; for (let i = 1; i < 64; i++) p = { a: p }; await store.insert([[1, 2, 3]], ['deep'], [{ a: p }])")
    const { store } = await stores.make({ collectionName: 'docs', dimension: 3, persistencePath: path })
    expect((await store.stats()).replayedRecords).toBe(1)
    expect((await store.get('deep'))?.payload).toEqual(nested(64))
    const legacy = stores.dir()
    await store.exportLegacy(legacy)
    const imported = await stores.make({ collectionName: 'imported', dimension: 3, persistencePath: legacy })
    expect(await imported.store.get('deep')).toEqual({ id: 'deep', vector: [1, 2, 3], payload: nested(64) })
  })

  test('a circular payload is INVALID_PAYLOAD naming the cycle', async () => {
    const store = await seeded()
    const cycle: Record<string, unknown> = { x: 1 }
    cycle.self = { back: cycle }
    const error = await expectKind(store.insert([[1, 1, 1]], ['c'], [cycle]), 'INVALID_PAYLOAD')
    expect(error.message).toMatch(/circular/)
    await unchanged(store)
  })
})

describe('section 5: a damaged last WAL record', () => {
  /** Three points written by a process that exits without a checkpoint; `change` edits the WAL. */
  async function reopenAfter(change: (dir: string) => void) {
    const path = stores.dir()
    inChild(path, "for (const id of ['p1', 'p2', 'p3']) await store.insert([[1, 2, 3]], [id], [{ id }])")
    change(join(path, 'docs'))
    const { store } = await stores.make({ collectionName: 'docs', dimension: 3, persistencePath: path })
    return { store, stats: await store.stats() }
  }

  test('an intact WAL reports no torn tail', async () => {
    const { store, stats } = await reopenAfter(() => {})
    expect(await store.count()).toBe(3)
    expect(stats.tornBytes).toBe(0)
    expect(stats.tornTail).toBeNull()
  })

  test("a bit flip inside the last complete record: dropped in 'strict' mode, and reported as damaged", async () => {
    let walName = ''
    const { store, stats } = await reopenAfter((dir) => {
      trimWal(dir)
      walName = damage(dir, 'wal-', (length) => length - 2)
    })
    expect(await store.count()).toBe(2)
    expect(await store.get('p3')).toBeNull()
    expect(stats.tornBytes).toBeGreaterThan(0)
    expect(stats.tornTail).toMatchObject({ kind: 'damaged', reason: expect.stringMatching(/checksum/) })
    expect(stats.tornTail?.file.endsWith(walName)).toBe(true)
    expect(stats.tornTail?.offset).toBeGreaterThan(0)
  })

  test('a last record cut short is reported as incomplete', async () => {
    const { store, stats } = await reopenAfter((dir) => {
      const name = readdirSync(dir).find((f) => f.startsWith('wal-'))
      if (!name) throw new Error('no WAL')
      trimWal(join(dir, name))
      const bytes = readFileSync(join(dir, name))
      writeFileSync(join(dir, name), bytes.subarray(0, bytes.length - 3))
    })
    expect(await store.count()).toBe(2)
    expect(stats.tornBytes).toBeGreaterThan(0)
    expect(stats.tornTail?.kind).toBe('incomplete')
    expect(existsSync(stats.tornTail?.file ?? '')).toBe(true)
  })
})

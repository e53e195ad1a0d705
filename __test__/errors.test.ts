import {
  createPersistentInMemoryStore,
  createVectorStore,
  ErrorCodes,
  PersistenceError,
  VectorDimensionError,
  VectorStoreError,
  type InMemoryVectorStore,
  type VectorStoreHandle,
} from '../index'
import { rejectionOf, tempDirs } from './fixtures'

const dirs = tempDirs()
const open: VectorStoreHandle[] = []

afterEach(async () => {
  for (const { manager } of open.splice(0)) await manager.disconnect()
  dirs.cleanup()
})

/** A store holding one known point, to prove that failed calls change nothing. */
async function seeded(): Promise<InMemoryVectorStore> {
  const handle = await createPersistentInMemoryStore('errors', 3, dirs.next())
  open.push(handle)
  await handle.store.insert([[1, 2, 3]], ['seed'], [{ v: 1 }])
  return handle.store
}

async function unchanged(store: InMemoryVectorStore): Promise<void> {
  expect(await store.list()).toEqual([[{ id: 'seed', payload: { v: 1 } }], 1])
  expect((await store.get('seed'))?.vector).toEqual([1, 2, 3])
}

function rejection(promise: Promise<unknown>): Promise<VectorStoreError> {
  return rejectionOf(promise, VectorStoreError)
}

async function expectKind(promise: Promise<unknown>, kind: keyof typeof ErrorCodes, operation?: string) {
  const error = await rejection(promise)
  expect(error.kind).toBe(kind)
  expect(error.code).toBe(ErrorCodes[kind])
  if (operation) expect(error.operation).toBe(operation)
  expect(error.message.length).toBeGreaterThan(10)
  return error
}

describe('error classes', () => {
  test('codes are stable numbers', () => {
    expect(ErrorCodes).toMatchObject({
      DIMENSION_MISMATCH: 1001,
      NON_FINITE_VALUE: 1002,
      LENGTH_MISMATCH: 1003,
      INVALID_ID: 1004,
      DUPLICATE_ID: 1005,
      INVALID_PAYLOAD: 1006,
      INVALID_FILTER: 1007,
      INVALID_ARGUMENT: 1008,
      CAPACITY_EXCEEDED: 1009,
      INVALID_NAME: 1010,
      NOT_FOUND: 1011,
      CLOSED: 1012,
    })
  })

  test('classes can be constructed and keep their fields', () => {
    const dim = new VectorDimensionError(1536, 3, 'insert')
    expect(dim).toBeInstanceOf(VectorStoreError)
    expect(dim).toBeInstanceOf(Error)
    expect(dim.name).toBe('VectorDimensionError')
    expect([dim.expectedDimension, dim.actualDimension, dim.operation]).toEqual([1536, 3, 'insert'])
    const persistence = new PersistenceError('disk full', 5002, { file: 'x' })
    expect(persistence).toBeInstanceOf(VectorStoreError)
    expect([persistence.name, persistence.code, persistence.details]).toEqual(['PersistenceError', 5002, { file: 'x' }])
    const plain = new VectorStoreError('boom', 'search')
    expect([plain.name, plain.operation]).toEqual(['VectorStoreError', 'search'])
  })
})

describe('wrong dimension', () => {
  test('insert, update and search reject with VectorDimensionError', async () => {
    const store = await seeded()
    for (const [operation, call] of [
      ['insert', store.insert([[1, 2, 3], [1, 2]], ['a', 'b'], [{}, {}])],
      ['update', store.update('seed', [1, 2, 3, 4], {})],
      ['search', store.search([1, 2])],
    ] as const) {
      const error = await rejection(call)
      expect(error).toBeInstanceOf(VectorDimensionError)
      const dim = error as VectorDimensionError
      expect(dim.expectedDimension).toBe(3)
      expect(dim.actualDimension).toBe(operation === 'update' ? 4 : 2)
      expect(dim.operation).toBe(operation)
      expect(dim.code).toBe(1001)
    }
    await unchanged(store)
  })
})

describe('bad vectors', () => {
  test.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['beyond f32', 1e39],
  ])('%s is rejected in insert, update and search', async (_name, bad) => {
    const store = await seeded()
    await expectKind(store.insert([[1, 2, 3], [1, bad, 3]], ['a', 'b'], [{}, {}]), 'NON_FINITE_VALUE', 'insert')
    await expectKind(store.update('seed', [bad, 0, 0], {}), 'NON_FINITE_VALUE', 'update')
    await expectKind(store.search([0, 0, bad]), 'NON_FINITE_VALUE', 'search')
    await unchanged(store)
  })

  test('a vector that is not an array is rejected', async () => {
    const store = await seeded()
    await expectKind(store.insert(['1,2,3' as unknown as number[]], ['a'], [{}]), 'INVALID_ARGUMENT', 'insert')
    await expectKind(store.search({ 0: 1 } as unknown as number[]), 'INVALID_ARGUMENT', 'search')
    await expectKind(store.insert({} as unknown as number[][], ['a'], [{}]), 'INVALID_ARGUMENT', 'insert')
    await unchanged(store)
  })
})

describe('batches', () => {
  test('mismatched lengths reject the whole batch', async () => {
    const store = await seeded()
    const error = await expectKind(store.insert([[1, 1, 1], [2, 2, 2]], ['a'], [{}, {}]), 'LENGTH_MISMATCH', 'insert')
    expect(error.details).toEqual({ vectors: 2, ids: 1, payloads: 2 })
    await expectKind(store.insert([[1, 1, 1]], ['a'], [{}, {}]), 'LENGTH_MISMATCH')
    await unchanged(store)
  })

  test('duplicate ids inside one batch reject the whole batch', async () => {
    const store = await seeded()
    await expectKind(store.insert([[1, 1, 1], [2, 2, 2], [3, 3, 3]], ['a', 'b', 'a'], [{}, {}, {}]), 'DUPLICATE_ID')
    await unchanged(store)
  })
})

describe('ids', () => {
  test.each([
    ['empty string', ''],
    ['over 512 bytes', 'x'.repeat(513)],
    ['fractional number', 1.5],
    ['NaN', NaN],
    ['unsafe integer', 2 ** 53],
    ['boolean', true],
    ['null', null],
    ['object', { id: 1 }],
  ])('%s is rejected', async (_name, bad) => {
    const store = await seeded()
    const id = bad as unknown as string
    await expectKind(store.insert([[1, 1, 1]], [id], [{}]), 'INVALID_ID', 'insert')
    await expectKind(store.get(id), 'INVALID_ID', 'get')
    await expectKind(store.update(id, [1, 1, 1], {}), 'INVALID_ID', 'update')
    await expectKind(store.delete(id), 'INVALID_ID', 'delete')
    await unchanged(store)
  })

  test('a 512-byte id is accepted', async () => {
    const store = await seeded()
    const id = 'é'.repeat(256)
    await store.insert([[1, 1, 1]], [id], [{}])
    expect((await store.get(id))?.id).toBe(id)
  })

  test('update of a missing id is NOT_FOUND', async () => {
    const store = await seeded()
    await expectKind(store.update('nope', [1, 1, 1], {}), 'NOT_FOUND', 'update')
    await unchanged(store)
  })
})

describe('payloads', () => {
  class Custom {
    x = 1
  }
  const circular: Record<string, unknown> = {}
  circular.self = circular

  test.each([
    ['null', null],
    ['an array', [1]],
    ['a string', 'x'],
    ['a class instance', new Custom()],
    ['a Date inside', { when: new Date() }],
    ['a Map inside', { m: new Map() }],
    ['undefined inside', { u: undefined }],
    ['a function inside', { f: () => 1 }],
    ['a symbol inside', { s: Symbol('s') }],
    ['a bigint inside', { b: BigInt(1) }],
    ['NaN inside', { n: NaN }],
    ['Infinity deep inside', { a: [{ b: Infinity }] }],
    ['a cycle', circular],
  ])('%s is rejected', async (_name, bad) => {
    const store = await seeded()
    const payload = bad as Record<string, unknown>
    await expectKind(store.insert([[1, 1, 1]], ['new'], [payload]), 'INVALID_PAYLOAD', 'insert')
    await expectKind(store.update('seed', [9, 9, 9], payload), 'INVALID_PAYLOAD', 'update')
    await unchanged(store)
  })

  test('payloads must be an array', async () => {
    const store = await seeded()
    await expectKind(store.insert([[1, 1, 1]], ['a'], undefined as unknown as []), 'INVALID_ARGUMENT')
    await unchanged(store)
  })
})

describe('limits and filters', () => {
  test.each([0, -1, 2.5, NaN, Infinity, '5'])('limit %p is rejected', async (bad) => {
    const store = await seeded()
    const limit = bad as number
    await expectKind(store.search([1, 1, 1], limit), 'INVALID_ARGUMENT', 'search')
    await expectKind(store.list(undefined, limit), 'INVALID_ARGUMENT', 'list')
  })

  test.each([
    ['an array clause', { tags: ['a', 'b'] }],
    ['null clause', { kind: null }],
    ['unknown operator', { year: { between: [1, 2] } }],
    ['non-numeric range', { year: { gte: '2000' } }],
    ['any that is not a list', { kind: { any: 'doc' } }],
    ['undefined clause', { kind: undefined }],
    ['a string filter', 'kind=doc'],
  ])('%s is rejected', async (_name, bad) => {
    const store = await seeded()
    const filters = bad as unknown as Record<string, string>
    await expectKind(store.search([1, 1, 1], 5, filters), 'INVALID_FILTER', 'search')
    await expectKind(store.list(filters), 'INVALID_FILTER', 'list')
  })
})

describe('configuration', () => {
  test.each([
    ['empty', ''],
    ['parent reference', '..'],
    ['path traversal', '../escape'],
    ['separator', 'a/b'],
    ['backslash', 'a\\b'],
    ['too long', 'n'.repeat(129)],
  ])('collection name: %s is rejected', async (_name, name) => {
    await expectKind(createPersistentInMemoryStore(name, 3, dirs.next()), 'INVALID_NAME')
  })

  test.each([0, -3, 1.5, 70000])('dimension %p is rejected', async (dimension) => {
    await expectKind(createPersistentInMemoryStore('ok', dimension, dirs.next()), 'INVALID_ARGUMENT')
  })

  test('unknown options, backends and distances are rejected', async () => {
    const base = { collectionName: 'ok', dimension: 3, persistencePath: dirs.next() }
    await expectKind(createVectorStore({ ...base, distance: 'Manhattan' as 'Dot' }), 'INVALID_ARGUMENT')
    await expectKind(createVectorStore({ ...base, type: 'qdrant' as 'in-memory' }), 'INVALID_ARGUMENT')
    await expectKind(createVectorStore({ ...base, maxVectors: 0 }), 'INVALID_ARGUMENT')
    await expectKind(createVectorStore({ ...base, ...({ annIndexType: 'ivf' } as object) }), 'INVALID_ARGUMENT')
    // faiss is not built in: asking for it is an error, not a silent fallback.
    await expectKind(createVectorStore({ ...base, annAlgorithm: 'faiss' as 'hnsw' }), 'INVALID_ARGUMENT')
  })
})

describe('after disconnect', () => {
  test('every data call rejects with CLOSED', async () => {
    const store = await seeded()
    await store.disconnect()
    await expectKind(store.insert([[1, 1, 1]], ['a'], [{}]), 'CLOSED', 'insert')
    await expectKind(store.search([1, 1, 1]), 'CLOSED', 'search')
    await expectKind(store.get('seed'), 'CLOSED', 'get')
    await expectKind(store.update('seed', [1, 1, 1], {}), 'CLOSED', 'update')
    await expectKind(store.delete('seed'), 'CLOSED', 'delete')
    await expectKind(store.list(), 'CLOSED', 'list')
    await expectKind(store.deleteCollection(), 'CLOSED', 'deleteCollection')
    await expectKind(store.count(), 'CLOSED', 'count')
    await store.connect()
    await unchanged(store)
  })

  test('a write issued before disconnect resolves; one issued after rejects', async () => {
    const store = await seeded()
    const before = store.insert([[4, 4, 4]], ['before'], [{}])
    const closing = store.disconnect()
    const after = store.insert([[5, 5, 5]], ['after'], [{}])
    await before
    await closing
    await expectKind(after, 'CLOSED', 'insert')
    await store.connect()
    expect(await store.get('before')).not.toBeNull()
    expect(await store.get('after')).toBeNull()
  })
})

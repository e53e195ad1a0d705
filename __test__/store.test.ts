import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createPersistentInMemoryStore, InMemoryVectorStore, type SearchResult, type VectorStoreConfig } from '../index'
import { cosine, randomVectors, selectedIds, storeHarness } from './fixtures'

const stores = storeHarness({ type: 'in-memory', collectionName: 'test' })
const make = (dimension = 4, extra: Partial<VectorStoreConfig> = {}) => stores.make({ dimension, ...extra })

describe('factories and manager', () => {
  test('createPersistentInMemoryStore defaults to 1536 dimensions and ./data/vector-storage', async () => {
    await stores.inTempCwd(async (cwd) => {
      const { manager, store } = stores.track(await createPersistentInMemoryStore('defaults'))
      expect(store.getDimension()).toBe(1536)
      expect(store.getCollectionName()).toBe('defaults')
      expect(store.getBackendType()).toBe('in-memory')
      expect(store.isConnected()).toBe(true)
      expect(manager.getStore()).toBe(store)
      expect(manager.getInfo()).toEqual({
        type: 'in-memory',
        collectionName: 'defaults',
        dimension: 1536,
        distance: 'Cosine',
        maxVectors: null,
        persistencePath: './data/vector-storage',
        persistent: true,
        durability: 'fsync',
        annAlgorithm: 'auto',
        connected: true,
      })
      expect(existsSync(join(cwd, 'data', 'vector-storage', 'defaults', 'MANIFEST'))).toBe(true)
    })
  })

  test('createPersistentInMemoryStore takes dimension and path', async () => {
    const path = stores.dir()
    const handle = stores.track(await createPersistentInMemoryStore('sized', 8, path))
    expect(handle.store.getDimension()).toBe(8)
    expect(handle.manager.getInfo().persistencePath).toBe(path)
  })

  test('healthCheck reports the count while connected and unhealthy after disconnect', async () => {
    const { manager, store } = await make()
    await store.insert([[1, 0, 0, 0]], ['a'], [{}])
    expect(await manager.healthCheck()).toEqual({ healthy: true, connected: true, vectorCount: 1, error: null })
    await manager.disconnect()
    expect(store.isConnected()).toBe(false)
    expect(manager.getInfo().connected).toBe(false)
    const health = await manager.healthCheck()
    expect(health.healthy).toBe(false)
    expect(health.connected).toBe(false)
  })

  test('a store made with new needs connect() and can connect twice', async () => {
    await stores.inTempCwd(async (cwd) => {
      const store = new InMemoryVectorStore({ collectionName: 'manual', dimension: 2 })
      try {
        expect(store.isConnected()).toBe(false)
        await Promise.all([store.connect(), store.connect()])
        expect(store.isConnected()).toBe(true)
        await store.insert([[1, 2]], [1], [{}])
        expect(await store.count()).toBe(1)
        await store.disconnect()
        expect(existsSync(join(cwd, 'data', 'vector-storage', 'manual', 'MANIFEST'))).toBe(true)
      } finally {
        await store.disconnect() // a second disconnect is harmless
      }
    })
  })

  test('disconnect then connect keeps the data of the same store object', async () => {
    const { store } = await make()
    await store.insert([[1, 0, 0, 0]], ['kept'], [{ v: 1 }])
    await store.disconnect()
    await store.connect()
    expect(await store.get('kept')).toEqual({ id: 'kept', vector: [1, 0, 0, 0], payload: { v: 1 } })
  })

  test('two stores in one process are independent', async () => {
    const a = await make(2, { collectionName: 'alpha' })
    const b = await make(3, { collectionName: 'beta' })
    await a.store.insert([[1, 0]], ['x'], [{ from: 'a' }])
    await b.store.insert([[0, 0, 1]], ['x'], [{ from: 'b' }])
    expect((await a.store.get('x'))?.payload).toEqual({ from: 'a' })
    expect((await b.store.get('x'))?.payload).toEqual({ from: 'b' })
    await a.store.deleteCollection()
    expect(await a.store.count()).toBe(0)
    expect(await b.store.count()).toBe(1)
  })
})

describe('store methods', () => {
  test('insert, get, update, delete round trip keeps id types', async () => {
    const { store } = await make()
    await store.insert(
      [
        [1, 0, 0, 0],
        new Float32Array([0, 1, 0, 0]),
      ],
      [7, '7'],
      [{ kind: 'number' }, { kind: 'string', nested: { list: [1, 'two', null, true] } }],
    )
    const asNumber = await store.get(7)
    const asString = await store.get('7')
    expect(asNumber).toEqual({ id: 7, vector: [1, 0, 0, 0], payload: { kind: 'number' } })
    expect(asString).toEqual({
      id: '7',
      vector: [0, 1, 0, 0],
      payload: { kind: 'string', nested: { list: [1, 'two', null, true] } },
    })
    expect(typeof asNumber?.id).toBe('number')
    expect(typeof asString?.id).toBe('string')

    await store.update(7, [0, 0, 1, 0], { kind: 'updated' })
    expect(await store.get(7)).toEqual({ id: 7, vector: [0, 0, 1, 0], payload: { kind: 'updated' } })

    await store.delete(7)
    expect(await store.get(7)).toBeNull()
    await store.delete(7) // deleting a missing id is not an error
    expect(await store.count()).toBe(1)
  })

  test('insert of an existing id overwrites it', async () => {
    const { store } = await make()
    await store.insert([[1, 0, 0, 0]], ['a'], [{ v: 1 }])
    await store.insert([[0, 1, 0, 0]], ['a'], [{ v: 2 }])
    expect(await store.count()).toBe(1)
    expect(await store.get('a')).toEqual({ id: 'a', vector: [0, 1, 0, 0], payload: { v: 2 } })
  })

  test('payload key order and values survive the round trip', async () => {
    const { store } = await make()
    const payload = { z: 1, a: 'x', m: [3, 2, 1], unicode: 'héllo ✓', big: 1e300, neg: -0.5 }
    await store.insert([[1, 1, 1, 1]], ['p'], [payload])
    const got = await store.get('p')
    expect(got?.payload).toEqual(payload)
    expect(Object.keys(got?.payload ?? {})).toEqual(Object.keys(payload))
  })

  test('search returns id, score and payload, best first, default limit 10', async () => {
    const { store } = await make(8)
    const vectors = randomVectors(50, 8, 3)
    await store.insert(
      vectors,
      vectors.map((_, i) => i),
      vectors.map((_, i) => ({ i })),
    )
    const query = randomVectors(1, 8, 99)[0]
    const results = await store.search(query)
    expect(results).toHaveLength(10)
    const expected = vectors
      .map((v, i) => ({ i, s: cosine(query, v) }))
      .sort((x, y) => y.s - x.s)
      .slice(0, 10)
    expect(results.map((r) => r.id)).toEqual(expected.map((e) => e.i))
    results.forEach((r, k) => {
      expect(r.score).toBeCloseTo(expected[k].s, 5)
      expect(r.payload).toEqual({ i: r.id })
    })
    expect(await store.search(query, 3)).toHaveLength(3)
    expect(await store.search(query, 500)).toHaveLength(50)
  })

  test('search on an empty store returns nothing', async () => {
    const { store } = await make()
    expect(await store.search([1, 2, 3, 4])).toEqual([])
  })

  test('unawaited writes apply in call order', async () => {
    const { store } = await make()
    const pending = [
      store.insert([[1, 0, 0, 0]], ['x'], [{ step: 1 }]),
      store.update('x', [0, 1, 0, 0], { step: 2 }),
      store.delete('x'),
      store.insert([[0, 0, 1, 0]], ['x'], [{ step: 4 }]),
    ]
    await Promise.all(pending)
    expect(await store.get('x')).toEqual({ id: 'x', vector: [0, 0, 1, 0], payload: { step: 4 } })
  })

  test('list pages in id order and returns the total', async () => {
    const { store } = await make(2)
    await store.insert(
      [
        [1, 0],
        [1, 0],
        [1, 0],
        [1, 0],
      ],
      ['b', 2, 'a', 1],
      [{ g: 'x' }, { g: 'y' }, { g: 'x' }, { g: 'x' }],
    )
    const [all, total] = await store.list()
    expect(total).toBe(4)
    expect(all.map((r) => r.id)).toEqual([1, 2, 'a', 'b'])
    const [page, matching] = await store.list({ g: 'x' }, 2)
    expect(matching).toBe(3)
    expect(page).toEqual([
      { id: 1, payload: { g: 'x' } },
      { id: 'a', payload: { g: 'x' } },
    ])
  })

  test('deleteCollection empties the store and keeps it usable', async () => {
    const { store } = await make(2)
    await store.insert([[1, 0]], [1], [{}])
    await store.deleteCollection()
    expect(await store.count()).toBe(0)
    expect(await store.list()).toEqual([[], 0])
    await store.insert([[0, 1]], [2], [{}])
    expect(await store.count()).toBe(1)
  })
})

describe('distances', () => {
  const points = [
    [1, 0],
    [3, 4],
    [-1, -1],
  ]

  async function ranked(distance: 'Cosine' | 'Dot' | 'Euclidean', query: number[]): Promise<SearchResult[]> {
    const { store } = await make(2, { distance })
    await store.insert(points, ['a', 'b', 'c'], [{}, {}, {}])
    return store.search(query, 3)
  }

  test('Cosine scores are cosine similarities', async () => {
    const r = await ranked('Cosine', [1, 0])
    expect(r.map((x) => x.id)).toEqual(['a', 'b', 'c'])
    expect(r[0].score).toBeCloseTo(1, 6)
    expect(r[1].score).toBeCloseTo(0.6, 6)
    expect(r[2].score).toBeCloseTo(-Math.SQRT1_2, 6)
  })

  test('Dot scores are dot products', async () => {
    const r = await ranked('Dot', [1, 1])
    expect(r.map((x) => [x.id, x.score])).toEqual([
      ['b', 7],
      ['a', 1],
      ['c', -2],
    ])
  })

  test('Euclidean scores are 1 / (1 + distance)', async () => {
    const r = await ranked('Euclidean', [3, 0])
    expect(r.map((x) => x.id)).toEqual(['a', 'b', 'c'])
    expect(r[0].score).toBeCloseTo(1 / 3, 6)
    expect(r[1].score).toBeCloseTo(1 / 5, 6)
    expect(r[2].score).toBeCloseTo(1 / (1 + Math.hypot(4, 1)), 6)
  })
})

describe('filters', () => {
  async function library() {
    const { store } = await make(2)
    const docs = [
      { kind: 'doc', year: 1999, tags: ['rust', 'db'], public: true },
      { kind: 'doc', year: 2005, tags: ['node'], public: false },
      { kind: 'img', year: 2010, tags: ['rust'], public: true },
      { kind: 'doc', year: 2021, tags: ['rust', 'node', 'db'], public: true },
      { kind: 'note', year: 2021, public: false },
    ]
    await store.insert(
      docs.map((_, i) => [1, i / 10]),
      docs.map((_, i) => i),
      docs,
    )
    return store
  }

  async function ids(filters: Parameters<InMemoryVectorStore['list']>[0]): Promise<unknown[]> {
    return selectedIds(await library(), filters ?? {})
  }

  test('equality on strings, numbers and booleans', async () => {
    expect(await ids({ kind: 'doc' })).toEqual([0, 1, 3])
    expect(await ids({ year: 2021 })).toEqual([3, 4])
    expect(await ids({ public: false })).toEqual([1, 4])
    expect(await ids({ kind: 'doc', public: true })).toEqual([0, 3])
  })

  test('equality against an array field matches members', async () => {
    expect(await ids({ tags: 'node' })).toEqual([1, 3])
  })

  test('ranges', async () => {
    expect(await ids({ year: { gte: 2005, lt: 2021 } })).toEqual([1, 2])
    expect(await ids({ year: { gt: 2010 } })).toEqual([3, 4])
    expect(await ids({ year: { lte: 1999 } })).toEqual([0])
  })

  test('any and all', async () => {
    expect(await ids({ kind: { any: ['img', 'note'] } })).toEqual([2, 4])
    expect(await ids({ tags: { any: ['db', 'node'] } })).toEqual([0, 1, 3])
    expect(await ids({ tags: { all: ['rust', 'db'] } })).toEqual([0, 3])
    expect(await ids({ tags: { all: ['rust', 'db', 'node'] } })).toEqual([3])
  })

  test('a missing field matches nothing', async () => {
    expect(await ids({ missing: 'x' })).toEqual([])
    expect(await ids({ tags: { any: ['rust'] }, kind: 'note' })).toEqual([])
  })

  test('filtered search returns the true top-k among matching points', async () => {
    const { store } = await make(16)
    const vectors = randomVectors(2000, 16, 5)
    await store.insert(
      vectors,
      vectors.map((_, i) => i),
      vectors.map((_, i) => ({ bucket: i % 100 })),
    )
    const query = randomVectors(1, 16, 77)[0]
    // 1% of points match: the result must still be the full, exact top 10.
    const results = await store.search(query, 10, { bucket: 42 })
    const expected = vectors
      .map((v, i) => ({ i, s: cosine(query, v) }))
      .filter((e) => e.i % 100 === 42)
      .sort((x, y) => y.s - x.s)
      .slice(0, 10)
    expect(results.map((r) => r.id)).toEqual(expected.map((e) => e.i))
  })
})

describe('maxVectors', () => {
  test('an insert past maxVectors is rejected whole; overwrites need no room', async () => {
    const { store } = await make(2, { maxVectors: 3 })
    await store.insert(
      [
        [1, 0],
        [0, 1],
      ],
      [1, 2],
      [{}, {}],
    )
    await expect(
      store.insert(
        [
          [1, 1],
          [2, 2],
        ],
        [3, 4],
        [{}, {}],
      ),
    ).rejects.toMatchObject({ kind: 'CAPACITY_EXCEEDED', details: { maxVectors: 3, current: 2, adding: 2 } })
    expect(await store.count()).toBe(2)
    await store.insert([[5, 5]], [1], [{ overwritten: true }])
    await store.insert([[1, 1]], [3], [{}])
    expect(await store.count()).toBe(3)
  })
})

import { VectorStoreError, type VectorStoreConfig } from '../index'
import { cosine, randomVectors, storeHarness } from './fixtures'

const DIM = 32
const N = 3000

const stores = storeHarness({ type: 'in-memory', collectionName: 'ann', dimension: DIM, annAlgorithm: 'hnsw' })
// `extra` is loosely typed: some tests pass options the typings rule out, to see them rejected.
const make = (path: string, extra: Record<string, unknown> = {}) =>
  stores.make({ persistencePath: path, ...extra } as Partial<VectorStoreConfig>)

describe('HNSW through the façade', () => {
  test('searches go through the graph, find every point, and reopen without a rebuild', async () => {
    const path = stores.dir()
    const { store } = await make(path)
    const vectors = randomVectors(N, DIM, 11)
    for (let start = 0; start < N; start += 1000) {
      const ids = Array.from({ length: 1000 }, (_, i) => start + i)
      await store.insert(
        vectors.slice(start, start + 1000),
        ids,
        ids.map((i) => ({ i, even: i % 2 === 0 })),
      )
    }
    expect(await store.waitForIndex()).toBe(true)
    const stats = await store.stats()
    expect(stats.index.algorithm).toBe('hnsw')
    expect(stats.index.configured).toBe('hnsw')
    // Every point is in the graph once live: the few an audit inserted again left their old
    // labels behind as tombstones.
    expect(stats.index.graphSize - stats.index.tombstones).toBe(N)
    // 'auto' at 32 dimensions: f32 (i8 codes only from 64 dimensions up).
    expect(stats.index.quantization).toBe('f32')
    expect(stats.index.unindexed).toBe(0)
    for (let i = 0; i < N; i += 7) {
      const [first] = await store.search(vectors[i], 1)
      expect(first.id).toBe(i)
    }
    // A filter returns only matches, as many as asked.
    const evens = await store.search(vectors[3], 10, { even: true }, { efSearch: 32 })
    expect(evens).toHaveLength(10)
    for (const hit of evens) expect((hit.id as number) % 2).toBe(0)

    // Deleted and replaced points never come back with old data.
    await store.delete(5)
    await store.update(6, vectors[100], { i: 6, even: true, moved: true })
    const near5 = await store.search(vectors[5], 5)
    expect(near5.map((h) => h.id)).not.toContain(5)
    const near100 = await store.search(vectors[100], 2)
    expect(near100.map((h) => h.id as number).sort((a, b) => a - b)).toEqual([6, 100])
    expect(near100[0].score).toBeCloseTo(cosine(vectors[100], vectors[100]), 5)

    await stores.closeAll()
    const reopened = await make(path)
    const after = await reopened.store.stats()
    expect(after.index.loadedFromDisk).toBe(true)
    expect(after.index.builds).toBe(0)
    expect(after.index.algorithm).toBe('hnsw')
    const [again] = await reopened.store.search(vectors[1234], 1)
    expect(again.id).toBe(1234)
  })

  test('a point is findable as soon as its write resolves, before the indexer has taken it into the graph', async () => {
    const { store } = await make(stores.dir())
    const batch = 500
    // The indexer takes labels into the graph in order, so `unindexed > 0` read *after* a search
    // means the newest point was still outside the graph when the search ran (searched exactly,
    // as part of the tail); a graph in use before the write means the search went through it.
    // The indexer runs in the background: batches go on until such a moment was seen.
    let graphInUse = false
    let tailSeen = false
    for (let round = 0; !tailSeen; round++) {
      const vectors = randomVectors(batch, DIM, 100 + round)
      const ids = vectors.map((_, i) => round * batch + i)
      await store.insert(vectors, ids, ids.map((i) => ({ i })))
      const [first] = await store.search(vectors[batch - 1], 1)
      const { index } = await store.stats()
      expect(first.id).toBe(ids[batch - 1])
      expect(first.score).toBeCloseTo(1, 5)
      tailSeen = graphInUse && index.unindexed > 0
      graphInUse = index.algorithm === 'hnsw' && index.graphSize > 0
    }
  })

  test('a chosen quantization is used, and answers with exact scores', async () => {
    const { store } = await make(stores.dir(), { hnsw: { quantization: 'f16' } })
    const vectors = randomVectors(1500, DIM, 5)
    const ids = vectors.map((_, i) => i)
    await store.insert(vectors, ids, ids.map((i) => ({ i })))
    expect(await store.waitForIndex()).toBe(true)
    expect((await store.stats()).index.quantization).toBe('f16')
    const [first, second] = await store.search(vectors[42], 2)
    expect(first.id).toBe(42)
    expect(first.score).toBeCloseTo(1, 6)
    expect(second.score).toBeCloseTo(cosine(vectors[42], vectors[second.id as number]), 6)
  })

  test('bad graph options and per-query efSearch are rejected with typed errors', async () => {
    const path = stores.dir()
    await expect(make(path, { annAlgorithm: 'annoy' as 'hnsw' })).rejects.toThrow(VectorStoreError)
    await expect(make(path, { hnsw: { m: 1000 } })).rejects.toThrow(/hnsw.m/)
    await expect(make(path, { hnsw: { ef: 10 } })).rejects.toThrow(/unsupported hnsw option/)
    await expect(make(path, { hnsw: { quantization: 'i4' } })).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT' })
    await expect(make(path, { hnsw: { quantization: 8 } })).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT' })
    // 8-bit and half-precision graph vectors cannot hold what Dot and Euclidean need.
    await expect(make(path, { distance: 'Dot', hnsw: { quantization: 'i8' } })).rejects.toThrow(/Cosine collections only/)
    await expect(make(path, { distance: 'Euclidean', hnsw: { quantization: 'f16' } })).rejects.toMatchObject({
      kind: 'INVALID_ARGUMENT',
    })
    const { store } = await make(path)
    await store.insert([randomVectors(1, DIM)[0]], [1], [{}])
    await expect(store.search(randomVectors(1, DIM)[0], 1, undefined, { efSearch: 0 })).rejects.toThrow(/efSearch/)
  })
})

import { spawn } from 'child_process'
import { mkdirSync } from 'fs'
import { join } from 'path'
import { createVectorStore, ErrorCodes, VectorStoreError, type VectorStoreConfig } from '../index'
import { closed, onLines, randomVectors, rejectionOf, storeHarness, waitForLine } from './fixtures'

const DIM = 16
const DISK = { vectors: 'disk' as const }
const stores = storeHarness({ collectionName: 'docs', dimension: DIM })
const children = join(__dirname, 'children')

type Store = Awaited<ReturnType<typeof stores.make>>['store']

/** The same writes on each store: inserts, overwrites, updates, deletes. */
async function writeAll(store: Store, from: number, count: number, seed: number) {
  const vectors = randomVectors(count, DIM, seed)
  const ids = vectors.map((_, i) => from + i)
  await store.insert(vectors, ids, ids.map((id) => ({ id, seed })))
  // Overwrite every 7th, delete every 11th (freed slots are reused by later inserts).
  const again = randomVectors(count, DIM, seed + 1000)
  for (let i = 0; i < count; i += 7) await store.update(from + i, again[i], { id: from + i, updated: true })
  for (let i = 3; i < count; i += 11) await store.delete(from + i)
}

/** Every point of `store`, as id → [vector, payload]. */
async function contents(store: Store) {
  const [records] = await store.list(undefined, 1_000_000)
  return new Map(records.map((r) => [r.id, [r.vector, r.payload]]))
}

async function sameAnswers(a: Store, b: Store, seed: number) {
  expect(await contents(a)).toEqual(await contents(b))
  for (const query of randomVectors(10, DIM, seed)) {
    expect(await a.search(query, 10)).toEqual(await b.search(query, 10))
  }
}

describe("storage: { vectors: 'disk' }", () => {
  test('serves the vectors from the checkpoint files and answers exactly as memory mode, across checkpoints and reopens', async () => {
    const config: Partial<VectorStoreConfig> = { annAlgorithm: 'flat' }
    const diskPath = stores.dir()
    const disk = await stores.make({ ...config, persistencePath: diskPath, storage: DISK })
    const memory = await stores.make({ ...config })
    for (const { store } of [disk, memory]) await writeAll(store, 0, 3000, 1)

    let stats = await disk.store.stats()
    expect(stats).toMatchObject({ vectorStorage: 'disk' })
    // Nothing checkpointed yet: every vector is in memory.
    expect(stats.vectorsInMemory).toBe(stats.count)
    expect((await memory.store.stats()).vectorStorage).toBe('memory')

    await disk.store.checkpoint()
    stats = await disk.store.stats()
    expect(stats.vectorsInMemory).toBe(0)
    await sameAnswers(disk.store, memory.store, 7)

    // Writes after the checkpoint stay in memory until the next one: new points, and overwrites of
    // points the file holds.
    for (const { store } of [disk, memory]) await writeAll(store, 2500, 1000, 2)
    stats = await disk.store.stats()
    expect(stats.vectorsInMemory).toBeGreaterThan(0)
    expect(stats.vectorsInMemory).toBeLessThan(stats.count)
    await sameAnswers(disk.store, memory.store, 8)
    await disk.store.checkpoint()
    expect((await disk.store.stats()).vectorsInMemory).toBe(0)
    await sameAnswers(disk.store, memory.store, 9)

    // Reopened in disk mode: served from the file at once; and the same directory opens in memory mode.
    await disk.manager.disconnect()
    const again = await stores.make({ ...config, persistencePath: diskPath, storage: DISK })
    expect(await again.store.stats()).toMatchObject({ vectorStorage: 'disk', vectorsInMemory: 0 })
    await sameAnswers(again.store, memory.store, 10)
    await again.manager.disconnect()
    const inMemory = await stores.make({ ...config, persistencePath: diskPath })
    expect(await inMemory.store.stats()).toMatchObject({ vectorStorage: 'memory' })
    await sameAnswers(inMemory.store, memory.store, 11)
  })

  test('a graph store in disk mode searches through the graph and re-ranks from the files', async () => {
    const config: Partial<VectorStoreConfig> = { annAlgorithm: 'hnsw', annMinDatasetSize: 10 }
    const path = stores.dir()
    const disk = await stores.make({ ...config, persistencePath: path, storage: DISK })
    const vectors = randomVectors(4000, DIM, 3)
    await disk.store.insert(vectors, vectors.map((_, i) => i), vectors.map((_, i) => ({ i })))
    await disk.manager.disconnect()
    const again = await stores.make({ ...config, persistencePath: path, storage: DISK })
    expect(await again.store.stats()).toMatchObject({ vectorsInMemory: 0, count: 4000 })
    // Each point is found first by its own vector, with the exact score.
    for (let i = 0; i < 4000; i += 97) {
      const [best] = await again.store.search(vectors[i], 1)
      expect(best.id).toBe(i)
      expect(best.score).toBeCloseTo(1, 5)
    }
  })

  test('a checkpoint written compressed is read into memory, and the next checkpoint is served from disk', async () => {
    const path = stores.dir()
    const first = await stores.make({ persistencePath: path, compression: 'gzip', annAlgorithm: 'flat' })
    await writeAll(first.store, 0, 500, 4)
    await first.manager.disconnect()
    const disk = await stores.make({ persistencePath: path, storage: DISK, annAlgorithm: 'flat' })
    const count = await disk.store.count()
    expect(await disk.store.stats()).toMatchObject({ vectorStorage: 'disk', vectorsInMemory: count })
    await disk.store.insert([randomVectors(1, DIM, 5)[0]], ['new'], [{}])
    await disk.store.checkpoint()
    expect(await disk.store.stats()).toMatchObject({ vectorsInMemory: 0, count: count + 1 })
  })

  test('refuses what it cannot serve, with INVALID_ARGUMENT', async () => {
    const cases: Partial<VectorStoreConfig>[] = [
      { storage: DISK, annPersistIndex: false }, // no files to serve from
      { storage: DISK, compression: 'gzip' }, // a compressed file cannot be mapped
      { storage: DISK, compression: 'brotli' },
      { storage: { vectors: 'ssd' } as never },
      { storage: { vector: 'disk' } as never },
      { storage: 'disk' as never },
    ]
    for (const config of cases) {
      const error = await rejectionOf(
        createVectorStore({ collectionName: 'docs', dimension: DIM, persistencePath: stores.dir(), ...config }),
        VectorStoreError,
      )
      expect(error.code).toBe(ErrorCodes.INVALID_ARGUMENT)
      expect(error.message).toMatch(/storage/)
    }
  })
})

describe('disk mode: a writer process killed with SIGKILL', () => {
  test('every acknowledged write reads back after 12 kills, with checkpoints moving the vectors to the files between them', async () => {
    const path = stores.dir()
    mkdirSync(path, { recursive: true })
    const acknowledged = new Set<number>()
    const ROUND = 100_000
    for (let round = 0; round < 12; round++) {
      const mode = round % 2 === 1 ? 'burst' : 'serial'
      const child = spawn(process.execPath, [join(children, 'writer.js'), path, 'crash', String(1 + round * ROUND), 'fsync', mode], {
        env: { ...process.env, ANNVAULT_TEST_VECTORS: 'disk' },
      })
      const done = closed(child)
      const acks: number[] = []
      onLines(child.stdout, (line) => {
        if (line.startsWith('ack ')) acks.push(Number(line.slice(4)))
      })
      await waitForLine(child, (line) => line === 'ready')
      await new Promise((resolve) => setTimeout(resolve, 40 + round * 15))
      child.kill('SIGKILL')
      await done
      for (const id of acks) acknowledged.add(id)

      const handle = stores.track(
        await createVectorStore({ collectionName: 'crash', dimension: 8, persistencePath: path, annAlgorithm: 'flat', storage: DISK }),
      )
      const wrong: unknown[] = []
      for (const id of acknowledged) {
        const record = await handle.store.get(id)
        // children/writer.js: point n's vector is sin(8n + d) (read back as the shortest decimal of the f32).
        const expected = Array.from({ length: 8 }, (_, d) => Math.fround(Math.sin(id * 8 + d)))
        if (record === null) wrong.push({ missing: id })
        else if (record.vector.some((x, d) => Math.fround(x) !== expected[d])) wrong.push({ id, vector: record.vector })
      }
      expect(wrong).toEqual([])
      await handle.manager.disconnect()
    }
    expect(acknowledged.size).toBeGreaterThan(100)
  }, 120_000)
})

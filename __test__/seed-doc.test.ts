// The examples of the in-memory vector storage document that annvault
// replaces (shared/seeds/004_*.txt), run as written: only the import line
// differs, and the vectors have the collection's dimension (the document puts
// 3-dimensional vectors into a 1536-dimensional collection).
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { createPersistentInMemoryStore, createVectorStore, VectorStoreError } from '../index'
import { rejectionOf, storeHarness } from './fixtures'

const harness = storeHarness()

/** A 1536-dimensional vector that starts with `head`. */
const v = (...head: number[]): number[] => [...head, ...new Array(1536 - head.length).fill(0.5)]

describe('the in-memory vector storage document, example by example', () => {
  test('basic usage with default persistence', () =>
    harness.inTempCwd(async (cwd) => {
      // Create persistent in-memory store (saves to './data/vector-storage')
      const { manager, store } = harness.track(await createPersistentInMemoryStore('my_collection'))

      // Add vectors with metadata
      await store.insert(
        [v(1, 2, 3), v(4, 5, 6)], // vectors
        ['doc1', 'doc2'], // ids
        [{ title: 'First' }, { title: 'Second' }], // payloads
      )

      // Search vectors
      const results = await store.search(v(1, 2, 3), 5)
      expect(results.map((r) => r.id)).toEqual(['doc1', 'doc2'])
      expect(results[0].payload).toEqual({ title: 'First' })

      // Disconnect (data is automatically saved)
      await manager.disconnect()
      expect(existsSync(join(cwd, 'data/vector-storage/my_collection'))).toBe(true)

      // "Data is loaded when connecting"
      const again = harness.track(await createPersistentInMemoryStore('my_collection'))
      expect(await again.store.count()).toBe(2)
    }))

  test('custom persistence path', () =>
    harness.inTempCwd(async (cwd) => {
      // Custom persistence path
      const { manager, store } = harness.track(
        await createPersistentInMemoryStore(
          'my_collection',
          1536, // dimension
          './my-custom-data/vectors', // persistence path
        ),
      )
      await store.insert([v(1)], ['a'], [{}])
      await manager.disconnect()
      expect(existsSync(join(cwd, 'my-custom-data/vectors/my_collection'))).toBe(true)
    }))

  test('manual configuration, with annIndexPath', () =>
    harness.inTempCwd(async (cwd) => {
      const config = {
        type: 'in-memory',
        collectionName: 'my_collection',
        dimension: 1536,
        maxVectors: 10000,
        annPersistIndex: true, // Enable persistence
        annIndexPath: './data/vectors', // Persistence path
      } as const

      const { manager, store } = harness.track(await createVectorStore(config))
      await store.insert([v(7)], ['x'], [{ n: 1 }])
      await manager.disconnect()
      // annIndexPath is where the data lives, and where it is loaded from.
      expect(existsSync(join(cwd, 'data/vectors/my_collection'))).toBe(true)
      expect(existsSync(join(cwd, 'data/vector-storage'))).toBe(false)
      const again = harness.track(await createVectorStore(config))
      expect((await again.store.get('x'))?.payload).toEqual({ n: 1 })
      expect(again.store.getConfig().persistencePath).toBe('./data/vectors')
    }))

  test('disable persistence', () =>
    harness.inTempCwd(async (cwd) => {
      const config = {
        type: 'in-memory',
        collectionName: 'my_collection',
        dimension: 1536,
        annPersistIndex: false, // Disable persistence
      } as const

      const { manager, store } = harness.track(await createVectorStore(config))
      await store.insert([v(1)], ['a'], [{}])
      await manager.disconnect()
      expect(existsSync(join(cwd, 'data'))).toBe(false)
    }))
})

describe('annIndexPath beside persistencePath', () => {
  test('both, naming the same path, are accepted', () =>
    harness.inTempCwd(async () => {
      const { store } = harness.track(
        await createVectorStore({ collectionName: 'c', dimension: 2, annIndexPath: './p', persistencePath: './p' }),
      )
      expect(store.getConfig().persistencePath).toBe('./p')
    }))

  test('both, naming different paths, are INVALID_ARGUMENT and nothing is created', () =>
    harness.inTempCwd(async (cwd) => {
      const error = await rejectionOf(
        createVectorStore({ collectionName: 'c', dimension: 2, annIndexPath: './a', persistencePath: './b' }),
        VectorStoreError,
      )
      expect(error.kind).toBe('INVALID_ARGUMENT')
      expect(error.details).toMatchObject({ argument: 'annIndexPath' })
      expect(existsSync(join(cwd, 'a'))).toBe(false)
      expect(existsSync(join(cwd, 'b'))).toBe(false)
    }))

  test.each([null, 5, ''])('annIndexPath %p is INVALID_ARGUMENT', async (bad) => {
    const error = await rejectionOf(
      createVectorStore({ collectionName: 'c', dimension: 2, annIndexPath: bad as unknown as string }),
      VectorStoreError,
    )
    expect(error.kind).toBe('INVALID_ARGUMENT')
  })
})

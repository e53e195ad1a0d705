import { createVectorStore, type VectorStoreHandle } from '../index'
import { rng, tempDirs } from './fixtures'

const dirs = tempDirs()
let handle: VectorStoreHandle

// An exact scan of 20,000 x 256 vectors is the long search this file is about
// ('flat' keeps it exact). A graph search is short enough (well under a
// millisecond) to run on the calling thread, as a synchronous index would.
beforeAll(async () => {
  handle = await createVectorStore({
    collectionName: 'loop',
    dimension: 256,
    persistencePath: dirs.next(),
    annAlgorithm: 'flat',
  })
  const next = rng(11)
  const count = 20_000
  const batch = 2_000
  for (let start = 0; start < count; start += batch) {
    const vectors = Array.from({ length: batch }, () => {
      const v = new Float32Array(256)
      for (let d = 0; d < 256; d++) v[d] = next() * 2 - 1
      return v
    })
    const ids = vectors.map((_, i) => start + i)
    await handle.store.insert(vectors, ids, ids.map((id) => ({ even: id % 2 === 0 })))
  }
})

afterAll(async () => {
  await handle.manager.disconnect()
  dirs.cleanup()
})

test('the JS thread keeps running while searches over 20,000 x 256 vectors are in flight', async () => {
  const { store } = handle
  expect(await store.count()).toBe(20_000)
  const query = Array.from({ length: 256 }, (_, d) => Math.sin(d))

  // Count event-loop turns that happen while each search is pending. A search
  // done on the JS thread would complete before any turn could run.
  let turnsDuringSearch = 0
  for (let round = 0; round < 5; round++) {
    let pending = true
    const search = store.search(query, 10, round % 2 === 0 ? undefined : { even: true }).finally(() => {
      pending = false
    })
    await new Promise<void>((resolve) => setImmediate(resolve))
    if (pending) turnsDuringSearch++
    const results = await search
    expect(results).toHaveLength(10)
  }
  expect(turnsDuringSearch).toBeGreaterThan(0)
})

test('a 1 ms interval keeps firing while a batch of searches runs', async () => {
  const { store } = handle
  const queries = Array.from({ length: 8 }, (_, i) => Array.from({ length: 256 }, (_, d) => Math.cos(d * (i + 1))))
  let pending = queries.length
  // Ticks that found searches still running: impossible if a search held the thread.
  let ticksWhilePending = 0
  const timer = setInterval(() => {
    if (pending > 0) ticksWhilePending++
  }, 1)
  try {
    const results = await Promise.all(
      queries.map((q) =>
        store.search(q, 10).finally(() => {
          pending--
        }),
      ),
    )
    expect(results.every((r) => r.length === 10)).toBe(true)
    expect(ticksWhilePending).toBeGreaterThan(0)
  } finally {
    clearInterval(timer)
  }
})

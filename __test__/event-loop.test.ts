import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createVectorStore, type VectorStoreHandle } from '../index'
import { rng, storeHarness } from './fixtures'

const stores = storeHarness({ annPersistIndex: false, annAlgorithm: 'flat' })
const DIM = 256

/**
 * How many vector components a search may touch and still run on the calling thread: an exact
 * scan of `count × dimension` components at most (`INLINE_SEARCH_WORK`, read from
 * crates/core/src/store.rs, `Store::try_search_now`), so that this file follows it if it changes.
 */
function inlineSearchWork(): number {
  const source = readFileSync(join(__dirname, '..', 'crates', 'core', 'src', 'store.rs'), 'utf8')
  const found = /const INLINE_SEARCH_WORK: usize = (\d+) << (\d+);/.exec(source)
  if (!found) throw new Error('INLINE_SEARCH_WORK is not `a << b` in crates/core/src/store.rs any more: update this test')
  return Number(found[1]) * 2 ** Number(found[2])
}

// Twice the work the calling thread may do: an exact scan ('flat') long enough that it must go
// to the thread pool. A memory-only store: this file is about searches, not the disk.
const COUNT = Math.ceil((2 * inlineSearchWork()) / DIM)
let handle: VectorStoreHandle

// Not `stores.make`: this store lives for the whole file, not for one test.
beforeAll(async () => {
  const large = await createVectorStore({ collectionName: 'loop', dimension: DIM, annPersistIndex: false, annAlgorithm: 'flat' })
  const next = rng(11)
  const batch = 4096
  for (let start = 0; start < COUNT; start += batch) {
    const vectors = Array.from({ length: Math.min(batch, COUNT - start) }, () => {
      const v = new Float32Array(DIM)
      for (let d = 0; d < DIM; d++) v[d] = next() * 2 - 1
      return v
    })
    const ids = vectors.map((_, i) => start + i)
    await large.store.insert(vectors, ids, ids.map((id) => ({ even: id % 2 === 0 })))
  }
  handle = large
})

afterAll(async () => {
  await handle.manager.disconnect()
})

/** Whether `search` has settled once every queued microtask has run, with no turn of the event loop. */
async function settledWithoutALoopTurn(search: Promise<unknown>): Promise<boolean> {
  let settled = false
  const done = search.finally(() => {
    settled = true
  })
  // A result from the thread pool arrives only on an event-loop turn; microtasks alone cannot bring it.
  for (let i = 0; i < 20; i++) await null
  const answer = settled
  await done
  return answer
}

test(`a search past the calling thread's share goes to the thread pool (${COUNT} x ${DIM}); a small one does not`, async () => {
  const { store } = handle
  expect(await store.count()).toBe(COUNT)
  const query = Array.from({ length: DIM }, (_, d) => Math.sin(d))
  expect(await settledWithoutALoopTurn(store.search(query, 10))).toBe(false)
  expect(await settledWithoutALoopTurn(store.search(query, 10, { even: true }))).toBe(false)

  // The control: a small collection is scanned on the calling thread, its Promise already settled.
  const small = await stores.make({ dimension: DIM })
  await small.store.insert([query], ['q'], [{}])
  expect(await settledWithoutALoopTurn(small.store.search(query, 1))).toBe(true)
})

test('the JS thread keeps running while searches are in flight: a 1 ms interval keeps firing', async () => {
  const { store } = handle
  const queries = Array.from({ length: 8 }, (_, i) => Array.from({ length: DIM }, (_, d) => Math.cos(d * (i + 1))))
  let pending = queries.length
  // Ticks that found searches still running: impossible if a search held the thread.
  let ticksWhilePending = 0
  const timer = setInterval(() => {
    if (pending > 0) ticksWhilePending++
  }, 1)
  try {
    const results = await Promise.all(
      queries.map((q, i) =>
        store.search(q, 10, i % 2 === 0 ? undefined : { even: true }).finally(() => {
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

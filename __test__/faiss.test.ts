// The faiss engine from the built package (`annAlgorithm: 'faiss'`), and the older layout's
// ann_index.faiss as Python's faiss reads it (faiss-cpu from PyPI, installed by
// scripts/install-build-deps.sh).

import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { rng, storeHarness } from './fixtures'

const stores = storeHarness({ collectionName: 'faiss', dimension: 16 })

function points(n: number, dim: number, seed: number) {
  const random = rng(seed)
  const vectors = Array.from({ length: n }, () => Array.from({ length: dim }, () => random() * 2 - 1))
  const ids = vectors.map((_, i) => (i % 2 ? i : `doc-${i}`))
  const payloads = vectors.map((_, i) => ({ i, half: i % 2 }))
  return { vectors, ids, payloads }
}

test("annAlgorithm 'faiss' serves searches through a faiss index, filtered too, and reopens from the saved index", async () => {
  const dir = stores.dir()
  const config = { annAlgorithm: 'faiss' as const, faiss: { index: 'HNSW32,Flat' }, persistencePath: dir }
  const { manager, store } = await stores.make(config)
  const { vectors, ids, payloads } = points(1500, 16, 3)
  await store.insert(vectors, ids, payloads)
  expect(await store.waitForIndex()).toBe(true)
  const stats = (await store.stats()).index
  expect(stats).toMatchObject({ algorithm: 'faiss', configured: 'faiss', graphSize: 1500 })
  for (const i of [0, 7, 1499]) {
    const [hit] = await store.search(vectors[i], 1)
    expect(hit.id).toBe(ids[i])
    expect(hit.score).toBeCloseTo(1, 5)
  }
  const odd = await store.search(vectors[10], 5, { half: 1 })
  expect(odd).toHaveLength(5)
  expect(odd.every((h) => h.payload.half === 1)).toBe(true)
  await manager.disconnect()
  const again = await stores.make(config)
  expect((await again.store.stats()).index).toMatchObject({ loadedFromDisk: true, unindexed: 0 })
  expect((await again.store.search(vectors[7], 1))[0].id).toBe(ids[7])
})

test('faiss options are checked at open: a factory faiss does not build, nprobe on a non-IVF index, faiss options with another algorithm', async () => {
  await expect(stores.make({ annAlgorithm: 'faiss', faiss: { index: 'NoSuchIndex' } })).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
    details: expect.objectContaining({ argument: 'faiss.index' }),
  })
  await expect(stores.make({ annAlgorithm: 'faiss', faiss: { index: 'HNSW32,Flat', nprobe: 4 } })).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
  })
  await expect(stores.make({ annAlgorithm: 'hnsw', faiss: { index: 'HNSW32,Flat' } })).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
  })
  await expect(stores.make({ annAlgorithm: 'faiss', faiss: { index: 'Flat', colour: 'blue' } as any })).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
  })
})

test('an IVF-PQ index is trained once enough points arrive; every point is found before and after', async () => {
  const { store } = await stores.make({ annAlgorithm: 'faiss', faiss: { index: 'IVF8,PQ4', nprobe: 8, trainPoints: 1200 } })
  const { vectors, ids, payloads } = points(2000, 16, 9)
  await store.insert(vectors.slice(0, 500), ids.slice(0, 500), payloads.slice(0, 500))
  await store.waitForIndex()
  expect((await store.search(vectors[123], 1))[0].id).toBe(ids[123])
  await store.insert(vectors.slice(500), ids.slice(500), payloads.slice(500))
  await store.waitForIndex()
  // Candidates come from PQ codes, scores from the exact vectors: the point itself ranks first.
  for (const i of [5, 600, 1999]) expect((await store.search(vectors[i], 1))[0].id).toBe(ids[i])
}, 180_000)

test("exportLegacy writes ann_index.faiss that Python's faiss opens and searches with the same top results; the layout imports again", async () => {
  const { store } = await stores.make({ distance: 'Cosine' })
  const { vectors, ids, payloads } = points(300, 16, 5)
  await store.insert(vectors, ids, payloads)
  const out = join(stores.dir(), 'legacy')
  await store.exportLegacy(out)
  const metadata = JSON.parse(readFileSync(join(out, 'ann_metadata.json'), 'utf8'))
  expect(metadata).toMatchObject({ faissAvailable: true, algorithm: 'faiss:IDMap2,Flat', vectorCount: 300 })
  const queries = [vectors[3], vectors[200], points(1, 16, 77).vectors[0]]
  const script = `
import json, sys, numpy as np, faiss
index = faiss.read_index(sys.argv[1])
q = np.array(json.loads(sys.argv[2]), dtype='float32')
faiss.normalize_L2(q)
d, i = index.search(q, 5)
print(json.dumps({"ntotal": index.ntotal, "d": index.d, "ids": i.tolist()}))
`
  const python = spawnSync('python3', ['-c', script, join(out, 'ann_index.faiss'), JSON.stringify(queries)], { encoding: 'utf8' })
  expect(python.stderr).toBe('')
  const result = JSON.parse(python.stdout)
  expect(result).toMatchObject({ ntotal: 300, d: 16 })
  for (let q = 0; q < queries.length; q++) {
    const ours = (await store.search(queries[q], 5)).map((h) => h.id)
    const theirs = result.ids[q].map((row: number) => metadata.vectors[row][0])
    expect(theirs).toEqual(ours)
  }
  // The older layout with a real index file beside it imports as before.
  const imported = await stores.make({ persistencePath: out, collectionName: 'reimported' })
  expect(await imported.store.count()).toBe(300)
  // And with the placeholder the older backend wrote.
  writeFileSync(join(out, 'ann_index.faiss'), 'placeholder')
  const placeholder = await stores.make({ persistencePath: out, collectionName: 'placeholder' })
  expect(await placeholder.store.count()).toBe(300)
})

test("loading the package makes OpenMP's idle threads wait passively unless the user chose otherwise", () => {
  const root = join(__dirname, '..')
  const read = (env: NodeJS.ProcessEnv) => {
    const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(root)}); process.stdout.write(String(process.env.OMP_WAIT_POLICY))`], {
      env,
      encoding: 'utf8',
    })
    expect(run.status).toBe(0)
    return run.stdout
  }
  const { OMP_WAIT_POLICY: _, ...env } = process.env
  expect(read(env)).toBe('PASSIVE')
  expect(read({ ...env, OMP_WAIT_POLICY: 'ACTIVE' })).toBe('ACTIVE')
})

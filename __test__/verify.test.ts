import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, VectorStoreError, type ProgressEvent } from '../index'
import { damage, diskContents, randomVectors, rejectionOf, storeHarness } from './fixtures'

const stores = storeHarness({ collectionName: 'docs', dimension: 8, annAlgorithm: 'hnsw' })
const { make } = stores

/**
 * A store whose directory holds every kind of file: a manifest, a snapshot, a saved graph (map
 * and graph file) and a WAL with records after the snapshot.
 */
async function fullStore() {
  const path = stores.dir()
  const handle = await make({ persistencePath: path })
  const vectors = randomVectors(300, 8, 3)
  await handle.store.insert(vectors, vectors.map((_, i) => i), vectors.map((_, i) => ({ i })))
  await handle.store.checkpoint()
  await handle.store.insert([randomVectors(1, 8, 9)[0]], ['late'], [{ late: true }])
  await handle.store.delete(5)
  const dir = join(path, 'docs')
  return { ...handle, dir, root: path }
}

describe('verify', () => {
  test('a clean store verifies ok, lists every file, counts its points and changes nothing', async () => {
    const { store, dir, root } = await fullStore()
    const names = readdirSync(dir)
    expect(names.some((n) => n.endsWith('.map'))).toBe(true)
    const before = diskContents(root)
    const events: ProgressEvent[] = []
    const report = await store.verify({ onProgress: (e) => events.push(e) })
    expect(report.problems).toEqual([])
    expect(report.ok).toBe(true)
    expect(report.count).toBe(300)
    expect(report.files.map((f) => f.file).sort()).toEqual([...names].sort())
    for (const f of report.files) expect(f).toMatchObject({ ok: true })
    expect(report.files.find((f) => f.file === 'MANIFEST')!.bytes).toBeGreaterThan(20)
    expect(diskContents(root)).toEqual(before)
    expect(events[0]).toMatchObject({ operation: 'verify', phase: 'read', percentage: 0 })
    expect(events[events.length - 1]).toMatchObject({ operation: 'verify', percentage: 100 })
  })

  test.each([
    ['MANIFEST', 'MANIFEST'],
    ['the snapshot', 'snapshot-'],
    ['the WAL', 'wal-'],
  ])('a flipped byte in %s makes it not ok, with that file named', async (_, prefix) => {
    const { store, dir } = await fullStore()
    const name = damage(dir, prefix, (length) => length - 3)
    const report = await store.verify()
    expect(report.ok).toBe(false)
    const file = report.files.find((f) => f.file === name)!
    expect(file.ok).toBe(false)
    expect(file.error).toEqual(expect.any(String))
    expect(report.problems.join('\n')).toContain(name)
  })

  test.each([
    ['the saved graph map', (n: string) => n.startsWith('index-') && n.endsWith('.map')],
    ['the saved graph file', (n: string) => n.startsWith('index-') && !n.endsWith('.map')],
  ])('a flipped byte in %s makes it not ok, with that file named', async (_, which) => {
    const { store, dir } = await fullStore()
    const name = readdirSync(dir).find(which)!
    expect(name).toBeDefined()
    damage(dir, name, (length) => Math.floor(length / 2))
    const report = await store.verify()
    expect(report.ok).toBe(false)
    expect(report.files.find((f) => f.file === name)).toMatchObject({ ok: false })
    expect(report.problems.join('\n')).toContain(name)
  })

  test('verify runs while writes go on', async () => {
    const { store } = await fullStore()
    const writes = (async () => {
      for (let i = 0; i < 50; i++) await store.insert([randomVectors(1, 8, 100 + i)[0]], [`w${i}`], [{}])
    })()
    const reports = await Promise.all([store.verify(), store.verify(), writes])
    expect(reports[0].ok).toBe(true)
    expect(reports[1].ok).toBe(true)
    expect((await store.verify()).count).toBe(350)
  })

  test('a memory-only store has no files to verify; a closed store refuses', async () => {
    const { store, manager } = await make({ annPersistIndex: false })
    await store.insert([randomVectors(1, 8)[0]], [1], [{}])
    expect(await store.verify()).toEqual({ ok: true, files: [], count: 1, problems: [] })
    await manager.disconnect()
    const error = await rejectionOf(store.verify(), VectorStoreError)
    expect(error.code).toBe(ErrorCodes.CLOSED)
  })
})

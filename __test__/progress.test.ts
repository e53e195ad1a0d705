import { ErrorCodes, VectorStoreError, type ProgressEvent } from '../index'
import { randomVectors, rejectionOf, storeHarness } from './fixtures'

const stores = storeHarness({ collectionName: 'docs', dimension: 3, annAlgorithm: 'hnsw' })

async function filled(count: number, config: Record<string, unknown> = {}) {
  const handle = await stores.make(config)
  const vectors = randomVectors(count, 3, 9)
  await handle.store.insert(vectors, vectors.map((_, i) => i), vectors.map((_, i) => ({ i })))
  return handle
}

/** Each phase's events, in the order the phases ran; each starts at 0 and ends at its total. */
function phasesOf(events: ProgressEvent[]): string[] {
  const names: string[] = []
  let open: ProgressEvent | null = null
  for (const e of events) {
    if (open === null) {
      expect(e.current).toBe(0)
      names.push(e.phase)
      open = e
    } else {
      expect(e.phase).toBe(open.phase)
      if (e.current === open.total) {
        expect(e.percentage).toBe(100)
        open = null
      }
    }
    expect(e.current).toBeLessThanOrEqual(e.total)
  }
  expect(open).toBeNull()
  return names
}

/** Turns of the event loop until `done()` (events queued on a worker thread arrive within a few). */
async function until(done: () => boolean) {
  for (let turn = 0; !done() && turn < 100000; turn++) {
    await new Promise((resolve) => setImmediate(resolve))
  }
  return done()
}

describe('progress events of checkpoints, snapshots and graph builds', () => {
  test('checkpoint({ onProgress }) reports writing the points, then the indexer wait; a throwing callback does not break it', async () => {
    const path = stores.dir()
    const { store, manager } = await filled(2000, { persistencePath: path })
    const events: ProgressEvent[] = []
    await store.checkpoint({
      onProgress: (e) => {
        events.push(e)
        throw new Error('observer bug')
      },
    })
    expect(events.every((e) => e.operation === 'checkpoint')).toBe(true)
    expect(events[0]).toMatchObject({ phase: 'write', current: 0, total: 2000, percentage: 0 })
    const phases = phasesOf(events)
    expect(phases).toContain('index')
    expect(phases.every((p) => ['write', 'graph', 'index'].includes(p))).toBe(true)

    // Nothing written since: flush() (the same call) reports an empty write.
    const again: ProgressEvent[] = []
    await store.flush({ onProgress: (e) => again.push(e) })
    expect(again[0]).toMatchObject({ operation: 'checkpoint', phase: 'write', total: 0, percentage: 100 })

    const bad = await rejectionOf(store.checkpoint({ onProgress: 1 } as never), VectorStoreError)
    expect(bad.code).toBe(ErrorCodes.INVALID_ARGUMENT)

    await manager.disconnect()
    const reopened = await stores.make({ persistencePath: path })
    expect(await reopened.store.count()).toBe(2000)
    expect(await reopened.store.get(1999)).toMatchObject({ payload: { i: 1999 } })
  })

  test('createSnapshot(name, { onProgress }) reports the files linked and hashed, then its manifest', async () => {
    const { store } = await filled(500, { annAlgorithm: 'flat' })
    const events: ProgressEvent[] = []
    const info = await store.createSnapshot('s', {
      metadata: { by: 'test' },
      onProgress: (e) => {
        events.push(e)
        throw new Error('observer bug')
      },
    })
    expect(info).toMatchObject({ name: 's', count: 500, metadata: { by: 'test' } })
    expect(events.every((e) => e.operation === 'snapshot')).toBe(true)
    expect(phasesOf(events)).toEqual(['files', 'write'])
    expect(events[0].total).toBeGreaterThan(0)
    expect(await store.listSnapshots()).toHaveLength(1)
  })

  test("the config's onProgress hears the graph build and the checkpoint disconnect() writes", async () => {
    const events: ProgressEvent[] = []
    const { store, manager } = await filled(2000, {
      onProgress: (e: ProgressEvent) => {
        events.push(e)
        throw new Error('observer bug')
      },
    })
    expect(await store.waitForIndex()).toBe(true)
    const built = () => events.some((e) => e.operation === 'rebuild' && e.current === e.total)
    expect(await until(built)).toBe(true)
    const builds = events.filter((e) => e.operation === 'rebuild')
    expect(builds[0]).toMatchObject({ phase: 'build', current: 0, total: 2000 })
    expect(builds.length).toBeLessThanOrEqual(102 * 4)

    await manager.disconnect() // resolves after the close's checkpoint events were delivered
    const closing = events.filter((e) => e.operation === 'checkpoint')
    expect(phasesOf(closing).slice(0, 2)).toEqual(['index', 'write'])
    expect(closing.find((e) => e.phase === 'write')).toMatchObject({ current: 0, total: 2000 })
    expect(events.filter((e) => e.operation === 'open').length).toBeGreaterThan(0)
  })

  test("a checkpoint the WAL's size starts reports to the config's onProgress", async () => {
    const events: ProgressEvent[] = []
    const { store } = await stores.make({
      annAlgorithm: 'flat',
      checkpointWalBytes: 4096,
      onProgress: (e: ProgressEvent) => events.push(e),
    })
    const vectors = randomVectors(400, 3, 4)
    // One WAL record of about 10 KB: its commit starts a checkpoint on a thread of its own.
    await store.insert(vectors, vectors.map((_, i) => i), vectors.map(() => ({})))
    const written = () => events.some((e) => e.operation === 'checkpoint' && e.phase === 'write' && e.total > 0 && e.current === e.total)
    expect(await until(written)).toBe(true)
    expect(phasesOf(events.filter((e) => e.operation === 'checkpoint'))).toContain('write')
  })
})

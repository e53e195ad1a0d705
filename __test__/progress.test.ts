import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, VectorStoreError, type ProgressEvent } from '../index'
import { NativeAdapter, type NativeAdapterProgress } from '../lib/persistence/native'
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

/** Bytes of the one checkpoint file (`snapshot-*.avs`) in `dir`. */
function checkpointBytes(dir: string): number {
  const files = readdirSync(dir).filter((name) => /^snapshot-\d+\.avs$/.test(name))
  expect(files).toHaveLength(1)
  return statSync(join(dir, files[0])).size
}

/** Bytes a checkpoint's `write` phase hands on, and may report, at a time (CHECKPOINT_PIECE). */
const PIECE = 1 << 20

/**
 * A checkpoint's `write` phase in bytes of a file of `bytes`: from 0 to the total, strictly
 * increasing; how many ticks arrive between depends on the disk's speed (at most one per piece
 * written, per whole percent and per 50 ms: the cargo tests in progress.rs count them).
 */
function expectWriteInBytes(events: { phase: string; current: number; total: number }[], bytes: number) {
  const write = events.filter((e) => e.phase === 'write')
  expect(write[0]).toMatchObject({ current: 0, total: bytes })
  expect(write[write.length - 1]).toMatchObject({ current: bytes, total: bytes })
  expect(write.length).toBeLessThanOrEqual(102)
  for (let i = 1; i < write.length; i++) {
    expect(write[i].current).toBeGreaterThan(write[i - 1].current)
    expect(write[i].total).toBe(bytes)
  }
}

/** Turns of the event loop until `done()` (events queued on a worker thread arrive within a few). */
async function until(done: () => boolean) {
  for (let turn = 0; !done() && turn < 100000; turn++) {
    await new Promise((resolve) => setImmediate(resolve))
  }
  return done()
}

describe('progress events of checkpoints, snapshots and graph builds', () => {
  test('checkpoint({ onProgress }) reports writing the file (in bytes), then the indexer wait; a throwing callback does not break it', async () => {
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
    // `write` counts the bytes of the checkpoint file.
    expect(events[0]).toMatchObject({ phase: 'write', current: 0, total: checkpointBytes(join(path, 'docs')), percentage: 0 })
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
    const written = closing.find((e) => e.phase === 'write')
    expect(written).toMatchObject({ current: 0 })
    expect(written?.total).toBeGreaterThan(2000 * 3 * 4)
    expect(events.filter((e) => e.operation === 'open').length).toBeGreaterThan(0)
  })

  test('a checkpoint of several MiB reports its write in bytes of the file, up to its size', async () => {
    const path = stores.dir()
    const { store } = await stores.make({ persistencePath: path, dimension: 256, annAlgorithm: 'flat' })
    const vectors = randomVectors(6000, 256, 5)
    await store.insert(vectors, vectors.map((_, i) => i), vectors.map((_, i) => ({ i })))
    const events: ProgressEvent[] = []
    await store.checkpoint({ onProgress: (e) => events.push(e) })
    expect(phasesOf(events)).toEqual(['write'])
    const bytes = checkpointBytes(join(path, 'docs'))
    expect(bytes).toBeGreaterThan(5 * PIECE)
    expectWriteInBytes(events, bytes)
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

describe("progress events of the key-value store's checkpoints (NativeAdapter)", () => {
  const open: NativeAdapter[] = []
  afterEach(async () => {
    for (const a of open.splice(0)) await a.close()
  })

  test('checkpoint({ onProgress }) and maintain(now, { onProgress }) report the write in bytes; a throwing callback does not break them', async () => {
    const path = stores.dir()
    const kv = new NativeAdapter({ path })
    await kv.init()
    open.push(kv)
    const text = 'x'.repeat(60_000)
    await kv.set(
      Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, value: { kind: 'json' as const, text: JSON.stringify(text + i) }, metadata: '{}', expiresAt: null })),
      1,
    )
    const events: NativeAdapterProgress[] = []
    await kv.checkpoint({
      onProgress: (e) => {
        events.push(e)
        throw new Error('observer bug')
      },
    })
    expect(events.every((e) => e.operation === 'checkpoint')).toBe(true)
    expect(phasesOf(events as ProgressEvent[])).toEqual(['write'])
    expectWriteInBytes(events, checkpointBytes(path))

    // Nothing written since: an empty write.
    const again: NativeAdapterProgress[] = []
    await kv.checkpoint({ onProgress: (e) => again.push(e) })
    expect(again.map((e) => [e.phase, e.total, e.percentage])).toEqual([
      ['write', 0, 100],
      ['write', 0, 100],
    ])

    // maintain: the sweep, then the checkpoint it writes.
    await kv.set([{ key: 'gone', value: { kind: 'json', text: '1' }, metadata: '{}', expiresAt: 5 }], 2)
    const swept: NativeAdapterProgress[] = []
    await kv.maintain(10, { onProgress: (e) => swept.push(e) })
    expect(phasesOf(swept as ProgressEvent[])).toEqual(['write'])
    expectWriteInBytes(swept, checkpointBytes(path))
    expect(await kv.keys(undefined, 10)).toHaveLength(60)

    const bad = await kv.checkpoint({ onProgress: 1 } as never).then(
      () => null,
      (e: { code: number }) => e,
    )
    expect(bad?.code).toBe(1008)
  })
})

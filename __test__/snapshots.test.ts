import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ErrorCodes, PersistenceError, VectorStoreError, type InMemoryVectorStore, type ProgressEvent } from '../index'
import { closed, damage, randomVectors, rejectionOf, storeHarness, waitForLine } from './fixtures'

const PACKAGE = resolve(__dirname, '..')
const stores = storeHarness({ collectionName: 'docs', dimension: 8, annAlgorithm: 'flat' })

async function open(config: Record<string, unknown> = {}) {
  const handle = await stores.make(config)
  return handle.store as InMemoryVectorStore
}

async function insertRange(store: InMemoryVectorStore, from: number, to: number, seed = 1) {
  const vectors = randomVectors(to - from, 8, seed)
  const ids = vectors.map((_, i) => from + i)
  await store.insert(vectors, ids, ids.map((id) => ({ id, seed })))
}

async function ids(store: InMemoryVectorStore): Promise<unknown[]> {
  const [records] = await store.list(undefined, 1_000_000)
  return records.map((r) => r.id)
}

async function expectCode(promise: Promise<unknown>, kind: keyof typeof ErrorCodes) {
  const error = await rejectionOf(promise, VectorStoreError)
  expect(error.kind).toBe(kind)
  expect(error.code).toBe(ErrorCodes[kind])
  return error
}

describe('named snapshots', () => {
  test('create, list, restore and delete, with writes before and after', async () => {
    const path = stores.dir()
    const store = await open({ persistencePath: path })
    await insertRange(store, 0, 50)
    await store.checkpoint()
    await insertRange(store, 50, 60, 2)
    const info = await store.createSnapshot('before-reingest', { metadata: { reason: 'reingest', tags: ['a'] } })
    expect(info).toEqual({
      id: expect.stringMatching(/^\d{13}-[0-9a-f]{8}$/),
      name: 'before-reingest',
      createdAt: expect.any(Number),
      sequence: expect.any(Number),
      count: 60,
      bytes: expect.any(Number),
      checksum: expect.stringMatching(/^[0-9a-f]{64}$/),
      metadata: { reason: 'reingest', tags: ['a'] },
    })
    expect(Math.abs(info.createdAt - Date.now())).toBeLessThan(3_600_000)
    const snapshotIds = await ids(store)

    // Writes after the snapshot, some not awaited before the restore is called.
    await store.delete(3)
    await store.deleteCollection()
    const late = insertRange(store, 1000, 1010, 3)
    const restoring = store.restoreSnapshot('before-reingest')
    await late
    expect(await restoring).toEqual(info)
    expect(await ids(store)).toEqual(snapshotIds)
    expect(await store.get(3)).toMatchObject({ id: 3, payload: { id: 3, seed: 1 } })

    // A write issued after the restore applies on top of it; both survive a reconnect.
    await store.delete(0)
    expect(await store.listSnapshots()).toEqual([info])
    await store.disconnect()
    await store.connect()
    expect(await ids(store)).toEqual(snapshotIds.filter((id) => id !== 0))
    expect(readdirSync(join(path, 'docs', 'snapshots'))).toEqual([info.id])

    // By id too.
    await store.restoreSnapshot(info.id)
    expect(await store.count()).toBe(60)

    expect(await store.deleteSnapshot(info.id)).toEqual(info)
    expect(await store.listSnapshots()).toEqual([])
    expect(existsSync(join(path, 'docs', 'snapshots', info.id))).toBe(false)
  })

  test('a snapshot without a name is named by its id', async () => {
    const store = await open()
    await insertRange(store, 0, 3)
    const info = await store.createSnapshot()
    expect(info.name).toBe(info.id)
    expect(info.metadata).toBeNull()
    await store.deleteCollection()
    await store.restoreSnapshot(info.name)
    expect(await store.count()).toBe(3)
  })

  test('unknown snapshots are NOT_FOUND, unsafe and taken names INVALID_NAME, and nothing changes', async () => {
    const store = await open()
    await insertRange(store, 0, 5)
    const taken = await store.createSnapshot('taken')
    for (const name of ['../x', '/', '\\', '', 'a\0b', 'x'.repeat(129), '\ud800']) {
      await expectCode(store.createSnapshot(name), 'INVALID_NAME')
      await expectCode(store.restoreSnapshot(name), 'INVALID_NAME')
      await expectCode(store.deleteSnapshot(name), 'INVALID_NAME')
    }
    for (const name of [42, null, {}] as unknown[]) {
      await expectCode(store.restoreSnapshot(name as string), 'INVALID_NAME')
    }
    await expectCode(store.createSnapshot('taken'), 'INVALID_NAME')
    await expectCode(store.createSnapshot(taken.id), 'INVALID_NAME')
    const missing = await expectCode(store.restoreSnapshot('never-made'), 'NOT_FOUND')
    expect(missing.message).toContain('never-made')
    await expectCode(store.deleteSnapshot('never-made'), 'NOT_FOUND')
    await expectCode(store.createSnapshot('m', { metadata: () => 1 } as never), 'INVALID_ARGUMENT')
    await expectCode(store.createSnapshot('m', { other: 1 } as never), 'INVALID_ARGUMENT')
    expect(await store.listSnapshots()).toEqual([taken])
    expect(await store.count()).toBe(5)
  })

  test('a damaged snapshot is refused as CORRUPT and the store keeps its state', async () => {
    const path = stores.dir()
    const store = await open({ persistencePath: path })
    await insertRange(store, 0, 40)
    await store.checkpoint()
    await insertRange(store, 40, 45, 2)
    const info = await store.createSnapshot('s')
    await insertRange(store, 100, 110, 3)
    const before = await ids(store)
    const dir = join(path, 'docs', 'snapshots', info.id)
    const name = damage(dir, 'snapshot-', (length) => Math.floor(length / 2))
    const error = await expectCode(store.restoreSnapshot('s'), 'CORRUPT')
    expect(error).toBeInstanceOf(PersistenceError)
    expect(error.message).toContain(name)
    expect(await ids(store)).toEqual(before)
    // Writes go on.
    await store.delete(100)
    expect(await store.count()).toBe(before.length - 1)
  })

  test('maxSnapshots keeps the newest', async () => {
    const store = await open({ maxSnapshots: 2 })
    for (let k = 0; k < 4; k++) {
      await insertRange(store, k, k + 1)
      await store.createSnapshot(`s${k}`)
    }
    expect((await store.listSnapshots()).map((s) => s.name)).toEqual(['s2', 's3'])
    await store.restoreSnapshot('s2')
    expect(await store.count()).toBe(3)
    for (const maxSnapshots of [0, 1.5, -1]) {
      await expectCode(open({ maxSnapshots }), 'INVALID_ARGUMENT')
    }
  })

  test('restore reports progress: verify, load, write', async () => {
    const store = await open()
    await insertRange(store, 0, 200)
    await store.checkpoint()
    await insertRange(store, 200, 210, 2)
    await store.createSnapshot('s')
    const events: ProgressEvent[] = []
    await store.restoreSnapshot('s', {
      onProgress: (event) => {
        events.push(event)
        throw new Error('an observer failing does not fail the restore')
      },
    })
    expect(events.every((e) => e.operation === 'restore')).toBe(true)
    expect([...new Set(events.map((e) => e.phase))]).toEqual(['verify', 'load', 'write'])
    expect(events[events.length - 1]).toMatchObject({ phase: 'write', percentage: 100 })
    await expectCode(store.restoreSnapshot('s', { onProgress: 1 } as never), 'INVALID_ARGUMENT')
  })

  test('a memory-only store has no snapshots to list and refuses to take one', async () => {
    const store = await open({ annPersistIndex: false })
    expect(await store.listSnapshots()).toEqual([])
    await expectCode(store.createSnapshot('s'), 'INVALID_ARGUMENT')
    await expectCode(store.restoreSnapshot('s'), 'NOT_FOUND')
  })

  test('a restore killed at any moment leaves the collection as it was or as the snapshot', async () => {
    const path = stores.dir()
    const store = await open({ persistencePath: path })
    await insertRange(store, 0, 3000)
    await store.checkpoint()
    await insertRange(store, 3000, 3100, 2)
    await store.createSnapshot('s')
    const snapshotIds = await ids(store)
    await store.deleteCollection()
    await insertRange(store, 5000, 5050, 3)
    const laterIds = await ids(store)
    await store.disconnect()

    const script = `
      const { createVectorStore } = require(${JSON.stringify(PACKAGE)})
      createVectorStore({ collectionName: 'docs', dimension: 8, annAlgorithm: 'flat', persistencePath: process.argv[1] })
        .then(async ({ store }) => {
          process.stdout.write('ready\\n')
          await store.restoreSnapshot('s')
          process.stdout.write('restored\\n')
          process.exit(0)
        })`
    // One restore left to finish, to learn how long one takes here: the kills below then fall
    // from its start to past its end. (Timing only spreads the kills; nothing asserts it.)
    let span
    {
      const child = spawn(process.execPath, ['-e', script, path])
      const done = closed(child)
      await waitForLine(child, (line) => line === 'ready')
      const started = Date.now()
      await waitForLine(child, (line) => line === 'restored')
      span = Date.now() - started
      await done
    }
    await store.connect()
    expect(await ids(store)).toEqual(snapshotIds)
    await store.deleteCollection()
    await insertRange(store, 5000, 5050, 3)
    await store.disconnect()

    const outcomes: string[] = []
    const rounds = 10
    for (let round = 0; round < rounds; round++) {
      const child = spawn(process.execPath, ['-e', script, path])
      const done = closed(child)
      await waitForLine(child, (line) => line === 'ready')
      await new Promise((r) => setTimeout(r, (span * round) / (rounds - 2)))
      child.kill('SIGKILL')
      await done
      await store.connect()
      const now = await ids(store)
      if (JSON.stringify(now) === JSON.stringify(snapshotIds)) {
        outcomes.push('snapshot')
        // Back to the later state for the next round.
        await store.deleteCollection()
        await insertRange(store, 5000, 5050, 3)
      } else {
        expect(now).toEqual(laterIds)
        outcomes.push('before')
      }
      expect(await ids(store)).toEqual(laterIds)
      await store.disconnect()
    }
    expect(outcomes).toHaveLength(rounds)
  }, 120_000)
})

describe('auto-save', () => {
  test('timers never keep the process alive', () => {
    const dir = stores.dir()
    const script = `
      const { createVectorStore } = require(${JSON.stringify(PACKAGE)})
      createVectorStore({
        collectionName: 'docs', dimension: 3, persistencePath: process.argv[1],
        durability: 'flush', autoSaveIntervalMs: 5, checkpointIntervalMs: 5,
      }).then(async ({ store }) => {
        await store.insert([[1, 2, 3]], [1], [{}])
        for (;;) {
          const { autoSave } = await store.stats()
          if (autoSave.syncs > 0 && autoSave.checkpoints > 0) break
          await new Promise((r) => setTimeout(r, 5))
        }
        process.stdout.write('saved\\n')
        // No disconnect, no process.exit: only the timers could keep it running.
      })`
    // The timeout only catches a process that never exits; a clean exit is what is asserted.
    const result = spawnSync(process.execPath, ['-e', script, dir], { encoding: 'utf8', timeout: 60_000 })
    expect(result.stderr).toBe('')
    expect(result.stdout).toBe('saved\n')
    expect(result.signal).toBeNull()
    expect(result.status).toBe(0)
    // The timed checkpoint wrote a checkpoint file.
    expect(readdirSync(join(dir, 'docs')).some((n) => n.startsWith('snapshot-'))).toBe(true)
  })

  test('timed fsyncs and checkpoints run only when configured, and show in stats', async () => {
    const store = await open({ durability: 'flush', autoSaveIntervalMs: 5, checkpointIntervalMs: 5 })
    await insertRange(store, 0, 10)
    let stats = await store.stats()
    while (stats.autoSave!.syncs === 0 || stats.autoSave!.checkpoints === 0) {
      await new Promise((r) => setTimeout(r, 5))
      stats = await store.stats()
    }
    expect(stats.autoSave).toMatchObject({ autoSaveIntervalMs: 5, checkpointIntervalMs: 5, lastError: null })
    expect(stats.walBytes).toBeLessThan(100)
    const plain = await open({ durability: 'fsync', autoSaveIntervalMs: 5 })
    expect((await plain.stats()).autoSave).toEqual({
      autoSaveIntervalMs: null,
      checkpointIntervalMs: null,
      syncs: 0,
      checkpoints: 0,
      lastError: null,
    })
    for (const autoSaveIntervalMs of [0, -5, Infinity, 'often']) {
      await expectCode(open({ autoSaveIntervalMs } as never), 'INVALID_ARGUMENT')
    }
  })

  test('a failed timed checkpoint is not swallowed: the next write rejects with it', async () => {
    const path = stores.dir()
    const store = await open({ persistencePath: path, checkpointIntervalMs: 5 })
    await insertRange(store, 0, 5)
    let stats = await store.stats()
    while (stats.autoSave!.checkpoints === 0) {
      await new Promise((r) => setTimeout(r, 5))
      stats = await store.stats()
    }
    // A directory where the next checkpoint must create its new WAL file (ticks find nothing
    // to checkpoint meanwhile): the checkpoint after the next write fails.
    const dir = join(path, 'docs')
    const newest = Math.max(...readdirSync(dir).filter((n) => n.startsWith('wal-')).map((n) => Number(n.slice(4, 24))))
    mkdirSync(join(dir, `wal-${String(newest + 1).padStart(20, '0')}.log`))
    await insertRange(store, 5, 6)
    while (stats.autoSave!.lastError === null) {
      await new Promise((r) => setTimeout(r, 5))
      stats = await store.stats()
    }
    expect(stats.autoSave!.lastError).toContain(`wal-${String(newest + 1).padStart(20, '0')}.log`)
    const error = await rejectionOf(insertRange(store, 7, 8), PersistenceError)
    expect(error.operation).toBe('checkpoint')
    expect(error.message).toBe(stats.autoSave!.lastError)
    // Reported once; writes stay refused (the failed rotation disabled them) until a reconnect.
    await expectCode(insertRange(store, 8, 9), 'WRITES_DISABLED')
  })
})

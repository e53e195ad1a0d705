import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  createPersistentInMemoryStore,
  createVectorStore,
  PersistenceError,
  VectorStoreError,
  type VectorStoreConfig,
  type VectorStoreHandle,
} from '../index'
import { rejectionOf, rng, tempDirs } from './fixtures'

const dirs = tempDirs()
const open: VectorStoreHandle[] = []
const children = join(__dirname, 'children')

afterEach(async () => {
  for (const { manager } of open.splice(0)) await manager.disconnect()
  dirs.cleanup()
})

async function make(config: Partial<VectorStoreConfig> & { persistencePath: string }): Promise<VectorStoreHandle> {
  const handle = await createVectorStore({ collectionName: 'docs', dimension: 3, ...config })
  open.push(handle)
  return handle
}

/** Runs `body` in a child process with `store` open on `path`; the child exits without disconnecting. */
function inChild(path: string, body: string): void {
  const script = `
    const { createVectorStore } = require(${JSON.stringify(join(__dirname, '..'))})
    createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: process.argv[1] }).then(async ({ store }) => {
      ${body}
      process.exit(0) // no disconnect: nothing but the WAL holds the data
    })`
  const result = spawnSync(process.execPath, ['-e', script, path], { encoding: 'utf8' })
  expect(result.stderr).toBe('')
  expect(result.status).toBe(0)
}

async function closeAll(): Promise<void> {
  for (const { manager } of open.splice(0)) await manager.disconnect()
}

async function persistenceError(promise: Promise<unknown>): Promise<PersistenceError> {
  const error = await rejectionOf(promise, PersistenceError)
  expect(error).toBeInstanceOf(VectorStoreError)
  return error
}

describe('restart persistence', () => {
  test('every kind of write survives a reopen through the factory', async () => {
    const path = dirs.next()
    const first = await createPersistentInMemoryStore('docs', 3, path)
    const { store } = first
    await store.insert([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [1, 'two', 3], [{ a: 1 }, { b: 'x' }, { c: [1, 2] }])
    await store.update('two', [0, 2, 0], { b: 'y' })
    await store.delete(3)
    await first.manager.disconnect()

    const second = await createPersistentInMemoryStore('docs', 3, path)
    open.push(second)
    expect(await second.store.list()).toEqual([
      [
        { id: 1, payload: { a: 1 } },
        { id: 'two', payload: { b: 'y' } },
      ],
      2,
    ])
    expect((await second.store.get('two'))?.vector).toEqual([0, 2, 0])
    expect(existsSync(join(path, 'docs', 'MANIFEST'))).toBe(true)
  })

  test('writes survive without a clean disconnect (WAL replay), in another process', async () => {
    const path = dirs.next()
    inChild(path, `
      await store.insert([[1, 2, 3]], ['kept'], [{ n: 1 }])
      await store.update('kept', [3, 2, 1], { n: 2 })`)
    const { store } = await make({ persistencePath: path })
    expect(await store.get('kept')).toEqual({ id: 'kept', vector: [3, 2, 1], payload: { n: 2 } })
    const stats = await store.stats()
    expect(stats.replayedRecords).toBe(2)
  })

  test('deleteCollection persists', async () => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path })
    await store.insert([[1, 1, 1]], [1], [{}])
    await store.deleteCollection()
    await store.insert([[2, 2, 2]], [2], [{}])
    await closeAll()
    const again = await make({ persistencePath: path })
    expect((await again.store.list())[0].map((r) => r.id)).toEqual([2])
  })

  test('disconnect and connect on the same store reload from disk', async () => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path })
    await store.insert([[1, 1, 1]], ['a'], [{ v: 1 }])
    await store.disconnect()
    await store.connect()
    expect(await store.get('a')).toEqual({ id: 'a', vector: [1, 1, 1], payload: { v: 1 } })
  })

  test('checkpoint writes a snapshot and empties the log; data survives', async () => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path })
    const vectors = Array.from({ length: 200 }, (_, i) => [i, 1, 2])
    await store.insert(vectors, vectors.map((_, i) => i), vectors.map((_, i) => ({ i })))
    const before = await store.stats()
    expect(before.walBytes).toBeGreaterThan(200 * 12)
    await store.checkpoint()
    const after = await store.stats()
    expect(after.lastCheckpointMs).not.toBeNull()
    expect(after.walBytes).toBeLessThan(100)
    const snapshots = readdirSync(join(path, 'docs')).filter((f) => f.startsWith('snapshot-'))
    expect(snapshots).toHaveLength(1)
    // Nothing changed since: neither checkpoint() nor disconnect() writes another snapshot.
    await store.checkpoint()
    expect((await store.stats()).lastCheckpointMs).toBe(after.lastCheckpointMs)
    await closeAll()
    expect(readdirSync(join(path, 'docs')).filter((f) => f.startsWith('snapshot-'))).toEqual(snapshots)
    const again = await make({ persistencePath: path })
    expect(await again.store.count()).toBe(200)
    expect((await again.store.stats()).recoveredSnapshotPoints).toBe(200)
  })

  test('a small checkpointWalBytes checkpoints in the background while writes go on', async () => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path, checkpointWalBytes: 4096 })
    for (let i = 0; i < 300; i++) await store.insert([[i, 0, 1]], [i], [{ i }])
    let stats = await store.stats()
    for (let tries = 0; stats.lastCheckpointMs === null && tries < 200; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
      stats = await store.stats()
    }
    expect(stats.lastCheckpointMs).not.toBeNull()
    expect(stats.lastCheckpointError).toBeNull()
    await closeAll()
    const again = await make({ persistencePath: path })
    expect(await again.store.count()).toBe(300)
  })

  test.each(['flush', 'fsync'] as const)('durability %s persists, gzip snapshots too', async (durability) => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path, durability, compression: 'gzip' })
    await store.insert([[1, 2, 3]], ['x'], [{ text: 'hello '.repeat(100) }])
    await closeAll()
    const again = await make({ persistencePath: path, compression: 'gzip' })
    expect((await again.store.get('x'))?.payload).toEqual({ text: 'hello '.repeat(100) })
  })

  test.each([
    ['flush', { durability: 'flush' as const }],
    ['memory only', { annPersistIndex: false }],
  ])('%s: small writes applied at once keep call order and reject with typed errors', async (_name, extra) => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path, ...extra })
    const big = Array.from({ length: 6000 }, (_, i) => [i, 1, 1])
    const calls = [
      store.insert(big, big.map((_, i) => `big-${i}`), big.map(() => ({}))), // large: goes to the thread pool
      store.insert([[1, 0, 0]], ['x'], [{ step: 1 }]), // queued behind it, not applied ahead of it
      store.update('x', [0, 1, 0], { step: 2 }),
      store.delete('big-0'),
    ]
    const bad = store.insert([[1, 0]], ['y'], [{}])
    await Promise.all(calls)
    await expect(bad).rejects.toMatchObject({ name: 'VectorDimensionError', expectedDimension: 3, actualDimension: 2 })
    expect(await store.get('x')).toEqual({ id: 'x', vector: [0, 1, 0], payload: { step: 2 } })
    expect(await store.get('big-0')).toBeNull()
    expect(await store.count()).toBe(6000)
    await closeAll()
    if (!('annPersistIndex' in extra)) {
      const again = await make({ persistencePath: path })
      expect(await again.store.count()).toBe(6000)
      expect((await again.store.get('x'))?.payload).toEqual({ step: 2 })
    }
  })

  test('annPersistIndex: false touches no file', async () => {
    const path = join(dirs.next(), 'never-created')
    const { store, manager } = await make({ persistencePath: path, annPersistIndex: false })
    await store.insert([[1, 2, 3]], ['x'], [{}])
    await store.checkpoint()
    expect(manager.getInfo().persistent).toBe(false)
    expect((await store.stats()).persistent).toBe(false)
    expect(existsSync(path)).toBe(false)
  })

  test('stats reports count, bytes and sequence', async () => {
    const path = dirs.next()
    const { store } = await make({ persistencePath: path })
    await store.insert([[1, 2, 3]], [1], [{}])
    await store.insert([[1, 2, 3]], [2], [{}])
    const stats = await store.stats()
    expect(stats).toMatchObject({ count: 2, persistent: true, sequence: 2, path: join(path, 'docs') })
    expect(stats.bytesOnDisk).toBeGreaterThan(stats.walBytes)
    expect(stats.walBytes).toBeGreaterThan(0)
  })
})

describe('lock', () => {
  test('a second store on the same collection in this process gets IN_USE until the first disconnects', async () => {
    const path = dirs.next()
    const first = await make({ persistencePath: path })
    const error = await persistenceError(createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: path }))
    expect(error.kind).toBe('IN_USE')
    expect(error.code).toBe(5001)
    expect(error.message).toContain('in use')
    await first.manager.disconnect()
    const second = await make({ persistencePath: path })
    expect(second.store.isConnected()).toBe(true)
  })

  test('two processes: the second opener gets IN_USE; the lock dies with a killed holder', async () => {
    const path = dirs.next()
    const holder = spawn(process.execPath, [join(children, 'holder.js'), path, 'docs'])
    await waitForLine(holder, (line) => line === 'open')
    const contender = spawnSync(process.execPath, [join(children, 'holder.js'), path, 'docs'], { encoding: 'utf8' })
    expect(JSON.parse(contender.stdout.trim().replace(/^error /, ''))).toEqual({
      name: 'PersistenceError',
      kind: 'IN_USE',
      code: 5001,
    })
    await expect(createVectorStore({ collectionName: 'docs', dimension: 2, persistencePath: path })).rejects.toMatchObject({
      kind: 'IN_USE',
    })
    holder.kill('SIGKILL')
    await new Promise((resolve) => holder.once('exit', resolve))
    const after = await make({ persistencePath: path, dimension: 2 })
    expect(after.store.isConnected()).toBe(true)
  })
})

describe('corruption and configuration', () => {
  async function seeded(path: string): Promise<void> {
    const { store, manager } = await createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: path })
    await store.insert([[1, 0, 0]], [1], [{}])
    await store.checkpoint()
    await store.insert([[0, 1, 0]], [2], [{}])
    await store.insert([[0, 0, 1]], [3], [{}])
    await store.insert([[1, 1, 0]], [4], [{}])
    // Leave without a checkpoint so the WAL keeps its records.
    await manager.disconnect().catch(() => undefined)
  }

  function walFile(path: string): string {
    const name = readdirSync(join(path, 'docs')).find((f) => f.startsWith('wal-'))
    if (!name) throw new Error('no WAL file')
    return join(path, 'docs', name)
  }

  test('a reopen with another dimension is CONFIG_MISMATCH and changes nothing', async () => {
    const path = dirs.next()
    await seeded(path)
    const error = await persistenceError(createPersistentInMemoryStore('docs', 4, path))
    expect(error.kind).toBe('CONFIG_MISMATCH')
    const { store } = await make({ persistencePath: path })
    expect(await store.count()).toBe(4)
  })

  test('a corrupt snapshot refuses to open, naming the file and offset', async () => {
    const path = dirs.next()
    await seeded(path)
    const dir = join(path, 'docs')
    const snapshot = readdirSync(dir).find((f) => f.startsWith('snapshot-'))
    if (!snapshot) throw new Error('no snapshot')
    const bytes = readFileSync(join(dir, snapshot))
    bytes[bytes.length - 3] ^= 0xff
    writeFileSync(join(dir, snapshot), bytes)
    const error = await persistenceError(make({ persistencePath: path }))
    expect(error.kind).toBe('CORRUPT')
    expect(error.details).toMatchObject({ file: join(dir, snapshot) })
    expect(typeof error.details.offset).toBe('number')
    expect(error.message).toContain(snapshot)
  })

  test('a bad record followed by good ones refuses to open; recovery truncate keeps the prefix and a copy', async () => {
    const path = dirs.next()
    // Disconnect checkpoints, so write the WAL records from a process that exits without one.
    inChild(path, 'for (let i = 1; i <= 4; i++) await store.insert([[i, 0, 0]], [i], [{ i }])')
    const wal = walFile(path)
    const bytes = readFileSync(wal)
    const size = bytes.length
    // Records are equal-sized here; damage the second of four.
    const recordLength = (size - 40) / 4
    const offset = 40 + recordLength + 20
    bytes[offset] ^= 0x01
    writeFileSync(wal, bytes)

    const error = await persistenceError(make({ persistencePath: path }))
    expect(error.kind).toBe('CORRUPT')
    expect(error.details).toMatchObject({ file: wal, offset: 40 + recordLength })
    expect(readFileSync(wal).length).toBe(size) // refusing changed nothing

    const { store } = await make({ persistencePath: path, recovery: 'truncate' })
    expect((await store.list())[0].map((r) => r.id)).toEqual([1])
    const stats = await store.stats()
    expect(stats.recoveredTo).not.toBeNull()
    const kept = readdirSync(stats.recoveredTo as string)
    expect(kept.length).toBe(1)
    expect(statSync(join(stats.recoveredTo as string, kept[0])).size).toBe(size - 40 - recordLength)
  })

  test('a torn tail is cut and the store opens with every complete record', async () => {
    const path = dirs.next()
    inChild(path, 'for (let i = 1; i <= 3; i++) await store.insert([[i, 0, 0]], [i], [{ i }])')
    const wal = walFile(path)
    const bytes = readFileSync(wal)
    writeFileSync(wal, bytes.subarray(0, bytes.length - 5))
    const { store } = await make({ persistencePath: path })
    expect((await store.list())[0].map((r) => r.id)).toEqual([1, 2])
    expect((await store.stats()).tornBytes).toBeGreaterThan(0)
  })

  test('a missing manifest with data beside it refuses to start empty', async () => {
    const path = dirs.next()
    await seeded(path)
    const dir = join(path, 'docs')
    writeFileSync(join(dir, 'MANIFEST.bak'), readFileSync(join(dir, 'MANIFEST')))
    rmSync(join(dir, 'MANIFEST'))
    const error = await persistenceError(make({ persistencePath: path }))
    expect(error.kind).toBe('CORRUPT')
    expect(error.message).toContain('MANIFEST')
  })
})

describe('legacy layout', () => {
  test('the older backend’s files are imported on first open and left untouched; export writes them back', async () => {
    const path = dirs.next()
    const metadata = {
      dimension: 3,
      algorithm: 'hnsw',
      vectorCount: 3,
      faissAvailable: false,
      vectors: [
        ['a', [1, 0, 0]],
        [7, [0, 1, 0]],
        ['no-payload', [0, 0, 1]],
      ],
    }
    const payloads = [
      ['a', { title: 'A' }],
      [7, { title: 'seven' }],
    ]
    writeFileSync(join(path, 'ann_metadata.json'), JSON.stringify(metadata))
    writeFileSync(join(path, 'payloads.json'), JSON.stringify(payloads))
    const originals = [readFileSync(join(path, 'ann_metadata.json')), readFileSync(join(path, 'payloads.json'))]

    const { store } = await make({ persistencePath: path })
    expect(await store.get(7)).toEqual({ id: 7, vector: [0, 1, 0], payload: { title: 'seven' } })
    expect(await store.get('no-payload')).toEqual({ id: 'no-payload', vector: [0, 0, 1], payload: {} })
    expect(readFileSync(join(path, 'ann_metadata.json'))).toEqual(originals[0])
    expect(readFileSync(join(path, 'payloads.json'))).toEqual(originals[1])

    // Persisted natively: a change survives a reopen and is not re-imported over.
    await store.delete('a')
    await closeAll()
    const again = await make({ persistencePath: path })
    expect(await again.store.count()).toBe(2)

    const out = join(dirs.next(), 'export')
    await again.store.exportLegacy(out)
    const exported = JSON.parse(readFileSync(join(out, 'ann_metadata.json'), 'utf8'))
    expect(exported).toMatchObject({ dimension: 3, vectorCount: 2 })
    expect(exported.vectors).toEqual([
      [7, [0, 1, 0]],
      ['no-payload', [0, 0, 1]],
    ])
    expect(JSON.parse(readFileSync(join(out, 'payloads.json'), 'utf8'))).toEqual([
      [7, { title: 'seven' }],
      ['no-payload', {}],
    ])

    // The exported layout imports again.
    const third = await make({ persistencePath: out, collectionName: 'reimported' })
    expect(await third.store.count()).toBe(2)
  })

  test('a malformed legacy file refuses to open with LEGACY_FORMAT', async () => {
    const path = dirs.next()
    writeFileSync(join(path, 'ann_metadata.json'), JSON.stringify({ dimension: 3, vectors: [['a', [1, 'x', 0]]] }))
    const error = await persistenceError(make({ persistencePath: path }))
    expect(error.kind).toBe('LEGACY_FORMAT')
    expect(existsSync(join(path, 'docs', 'snapshot-00000000000000000000.avs'))).toBe(false)
  })
})

describe('crash: a writer process killed with SIGKILL', () => {
  test('every acknowledged write survives 50 kills at random moments, and no batch is half there', async () => {
    const path = dirs.next()
    mkdirSync(path, { recursive: true })
    const random = rng(2024)
    const acknowledged = new Set<number>()
    let next = 1
    for (let round = 0; round < 50; round++) {
      const durability = round % 5 === 4 ? 'flush' : 'fsync'
      const child = spawn(process.execPath, [join(children, 'writer.js'), path, 'crash', String(next), durability])
      await waitForLine(child, (line) => line === 'ready')
      const acks: number[] = []
      child.stdout.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) if (line.startsWith('ack ')) acks.push(Number(line.slice(4)))
      })
      await new Promise((resolve) => setTimeout(resolve, 5 + random() * 60))
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
      for (const id of acks) acknowledged.add(id)
      next += 100_000

      const handle = await createVectorStore({ collectionName: 'crash', dimension: 8, persistencePath: path })
      const [records] = await handle.store.list(undefined, 10_000_000)
      const present = new Set(records.map((r) => r.id))
      for (const id of acknowledged) expect(present.has(id)).toBe(true)
      for (const r of records) {
        const id = typeof r.id === 'number' ? r.id : Number(String(r.id).slice('batch-'.length))
        if (id % 7 === 3) {
          expect(present.has(id) && present.has(`batch-${id}`)).toBe(true)
        }
        expect(r.payload.id).toBe(id)
      }
      await handle.manager.disconnect()
    }
    expect(acknowledged.size).toBeGreaterThan(50)
  }, 180_000)
})

function waitForLine(child: ChildProcessWithoutNullStreams, match: (line: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = ''
    let errors = ''
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString()
      const lines = buffer.split('\n')
      buffer = lines.pop() ?? ''
      if (lines.some(match)) {
        child.stdout.off('data', onData)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (chunk: Buffer) => {
      errors += chunk.toString()
    })
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before the expected line: ${errors}`)))
  })
}

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createPersistentInMemoryStore, createVectorStore } from '../index'
import { closed, damage, diskContents, inChild, onLines, persistenceError, rng, storeHarness, trimWal, waitForLine } from './fixtures'

const stores = storeHarness()
const { make, closeAll } = stores
const children = join(__dirname, 'children')

describe('restart persistence', () => {
  test('every kind of write survives a reopen through the factory', async () => {
    const path = stores.dir()
    const first = await createPersistentInMemoryStore('docs', 3, path)
    const { store } = first
    await store.insert([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [1, 'two', 3], [{ a: 1 }, { b: 'x' }, { c: [1, 2] }])
    await store.update('two', [0, 2, 0], { b: 'y' })
    await store.delete(3)
    await first.manager.disconnect()

    const second = stores.track(await createPersistentInMemoryStore('docs', 3, path))
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
    const path = stores.dir()
    inChild(path, `
      await store.insert([[1, 2, 3]], ['kept'], [{ n: 1 }])
      await store.update('kept', [3, 2, 1], { n: 2 })`)
    const { store } = await make({ persistencePath: path })
    expect(await store.get('kept')).toEqual({ id: 'kept', vector: [3, 2, 1], payload: { n: 2 } })
    const stats = await store.stats()
    expect(stats.replayedRecords).toBe(2)
  })

  test('deleteCollection persists', async () => {
    const path = stores.dir()
    const { store } = await make({ persistencePath: path })
    await store.insert([[1, 1, 1]], [1], [{}])
    await store.deleteCollection()
    await store.insert([[2, 2, 2]], [2], [{}])
    await closeAll()
    const again = await make({ persistencePath: path })
    expect((await again.store.list())[0].map((r) => r.id)).toEqual([2])
  })

  test('disconnect and connect on the same store reload from disk', async () => {
    const path = stores.dir()
    const { store } = await make({ persistencePath: path })
    await store.insert([[1, 1, 1]], ['a'], [{ v: 1 }])
    await store.disconnect()
    await store.connect()
    expect(await store.get('a')).toEqual({ id: 'a', vector: [1, 1, 1], payload: { v: 1 } })
  })

  test('checkpoint writes a snapshot and empties the log; data survives', async () => {
    const path = stores.dir()
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
    const path = stores.dir()
    const { store } = await make({ persistencePath: path, checkpointWalBytes: 4096 })
    let written = 0
    const burst = () => {
      const ids = Array.from({ length: 20 }, () => written++)
      return Promise.all(ids.map((i) => store.insert([[i, 0, 1]], [i], [{ i }])))
    }
    // Writes never stop: the next burst is issued before the one in flight is awaited. Between
    // bursts stats() tells whether a background checkpoint has finished; the writes go on for
    // three bursts after one has (no clock: only jest's timeout bounds the wait).
    let inFlight = burst()
    let burstsAfterCheckpoint = 0
    while (burstsAfterCheckpoint < 3) {
      const next = burst()
      await inFlight
      inFlight = next
      const stats = await store.stats()
      expect(stats.lastCheckpointError).toBeNull()
      if (stats.lastCheckpointMs !== null) burstsAfterCheckpoint++
    }
    await inFlight
    expect(await store.count()).toBe(written)
    expect(readdirSync(join(path, 'docs')).some((f) => f.startsWith('snapshot-'))).toBe(true)
    await closeAll()
    const again = await make({ persistencePath: path })
    const [records, total] = await again.store.list(undefined, written + 1)
    expect(total).toBe(written)
    records.forEach((r, i) => expect(r).toEqual({ id: i, payload: { i } }))
  })

  test.each(['flush', 'fsync'] as const)('durability %s persists, gzip snapshots too', async (durability) => {
    const path = stores.dir()
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
    const path = stores.dir()
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
    const path = join(stores.dir(), 'never-created')
    const { store, manager } = await make({ persistencePath: path, annPersistIndex: false })
    await store.insert([[1, 2, 3]], ['x'], [{}])
    await store.checkpoint()
    expect(manager.getInfo().persistent).toBe(false)
    expect((await store.stats()).persistent).toBe(false)
    expect(existsSync(path)).toBe(false)
  })

  test('stats reports count, bytes and sequence', async () => {
    const path = stores.dir()
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
    const path = stores.dir()
    const first = await make({ persistencePath: path })
    await first.store.insert([[1, 2, 3]], ['a'], [{}])
    const before = diskContents(path)
    const error = await persistenceError(createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: path }))
    expect([error.kind, error.code]).toEqual(['IN_USE', 5001])
    expect(error.details).toEqual({ path: join(path, 'docs') })
    expect(error.message).toContain('in use')
    expect(diskContents(path)).toEqual(before)
    await first.manager.disconnect()
    const second = await make({ persistencePath: path })
    expect(second.store.isConnected()).toBe(true)
  })

  test('two processes: the second opener gets IN_USE; the lock dies with a killed holder', async () => {
    const path = stores.dir()
    const holder = spawn(process.execPath, [join(children, 'holder.js'), path, 'docs'])
    const done = closed(holder)
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
    await done
    const after = await make({ persistencePath: path, dimension: 2 })
    expect(after.store.isConnected()).toBe(true)
  })
})

describe('corruption and configuration', () => {
  /** A collection as a crash leaves it: a snapshot holding point 1, then three WAL records (points 2–4). */
  function snapshotAndWal(path: string): void {
    inChild(
      path,
      `await store.insert([[1, 0, 0]], [1], [{}])
      await store.checkpoint()
      await store.insert([[0, 1, 0]], [2], [{}])
      await store.insert([[0, 0, 1]], [3], [{}])
      await store.insert([[1, 1, 0]], [4], [{}])`,
    )
  }

  function walFile(path: string): string {
    const name = readdirSync(join(path, 'docs')).find((f) => f.startsWith('wal-'))
    if (!name) throw new Error('no WAL file')
    return join(path, 'docs', name)
  }

  test.each([
    ['dimension', { dimension: 4 }, 'dimension 3, the store was opened with 4'],
    ['distance', { distance: 'Dot' as const }, 'distance Cosine, the store was opened with Dot'],
  ])('a reopen with another %s is CONFIG_MISMATCH and changes nothing', async (_what, config, reason) => {
    const path = stores.dir()
    snapshotAndWal(path)
    const before = diskContents(path)
    const error = await persistenceError(make({ persistencePath: path, ...config }))
    expect([error.kind, error.code]).toEqual(['CONFIG_MISMATCH', 5008])
    expect(error.message).toContain(reason)
    expect(diskContents(path)).toEqual(before)
    const { store } = await make({ persistencePath: path })
    expect(await store.count()).toBe(4)
    expect(await store.stats()).toMatchObject({ recoveredSnapshotPoints: 1, replayedRecords: 3 })
  })

  // The header is 64 bytes, its checksum at 60; the body follows, checked whole by its checksum
  // (crates/core/src/storage/snapshot.rs).
  test.each([
    ['a body byte', (length: number) => length - 3, 64],
    ['a header byte (the dimension)', () => 16, 60],
  ])('a snapshot with %s damaged refuses to open, naming the file and offset, and changes nothing', async (_what, at, offset) => {
    const path = stores.dir()
    snapshotAndWal(path)
    const dir = join(path, 'docs')
    const snapshot = damage(dir, 'snapshot-', at)
    const before = diskContents(path)
    const error = await persistenceError(make({ persistencePath: path }))
    expect([error.kind, error.code]).toEqual(['CORRUPT', 5006])
    expect(error.details).toEqual({ file: join(dir, snapshot), offset })
    expect(error.message).toContain(`${snapshot} is corrupt at byte offset ${offset}`)
    expect(diskContents(path)).toEqual(before)
  })

  test('a bad record followed by good ones refuses to open; recovery truncate keeps the prefix and a copy', async () => {
    const path = stores.dir()
    // Disconnect checkpoints, so write the WAL records from a process that exits without one.
    inChild(path, 'for (let i = 1; i <= 4; i++) await store.insert([[i, 0, 0]], [i], [{ i }])')
    const wal = walFile(path)
    trimWal(wal)
    const bytes = readFileSync(wal)
    const size = bytes.length
    // Records are equal-sized here; damage the second of four.
    const recordLength = (size - 40) / 4
    const offset = 40 + recordLength + 20
    bytes[offset] ^= 0x01
    writeFileSync(wal, bytes)

    const before = diskContents(path)
    const error = await persistenceError(make({ persistencePath: path }))
    expect([error.kind, error.code]).toEqual(['CORRUPT', 5006])
    expect(error.details).toEqual({ file: wal, offset: 40 + recordLength })
    expect(diskContents(path)).toEqual(before) // refusing changed nothing

    const { store } = await make({ persistencePath: path, recovery: 'truncate' })
    expect((await store.list())[0].map((r) => r.id)).toEqual([1])
    const stats = await store.stats()
    expect(stats.recoveredTo).not.toBeNull()
    const kept = readdirSync(stats.recoveredTo as string)
    expect(kept.length).toBe(1)
    expect(statSync(join(stats.recoveredTo as string, kept[0])).size).toBe(size - 40 - recordLength)
  })

  test('a torn tail is cut and the store opens with every complete record', async () => {
    const path = stores.dir()
    inChild(path, 'for (let i = 1; i <= 3; i++) await store.insert([[i, 0, 0]], [i], [{ i }])')
    const wal = walFile(path)
    trimWal(wal)
    const bytes = readFileSync(wal)
    writeFileSync(wal, bytes.subarray(0, bytes.length - 5))
    const { store } = await make({ persistencePath: path })
    expect((await store.list())[0].map((r) => r.id)).toEqual([1, 2])
    expect((await store.stats()).tornBytes).toBeGreaterThan(0)
  })

  test('a missing manifest with data beside it refuses to start empty, and changes nothing', async () => {
    const path = stores.dir()
    snapshotAndWal(path)
    const dir = join(path, 'docs')
    writeFileSync(join(dir, 'MANIFEST.bak'), readFileSync(join(dir, 'MANIFEST')))
    rmSync(join(dir, 'MANIFEST'))
    const before = diskContents(path)
    const error = await persistenceError(make({ persistencePath: path }))
    expect([error.kind, error.code]).toEqual(['CORRUPT', 5006])
    expect(error.message).toContain('MANIFEST')
    expect(diskContents(path)).toEqual(before)
  })
})

describe('legacy layout', () => {
  test('the older backend’s files are imported on first open and left untouched; export writes them back', async () => {
    const path = stores.dir()
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

    const out = join(stores.dir(), 'export')
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

  test('a malformed legacy file refuses to open with LEGACY_FORMAT, and imports once it is mended', async () => {
    const path = stores.dir()
    const metadata = join(path, 'ann_metadata.json')
    writeFileSync(metadata, JSON.stringify({ dimension: 3, vectors: [['a', [1, 'x', 0]]] }))
    const original = readFileSync(metadata)
    const error = await persistenceError(make({ persistencePath: path }))
    expect([error.kind, error.code]).toEqual(['LEGACY_FORMAT', 5009])
    expect(error.details).toEqual({ file: metadata })
    expect(readFileSync(metadata)).toEqual(original)
    // The refusal created nothing: no collection directory.
    expect(existsSync(join(path, 'docs'))).toBe(false)
    writeFileSync(metadata, JSON.stringify({ dimension: 3, vectors: [['a', [1, 2, 0]]] }))
    const { store } = await make({ persistencePath: path })
    expect(await store.get('a')).toEqual({ id: 'a', vector: [1, 2, 0], payload: {} })
  })
})

describe('crash: a writer process killed with SIGKILL', () => {
  test('every acknowledged write survives 50 kills at random moments, concurrent writers too, and no batch is half there', async () => {
    const path = stores.dir()
    mkdirSync(path, { recursive: true })
    const random = rng(2024)
    const acknowledged = new Set<number>()
    let acknowledgedInBursts = 0
    const ROUND = 100_000 // each child writes ids from 1 + round × ROUND on (see children/writer.js)
    for (let round = 0; round < 50; round++) {
      const durability = round % 5 === 4 ? 'flush' : 'fsync'
      // Odd rounds issue bursts of unawaited writes, which the store commits as one group.
      const mode = round % 2 === 1 ? 'burst' : 'serial'
      const start = 1 + round * ROUND
      const child = spawn(process.execPath, [join(children, 'writer.js'), path, 'crash', String(start), durability, mode])
      const done = closed(child)
      const acks: number[] = []
      onLines(child.stdout, (line) => {
        if (line.startsWith('ack ')) acks.push(Number(line.slice(4)))
      })
      await waitForLine(child, (line) => line === 'ready')
      await new Promise((resolve) => setTimeout(resolve, 5 + random() * 60))
      child.kill('SIGKILL')
      await done // every line the child printed has been read
      for (const id of acks) acknowledged.add(id)
      if (mode === 'burst') acknowledgedInBursts += acks.length

      // The check reads every point: exact search is enough, and a flat store's close has no graph
      // to finish (a graph store's close indexes and audits the tail first).
      const handle = stores.track(
        await createVectorStore({ collectionName: 'crash', dimension: 8, persistencePath: path, annAlgorithm: 'flat' }),
      )
      const [records, total] = await handle.store.list(undefined, 10_000_000)
      await handle.manager.disconnect()
      expect(records).toHaveLength(total)
      // Every point of an insert carries { id: its lead id, size: its insert's number of points }.
      const byLead = new Map<number, { ids: (string | number)[]; sizes: number[] }>()
      for (const { id, payload } of records) {
        const lead = payload.id as number
        const entry = byLead.get(lead) ?? { ids: [], sizes: [] }
        entry.ids.push(id)
        entry.sizes.push(payload.size as number)
        byLead.set(lead, entry)
      }
      const wrong: unknown[] = []
      // A batch is all there or not at all, whether its write was acknowledged or not.
      for (const [lead, { ids, sizes }] of byLead) {
        const size = lead % 7 === 3 ? 3 : 1
        const batch = [lead, ...Array.from({ length: size - 1 }, (_, k) => `batch-${lead}-${k + 1}`)]
        if (String([...ids].sort()) !== String(batch.sort()) || sizes.some((s) => s !== size)) wrong.push({ lead, ids, sizes })
      }
      for (const lead of acknowledged) if (!byLead.has(lead)) wrong.push({ acknowledgedButMissing: lead })
      // Writes are logged in call order and a kill loses none that was written: what each child
      // wrote is there as a prefix of its writes, ids start, start + 1, … with no gap.
      const leads = [...byLead.keys()].sort((a, b) => a - b)
      for (let r = 0; r <= round; r++) {
        const mine = leads.filter((lead) => Math.floor((lead - 1) / ROUND) === r)
        if (mine.some((lead, i) => lead !== 1 + r * ROUND + i)) wrong.push({ round: r, notAPrefix: mine })
      }
      expect(wrong).toEqual([])
    }
    expect(acknowledged.size).toBeGreaterThan(50)
    expect(acknowledgedInBursts).toBeGreaterThan(50)
  }, 180_000)
})

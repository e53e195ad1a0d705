// DatabasePersistence (lib/database-persistence.ts): the ruvector-extensions API over an annvault
// store. Every method, the seed document's example as written, bad input, damaged files, the
// incremental byte ratio (bytes, not time), and a SIGKILLed saver.

import { spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

import {
  DatabasePersistence,
  VectorDB,
  type InMemoryVectorStore,
  type PersistenceProgress,
} from '../index'
import { closed, onLines, randomVectors, rng, storeHarness, waitForLine } from './fixtures'

const stores = storeHarness()
const live: DatabasePersistence[] = []
afterEach(async () => {
  for (const p of live.splice(0)) await p.shutdown().catch(() => undefined)
})

function persistence(store: InMemoryVectorStore, options: ConstructorParameters<typeof DatabasePersistence>[1]) {
  const p = new DatabasePersistence(store, options)
  live.push(p)
  return p
}

/** Every point of a store: id → [vector, payload], for exact comparison. */
async function contents(store: InMemoryVectorStore): Promise<Map<string, unknown>> {
  const [records] = await store.list(undefined, 1_000_000)
  const out = new Map<string, unknown>()
  for (const r of records) {
    const full = await store.get(r.id)
    out.set(`${typeof r.id}:${r.id}`, [full?.vector, full?.payload])
  }
  return out
}

async function fill(store: InMemoryVectorStore, count: number, dimension: number, seed = 1) {
  const vectors = randomVectors(count, dimension, seed)
  const ids = vectors.map((_, i) => (i % 2 === 0 ? i : `s${i}`))
  await store.insert(vectors, ids, ids.map((id, i) => ({ i, tag: `t${i % 5}` })))
  return ids
}

/** Updates, deletes and inserts `n` points in all (a third each). */
async function churn(store: InMemoryVectorStore, ids: (string | number)[], n: number, dimension: number, seed: number) {
  const random = rng(seed)
  const fresh = randomVectors(n, dimension, seed + 1)
  for (let k = 0; k < n; k++) {
    const id = ids[Math.floor(random() * ids.length)]
    if (k % 3 === 0 && (await store.get(id)) !== null) await store.update(id, fresh[k], { updated: k })
    else if (k % 3 === 1) await store.delete(id)
    else await store.insert([fresh[k]], [`new-${seed}-${k}`], [{ added: k }])
  }
}

describe('the seed document', () => {
  test('its Quick Usage example runs as written, with only the import line changed', async () => {
    await stores.inTempCwd(async (dir) => {
      // ---- as in the document (import { VectorDB } from 'ruvector'; import { DatabasePersistence } from 'ruvector-extensions')
      const db = new VectorDB({ dimension: 384 })
      const persistence = new DatabasePersistence(db, {
        baseDir: './data',
        format: 'json',
        compression: 'gzip',
      })

      // Save
      await persistence.save()

      // Create snapshot
      const snapshot = await persistence.createSnapshot('backup')

      // Restore
      await persistence.restoreSnapshot(snapshot.id)
      // ---- end of the document's code
      live.push(persistence)
      expect(existsSync(join(dir, 'data', 'save.json'))).toBe(true)
      expect(snapshot.name).toBe('backup')
      expect((await persistence.listSnapshots()).map((s) => s.id)).toEqual([snapshot.id])
      await db.disconnect()
    })
  })
})

describe('save, saveIncremental, load', () => {
  test.each([
    ['json', 'none'],
    ['binary', 'gzip'],
    ['sqlite', 'brotli'],
  ] as const)('%s/%s: a new store loads exactly the state after a full save and incremental ones', async (format, compression) => {
    const baseDir = stores.dir()
    const { store } = await stores.make({ dimension: 8 })
    const ids = await fill(store, 300, 8)
    const p = persistence(store, { baseDir, format, compression })
    const full = await p.save()
    expect(full).toMatchObject({ kind: 'full', count: 300, chainFiles: 1 })
    for (let round = 0; round < 3; round++) {
      await churn(store, ids, 9, 8, 10 + round)
      const delta = await p.saveIncremental()
      expect(delta.kind).toBe('incremental')
      expect(delta.chainFiles).toBe(round + 2)
      expect(statSync(join(baseDir, delta.file as string)).size).toBe(delta.bytes)
    }
    expect((await p.saveIncremental()).kind).toBe('unchanged')
    const expected = await contents(store)
    await p.shutdown()

    // Another store, another instance: load() replaces whatever it holds.
    const other = (await stores.make({ dimension: 8 })).store
    await other.insert([[1, 1, 1, 1, 1, 1, 1, 1]], ['stray'], [{}])
    const q = persistence(other, { baseDir, format, compression })
    const loaded = await q.load()
    expect(loaded.count).toBe(expected.size)
    expect(await contents(other)).toEqual(expected)
  })

  test('after 1 % of the points change, saveIncremental writes at most 5 % of the bytes of a full save', async () => {
    const baseDir = stores.dir()
    const db = new VectorDB({ dimension: 64 })
    const ids = await (async () => {
      await db.connect()
      return fill(db, 3000, 64)
    })()
    const p = persistence(db, { baseDir, format: 'binary' })
    const full = await p.save()
    await churn(db, ids, 30, 64, 99)
    const delta = await p.saveIncremental()
    expect(delta.kind).toBe('incremental')
    expect(delta.upserts).toBeGreaterThan(0)
    expect(delta.deletes).toBeGreaterThan(0)
    // Bytes on disk, not what the call says.
    const fullBytes = statSync(join(baseDir, full.file as string)).size
    const deltaBytes = statSync(join(baseDir, delta.file as string)).size
    expect(deltaBytes / fullBytes).toBeLessThanOrEqual(0.05)
    await db.disconnect()
  })

  test('a damaged or missing delta is CORRUPT and load changes nothing', async () => {
    const baseDir = stores.dir()
    const { store } = await stores.make({ dimension: 4 })
    const ids = await fill(store, 100, 4)
    const p = persistence(store, { baseDir, format: 'json' })
    await p.save()
    await churn(store, ids, 6, 4, 3)
    const delta = await p.saveIncremental()
    const path = join(baseDir, delta.file as string)
    const good = readFileSync(path)
    const bad = Buffer.from(good)
    bad[Math.floor(bad.length / 2)] ^= 0x10
    writeFileSync(path, bad)
    await store.insert([[9, 9, 9, 9]], ['after'], [{}])
    const before = await contents(store)
    await expect(p.load()).rejects.toMatchObject({ kind: 'CORRUPT', code: 5006 })
    expect(await contents(store)).toEqual(before)
    writeFileSync(path, good.subarray(0, good.length - 1))
    await expect(p.load()).rejects.toMatchObject({ kind: 'CORRUPT' })
    require('node:fs').rmSync(path)
    const error = await p.load().catch((e: Error) => e)
    expect(error).toMatchObject({ kind: 'CORRUPT' })
    expect((error as Error).message).toContain('missing')
    expect(await contents(store)).toEqual(before)
  })

  test('load() with nothing saved is NOT_FOUND; two instances on one baseDir: the second is IN_USE', async () => {
    const baseDir = stores.dir()
    const db = new VectorDB({ dimension: 3 })
    const p = persistence(db, { baseDir })
    await expect(p.load()).rejects.toMatchObject({ kind: 'NOT_FOUND', code: 1011 })
    const q = persistence(new VectorDB({ dimension: 3 }), { baseDir })
    await expect(q.save()).rejects.toMatchObject({ kind: 'IN_USE' })
    await p.shutdown()
    await expect(q.save()).resolves.toMatchObject({ kind: 'full' })
  })

  test('progress events reach onProgress; a throwing callback does not fail the save', async () => {
    const events: PersistenceProgress[] = []
    const db = new VectorDB({ dimension: 4 })
    await db.connect()
    await fill(db, 50, 4)
    const p = persistence(db, {
      baseDir: stores.dir(),
      onProgress: (e) => {
        events.push(e)
        throw new Error('observer failure')
      },
    })
    await p.save()
    expect(events.length).toBeGreaterThan(0)
    expect(events[0]).toEqual(
      expect.objectContaining({ operation: 'save', phase: expect.any(String), current: expect.any(Number), total: expect.any(Number) }),
    )
    expect(events.some((e) => e.percentage === 100)).toBe(true)
  })
})

describe('snapshots', () => {
  test('create (with metadata), list, restore by id and by name, delete, and maxSnapshots retention', async () => {
    const { store } = await stores.make({ dimension: 4 })
    const ids = await fill(store, 80, 4)
    const p = persistence(store, { baseDir: stores.dir(), format: 'binary', maxSnapshots: 2 })
    const first = await p.createSnapshot('first', { reason: 'before re-ingest' })
    const atFirst = await contents(store)
    expect(first).toMatchObject({ name: 'first', count: 80, metadata: { reason: 'before re-ingest' } })
    expect(first.checksum).toMatch(/^[0-9a-f]{64}$/)
    await churn(store, ids, 12, 4, 5)
    const second = await p.createSnapshot('second')
    const atSecond = await contents(store)
    await churn(store, ids, 12, 4, 6)
    expect(await p.restoreSnapshot(first.id)).toMatchObject({ id: first.id })
    expect(await contents(store)).toEqual(atFirst)
    await p.restoreSnapshot('second')
    expect(await contents(store)).toEqual(atSecond)
    // Writes go on after a restore, and the next incremental save is full (another history).
    await store.insert([[1, 0, 0, 0]], ['later'], [{}])
    expect((await p.saveIncremental()).kind).toBe('full')
    await p.createSnapshot('third')
    expect((await p.listSnapshots()).map((s) => s.name)).toEqual(['second', 'third'])
    expect(await p.deleteSnapshot(second.id)).toMatchObject({ id: second.id })
    expect((await p.listSnapshots()).map((s) => s.name)).toEqual(['third'])
  })

  test('unknown snapshot → NOT_FOUND; unsafe names → INVALID_NAME; a damaged snapshot → CORRUPT', async () => {
    const baseDir = stores.dir()
    const db = new VectorDB({ dimension: 3 })
    const p = persistence(db, { baseDir })
    for (const call of [() => p.restoreSnapshot('nope'), () => p.deleteSnapshot('nope')]) {
      await expect(call()).rejects.toMatchObject({ kind: 'NOT_FOUND', code: 1011 })
    }
    for (const name of ['../x', 'a/b', 'a\\b', '', 'n'.repeat(300)]) {
      await expect(p.createSnapshot(name)).rejects.toMatchObject({ kind: 'INVALID_NAME', code: 1010 })
      await expect(p.restoreSnapshot(name)).rejects.toMatchObject({ kind: 'INVALID_NAME' })
    }
    await expect(p.createSnapshot(42 as unknown as string)).rejects.toMatchObject({ kind: 'INVALID_NAME' })
    await db.insert([[1, 2, 3]], [1], [{ a: 1 }])
    const s = await p.createSnapshot('s')
    const dir = join(baseDir, 'snapshots', s.id)
    const base = readdirSync(dir).find((f) => f.startsWith('base-')) as string
    // Replace (not edit) the file: it is a hard link shared with the main save.
    const bytes = readFileSync(join(dir, base))
    bytes[bytes.length >> 1] ^= 0x01
    require('node:fs').rmSync(join(dir, base))
    writeFileSync(join(dir, base), bytes)
    await db.insert([[3, 2, 1]], [2], [{}])
    await expect(p.restoreSnapshot(s.id)).rejects.toMatchObject({ kind: 'CORRUPT' })
    expect(await db.count()).toBe(2)
  })
})

describe('export and import', () => {
  test('export writes the file and <path>.sha256; import checks it, merges or clears', async () => {
    const dir = stores.dir()
    const { store } = await stores.make({ dimension: 4 })
    await fill(store, 40, 4)
    const p = persistence(store, { baseDir: stores.dir(), compression: 'brotli' })
    const path = join(dir, 'out.json')
    const result = await p.export({ path, format: 'json', compress: false })
    expect(result).toMatchObject({ format: 'json', compression: 'none', count: 40 })
    expect(readFileSync(`${path}.sha256`, 'utf8')).toBe(`${result.checksum}  out.json\n`)
    await expect(p.export({ path })).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT' })
    const zipped = await p.export({ path: join(dir, 'out.bin'), format: 'binary', compress: true })
    expect(zipped).toMatchObject({ format: 'msgpack', compression: 'brotli' })

    const target = (await stores.make({ dimension: 4 })).store
    await target.insert([[1, 1, 1, 1]], ['kept'], [{}])
    const q = persistence(target, { baseDir: stores.dir() })
    expect(await q.import({ path })).toMatchObject({ count: 40, checksumVerified: true })
    expect(await target.count()).toBe(41)
    expect(await q.import({ path: join(dir, 'out.bin'), clear: true })).toMatchObject({ count: 40 })
    expect(await target.count()).toBe(40)
    expect(await contents(target)).toEqual(await contents(store))

    // A damaged file fails its checksum: nothing changes. Without the check, the format's own
    // validation still refuses it.
    const text = readFileSync(path, 'utf8')
    writeFileSync(path, text.replace('t1"', 't7"'))
    await target.insert([[2, 2, 2, 2]], ['extra'], [{}])
    await expect(q.import({ path, clear: true })).rejects.toMatchObject({ kind: 'CORRUPT' })
    expect(await target.count()).toBe(41)
    await expect(q.import({ path, verifyChecksum: false })).resolves.toMatchObject({ checksumVerified: false })
    // verifyChecksum: true needs the checksum file.
    require('node:fs').rmSync(`${path}.sha256`)
    await expect(q.import({ path, verifyChecksum: true })).rejects.toMatchObject({ kind: 'CORRUPT' })
    await expect(q.import({ path: join(dir, 'missing.json') })).rejects.toMatchObject({ kind: 'IO' })
  })
})

describe('options and lifecycle', () => {
  test('bad options are INVALID_ARGUMENT, a non-store is refused', () => {
    const db = new VectorDB({ dimension: 3 })
    expect(() => new DatabasePersistence({} as never, {})).toThrow(expect.objectContaining({ kind: 'INVALID_ARGUMENT' }))
    for (const options of [
      { format: 'yaml' },
      { compression: 'zip' },
      { autoSaveInterval: 0 },
      { maxSnapshots: 1.5 },
      { onProgress: 'no' },
      { baseDir: '' },
      { unknown: 1 },
    ]) {
      expect(() => new DatabasePersistence(db, options as never)).toThrow(expect.objectContaining({ code: expect.any(Number) }))
    }
  })

  test('auto-save writes deltas on its timer; stopAutoSave stops it; shutdown saves, releases the directory and ends the instance', async () => {
    const baseDir = stores.dir()
    const db = new VectorDB({ dimension: 3 })
    await db.connect()
    await fill(db, 20, 3) // one more point later is a small change: a delta, not a full save
    const p = persistence(db, { baseDir, autoSaveInterval: 20 })
    const manifest = join(baseDir, 'save.json')
    const files = () => (existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).files.length : 0)
    while (files() < 1) await new Promise((r) => setTimeout(r, 10))
    await db.insert([[0, 1, 0]], ['two'], [{}])
    while (files() < 2) await new Promise((r) => setTimeout(r, 10))
    p.stopAutoSave()
    await p.listSnapshots() // waits for a tick in flight
    const after = files()
    await db.insert([[0, 0, 1]], ['three'], [{}])
    await new Promise((r) => setTimeout(r, 100))
    expect(files()).toBe(after)
    await p.shutdown()
    expect(files()).toBe(after + 1) // shutdown's final incremental save
    await expect(p.save()).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT' })
    // The directory is free again.
    const q = persistence(new VectorDB({ dimension: 3 }), { baseDir })
    expect(await q.load()).toMatchObject({ count: 22 })
    await db.disconnect()
  })

  test('an auto-save failure reaches onAutoSaveError', async () => {
    const errors: Error[] = []
    const db = new VectorDB({ dimension: 3 })
    await db.connect()
    const blocker = join(stores.dir(), 'file')
    writeFileSync(blocker, 'not a directory')
    const p = persistence(db, { baseDir: join(blocker, 'sub'), autoSaveInterval: 10, onAutoSaveError: (e) => errors.push(e) })
    while (errors.length === 0) await new Promise((r) => setTimeout(r, 10))
    p.stopAutoSave()
    expect(errors[0]).toMatchObject({ kind: 'IO' })
    await db.disconnect()
  })
})

describe('crash: a saving process killed with SIGKILL', () => {
  test('after each kill, load() gives exactly the last acknowledged save or the one in flight', async () => {
    const baseDir = stores.dir()
    const pkg = resolve(__dirname, '..')
    // Each round: insert 50 points, delete one, print 'saving <count>', saveIncremental, print 'saved <count>'.
    const script = `
      const { VectorDB, DatabasePersistence } = require(${JSON.stringify(pkg)})
      ;(async () => {
        const db = new VectorDB({ dimension: 16 })
        const p = new DatabasePersistence(db, { baseDir: process.argv[1], format: 'binary' })
        try { await p.load() } catch (e) { if (e.kind !== 'NOT_FOUND') throw e }
        await db.connect()
        const [records, count] = await db.list(undefined, 1000000)
        let n = records.reduce((max, r) => Math.max(max, r.id + 1), 0)
        process.stdout.write('start ' + count + '\\n')
        for (;;) {
          const ids = [], vectors = [], payloads = []
          for (let k = 0; k < 50; k++, n++) { ids.push(n); vectors.push(Array.from({ length: 16 }, (_, d) => Math.sin(n + d))); payloads.push({ n }) }
          await db.insert(vectors, ids, payloads)
          await db.delete(n - 7)
          const now = await db.count()
          process.stdout.write('saving ' + now + '\\n')
          await p.saveIncremental()
          process.stdout.write('saved ' + now + '\\n')
        }
      })().catch((e) => { process.stderr.write(String(e.stack)); process.exit(1) })`
    const random = rng(7)
    let saved = 0
    let saving = 0
    for (let round = 0; round < 8; round++) {
      const child = spawn(process.execPath, ['-e', script, baseDir])
      const done = closed(child)
      let start = -1
      const before = { saved, saving }
      onLines(child.stdout, (line) => {
        const [word, value] = line.split(' ')
        if (word === 'start') start = Number(value)
        if (word === 'saving') saving = Number(value)
        if (word === 'saved') saved = Number(value)
      })
      await waitForLine(child, (line) => line.startsWith('saved '))
      await new Promise((r) => setTimeout(r, Math.floor(random() * 80)))
      child.kill('SIGKILL')
      await done
      // It loaded what the previous child left: its last acknowledged save, or the one in flight.
      expect([before.saved, before.saving]).toContain(start)
    }
    const db = new VectorDB({ dimension: 16 })
    const p = persistence(db, { baseDir, format: 'binary' })
    const { count } = await p.load()
    expect([saved, saving]).toContain(count)
    const [records] = await db.list(undefined, 1_000_000)
    expect(records.length).toBe(count)
    for (const r of records.filter((_, i) => i % 37 === 0)) {
      const got = await db.get(r.id)
      expect(got?.payload).toEqual({ n: r.id })
      expect(got?.vector?.[0]).toBeCloseTo(Math.sin(Number(r.id)), 5)
    }
    await db.disconnect()
  })
})

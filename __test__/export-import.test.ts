import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, PersistenceError, VectorStoreError, type ProgressEvent, type VectorStore } from '../index'
import { diskContents, inChild, persistenceError, randomVectors, rejectionOf, rng, storeHarness } from './fixtures'

const stores = storeHarness({ collectionName: 'docs', dimension: 4 })
const { make } = stores

const FORMATS = ['annvault', 'json', 'jsonl', 'msgpack', 'sqlite', 'parquet'] as const
const COMPRESSIONS = ['none', 'gzip', 'brotli'] as const

/** `count` points: integer and string ids, empty and nested payloads, random f32 vectors. */
function points(count: number, seed = 1) {
  const random = rng(seed)
  const ids: (string | number)[] = []
  const vectors: number[][] = []
  const payloads: Record<string, unknown>[] = []
  for (let i = 0; i < count; i++) {
    ids.push(i % 2 === 0 ? i : `doc-${i}`)
    vectors.push(Array.from({ length: 4 }, () => Math.fround(random() * 2 - 1) * 10 ** Math.floor(random() * 8 - 4)))
    payloads.push(i % 3 === 0 ? {} : { title: `t${i}`, group: i % 2 === 0 ? 'even' : 'odd', nested: { n: i, list: [1, 'x', null] } })
  }
  return { ids, vectors, payloads }
}

/** Every point of `store`, with its vector, in id order. */
async function everything(store: VectorStore) {
  const [records] = await store.list(undefined, 100000)
  return Promise.all(records.map((r) => store.get(r.id)))
}

async function filled(count = 40) {
  const handle = await make()
  const p = points(count)
  await handle.store.insert(p.vectors, p.ids, p.payloads)
  return handle
}

describe('export and import', () => {
  test.each(FORMATS.flatMap((f) => COMPRESSIONS.map((c) => [f, c] as const)))(
    '%s with %s compression round-trips every point exactly',
    async (format, compression) => {
      const { store } = await filled()
      const path = join(stores.dir(), `out.${format}`)
      const result = await store.export(path, { format, compression })
      expect(result).toEqual({ path, format, compression, count: 40, bytes: statSync(path).size })

      const other = await make()
      expect(await other.store.import(path)).toEqual({ count: 40, format, compression })
      const back = await everything(other.store)
      expect(back).toEqual(await everything(store))
      expect(back.find((r) => r?.id === 0)?.payload).toEqual({})
      expect(typeof back.find((r) => r?.id === 'doc-1')?.id).toBe('string')
    },
  )

  test('merge upserts the file into the collection; replace makes the collection the file', async () => {
    const { store } = await filled(10)
    const path = join(stores.dir(), 'ten.jsonl')
    await store.export(path, { format: 'jsonl' })
    // Every line after the header is a record with Pinecone's field names, as Qdrant/Chroma scripts read them.
    const [header, ...records] = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line))
    expect(header).toMatchObject({ format: 'annvault-jsonl', version: 2, dimension: 4, count: 10 })
    expect(records).toHaveLength(10)
    for (const record of records) {
      expect(Object.keys(record).sort()).toEqual(['id', 'metadata', 'values'])
      const stored = await store.get(record.id)
      // Each value is the shortest decimal of its f32: the same f32 as the stored one.
      expect(stored?.vector.map(Math.fround)).toEqual(record.values.map(Math.fround))
      expect(stored?.payload).toEqual(record.metadata)
    }

    const merged = await make()
    await merged.store.insert([[9, 9, 9, 9], [1, 1, 1, 1]], [0, 'mine'], [{ old: true }, { mine: true }])
    await merged.store.import(path, { mode: 'merge' })
    expect(await merged.store.count()).toBe(11)
    expect((await merged.store.get(0))?.payload).toEqual({})
    expect((await merged.store.get('mine'))?.payload).toEqual({ mine: true })

    const replaced = await make()
    await replaced.store.insert([[1, 1, 1, 1]], ['mine'], [{}])
    await replaced.store.import(path, { mode: 'replace' })
    expect(await replaced.store.count()).toBe(10)
    expect(await replaced.store.get('mine')).toBeNull()
    expect(await everything(replaced.store)).toEqual(await everything(store))
  })

  test('an import survives a reopen: it went through the WAL', async () => {
    const { store } = await filled(12)
    const path = join(stores.dir(), 'x.avb')
    await store.export(path)
    const dir = stores.dir()
    const first = await make({ persistencePath: dir })
    await first.store.import(path)
    await first.manager.disconnect()
    const again = await make({ persistencePath: dir })
    expect(await everything(again.store)).toEqual(await everything(store))
  })

  test('a bad record in the middle refuses the whole import, naming the file and record, and changes nothing', async () => {
    const { store } = await filled(10)
    const path = join(stores.dir(), 'bad.jsonl')
    await store.export(path, { format: 'jsonl' })
    const lines = readFileSync(path, 'utf8').split('\n')
    lines[6] = '{"id":"evil","vector":[1,2,3],"payload":{}}' // record 5: three values, not four
    writeFileSync(path, lines.join('\n'))

    const target = await make()
    await target.store.insert([[1, 2, 3, 4]], ['kept'], [{ a: 1 }])
    const root = target.manager.getInfo().persistencePath
    const before = diskContents(root)
    const error = await persistenceError(target.store.import(path, { mode: 'replace' }))
    expect(error.code).toBe(ErrorCodes.CORRUPT)
    expect(error.message).toContain('bad.jsonl')
    expect(error.message).toContain('record 5')
    expect(error.details.file).toBe(path)
    expect(diskContents(root)).toEqual(before)
    expect(await everything(target.store)).toEqual([{ id: 'kept', vector: [1, 2, 3, 4], payload: { a: 1 } }])
  })

  test('a truncated file, a flipped byte and another dimension are typed errors', async () => {
    const { store } = await filled(10)
    const dir = stores.dir()
    const path = join(dir, 'b.avb')
    await store.export(path)
    const bytes = readFileSync(path)
    const target = await make()

    writeFileSync(join(dir, 'cut.avb'), bytes.subarray(0, bytes.length - 7))
    expect((await persistenceError(target.store.import(join(dir, 'cut.avb')))).code).toBe(ErrorCodes.CORRUPT)

    const flipped = Buffer.from(bytes)
    flipped[Math.floor(bytes.length / 2)] ^= 0xff
    writeFileSync(join(dir, 'flip.avb'), flipped)
    expect((await persistenceError(target.store.import(join(dir, 'flip.avb')))).code).toBe(ErrorCodes.CORRUPT)

    const wide = await make({ dimension: 5 })
    const mismatch = await persistenceError(wide.store.import(path))
    expect(mismatch.code).toBe(ErrorCodes.CONFIG_MISMATCH)
    expect(mismatch.message).toContain('dimension 4')
    expect(await target.store.count()).toBe(0)
    expect(await wide.store.count()).toBe(0)
  })

  test('an existing path is refused unless overwrite is given, and then replaced whole', async () => {
    const { store } = await filled(5)
    const dir = stores.dir()
    const path = join(dir, 'taken.json')
    writeFileSync(path, 'precious')
    const error = await rejectionOf(store.export(path, { format: 'json' }), VectorStoreError)
    expect(error.code).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(readFileSync(path, 'utf8')).toBe('precious')
    const result = await store.export(path, { format: 'json', overwrite: true })
    expect(result.count).toBe(5)
    expect(JSON.parse(readFileSync(path, 'utf8')).points).toHaveLength(5)
    expect(readdirSync(dir)).toEqual(['taken.json'])
  })

  test('a filter exports only the matching points', async () => {
    const { store } = await filled(30)
    const path = join(stores.dir(), 'odd.json')
    const result = await store.export(path, { format: 'json', filter: { group: 'odd' } })
    const file = JSON.parse(readFileSync(path, 'utf8'))
    expect(result.count).toBe(file.points.length)
    expect(file.count).toBe(file.points.length)
    expect(file.points.length).toBeGreaterThan(5)
    expect(file.points.every((p: { payload: { group?: string } }) => p.payload.group === 'odd')).toBe(true)
    expect(file.points.every((p: { id: unknown }) => typeof p.id === 'string')).toBe(true)
  })

  test('bad options are typed errors before anything is written', async () => {
    const { store } = await filled(3)
    const dir = stores.dir()
    for (const options of [{ format: 'csv' }, { compression: 'zstd' }, { overwrite: 'yes' }, { onProgress: 1 }, { colour: 'red' }]) {
      const error = await rejectionOf(store.export(join(dir, 'x'), options as never), VectorStoreError)
      expect(error.code).toBe(ErrorCodes.INVALID_ARGUMENT)
    }
    const mode = await rejectionOf(store.import(join(dir, 'x'), { mode: 'append' } as never), VectorStoreError)
    expect(mode.code).toBe(ErrorCodes.INVALID_ARGUMENT)
    expect(readdirSync(dir)).toEqual([])
    const missing = await persistenceError(store.import(join(dir, 'nothing-here')))
    expect(missing.code).toBe(ErrorCodes.IO)
  })

  test('progress events arrive for export and import, and a throwing callback does no harm', async () => {
    const { store } = await filled(3000)
    const path = join(stores.dir(), 'p.jsonl')
    const events: ProgressEvent[] = []
    await store.export(path, {
      format: 'jsonl',
      onProgress: (e) => {
        events.push(e)
        throw new Error('observer bug')
      },
    })
    expect(events[0]).toMatchObject({ operation: 'export', phase: 'write', current: 0, total: 3000, percentage: 0 })
    expect(events[events.length - 1]).toMatchObject({ operation: 'export', current: 3000, percentage: 100 })
    expect(events.length).toBeLessThanOrEqual(102)

    const target = await make()
    const seen: ProgressEvent[] = []
    const result = await target.store.import(path, {
      onProgress: (e) => {
        seen.push(e)
        throw new Error('observer bug')
      },
    })
    expect(result.count).toBe(3000)
    expect(seen.map((e) => e.phase)).toEqual(expect.arrayContaining(['validate', 'apply']))
    expect(seen[seen.length - 1]).toMatchObject({ operation: 'import', phase: 'apply', percentage: 100 })
    expect(await target.store.count()).toBe(3000)
  })

  test('an open reports its phases: the checkpoint loaded, the WAL replayed (in bytes), the saved graph attached', async () => {
    const path = stores.dir()
    const vectors = randomVectors(2000, 3, 5)
    const first = await make({ persistencePath: path, dimension: 3, annAlgorithm: 'hnsw' })
    await first.store.insert(vectors, vectors.map((_, i) => i), vectors.map(() => ({})))
    await first.manager.disconnect() // a checkpoint and the graph saved with it
    // Then writes that only the WAL holds: a child that exits without closing.
    inChild(path, `for (let i = 0; i < 50; i++) await store.insert([[i, 1, 2]], ['w' + i], [{ i }])`)
    const events: ProgressEvent[] = []
    const again = await make({
      persistencePath: path,
      dimension: 3,
      annAlgorithm: 'hnsw',
      onProgress: (e) => {
        events.push(e)
        throw new Error('observer bug') // an observer's failure does not fail the open
      },
    })
    expect(events.every((e) => e.operation === 'open')).toBe(true)
    expect([...new Set(events.map((e) => e.phase))]).toEqual(['load', 'replay', 'graph'])
    for (const phase of ['load', 'replay', 'graph']) {
      expect(events.filter((e) => e.phase === phase).pop()).toMatchObject({ percentage: 100 })
    }
    const replay = events.filter((e) => e.phase === 'replay')
    expect(replay[0].total).toBeGreaterThan(0)
    expect(replay[replay.length - 1].message).toBe('replayed 50 records')
    expect(await again.store.count()).toBe(2050)
    expect(again.store.getConfig().onProgress).toBeInstanceOf(Function)
    const error = await rejectionOf(make({ onProgress: 'yes' as never }), VectorStoreError)
    expect(error.kind).toBe('INVALID_ARGUMENT')
  })

  // Node cannot hold a string over 512 MiB. Export and import never hand JS the data: the native
  // call gets a path and resolves to the small summary, the core writes through a 1 MiB buffer
  // (cargo test `exports_stream_in_bounded_writes` checks every write's size) and reads record by
  // record. Here: a file far larger than a (lowered) 1 MiB limit goes out and back while the only
  // value JS sees is the summary.
  test('a collection larger than a string limit goes out and back as a file, never as one JS string', async () => {
    const handle = await make({ dimension: 256 })
    const count = 2000
    const random = rng(5)
    const vectors = Array.from({ length: count }, () => Array.from({ length: 256 }, () => random()))
    await handle.store.insert(vectors, Array.from({ length: count }, (_, i) => i), Array.from({ length: count }, () => ({})))
    const path = join(stores.dir(), 'big.json')
    const result = await handle.store.export(path, { format: 'json' })
    const limit = 1 << 20
    expect(result.bytes).toBeGreaterThan(4 * limit)
    expect(JSON.stringify(result).length).toBeLessThan(200)
    const back = await make({ dimension: 256 })
    expect((await back.store.import(path)).count).toBe(count)
    expect((await back.store.get(1234))?.vector).toEqual((await handle.store.get(1234))?.vector)
  })

  test("Python's sqlite3 reads the SQLite export", async () => {
    const python = spawnSync('python3', ['--version'])
    if (python.status !== 0) throw new Error('python3 is needed for this test')
    const { store } = await filled(20)
    const path = join(stores.dir(), 'points.sqlite')
    await store.export(path, { format: 'sqlite' })
    const script = `
import sqlite3, struct, json, sys
db = sqlite3.connect(sys.argv[1])
meta = dict(db.execute('SELECT key, value FROM meta'))
rows = db.execute('SELECT id, id_type, vector, payload FROM points ORDER BY seq').fetchall()
dim = int(meta['dimension'])
out = {'meta': meta, 'points': [{'id': r[0], 'idType': r[1], 'vector': list(struct.unpack('<%df' % dim, r[2])), 'payload': json.loads(r[3])} for r in rows]}
print(json.dumps(out))`
    const run = spawnSync('python3', ['-c', script, path], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    const read = JSON.parse(run.stdout)
    expect(read.meta).toEqual({ format: 'annvault-sqlite', format_version: '1', dimension: '4', distance: 'Cosine', count: '20' })
    const byId = new Map(read.points.map((p: { id: string | number }) => [p.id, p]))
    for (const record of await everything(store)) {
      const row = byId.get(record!.id) as { idType: string; vector: number[]; payload: unknown }
      expect(row.idType).toBe(typeof record!.id === 'number' ? 'integer' : 'string')
      // Python gives each f32 exactly (as a double); get() its shortest decimal: the same f32.
      expect(row.vector.map(Math.fround)).toEqual(record!.vector.map(Math.fround))
      expect(row.payload).toEqual(record!.payload)
    }
  })

  test.each(['none', 'gzip', 'brotli'] as const)(
    "pyarrow reads the Parquet export (%s pages) with Pinecone's columns: id string, values list<float>, metadata JSON text",
    async (compression) => {
      const { store } = await filled(20)
      const path = join(stores.dir(), `points-${compression}.parquet`)
      await store.export(path, { format: 'parquet', compression })
      const script = `
import json, sys, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
codecs = sorted({f.metadata.row_group(0).column(i).compression for i in range(f.metadata.num_columns)})
print(json.dumps({'schema': [[field.name, str(field.type)] for field in t.schema], 'codecs': codecs,
  'header': json.loads(f.schema_arrow.metadata[b'annvault']), 'rows': t.to_pylist()}))`
      const run = spawnSync('python3', ['-c', script, path], { encoding: 'utf8' })
      expect(run.stderr).toBe('')
      const read = JSON.parse(run.stdout)
      expect(read.schema).toEqual([
        ['id', 'string'],
        ['values', 'list<element: float not null>'],
        ['metadata', 'string'],
      ])
      expect(read.codecs).toEqual([{ none: 'UNCOMPRESSED', gzip: 'GZIP', brotli: 'BROTLI' }[compression]])
      expect(read.header).toMatchObject({ format: 'annvault-parquet', version: 1, dimension: 4, distance: 'Cosine', count: 20 })
      const records = await everything(store)
      expect(read.rows).toHaveLength(records.length)
      const byId = new Map(read.rows.map((r: { id: string }) => [r.id, r]))
      for (const record of records) {
        // Pinecone's ids are strings: 12 is written "12".
        const row = byId.get(String(record!.id)) as { values: number[]; metadata: string }
        expect(row.values.map(Math.fround)).toEqual(record!.vector.map(Math.fround))
        expect(JSON.parse(row.metadata)).toEqual(record!.payload)
      }
    },
  )

  test('a Parquet file another tool wrote is refused with CORRUPT naming the missing header, and changes nothing', async () => {
    const path = join(stores.dir(), 'foreign.parquet')
    const script = `
import sys, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({'id': ['a'], 'values': [[1.0, 2.0, 3.0, 4.0]], 'metadata': ['{}']}), sys.argv[1])`
    const run = spawnSync('python3', ['-c', script, path], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    const { store } = await filled(3)
    const before = await everything(store)
    const error = await persistenceError(store.import(path))
    expect(error.message).toContain("without annvault's header")
    expect(await everything(store)).toEqual(before)
  })

  test('a store with brotli checkpoints reopens with its data', async () => {
    const dir = stores.dir()
    const first = await make({ persistencePath: dir, compression: 'brotli' })
    const p = points(50)
    await first.store.insert(p.vectors, p.ids, p.payloads)
    await first.store.checkpoint()
    const snapshot = readdirSync(join(dir, 'docs')).find((f) => f.startsWith('snapshot-'))!
    expect(readFileSync(join(dir, 'docs', snapshot)).readUInt32LE(8)).toBe(2) // version 2: brotli
    const before = await everything(first.store)
    await first.manager.disconnect()
    const again = await make({ persistencePath: dir })
    expect(await everything(again.store)).toEqual(before)
    expect(existsSync(join(dir, 'docs', snapshot))).toBe(true)
  })

  test('PersistenceError is what a corrupt import raises', async () => {
    const { store } = await make()
    const path = join(stores.dir(), 'junk')
    writeFileSync(path, 'not an export at all')
    const error = await persistenceError(store.import(path))
    expect(error).toBeInstanceOf(PersistenceError)
    expect(error.code).toBe(ErrorCodes.CORRUPT)
  })
})

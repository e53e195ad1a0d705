// NativeAdapter: the PersistenceAdapter contract over annvault's key-value engine, reopen, a second
// process on the same path, a corrupt checkpoint, and writers killed with SIGKILL.

import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RawWrite } from '../lib/persistence/adapter'
import { DefaultPersistenceManager } from '../lib/persistence/index'
import { NativeAdapter, SYNC_GET_MAX_BYTES } from '../lib/persistence/native'
import { closed, onLines, rng, tempDirs, waitForLine } from './fixtures'

const dirs = tempDirs()
const open: NativeAdapter[] = []
afterEach(async () => {
  for (const adapter of open.splice(0)) await adapter.close()
  dirs.cleanup()
})

async function adapter(path = dirs.next(), durability?: 'fsync' | 'flush'): Promise<NativeAdapter> {
  const a = new NativeAdapter({ path, durability })
  await a.init()
  open.push(a)
  return a
}

function json(key: string, value: unknown, metadata: object = {}, expiresAt: number | null = null): RawWrite {
  return { key, value: { kind: 'json', text: JSON.stringify(value) }, metadata: JSON.stringify(metadata), expiresAt }
}

async function rejection(promise: Promise<unknown>): Promise<{ code: number; kind: string; details: Record<string, unknown>; message: string }> {
  try {
    await promise
  } catch (error) {
    return error as never
  }
  throw new Error('expected a rejection')
}

const children = join(__dirname, 'children')

describe('NativeAdapter contract', () => {
  test('set, get, overwrite keeps createdAt, delete reports live entries', async () => {
    const a = await adapter()
    expect(a.name).toBe('native')
    await a.set([json('user:1', { name: 'Ada' }, { role: 'admin' })], 1000)
    const [first] = await a.get(['user:1'], 1000)
    expect(first).toEqual({
      key: 'user:1',
      value: { kind: 'json', text: '{"name":"Ada"}' },
      metadata: '{"role":"admin"}',
      createdAt: 1000,
      updatedAt: 1000,
      expiresAt: null,
    })
    await a.set([json('user:1', { name: 'Ada L.' })], 2000)
    const [second] = await a.get(['user:1'], 2000)
    expect([second?.createdAt, second?.updatedAt, second?.metadata]).toEqual([1000, 2000, '{}'])
    expect(await a.get(['user:1', 'missing'], 2000)).toEqual([second, null])
    expect(await a.delete(['user:1', 'missing'], 3000)).toEqual([true, false])
    expect(await a.get(['user:1'], 3000)).toEqual([null])
  })

  test('binary values come back byte for byte, large ones too', async () => {
    const a = await adapter()
    const bytes = new Uint8Array(200_000)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251
    await a.set([{ key: 'blob', value: { kind: 'binary', bytes }, metadata: '{}', expiresAt: null }], 1)
    const [entry] = await a.get(['blob'], 1)
    expect(entry?.value.kind).toBe('binary')
    expect(Buffer.from((entry?.value as { bytes: Uint8Array }).bytes).equals(Buffer.from(bytes))).toBe(true)
  })

  test('TTL: an expired entry is absent everywhere and a later write starts it afresh; maintain sweeps it', async () => {
    const a = await adapter()
    await a.set([json('cache:a', 1, {}, 1500), json('cache:b', 2)], 1000)
    expect((await a.get(['cache:a'], 1499))[0]?.value).toEqual({ kind: 'json', text: '1' })
    expect(await a.get(['cache:a'], 1500)).toEqual([null])
    expect(await a.keys('cache:*', 1500)).toEqual(['cache:b'])
    expect((await a.find('cache:*', 1500)).map((e) => e.key)).toEqual(['cache:b'])
    expect((await a.stats(1500)).totalEntries).toBe(1)
    expect(await a.delete(['cache:a'], 1600)).toEqual([false])
    await a.set([json('cache:c', 3, {}, 1700)], 1600)
    await a.set([json('cache:c', 4)], 1800)
    expect((await a.get(['cache:c'], 1800))[0]?.createdAt).toBe(1800)
    await a.set([json('cache:d', 5, {}, 1900)], 1800)
    await a.maintain(2000)
    expect(await a.keys(undefined, 0)).toEqual(['cache:b', 'cache:c'])
  })

  test('a batch with a bad key in the middle writes nothing', async () => {
    const a = await adapter()
    const error = await rejection(a.set([json('a', 1), json('', 2), json('c', 3)], 1))
    expect([error.code, error.kind, error.details.index]).toEqual([5003, 'INVALID_KEY', 1])
    const nul = await rejection(a.set([json('a', 1), json('b\0', 2)], 1))
    expect(nul.code).toBe(5003)
    const long = await rejection(a.set([json('x'.repeat(1025), 1)], 1))
    expect(long.code).toBe(5003)
    expect(await a.keys(undefined, 1)).toEqual([])
    // 1,024 bytes of UTF-8 is the limit, in bytes, not characters.
    await a.set([json('é'.repeat(512), 1)], 1)
    expect((await rejection(a.set([json('é'.repeat(513), 1)], 1))).code).toBe(5003)
    expect((await rejection(a.get([''], 1))).code).toBe(5003)
  })

  test('find and keys: glob patterns in key order, with a prefix', async () => {
    const a = await adapter()
    await a.set(
      ['user:2', 'user:10', 'user:1', 'users', 'item/1', 'a*b', 'a[x]', 'café'].map((k) => json(k, k)),
      1,
    )
    expect(await a.keys('user:*', 1)).toEqual(['user:1', 'user:10', 'user:2'])
    expect(await a.keys('user:?', 1)).toEqual(['user:1', 'user:2'])
    expect(await a.keys('user[:s]*', 1)).toEqual(['user:1', 'user:10', 'user:2', 'users'])
    expect(await a.keys('user:[!1]', 1)).toEqual(['user:2'])
    expect(await a.keys('*1*', 1)).toEqual(['item/1', 'user:1', 'user:10'])
    expect(await a.keys('a\\*b', 1)).toEqual(['a*b'])
    expect(await a.keys('a\\[x]', 1)).toEqual(['a[x]'])
    expect(await a.keys('caf?', 1)).toEqual(['café'])
    const found = await a.find('user:1*', 1)
    expect(found.map((e) => [e.key, e.value])).toEqual([
      ['user:1', { kind: 'json', text: '"user:1"' }],
      ['user:10', { kind: 'json', text: '"user:10"' }],
    ])
  })

  test('stats, clear, maintain, close; later calls reject as closed; reopen keeps everything', async () => {
    const path = dirs.next()
    const a = new NativeAdapter({ path })
    await a.init()
    await a.set([json('k1', 1), json('k2', { deep: [1, 2] }, { m: true })], 10)
    const stats = await a.stats(10)
    expect(stats.totalEntries).toBe(2)
    expect(stats.size).toBeGreaterThan(0)
    expect(typeof stats.lastSync).toBe('number')
    await a.maintain(10)
    await a.close()
    await a.close() // twice: a no-op
    const closedError = await rejection(a.get(['k1'], 10))
    expect([closedError.code, closedError.kind]).toEqual([1012, 'CLOSED'])

    const b = await adapter(path)
    expect(await b.get(['k1', 'k2'], 11)).toEqual([
      { key: 'k1', value: { kind: 'json', text: '1' }, metadata: '{}', createdAt: 10, updatedAt: 10, expiresAt: null },
      { key: 'k2', value: { kind: 'json', text: '{"deep":[1,2]}' }, metadata: '{"m":true}', createdAt: 10, updatedAt: 10, expiresAt: null },
    ])
    await b.clear()
    expect(await b.keys(undefined, 11)).toEqual([])
    expect((await b.stats(11)).totalEntries).toBe(0)
  })

  test('a value that is not JSON text, or metadata that is not an object, is refused with 5004', async () => {
    const a = await adapter()
    const bad = { key: 'k', value: { kind: 'json' as const, text: '{oops' }, metadata: '{}', expiresAt: null }
    expect((await rejection(a.set([bad], 1))).code).toBe(5004)
    expect((await rejection(a.set([json('k', 1, [] as unknown as object)], 1))).code).toBe(5004)
    expect(await a.keys(undefined, 1)).toEqual([])
  })

  test('calls before init reject as closed; a bad path option throws', async () => {
    const a = new NativeAdapter({ path: dirs.next() })
    expect((await rejection(a.get(['k'], 1))).code).toBe(1012)
    expect(() => new NativeAdapter({ path: '' })).toThrow(/path/)
  })
})

describe('NativeAdapter fast paths', () => {
  test('getSync reads what get reads, at once; entries past SYNC_GET_MAX_BYTES are left to get', async () => {
    const a = await adapter()
    const big = 'x'.repeat(SYNC_GET_MAX_BYTES)
    await a.set([json('small', { n: 1 }, { m: 2 }), json('big', big), json('old', 1, {}, 1500)], 1000)
    const sync = a.getSync(['small', 'missing', 'old'], 1000)
    expect(sync).toEqual(await a.get(['small', 'missing', 'old'], 1000))
    expect(sync?.[0]?.value).toEqual({ kind: 'json', text: '{"n":1}'})
    // Expired at 1500: absent on the fast path too.
    expect(a.getSync(['old'], 1500)).toEqual([null])
    // Over the bound: nothing read here, the caller goes to get.
    expect(a.getSync(['big'], 1000)).toBeNull()
    expect(a.getSync(['small', 'big'], 1000)).toBeNull()
    const [viaPool] = await a.get(['big'], 1000)
    expect(viaPool?.value).toEqual({ kind: 'json', text: JSON.stringify(big) })
    // A bad key throws what get rejects with; a closed adapter throws as closed.
    expect(() => a.getSync([''], 1000)).toThrow(expect.objectContaining({ code: 5003 }))
    await a.close()
    expect(() => a.getSync(['small'], 1000)).toThrow(expect.objectContaining({ code: 1012 }))
  })

  test('the manager serves get, getMany and has from the fast path and from the pool alike', async () => {
    const path = dirs.next()
    const kv = new DefaultPersistenceManager(new NativeAdapter({ path }))
    await kv.init()
    const big = 'y'.repeat(SYNC_GET_MAX_BYTES + 1)
    await kv.setMany([
      { key: 'a', value: { n: 1 }, metadata: { tag: 't' } },
      { key: 'b', value: big },
      { key: 'c', value: Buffer.from([1, 2, 3]) },
    ])
    expect((await kv.get('a'))?.value).toEqual({ n: 1 })
    expect((await kv.get('a'))?.metadata).toEqual({ tag: 't' })
    expect((await kv.get('b'))?.value).toBe(big)
    expect(await kv.get('c').then((e) => e?.value)).toEqual(Buffer.from([1, 2, 3]))
    const many = await kv.getMany(['a', 'missing', 'b'])
    expect(many.map((e) => e?.key ?? null)).toEqual(['a', null, 'b'])
    expect([await kv.has('a'), await kv.has('missing')]).toEqual([true, false])
    // A bad key rejects (not throws) with 5003, as before.
    const pending = kv.get('')
    expect(pending).toBeInstanceOf(Promise)
    await expect(pending).rejects.toMatchObject({ code: 5003 })
    await kv.close()
    await expect(kv.get('a')).rejects.toMatchObject({ code: 5001 })
  })

  test('64 sets in flight all resolve, each durable and in call order', async () => {
    const path = dirs.next()
    const a = new NativeAdapter({ path })
    await a.init()
    const writes = []
    for (let i = 0; i < 64; i++) writes.push(a.set([json(`k${i % 8}`, i)], 1000 + i))
    // A bad one among them is refused alone.
    const bad = a.set([{ ...json('bad', 1), metadata: '[]' }], 2000)
    await Promise.all(writes)
    expect(await rejection(bad)).toMatchObject({ code: 5004 })
    await a.close()
    const again = await adapter(path)
    const entries = await again.get(['k0', 'k7', 'bad'], 3000)
    // The last write of each key wins: call order is commit order.
    expect(entries.map((e) => (e === null ? null : e.value))).toEqual([
      { kind: 'json', text: '56' },
      { kind: 'json', text: '63' },
      null,
    ])
    expect([entries[0]?.createdAt, entries[0]?.updatedAt]).toEqual([1000, 1056])
  })
})

describe('NativeAdapter on disk', () => {
  test('sets in flight hold the process open until they settle, and an idle adapter does not', async () => {
    // Sets settle through one wake-up function per table, not a Promise of
    // napi's own each: it must hold the event loop while sets are
    // outstanding (else this child exits before they resolve) and let go
    // after (else it never exits and spawnSync kills it).
    const path = dirs.next()
    const script = `
      const { NativeAdapter } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'persistence', 'native.js'))})
      const a = new NativeAdapter({ path: process.argv[1] })
      a.init().then(() => {
        let settled = 0
        for (let i = 0; i < 100; i++) {
          const write = { key: 'k' + i, value: { kind: 'json', text: String(i) }, metadata: '{}', expiresAt: null }
          a.set([write], 1000 + i).then(() => { if (++settled === 100) console.log('settled 100') })
        }
      })`
    const result = spawnSync(process.execPath, ['-e', script, path], { encoding: 'utf8', timeout: 60_000 })
    expect(result.stderr).toBe('')
    expect(result.signal).toBeNull()
    expect(result.stdout.trim()).toBe('settled 100')
    const again = await adapter(path)
    const entries = await again.get(['k0', 'k99'], 5000)
    expect(entries.map((e) => (e === null ? null : e.value))).toEqual([
      { kind: 'json', text: '0' },
      { kind: 'json', text: '99' },
    ])
  })

  test('a second process on the same path gets 5001', async () => {
    const path = dirs.next()
    await adapter(path)
    const script = `
      const { NativeAdapter } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'persistence', 'native.js'))})
      new NativeAdapter({ path: process.argv[1] }).init().then(
        () => console.log('opened'),
        (e) => console.log(JSON.stringify({ code: e.code, kind: e.kind })),
      )`
    const result = spawnSync(process.execPath, ['-e', script, path], { encoding: 'utf8' })
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout.trim())).toEqual({ code: 5001, kind: 'IN_USE' })
    // In this process too.
    expect((await rejection(new NativeAdapter({ path }).init())).code).toBe(5001)
  })

  test('a corrupt checkpoint is a typed error naming the file, never an empty store', async () => {
    const path = dirs.next()
    const a = new NativeAdapter({ path })
    await a.init()
    await a.set([json('keep', 1)], 1)
    await a.close() // checkpoints
    const checkpoint = readdirSync(path).find((n) => n.startsWith('snapshot-'))
    expect(checkpoint).toBeDefined()
    const file = join(path, checkpoint as string)
    const bytes = readFileSync(file)
    bytes[bytes.length - 3] ^= 0xff
    writeFileSync(file, bytes)
    const error = await rejection(new NativeAdapter({ path }).init())
    expect([error.code, error.kind]).toEqual([5006, 'CORRUPT'])
    expect(error.details.file).toBe(file)
    expect(error.message).toContain(file)
  })

  test('every acknowledged set survives SIGKILL at random moments, and no batch is half there', async () => {
    const path = dirs.next()
    mkdirSync(path, { recursive: true })
    const random = rng(16)
    const acknowledged = new Set<number>()
    const ROUND = 1_000_000
    for (let round = 0; round < 12; round++) {
      const durability = round % 4 === 3 ? 'flush' : 'fsync'
      const mode = round % 2 === 1 ? 'burst' : 'serial'
      const child = spawn(process.execPath, [join(children, 'native-kv-writer.js'), path, String(1 + round * ROUND), durability, mode])
      const done = closed(child)
      onLines(child.stdout, (line) => {
        if (line.startsWith('ack ')) acknowledged.add(Number(line.slice(4)))
      })
      await waitForLine(child, (line) => line === 'ready')
      await new Promise((resolve) => setTimeout(resolve, 5 + random() * 80))
      child.kill('SIGKILL')
      await done

      const a = new NativeAdapter({ path })
      await a.init()
      const keys = new Set(await a.keys(undefined, Date.now()))
      await a.close()
      const wrong: unknown[] = []
      for (const n of acknowledged) if (!keys.has(`k${n}`)) wrong.push({ acknowledgedButMissing: n })
      for (const key of keys) {
        const n = Number(/^k(\d+)/.exec(key)?.[1])
        if (n % 5 === 2) {
          const batch = [`k${n}`, `k${n}-b1`, `k${n}-b2`]
          if (!batch.every((k) => keys.has(k))) wrong.push({ halfABatch: n })
        }
      }
      expect(wrong).toEqual([])
    }
    expect(acknowledged.size).toBeGreaterThan(20)
  }, 120_000)
})

// StorageManager (lib/storage): the issue's YAML as written, every storage
// type, pack files byte by byte, hot backups under concurrent writes, a
// SIGKILL during a backup, retention, schedules due at open, failures.

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { PersistenceError } from '../lib/persistence/index'
import type { StorageManager as RootStorageManager } from '../index'
import { PackStorage, StorageError, StorageManager, type StorageManagerOptions } from '../lib/storage/index'
import { closed, onLines, rng, tempDirs, waitForLine } from './fixtures'

const dirs = tempDirs()
const open: StorageManager[] = []
afterEach(async () => {
  for (const m of open.splice(0)) await m.close().catch(() => undefined)
  dirs.cleanup()
})

async function manager(config: string | Record<string, unknown>, options: StorageManagerOptions = {}): Promise<StorageManager> {
  const m = await StorageManager.fromConfig(config, options)
  open.push(m)
  return m
}

async function errorOf(promise: Promise<unknown> | (() => unknown)): Promise<StorageError & { code: number; details: Record<string, unknown> }> {
  try {
    if (typeof promise === 'function') await promise()
    else await promise
  } catch (error) {
    return error as StorageError & { code: number; details: Record<string, unknown> }
  }
  throw new Error('expected a rejection')
}

// The document of issue #17, byte for byte.
const ISSUE_YAML = `persistence:
  default_storage: "file"
  storages:
    file:     { type: "file",     base_path: "data/storage" }
    database: { type: "database", db_path: "data/xme.db" }
    pack:     { type: "pack",     pack_path: "data/packs" }
    cache:    { type: "cache",    ttl: 3600 }
  backup: { enabled: true, schedule: "daily", retention: 30, path: "data/backups" }
`

/** Every storage type, backups without a schedule, relative to `dir`. */
function fullConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    persistence: {
      default_storage: 'file',
      storages: {
        file: { type: 'file', base_path: 'data/storage' },
        db: { type: 'database', db_path: 'data/xme.db' },
        pack: { type: 'pack', pack_path: 'data/packs' },
        cache: { type: 'cache', ttl: 3600 },
        kv: { type: 'native', path: 'data/kv' },
        vec: { type: 'vectors', path: 'data/vectors', collection: 'docs', dimension: 3 },
      },
      backup: { enabled: true, retention: 30, path: 'data/backups' },
      ...extra,
    },
  }
}

describe('configuration', () => {
  test('the YAML of the issue loads as written and every storage in it round-trips data, Python names too', async () => {
    const dir = dirs.next()
    writeFileSync(join(dir, 'storage.yaml'), ISSUE_YAML)
    const m = await manager(join(dir, 'storage.yaml'), { clock: () => Date.now() })
    expect(m.storageNames()).toEqual(['file', 'database', 'pack', 'cache'])
    expect(m.stats().backups).toMatchObject({ enabled: true, schedule: 'daily', retention: 30 })
    for (const name of ['file', 'database', 'pack', 'cache']) {
      await m.store(name, 'proof:1', { steps: 12, ok: true })
      expect(await m.retrieve(name, 'proof:1')).toEqual({ steps: 12, ok: true })
      await m.get_storage(name).store('other', 'x')
      expect(await m.get_storage(name).list_keys('proof')).toEqual(['proof:1'])
      expect(await m.list_keys(name)).toEqual(['other', 'proof:1'])
      expect(await m.delete(name, 'proof:1')).toBe(true)
      expect(await m.retrieve(name, 'proof:1')).toBeNull()
      expect(await m.delete(name, 'proof:1')).toBe(false)
    }
    // The default storage when the name is left out, and relative paths under the config's directory.
    await m.store('k', [1, 2])
    expect(await m.retrieve('k')).toEqual([1, 2])
    expect(await m.retrieve('file', 'k')).toEqual([1, 2])
    expect(await m.listKeys()).toEqual(['k', 'other'])
    expect(existsSync(join(dir, 'data/xme.db'))).toBe(true)
    expect(existsSync(join(dir, 'data/storage'))).toBe(true)
    expect(existsSync(join(dir, 'data/packs'))).toBe(true)
    // The schedule is daily and there was no backup: one ran at open.
    await m.idle()
    expect(await m.listBackups()).toHaveLength(1)
  })

  test('native and vectors storages round-trip too, and data outlives a reopen', async () => {
    const dir = dirs.next()
    const m = await manager(fullConfig(), { baseDir: dir })
    await m.store('kv', 'a', Buffer.from([1, 2, 3]))
    await m.store('vec', 'p1', { vector: [1, 0, 0], payload: { t: 'one' } })
    await m.store('vec', 'p2', { vector: [0, 1, 0] })
    expect(await m.retrieve('vec', 'p1')).toEqual({ vector: [1, 0, 0], payload: { t: 'one' } })
    expect(await m.listKeys('vec', 'p')).toEqual(['p1', 'p2'])
    expect(await m.delete('vec', 'p2')).toBe(true)
    expect((await errorOf(m.store('vec', 'bad', 'not a point'))).code).toBe(5004)
    await m.close()
    const again = await manager(fullConfig(), { baseDir: dir })
    expect(await again.retrieve('kv', 'a')).toEqual(Buffer.from([1, 2, 3]))
    expect(await again.listKeys('vec')).toEqual(['p1'])
  })

  test('bad configurations are refused with 5101 naming the key, and nothing is created', async () => {
    const dir = dirs.next()
    const cases: Array<[unknown, string]> = [
      [{ persistence: { storages: { s: { type: 'ftp', base_path: 'x' } } } }, 'persistence.storages.s.type'],
      [{ persistence: { storages: { s: { type: 'file' } } } }, 'persistence.storages.s.base_path'],
      [{ persistence: { storages: { s: { type: 'file', base_path: 'x', colour: 1 } } } }, 'persistence.storages.s.colour'],
      [{ persistence: { storages: { s: { type: 'file', base_path: '../outside' } } } }, 'persistence.storages.s.base_path'],
      [{ persistence: { storages: { s: { type: 'pack', pack_path: 'a/../../b' } } } }, 'persistence.storages.s.pack_path'],
      [{ persistence: { storages: { s: { type: 'file', base_path: 'x' } }, default_storage: 'nope' } }, 'persistence.default_storage'],
      [{ persistence: { storages: { s: { type: 'file', base_path: 'x' } }, backups: {} } }, 'persistence.backups'],
      [{ persistence: { storages: { s: { type: 'file', base_path: 'x' } }, backup: { path: 'b', retention: 0 } } }, 'persistence.backup.retention'],
      [{ persistence: { storages: { s: { type: 'file', base_path: 'x' } }, backup: { path: 'b', schedule: 'monthly' } } }, 'persistence.backup.schedule'],
      [{ persistence: { storages: { s: { type: 'cache', ttl: -1 } } } }, 'persistence.storages.s.ttl'],
      [{ persistence: { storages: { v: { type: 'vectors', path: 'v', collection: 'c' } } } }, 'persistence.storages.v.dimension'],
      [{ persistence: { storages: {} } }, 'persistence.storages'],
    ]
    for (const [config, key] of cases) {
      const error = await errorOf(StorageManager.fromConfig(config as Record<string, unknown>, { baseDir: dir }))
      expect(error).toBeInstanceOf(StorageError)
      expect(error).toBeInstanceOf(PersistenceError)
      expect({ code: error.code, key: error.details.key }).toEqual({ code: 5101, key })
    }
    writeFileSync(join(dir, 'broken.yaml'), 'persistence:\n  storages: { file: { type: "file", base_path: "x" }\n')
    const syntax = await errorOf(StorageManager.fromConfig(join(dir, 'broken.yaml')))
    expect(syntax.code).toBe(5101)
    expect(syntax.details.file).toBe(join(dir, 'broken.yaml'))
    expect(readdirSync(dir)).toEqual(['broken.yaml'])
  })

  test('an unknown storage name is 5102; a closed manager refuses calls', async () => {
    const m = await manager(fullConfig(), { baseDir: dirs.next() })
    const error = await errorOf(m.retrieve('nope', 'k'))
    expect({ code: error.code, storage: error.details.storage }).toEqual({ code: 5102, storage: 'nope' })
    expect((await errorOf(() => m.getStorage('nope'))).code).toBe(5102)
    await m.close()
    expect((await errorOf(m.store('file', 'k', 1))).code).toBe(5001)
    await m.close()
  })
})

// index.d.ts declares the class by hand (lib/ imports it, so it cannot import dist/): the
// compiled class must satisfy that declaration, statically and its factory too.
const rootShape: Pick<RootStorageManager, keyof RootStorageManager> = null as unknown as StorageManager
const rootFactory: typeof RootStorageManager.fromConfig = StorageManager.fromConfig
void rootShape

test('the package root exports StorageManager (the compiled one in dist/)', async () => {
  expect(typeof rootFactory).toBe('function')
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const root = require('../index.js') as { StorageManager: typeof StorageManager }
  const m = await root.StorageManager.fromConfig({ persistence: { storages: { c: { type: 'cache' } } } })
  await m.store('k', 1)
  expect(await m.retrieve('k')).toBe(1)
  await m.close()
})

describe('pack storage', () => {
  async function packs(level = 6): Promise<{ m: StorageManager; pack: PackStorage; root: string }> {
    const dir = dirs.next()
    const m = await manager({ persistence: { storages: { pack: { type: 'pack', pack_path: 'packs', compression_level: level } } } }, { baseDir: dir })
    return { m, pack: m.getStorage('pack') as PackStorage, root: join(dir, 'packs') }
  }

  test('Buffer, string, JSON and stream in; the same kind out, or a stream on request', async () => {
    const { pack, root } = await packs()
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 256))
    await pack.store('bundles/2026/b1', bytes)
    await pack.store('text', 'héllo '.repeat(1000))
    await pack.store('json', { proof: [1, 2, 3], ok: true })
    await pack.store('stream', Readable.from([Buffer.from('ab'), 'cd', new Uint8Array([101])]))
    expect(await pack.retrieve('bundles/2026/b1')).toEqual(bytes)
    expect(await pack.retrieve('text')).toBe('héllo '.repeat(1000))
    expect(await pack.retrieve('json')).toEqual({ proof: [1, 2, 3], ok: true })
    expect(await pack.retrieve('stream')).toEqual(Buffer.from('abcde'))
    const out: Buffer[] = []
    for await (const chunk of (await pack.retrieve('bundles/2026/b1', { stream: true })) as Readable) out.push(chunk as Buffer)
    expect(Buffer.concat(out)).toEqual(bytes)
    expect(await pack.retrieve('missing')).toBeNull()
    expect(await pack.listKeys()).toEqual(['bundles/2026/b1', 'json', 'stream', 'text'])
    expect(await pack.list_keys('bundles/')).toEqual(['bundles/2026/b1'])
    expect(existsSync(join(root, 'bundles', '2026', 'b1.pack'))).toBe(true)
    // Compressed: 6,000 bytes of repeated text take far fewer.
    expect(statSync(join(root, 'text.pack')).size).toBeLessThan(500)
    expect(await pack.delete('text')).toBe(true)
    expect(await pack.delete('text')).toBe(false)
    expect(await pack.retrieve('text')).toBeNull()
  })

  test('the file is laid out as the module documents', async () => {
    const { pack, root } = await packs()
    await pack.store('k', 'abc')
    const file = readFileSync(join(root, 'k.pack'))
    expect(file.subarray(0, 8).toString('latin1')).toBe('AVPACK\r\n')
    expect(file.readUInt32LE(8)).toBe(1)
    expect(file[12]).toBe(1) // string
    expect(file[13]).toBe(1) // raw deflate
    expect(file.readUInt32LE(16)).toBe(1)
    expect(file.subarray(20, 21).toString()).toBe('k')
    const trailer = file.subarray(file.length - 56)
    expect(trailer.readBigUInt64LE(0)).toBe(3n)
    expect(Number(trailer.readBigUInt64LE(8))).toBe(file.length - 21 - 56)
    const sha = createHash('sha256').update(file.subarray(0, 21)).update('abc').digest()
    expect(trailer.subarray(16, 48)).toEqual(sha)
    expect(trailer.subarray(48).toString('latin1')).toBe('AVPACKND')
  })

  test('a multi-megabyte stream goes in and out with memory bounded by the stream buffers', async () => {
    const { pack } = await packs(1)
    const CHUNK = 1 << 16
    const CHUNKS = 1536 // 96 MiB
    const random = rng(7)
    const seed = Buffer.from(Array.from({ length: CHUNK }, () => Math.floor(random() * 256)))
    const inHash = createHash('sha256')
    const base = process.memoryUsage()
    let peak = 0
    const sample = () => {
      const now = process.memoryUsage()
      peak = Math.max(peak, now.arrayBuffers - base.arrayBuffers + (now.heapUsed - base.heapUsed))
    }
    async function* source() {
      for (let i = 0; i < CHUNKS; i++) {
        const chunk = Buffer.from(seed)
        chunk.writeUInt32LE(i, 0)
        inHash.update(chunk)
        if (i % 64 === 0) sample()
        yield chunk
      }
    }
    await pack.store('big', Readable.from(source()))
    const outHash = createHash('sha256')
    let bytes = 0
    let i = 0
    for await (const chunk of (await pack.retrieve('big', { stream: true })) as Readable) {
      outHash.update(chunk as Buffer)
      bytes += (chunk as Buffer).length
      if (i++ % 64 === 0) sample()
    }
    expect(bytes).toBe(CHUNK * CHUNKS)
    expect(outHash.digest('hex')).toBe(inHash.digest('hex'))
    expect(peak).toBeLessThan(48 * 1024 * 1024)
  })

  test('a damaged pack is 5103 naming the file, wherever the damage is', async () => {
    const { pack, root } = await packs()
    const value = Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7) % 251))
    const file = join(root, 'p.pack')
    const damages: Array<[string, (b: Buffer) => Buffer]> = [
      ['body byte', (b) => (b[b.length - 56 - 100] ^= 0x40, b)],
      ['kind byte', (b) => ((b[12] = 2), b)],
      ['magic', (b) => ((b[0] = 0x41 + 1), b)],
      ['raw length', (b) => ((b[b.length - 56] ^= 1), b)],
      ['checksum', (b) => ((b[b.length - 30] ^= 1), b)],
      ['truncated', (b) => b.subarray(0, b.length - 10)],
      ['key', (b) => ((b[20] = 0x71), b)],
    ]
    for (const [what, damage] of damages) {
      await pack.store('p', value)
      writeFileSync(file, damage(readFileSync(file)))
      for (const stream of [false, true]) {
        const error = await errorOf(pack.retrieve('p', { stream }))
        expect({ what, code: error.code, file: error.details.file }).toEqual({ what, code: 5103, file })
      }
    }
  })

  test('a key that would escape the directory is 5003 and touches nothing', async () => {
    const { pack, root } = await packs()
    for (const key of ['../x', '/etc/passwd', 'a/../../b', 'a\\b', '.hidden', 'a/./b', 'a//b', 'a/', '', 'nul\0', '..']) {
      for (const call of [() => pack.store(key, 'x'), () => pack.retrieve(key), () => pack.delete(key)]) {
        const error = await errorOf(call)
        expect({ key, code: error.code }).toEqual({ key, code: 5003 })
      }
    }
    expect(readdirSync(root)).toEqual([])
    expect(existsSync(join(root, '..', 'x.pack'))).toBe(false)
  })

  test('a stream that fails midway leaves the old pack and no temp file', async () => {
    const { pack, root } = await packs()
    await pack.store('k', 'old')
    async function* failing() {
      yield Buffer.alloc(100000, 1)
      throw new Error('source broke')
    }
    const error = await errorOf(pack.store('k', Readable.from(failing())))
    expect(error.message).toMatch(/source broke/)
    expect(await pack.retrieve('k')).toBe('old')
    expect(readdirSync(root)).toEqual(['k.pack'])
  })
})

describe('backups', () => {
  test('a backup taken while every storage is being written restores, per storage, a prefix of the writes', async () => {
    const dir = dirs.next()
    const m = await manager(fullConfig(), { baseDir: dir })
    const names = ['file', 'db', 'pack', 'kv', 'vec'] as const
    const key = (i: number) => `k${String(i).padStart(5, '0')}`
    const value = (name: string, i: number) =>
      name === 'vec' ? { vector: [1, i, 0], payload: { i } } : name === 'pack' ? `pack ${i}` : { i, by: name }
    let stop = false
    const written: Record<string, number> = {}
    const writers = names.map(async (name) => {
      written[name] = 0
      for (let i = 0; !stop || i < 20; i++) {
        await m.store(name, key(i), value(name, i))
        written[name] = i + 1
      }
    })
    while (Object.values(written).some((n) => n < 10)) await new Promise((r) => setTimeout(r, 1))
    const backup = await m.backupNow()
    stop = true
    await Promise.all(writers)
    expect((await m.verifyBackup(backup.id)).ok).toBe(true)
    for (const name of names) expect(written[name]).toBeGreaterThan(0)
    await m.restoreBackup(backup.id)
    for (const name of names) {
      const keys = await m.listKeys(name)
      // A prefix: k00000 … k(n-1), at least what was written before the backup began.
      expect(keys).toEqual(Array.from({ length: keys.length }, (_, i) => key(i)))
      expect(keys.length).toBeGreaterThanOrEqual(10)
      expect(keys.length).toBeLessThanOrEqual(written[name])
      for (const i of [0, keys.length - 1]) expect(await m.retrieve(name, key(i))).toEqual(value(name, i))
    }
    expect(backup.storages.cache).toEqual({ type: 'cache', skipped: 'a cache is kept in memory only' })
    // Writes go on against the restored storages.
    await m.store('db', 'after', 1)
    expect(await m.retrieve('db', 'after')).toBe(1)
  })

  test('layout: <path>/<id>/<storage>/… and MANIFEST.json with sizes and SHA-256 of every file', async () => {
    const dir = dirs.next()
    const m = await manager(fullConfig(), { baseDir: dir, clock: () => Date.UTC(2026, 11, 1, 8, 11, 6, 123) })
    await m.store('pack', 'p', 'x')
    const info = await m.backupNow()
    expect(info.id).toBe('20261201T081106123Z')
    expect(info.path).toBe(join(dir, 'data/backups', info.id))
    const manifest = JSON.parse(readFileSync(join(info.path, 'MANIFEST.json'), 'utf8'))
    expect(manifest).toMatchObject({ format: 'annvault-storage-backup', version: 1, id: info.id, createdAt: Date.UTC(2026, 11, 1, 8, 11, 6, 123) })
    expect(Object.keys(manifest.storages).sort()).toEqual(['cache', 'db', 'file', 'kv', 'pack', 'vec'])
    const packFile = manifest.files.find((f: { path: string }) => f.path === 'pack/p.pack')
    expect(packFile.sha256).toBe(createHash('sha256').update(readFileSync(join(info.path, 'pack/p.pack'))).digest('hex'))
    expect(manifest.files.some((f: { path: string }) => f.path === 'db/database.db')).toBe(true)
    // The same clock again: a second id, not an overwrite.
    expect((await m.backupNow()).id).toBe('20261201T081106123Z-1')
  })

  test('a damaged backup fails verification and restore refuses it, changing nothing', async () => {
    const dir = dirs.next()
    const m = await manager(fullConfig(), { baseDir: dir })
    await m.store('db', 'k', 'backed up')
    await m.store('pack', 'p', 'backed up')
    const backup = await m.backupNow()
    await m.store('db', 'k', 'live')
    const file = join(backup.path, 'pack', 'p.pack')
    const bytes = readFileSync(file)
    bytes[30] ^= 0xff
    writeFileSync(file, bytes)
    writeFileSync(join(backup.path, 'pack', 'stray.pack'), 'x')
    const report = await m.verifyBackup(backup.id)
    expect(report.ok).toBe(false)
    expect(report.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'pack/p.pack', problem: 'sha256' }),
        expect.objectContaining({ path: 'pack/stray.pack', problem: 'unlisted' }),
      ]),
    )
    const error = await errorOf(m.restoreBackup(backup.id))
    expect(error.code).toBe(5105)
    expect(await m.retrieve('db', 'k')).toBe('live')
    expect((await errorOf(m.verifyBackup('20000101T000000000Z'))).code).toBe(5106)
    expect((await errorOf(m.restoreBackup('../etc'))).code).toBe(5106)
  })

  test('restore of chosen storages leaves the others as they are', async () => {
    const m = await manager(fullConfig(), { baseDir: dirs.next() })
    await m.store('db', 'k', 1)
    await m.store('kv', 'k', 1)
    const backup = await m.backupNow()
    await m.store('db', 'k', 2)
    await m.store('kv', 'k', 2)
    expect(await m.restoreBackup(backup.id, { storages: ['kv'] })).toEqual({ id: backup.id, storages: ['kv'] })
    expect(await m.retrieve('kv', 'k')).toBe(1)
    expect(await m.retrieve('db', 'k')).toBe(2)
    expect((await errorOf(m.restoreBackup(backup.id, { storages: ['nope'] }))).code).toBe(5102)
  })

  test('a restore cut short by a crash is undone or finished at the next open', async () => {
    const dir = dirs.next()
    const config = { persistence: { storages: { pack: { type: 'pack', pack_path: 'packs' }, db: { type: 'database', db_path: 'x.db' } } } }
    let m = await manager(config, { baseDir: dir })
    await m.store('pack', 'a', 'kept')
    await m.store('db', 'a', 'kept')
    await m.close()
    // Crash after the live copy was moved aside, before the new one took its place: the old one comes back.
    renameSync(join(dir, 'packs'), join(dir, 'packs.restore-old'))
    renameSync(join(dir, 'x.db'), join(dir, 'x.db.restore-old'))
    mkdirSync(join(dir, 'packs.restore-staging'))
    m = await manager(config, { baseDir: dir })
    expect(await m.retrieve('pack', 'a')).toBe('kept')
    expect(await m.retrieve('db', 'a')).toBe('kept')
    await m.close()
    expect(readdirSync(dir).sort()).toEqual(['packs', 'x.db'])
    // Crash after the swap, before the old copy was removed: the swap stands, the old copy goes.
    mkdirSync(join(dir, 'packs.restore-old'))
    writeFileSync(join(dir, 'packs.restore-old', 'a.pack'), 'old')
    m = await manager(config, { baseDir: dir })
    expect(await m.retrieve('pack', 'a')).toBe('kept')
    expect(existsSync(join(dir, 'packs.restore-old'))).toBe(false)
  })

  test('retention keeps the newest backups', async () => {
    let now = Date.UTC(2026, 0, 1)
    const m = await manager(fullConfig({ backup: { path: 'b', retention: 2 } }), { baseDir: dirs.next(), clock: () => now })
    const ids: string[] = []
    for (let i = 0; i < 4; i++) {
      await m.store('db', `k${i}`, i)
      ids.push((await m.backupNow()).id)
      now += 60_000
    }
    expect((await m.listBackups()).map((b) => b.id)).toEqual(ids.slice(2))
  })

  test('a backup directory that cannot be made is 5104 naming the path, and nothing is listed', async () => {
    const dir = dirs.next()
    writeFileSync(join(dir, 'blocker'), 'a file where a directory should be')
    const m = await manager(fullConfig({ backup: { path: 'blocker/backups' } }), { baseDir: dir })
    const error = await errorOf(m.backupNow())
    expect(error.code).toBe(5104)
    expect(String(error.details.path)).toContain(join(dir, 'blocker'))
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked')
      mkdirSync(locked, { mode: 0o500 })
      const m2 = await manager(fullConfig({ backup: { path: 'locked/b' } }), { baseDir: dirs.next() })
      expect((await errorOf(m2.backupNow())).code).toBe(5104)
    }
  })

  test('a process killed with SIGKILL during backups leaves no partial backup listed; each listed one verifies', async () => {
    const dir = dirs.next()
    const config = join(dir, 'config.json')
    writeFileSync(
      config,
      JSON.stringify({
        persistence: {
          storages: { db: { type: 'database', db_path: 'xme.db' }, pack: { type: 'pack', pack_path: 'packs', compression_level: 0 } },
          backup: { path: 'backups', retention: 100 },
        },
      }),
    )
    {
      // Large packs (stored uncompressed: level 0), so that hashing a backup takes a while.
      const m = await manager(config)
      for (let i = 0; i < 4; i++) await m.store('pack', `blob${i}`, Buffer.alloc(4 << 20, i))
      await m.close()
    }
    const random = rng(11)
    let partials = 0
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, [join(__dirname, 'children', 'storage-backup.js'), config])
      const done = closed(child)
      let errors = ''
      child.stderr.on('data', (c: Buffer) => (errors += c.toString()))
      onLines(child.stdout, () => undefined)
      await waitForLine(child, (line) => line === 'backup 1')
      await new Promise((r) => setTimeout(r, random() * 50))
      child.kill('SIGKILL')
      await done
      expect(errors).toBe('')
      const names = readdirSync(join(dir, 'backups'))
      partials += names.filter((n) => !existsSync(join(dir, 'backups', n, 'MANIFEST.json'))).length
    }
    const m = await manager(config)
    const listed = await m.listBackups()
    expect(listed.length).toBeGreaterThan(0)
    for (const b of listed) {
      expect(existsSync(join(b.path, 'MANIFEST.json'))).toBe(true)
      expect((await m.verifyBackup(b.id)).ok).toBe(true)
    }
    // The kills landed mid-backup at least once: a directory without a manifest, never listed.
    expect(partials).toBeGreaterThan(0)
    const newest = listed[listed.length - 1]
    await m.restoreBackup(newest.id, { storages: ['db'] })
    const keys = await m.listKeys('db')
    expect(keys).toEqual(Array.from({ length: keys.length }, (_, i) => `k${String(i).padStart(6, '0')}`))
  }, 180_000)
})

describe('schedules', () => {
  test('a backup due while the process was down runs at open; one not yet due waits', async () => {
    const dir = dirs.next()
    const day = 24 * 3600_000
    const t0 = Date.UTC(2026, 5, 1)
    const config = fullConfig({ backup: { path: 'b', schedule: 'daily', retention: 30 } })
    let m = await manager(config, { baseDir: dir, clock: () => t0 })
    await m.idle()
    expect((await m.listBackups()).map((b) => b.createdAt.getTime())).toEqual([t0])
    await m.close()
    m = await manager(config, { baseDir: dir, clock: () => t0 + day - 1 })
    await m.idle()
    expect(await m.listBackups()).toHaveLength(1)
    expect(m.stats().backups.nextBackupAt).toEqual(new Date(t0 + day))
    await m.close()
    m = await manager(config, { baseDir: dir, clock: () => t0 + 3 * day })
    await m.idle()
    expect((await m.listBackups()).map((b) => b.createdAt.getTime())).toEqual([t0, t0 + 3 * day])
    expect(m.stats().backups).toMatchObject({ succeeded: 1, failed: 0, lastBackupAt: new Date(t0 + 3 * day) })
  })

  test('a backup directory that cannot be listed does not keep the storages closed: it is a reported backup failure', async () => {
    const dir = dirs.next()
    const errors: Error[] = []
    mkdirSync(join(dir, 'b', '20260101T000000000Z'), { recursive: true })
    writeFileSync(join(dir, 'b', '20260101T000000000Z', 'MANIFEST.json'), '{ damaged')
    const m = await manager(fullConfig({ backup: { path: 'b', schedule: 'daily' } }), { baseDir: dir, onBackupError: (e) => errors.push(e) })
    await m.store('db', 'k', 1)
    expect(await m.retrieve('db', 'k')).toBe(1)
    expect(errors.map((e) => (e as StorageError).code)).toEqual([5105])
    expect(m.stats().backups).toMatchObject({ failed: 1, lastError: errors[0] })
    expect((await errorOf(m.listBackups())).code).toBe(5105)
  })

  test('an interval schedule runs again on its unref()ed timer', async () => {
    const m = await manager(fullConfig({ backup: { path: 'b', schedule: 1000 } }), { baseDir: dirs.next() })
    while (m.stats().backups.succeeded < 2) await new Promise((r) => setTimeout(r, 50))
    expect((await m.listBackups()).length).toBeGreaterThanOrEqual(2)
    expect(m.stats().backups.schedule).toBe('1000ms')
  }, 30_000)

  test('a failed scheduled backup goes to onBackupError and stats(), and leaves nothing listed', async () => {
    const errors: Error[] = []
    const dir = dirs.next()
    const m = await manager(fullConfig({ backup: { path: 'b', schedule: 1000 } }), { baseDir: dir, onBackupError: (e) => errors.push(e) })
    await m.idle()
    expect(await m.listBackups()).toHaveLength(1)
    // A storage closed underneath: the next backup fails after copying the storages before it.
    await m.getStorage('db').close()
    await expect(m.backupNow()).rejects.toMatchObject({ code: 5104, details: { storage: 'db' } })
    // The timer's backup: the same failure, reported rather than thrown.
    while (errors.length === 0) await new Promise((r) => setTimeout(r, 50))
    expect((errors[0] as StorageError).code).toBe(5104)
    expect(m.stats().backups).toMatchObject({ lastError: errors[0] })
    expect(m.stats().backups.failed).toBeGreaterThanOrEqual(1)
    await m.idle()
    expect(await m.listBackups()).toHaveLength(1)
    expect(readdirSync(join(dir, 'b')).filter((n) => !n.startsWith('.'))).toHaveLength(1)
  }, 30_000)
})

// What the persistent adapters owe beyond the shared suite: no batch half
// there after a SIGKILL, typed errors naming corrupt files, safe file names.

import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { DefaultPersistenceManager, FileAdapter, PersistenceError, SQLiteAdapter } from '../lib/persistence/index'
import { closed, onLines, rng, tempDirs, waitForLine } from './fixtures'

const dirs = tempDirs()
afterAll(() => dirs.cleanup())

const children = join(__dirname, 'children')

async function rejection(promise: Promise<unknown>): Promise<PersistenceError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(PersistenceError)
    return error as PersistenceError
  }
  throw new Error('expected a rejection')
}

function listFiles(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const dirent of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, dirent.name)
      if (dirent.isDirectory()) walk(full)
      else out.push(relative(root, full))
    }
  }
  walk(root)
  return out.sort()
}

describe.each([
  ['file', (dir: string) => join(dir, 'files')],
  ['sqlite', (dir: string) => join(dir, 'kv.db')],
])('%s adapter killed with SIGKILL', (kind, placeOf) => {
  test('every acknowledged batch survives and no batch is half there (12 kills)', async () => {
    const place = placeOf(dirs.next())
    const random = rng(7)
    let next = 1
    for (let kill = 0; kill < 12; kill++) {
      const child = spawn(process.execPath, [join(children, 'kv-writer.js'), kind, place, String(next)])
      const done = closed(child)
      let acked = next - 1
      onLines(child.stdout, (line) => {
        if (line.startsWith('ack ')) acked = Number(line.slice(4))
      })
      // After its first batch of this run, so that every kill lands among writes however slow the machine.
      await waitForLine(child, (line) => line.startsWith('ack '))
      await new Promise((resolve) => setTimeout(resolve, random() * 40))
      child.kill('SIGKILL')
      await done
      const adapter = kind === 'file' ? new FileAdapter({ basePath: place }) : new SQLiteAdapter({ filename: place })
      const kv = new DefaultPersistenceManager(adapter)
      await kv.init()
      const entries = await kv.find('b*')
      await kv.close()
      if (acked === 0) {
        expect([0, 10]).toContain(entries.length)
        if (entries.length === 0) continue
      }
      expect(entries).toHaveLength(10)
      const rounds = new Set(entries.map((e) => e.value))
      expect(rounds.size).toBe(1) // all or nothing
      const round = entries[0].value as number
      expect(entries.every((e) => e.metadata.round === round)).toBe(true)
      // The last acknowledged batch is there, or the one the kill interrupted after it was durable.
      expect([acked, acked + 1]).toContain(round)
      next = round + 1
    }
    expect(next).toBeGreaterThan(12) // every run wrote at least one batch
  })
})

describe('FileAdapter files', () => {
  test('names cannot escape basePath or collide by case, and long keys nest', async () => {
    const base = join(dirs.next(), 'files')
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    await kv.init()
    const keys = ['../../escape', '/abs', 'A', 'a', 'Ab', 'aB', '.', '..', 'con', 'user:42', '\u00e9', 'x'.repeat(200)]
    for (const key of keys) await kv.set(key, key)
    const files = listFiles(base)
    expect(files).toHaveLength(keys.length)
    for (const file of files) {
      expect(file).not.toMatch(/[A-Z]/)
      expect(file.split('/').every((part) => part !== '.' && part !== '..' && part.length <= 245)).toBe(true)
    }
    const lower = files.map((f) => f.toLowerCase())
    expect(new Set(lower).size).toBe(files.length)
    expect(files).toContain('user.3a42.json')
    expect(files).toContain('.41.json')
    expect(files).toContain('a.json')
    expect(files.filter((f) => f.includes('/'))).toHaveLength(1) // the 200-byte key: two directories deep
    for (const key of keys) expect((await kv.get(key))!.value).toBe(key)
    await kv.close()
  })

  test('find with a literal prefix reads only files under that prefix', async () => {
    const base = join(dirs.next(), 'files')
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    await kv.init()
    await kv.set('user:1', 1)
    await kv.set('other', 2)
    // A corrupt file outside the prefix is never opened by find('user:*') ...
    writeFileSync(join(base, 'other.json'), '{not json')
    expect((await kv.find('user:*')).map((e) => e.key)).toEqual(['user:1'])
    // ... but a full scan meets it and names it.
    const error = await rejection(kv.find('*'))
    expect(error.code).toBe(5005)
    expect(error.details.file).toBe(join(base, 'other.json'))
    expect(error.message).toContain('other.json')
    // It can still be deleted by its key.
    expect(await kv.delete('other')).toBe(true)
    expect(await kv.keys()).toEqual(['user:1'])
    await kv.close()
  })

  test('a file holding another key is corrupt, not a silent mix-up', async () => {
    const base = join(dirs.next(), 'files')
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    await kv.init()
    await kv.set('a', 1)
    await kv.set('b', 2)
    writeFileSync(join(base, 'b.json'), readFileSync(join(base, 'a.json')))
    const error = await rejection(kv.get('b'))
    expect(error.code).toBe(5005)
    expect(error.message).toContain('b.json')
    await kv.close()
  })

  test('init finishes a batch whose intent was committed and drops temp files of one that was not', async () => {
    const base = join(dirs.next(), 'files')
    mkdirSync(base, { recursive: true })
    const stamp = (key: string, value: number) =>
      `{"v":1,"key":"${key}","kind":"json","value":${value},"metadata":{},"createdAt":1,"updatedAt":1,"expiresAt":null}\n`
    writeFileSync(join(base, 'gone.json'), stamp('gone', 0))
    writeFileSync(join(base, '~tmp-1'), stamp('p', 1))
    writeFileSync(join(base, '~tmp-2'), stamp('q', 1))
    writeFileSync(join(base, '~batch.json'), JSON.stringify({ renames: [['~tmp-1', 'p.json'], ['~tmp-2', 'q.json']], removals: ['gone.json'] }))
    writeFileSync(join(base, '~tmp-3'), stamp('r', 1)) // a batch that never committed
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    await kv.init()
    expect(await kv.keys()).toEqual(['p', 'q'])
    expect(listFiles(base)).toEqual(['p.json', 'q.json'])
    await kv.close()
  })

  test('an intent naming a path outside basePath is refused', async () => {
    const base = join(dirs.next(), 'files')
    mkdirSync(base, { recursive: true })
    writeFileSync(join(base, '~batch.json'), JSON.stringify({ renames: [], removals: ['../victim'] }))
    const error = await rejection(new DefaultPersistenceManager(new FileAdapter({ basePath: base })).init())
    expect(error.code).toBe(5005)
    expect(error.details.file).toBe(join(base, '~batch.json'))
  })
})

describe('SQLiteAdapter files', () => {
  test('a file that is not a database rejects init with 5005 naming it, and stays as it was', async () => {
    const filename = join(dirs.next(), 'junk.db')
    const junk = Buffer.alloc(16384, 0x5a)
    writeFileSync(filename, junk)
    const error = await rejection(new DefaultPersistenceManager(new SQLiteAdapter({ filename })).init())
    expect(error.code).toBe(5005)
    expect(error.details.file).toBe(filename)
    expect(error.message).toContain('junk.db')
    expect(readFileSync(filename).equals(junk)).toBe(true)
  })

  test('a database damaged past its header rejects reads with 5005, never an empty store', async () => {
    const filename = join(dirs.next(), 'damaged.db')
    const kv = new DefaultPersistenceManager(new SQLiteAdapter({ filename }))
    await kv.init()
    await kv.setMany(Array.from({ length: 400 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(200) })))
    await kv.close() // checkpoints the WAL into the file
    const bytes = readFileSync(filename)
    bytes.fill(0xa5, 4096) // every page after the first
    writeFileSync(filename, bytes)
    const again = new DefaultPersistenceManager(new SQLiteAdapter({ filename }))
    const outcome = await again
      .init()
      .then(() => again.keys())
      .catch((error: unknown) => error)
    expect(outcome).toBeInstanceOf(PersistenceError)
    expect((outcome as PersistenceError).code).toBe(5005)
    expect((outcome as PersistenceError).details.file).toBe(filename)
    await again.close()
  })

  test('invalid table names are refused with 5003 before any file is made', () => {
    for (const tableName of ['', '1abc', 'a-b', 'a b', 'x"; DROP TABLE y; --', 'sqlite_master', 'x'.repeat(65)]) {
      let error: unknown
      try {
        new SQLiteAdapter({ filename: join(dirs.next(), 'x.db'), tableName })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(PersistenceError)
      expect((error as PersistenceError).code).toBe(5003)
    }
  })

  test('a table of that name with other columns is refused with 5005', async () => {
    const dir = dirs.next()
    const filename = join(dir, 'other.db')
    const { spawnSync } = await import('node:child_process')
    const made = spawnSync('python3', ['-c', "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE app_data (id INTEGER)'); c.commit()", filename])
    expect(made.status).toBe(0)
    const error = await rejection(new DefaultPersistenceManager(new SQLiteAdapter({ filename })).init())
    expect(error.code).toBe(5005)
    expect(error.message).toContain('app_data')
  })

  test('two tables in one file are independent', async () => {
    const filename = join(dirs.next(), 'two.db')
    const a = new DefaultPersistenceManager(new SQLiteAdapter({ filename, tableName: 'a' }))
    const b = new DefaultPersistenceManager(new SQLiteAdapter({ filename, tableName: 'b' }))
    await a.init()
    await b.init()
    await a.set('k', 'in a')
    await b.set('k', 'in b')
    expect((await a.get('k'))!.value).toBe('in a')
    expect((await b.get('k'))!.value).toBe('in b')
    await a.clear()
    expect(await b.keys()).toEqual(['k'])
    await a.close()
    await b.close()
  })
})

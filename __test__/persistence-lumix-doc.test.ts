// The Lumix persistence document's examples (shared/seeds/000_…), as written,
// with only their import lines pointing at annvault. They run in a temp
// directory because they name relative files ('data.db', 'rag.db').

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { DefaultPersistenceManager, PersistenceError, SQLiteAdapter } from '../lib/persistence/index'
import { tempDirs } from './fixtures'

const dirs = tempDirs()
const home = process.cwd()
let dir: string

beforeAll(() => {
  dir = dirs.next()
  process.chdir(dir)
})

afterAll(() => {
  process.chdir(home)
  dirs.cleanup()
})

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16)
}

test('basic usage, pattern matching, maintenance and error handling run as documented', async () => {
  const logged: unknown[][] = []
  const console = { log: (...args: unknown[]) => logged.push(args), error: (...args: unknown[]) => logged.push(args) }

  // ---- Basic Persistence Usage (as in the document)
  // Initialize SQLite adapter
  const adapter = new SQLiteAdapter({
    filename: 'data.db',
    tableName: 'app_data',
  })

  // Create persistence manager
  const persistence = new DefaultPersistenceManager(adapter)
  await persistence.init()

  // Store a value with metadata
  await persistence.set(
    'user:123',
    {
      name: 'John Doe',
      email: 'john@example.com',
    },
    {
      tags: ['user', 'active'],
      version: '1.0.0',
    },
  )

  // Retrieve a value
  const entry = await persistence.get('user:123')
  if (entry) {
    console.log('User:', entry.value)
    console.log('Metadata:', entry.metadata)
    console.log('Created:', entry.createdAt)
    console.log('Updated:', entry.updatedAt)
  }

  // ---- Pattern Matching
  // Find all user entries
  const userEntries = await persistence.find('user:*')
  for (const entry of userEntries) {
    console.log(`${entry.key}: ${entry.value.name}`)
  }

  // List all keys
  const allKeys = await persistence.keys()
  console.log('Total keys:', allKeys.length)

  // ---- Maintenance Operations
  // Get storage stats
  const stats = await persistence.stats()
  console.log(`Total entries: ${stats.totalEntries}`)
  console.log(`Storage size: ${stats.size} bytes`)
  if (stats.lastSync) {
    console.log(`Last sync: ${stats.lastSync}`)
  }

  // ---- Error Handling (before the document's close)
  try {
    await persistence.set('key', 'value')
  } catch (error) {
    if (error instanceof PersistenceError) {
      console.error(`Persistence error ${error.code}: ${error.message}`)
      console.error('Details:', error.details)
    }
  }

  // Perform maintenance
  await persistence.maintain()

  // Clear all data
  await persistence.clear()

  // Close connection
  await persistence.close()

  expect(logged[0]).toEqual(['User:', { name: 'John Doe', email: 'john@example.com' }])
  expect(logged[1]).toEqual(['Metadata:', { tags: ['user', 'active'], version: '1.0.0' }])
  expect(logged[2][1]).toBeInstanceOf(Date)
  expect(logged[4]).toEqual(['user:123: John Doe'])
  expect(logged[5]).toEqual(['Total keys:', 1])
  expect(logged[6]).toEqual(['Total entries: 1'])
  expect(String(logged[8][0])).toMatch(/^Last sync: /)
  // No error was raised, so the catch logged nothing.
  expect(logged).toHaveLength(9)

  // The file is a real SQLite database other tools read.
  const again = new DefaultPersistenceManager(new SQLiteAdapter({ filename: join(dir, 'data.db'), tableName: 'app_data' }))
  await again.init()
  expect(await again.keys()).toEqual([])
  await again.close()
})

test("the RAG example's storeEmbedding (a Date in metadata) runs as documented", async () => {
  const ragPersistence = new DefaultPersistenceManager(
    new SQLiteAdapter({
      filename: 'rag.db',
      tableName: 'embeddings',
    }),
  )
  await ragPersistence.init()

  async function storeEmbedding(text: string, embedding: number[]): Promise<void> {
    await ragPersistence.set(`embedding:${hash(text)}`, embedding, {
      text,
      timestamp: new Date(),
      model: 'text-embedding-ada-002',
    })
  }

  const embedding = Array.from({ length: 1536 }, (_, i) => Math.cos(i) / 7)
  await storeEmbedding('hello world', embedding)
  const stored = await ragPersistence.find('embedding:*')
  expect(stored).toHaveLength(1)
  expect(stored[0].value).toEqual(embedding)
  expect(stored[0].metadata.text).toBe('hello world')
  expect(new Date(stored[0].metadata.timestamp).toISOString()).toBe(stored[0].metadata.timestamp)
  await ragPersistence.close()
})

test('the database opens in Python sqlite3 with one row per entry', async () => {
  const filename = join(dir, 'python.db')
  const kv = new DefaultPersistenceManager(new SQLiteAdapter({ filename, tableName: 'app_data' }))
  await kv.init()
  await kv.set('user:1', { name: 'Ada' }, { role: 'admin' })
  await kv.set('blob', Buffer.from([0, 255, 7]))
  await kv.set('ttl', 1, undefined, { ttl: 3600 })
  const entry = await kv.get('user:1')
  await kv.close()
  const script = [
    'import json, sqlite3, sys',
    'db = sqlite3.connect(sys.argv[1])',
    "rows = db.execute('SELECT key, kind, value, metadata, created_at, updated_at, expires_at FROM app_data ORDER BY key').fetchall()",
    "mode = db.execute('PRAGMA journal_mode').fetchone()[0]",
    "out = [[k, kind, v if isinstance(v, str) else list(v), json.loads(m), c, u, e] for (k, kind, v, m, c, u, e) in rows]",
    "print(json.dumps({'mode': mode, 'rows': out}))",
  ].join('\n')
  const python = spawnSync('python3', ['-c', script, filename], { encoding: 'utf8' })
  expect(python.stderr).toBe('')
  expect(python.status).toBe(0)
  const { mode, rows } = JSON.parse(python.stdout)
  expect(mode).toBe('wal')
  expect(rows.map((r: unknown[]) => r.slice(0, 4))).toEqual([
    ['blob', 'binary', [0, 255, 7], {}],
    ['ttl', 'json', '1', {}],
    ['user:1', 'json', '{"name":"Ada"}', { role: 'admin' }],
  ])
  expect(rows[2][4]).toBe(entry!.createdAt.getTime())
  expect(rows[2][6]).toBeNull()
  expect(typeof rows[1][6]).toBe('number')
})

test('annvault/persistence and annvault/keyv resolve from CommonJS and ESM (built dist/)', () => {
  const root = join(__dirname, '..')
  const cjs = spawnSync(
    process.execPath,
    ['-e', "const p = require('annvault/persistence'); const k = require('annvault/keyv'); console.log(typeof p.DefaultPersistenceManager, typeof p.SQLiteAdapter, typeof k.KeyvAnnvault)"],
    { cwd: root, encoding: 'utf8' },
  )
  expect(cjs.stderr).toBe('')
  expect(cjs.stdout.trim()).toBe('function function function')
  const esm = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import { DefaultPersistenceManager, MemoryAdapter, PersistenceError } from 'annvault/persistence'; import { KeyvAnnvault } from 'annvault/keyv'; const kv = new DefaultPersistenceManager(new MemoryAdapter()); await kv.init(); await kv.set('a', 1); console.log((await kv.get('a')).value, typeof KeyvAnnvault, PersistenceError.DATABASE)",
    ],
    { cwd: root, encoding: 'utf8' },
  )
  expect(esm.stderr).toBe('')
  expect(esm.stdout.trim()).toBe('1 function 5005')
})

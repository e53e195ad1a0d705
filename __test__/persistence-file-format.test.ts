// The FileAdapter's on-disk format, held to files written by an earlier version: the directory
// `fixtures/file-adapter-v1/` was written by the FileAdapter of format v1 (see the doc comment of
// lib/persistence/file-adapter.ts) and is committed as it was written. A change to the adapter
// must go on reading it exactly: every entry's value, metadata and times. If the writer's format
// changes on purpose, keep this fixture and its read test, and add a `file-adapter-v2` beside it.

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, type Dirent } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { FileAdapter } from '../lib/persistence/file-adapter'
import { DefaultPersistenceManager, type PersistenceEntry } from '../lib/persistence/manager'

const FIXTURE = join(__dirname, 'fixtures', 'file-adapter-v1')

const made: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'annvault-format-'))
  made.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

/** Every file under `dir` by relative path ('/'-separated), with its bytes. */
function files(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {}
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true }) as Dirent[]) {
      const full = join(current, entry.name)
      if (entry.isDirectory()) walk(full)
      else out[relative(dir, full).split(sep).join('/')] = readFileSync(full)
    }
  }
  walk(dir)
  return out
}

// ---------------------------------------------------------------- what the fixture holds

/** The clock the fixture was written at: 2023-11-14T22:13:20Z. */
const T0 = 1_700_000_000_000
/** The clock it is read at: a day later. */
const READ_AT = T0 + 86_400_000
const LONG_KEY = `a${'é'.repeat(60)}` // 121 UTF-8 bytes: a directory; its 80-byte cut splits an é
const TEN_YEARS = 315_360_000 // seconds

interface Written {
  key: string
  value: unknown
  metadata?: Record<string, unknown>
  ttl?: number
  /** When it was written (ms after T0); a second time rewrites it. */
  at: number[]
}

/** The writes that made the fixture, in order of their first time. */
const WRITES: Written[] = [
  { key: 'plain', value: 'hello', at: [0, 5_000] },
  {
    key: 'user:42',
    value: { name: 'Ada', tags: ['x', 'y'], n: 1.5, ok: true, none: null, nested: { deep: [1, { two: 2 }] } },
    metadata: { tag: 'user', n: 1 },
    at: [1_000],
  },
  { key: 'ключ 🔑 é', value: 'unicode ✓ 日本', metadata: { ü: 'ñ', emoji: '🔑' }, at: [2_000] },
  { key: 'a/../b', value: 'slashes and dots', at: [3_000] },
  { key: 'Case', value: 'upper', at: [4_000] },
  { key: 'case', value: 'lower', at: [4_000] },
  { key: 'win\\path:x', value: [1, 'two', false], at: [6_000] },
  { key: '~tilde', value: null, at: [6_000] },
  { key: 'empty', value: '', metadata: {}, at: [6_000] },
  { key: 'number', value: -0.0125, at: [6_000] },
  { key: 'date', value: new Date(T0), at: [6_000] },
  { key: 'bin', value: Buffer.from([0, 1, 2, 127, 128, 254, 255]), metadata: { type: 'bytes' }, at: [7_000] },
  { key: 'bin:empty', value: Buffer.alloc(0), at: [7_000] },
  { key: LONG_KEY, value: 'long', metadata: { long: true }, at: [8_000] },
  { key: 'ttl', value: 'for ten years', ttl: TEN_YEARS, at: [9_000] },
  { key: 'expired', value: 'gone', ttl: 60, at: [9_000] },
]

/** Writes WRITES through the current FileAdapter into `base`, at the fixture's times. */
async function writeFixture(base: string): Promise<void> {
  const spy = jest.spyOn(Date, 'now')
  try {
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    spy.mockReturnValue(T0)
    await kv.init()
    const steps = WRITES.flatMap((w) => w.at.map((at) => ({ w, at }))).sort((x, y) => x.at - y.at)
    for (const { w, at } of steps) {
      spy.mockReturnValue(T0 + at)
      await kv.set(w.key, w.value, w.metadata, w.ttl === undefined ? undefined : { ttl: w.ttl })
    }
    await kv.close()
  } finally {
    spy.mockRestore()
  }
}

/** What reading `w` must give: stored values as the manager returns them (a Date as its ISO string). */
function expected(w: Written): PersistenceEntry {
  const first = T0 + w.at[0]
  const last = T0 + w.at[w.at.length - 1]
  return {
    key: w.key,
    value: w.value instanceof Date ? w.value.toISOString() : w.value,
    metadata: w.metadata ?? {},
    createdAt: new Date(first),
    updatedAt: new Date(last),
    expiresAt: w.ttl === undefined ? null : new Date(last + w.ttl * 1000),
  }
}

/** The fixture's files: the format's names (see the file adapter's doc comment). */
const NAMES = [
  '.43ase.json', // Case: upper case letters are escaped, so it cannot meet `case` on a case-insensitive disk
  '.7etilde.json', // ~tilde: `~` is escaped (the adapter's own temp and intent files start with it)
  '.d0.ba.d0.bb.d1.8e.d1.87.20.f0.9f.94.91.20.c3.a9.json', // ключ 🔑 é: UTF-8 bytes, escaped
  'a.2f.2e.2e.2fb.json', // a/../b: no separator, no `..`
  `a${'.c3.a9'.repeat(39)}.c3/.a9${'.c3.a9'.repeat(20)}.json`, // LONG_KEY: 80 bytes per directory level
  'bin.3aempty.json',
  'bin.json',
  'case.json',
  'date.json',
  'empty.json',
  'expired.json',
  'number.json',
  'plain.json',
  'ttl.json',
  'user.3a42.json',
  'win.5cpath.3ax.json',
].sort()

// ---------------------------------------------------------------- the tests

describe('FileAdapter format v1 (fixtures/file-adapter-v1)', () => {
  const live = WRITES.filter((w) => w.key !== 'expired')

  test('its files have the names the format gives their keys', () => {
    expect(Object.keys(files(FIXTURE)).sort()).toEqual(NAMES)
  })

  test('every entry reads back exactly: value, metadata, createdAt, updatedAt, expiresAt', async () => {
    const before = files(FIXTURE)
    const base = join(tempDir(), 'files')
    cpSync(FIXTURE, base, { recursive: true })
    const spy = jest.spyOn(Date, 'now').mockReturnValue(READ_AT)
    try {
      const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
      await kv.init()
      for (const w of live) {
        const entry = await kv.get(w.key)
        expect([w.key, entry]).toEqual([w.key, expected(w)])
        if (Buffer.isBuffer(w.value)) expect([w.key, Buffer.isBuffer(entry!.value)]).toEqual([w.key, true])
      }
      // Expired a day ago: absent, but its file holds it as written.
      expect(await kv.get('expired')).toBeNull()
      const [raw] = await (kv.adapter as FileAdapter).get(['expired'], T0)
      const gone = WRITES.find((w) => w.key === 'expired')!
      expect(raw).toEqual({
        key: 'expired',
        value: { kind: 'json', text: '"gone"' },
        metadata: '{}',
        createdAt: T0 + gone.at[0],
        updatedAt: T0 + gone.at[0],
        expiresAt: T0 + gone.at[0] + 60_000,
      })
      const keys = live.map((w) => w.key).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
      expect(await kv.keys()).toEqual(keys)
      expect((await kv.find('*')).map((e) => e.key)).toEqual(keys)
      expect((await kv.find('bin*')).map((e) => e.value)).toEqual([Buffer.from([0, 1, 2, 127, 128, 254, 255]), Buffer.alloc(0)])
      expect((await kv.stats()).totalEntries).toBe(live.length)
      // The copy is still as it was (reading writes nothing), and so is the fixture.
      expect(files(base)).toEqual(before)
      await kv.close()
    } finally {
      spy.mockRestore()
    }
    expect(files(FIXTURE)).toEqual(before)
  })

  test('it takes writes and deletes like any store', async () => {
    const base = join(tempDir(), 'files')
    cpSync(FIXTURE, base, { recursive: true })
    const kv = new DefaultPersistenceManager(new FileAdapter({ basePath: base }))
    await kv.init()
    await kv.set('Case', 'UPPER')
    expect(await kv.delete('case')).toBe(true)
    expect((await kv.get('Case'))!.value).toBe('UPPER')
    expect((await kv.get('Case'))!.createdAt).toEqual(new Date(T0 + 4_000))
    expect(await kv.get('case')).toBeNull()
    await kv.close()
  })

  test('the current writer still writes v1, byte for byte (if it changes on purpose: add a v2 fixture, keep this one)', async () => {
    const base = join(tempDir(), 'files')
    await writeFixture(base)
    const written = files(base)
    const fixture = files(FIXTURE)
    expect(Object.keys(written).sort()).toEqual(Object.keys(fixture).sort())
    for (const name of Object.keys(fixture)) expect([name, written[name].toString('utf8')]).toEqual([name, fixture[name].toString('utf8')])
  })
})

// One behaviour suite for every key-value adapter, through the manager: what
// the contract (lib/persistence/adapter.ts) promises must hold for each. A
// new adapter is one more row of ADAPTERS.

import { join } from 'node:path'
import {
  DefaultPersistenceManager,
  FileAdapter,
  MemoryAdapter,
  NativeAdapter,
  PersistenceError,
  SQLiteAdapter,
  type PersistenceAdapter,
} from '../lib/persistence/index'
import { rng, tempDirs } from './fixtures'

interface Subject {
  name: string
  /** Whether a new adapter over the same place sees what an earlier one wrote. */
  persistent: boolean
  open(dir: string): PersistenceAdapter
}

const ADAPTERS: Subject[] = [
  { name: 'memory', persistent: false, open: () => new MemoryAdapter() },
  { name: 'file', persistent: true, open: (dir) => new FileAdapter({ basePath: join(dir, 'files') }) },
  { name: 'sqlite', persistent: true, open: (dir) => new SQLiteAdapter({ filename: join(dir, 'kv.db') }) },
  { name: 'native', persistent: true, open: (dir) => new NativeAdapter({ path: join(dir, 'native') }) },
]

const dirs = tempDirs()
afterAll(() => dirs.cleanup())

async function codeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(PersistenceError)
    return (error as PersistenceError).code
  }
  throw new Error('expected a rejection')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Fakes Date only (timers, ticks and I/O stay real) at a fixed instant, returned in ms. */
function useFakeClock(): number {
  jest.useFakeTimers({
    doNotFake: [
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'requestIdleCallback',
      'cancelIdleCallback',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
      'setTimeout',
      'clearTimeout',
    ],
  })
  const t0 = 1_767_225_600_000 // 2026-01-01T00:00:00Z
  jest.setSystemTime(t0)
  return t0
}

describe.each(ADAPTERS)('$name adapter', (subject) => {
  let dir: string
  let kv: DefaultPersistenceManager
  const managers: DefaultPersistenceManager[] = []

  async function open(): Promise<DefaultPersistenceManager> {
    const manager = new DefaultPersistenceManager(subject.open(dir))
    await manager.init()
    managers.push(manager)
    return manager
  }

  beforeEach(async () => {
    dir = dirs.next()
    kv = await open()
  })

  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.close()
  })

  test('set then get returns value, metadata and Date stamps; overwrite keeps createdAt', async () => {
    await kv.set('user:1', { name: 'Ada' }, { tags: ['a'] })
    const first = await kv.get('user:1')
    expect(first).not.toBeNull()
    expect(first!.key).toBe('user:1')
    expect(first!.value).toEqual({ name: 'Ada' })
    expect(first!.metadata).toEqual({ tags: ['a'] })
    expect(first!.createdAt).toBeInstanceOf(Date)
    expect(first!.updatedAt.getTime()).toBe(first!.createdAt.getTime())
    expect(first!.expiresAt).toBeNull()
    await sleep(5)
    await kv.set('user:1', { name: 'Ada L.' })
    const second = await kv.get('user:1')
    expect(second!.value).toEqual({ name: 'Ada L.' })
    expect(second!.metadata).toEqual({})
    expect(second!.createdAt.getTime()).toBe(first!.createdAt.getTime())
    expect(second!.updatedAt.getTime()).toBeGreaterThan(first!.updatedAt.getTime())
    expect(await kv.get('user:2')).toBeNull()
  })

  test('every JSON type round-trips; Dates read back as ISO strings', async () => {
    const when = new Date('2024-05-06T07:08:09.010Z')
    const values: Array<[string, unknown]> = [
      ['s', 'text with "quotes" and \u00e9 \u{1F600}'],
      ['n', -12.5e-7],
      ['z', 0],
      ['t', true],
      ['f', false],
      ['null', null],
      ['arr', [1, 'two', [3], { four: 4 }, null]],
      ['obj', { nested: { deep: [true, false] }, empty: {} }],
      ['emb', Array.from({ length: 1536 }, (_, i) => Math.sin(i))],
    ]
    for (const [key, value] of values) await kv.set(key, value)
    for (const [key, value] of values) expect((await kv.get(key))!.value).toEqual(value)
    await kv.set('date', { at: when }, { timestamp: when })
    const entry = await kv.get('date')
    expect(entry!.value).toEqual({ at: when.toISOString() })
    expect(entry!.metadata).toEqual({ timestamp: when.toISOString() })
  })

  test('binary values are stored raw and read back as Buffers', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255, 0])
    await kv.set('bin', bytes, { kind: 'blob' })
    await kv.set('u8', new Uint8Array([9, 8, 7]).subarray(1))
    const bin = await kv.get('bin')
    expect(Buffer.isBuffer(bin!.value)).toBe(true)
    expect(bin!.value.equals(bytes)).toBe(true)
    expect(bin!.metadata).toEqual({ kind: 'blob' })
    const u8 = await kv.get('u8')
    expect(Buffer.isBuffer(u8!.value)).toBe(true)
    expect([...u8!.value]).toEqual([8, 7])
    bin!.value[0] = 99
    expect((await kv.get('bin'))!.value[0]).toBe(0)
    await kv.set('empty', Buffer.alloc(0))
    expect((await kv.get('empty'))!.value.length).toBe(0)
  })

  test('find and keys follow the glob rules, in key order', async () => {
    const keys = [
      'user:1',
      'user:2',
      'user:10',
      'user:a/b',
      'users:1',
      'user',
      'a*b',
      'a*c',
      'axb',
      'a?',
      'ab',
      'a[1]',
      'b\\c',
      'x',
      'y',
      '\u00e9t\u00e9',
      '\u{1F600}',
      '\uE000',
    ]
    for (const key of keys) await kv.set(key, key.length)
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect(await kv.keys()).toEqual(sorted)
    expect(await kv.keys('*')).toEqual(sorted)
    expect(await kv.keys('user:*')).toEqual(['user:1', 'user:10', 'user:2', 'user:a/b'])
    expect(await kv.keys('user:?')).toEqual(['user:1', 'user:2'])
    expect(await kv.keys('user*')).toEqual(['user', 'user:1', 'user:10', 'user:2', 'user:a/b', 'users:1'])
    expect(await kv.keys('a\\*?')).toEqual(['a*b', 'a*c'])
    expect(await kv.keys('a*b')).toEqual(['a*b', 'ab', 'axb'])
    expect(await kv.keys('a\\?')).toEqual(['a?'])
    expect(await kv.keys('a\\[1]')).toEqual(['a[1]'])
    expect(await kv.keys('b\\\\c')).toEqual(['b\\c'])
    expect(await kv.keys('[xy]')).toEqual(['x', 'y'])
    expect(await kv.keys('[!a-x]')).toEqual(['y', '\uE000', '\u{1F600}'])
    expect(await kv.keys('?')).toEqual(['x', 'y', '\uE000', '\u{1F600}'])
    expect(await kv.keys('?t?')).toEqual(['\u00e9t\u00e9'])
    expect(await kv.keys('user:1')).toEqual(['user:1'])
    expect(await kv.keys('nothing*')).toEqual([])
    const found = await kv.find('user:*')
    expect(found.map((e) => e.key)).toEqual(['user:1', 'user:10', 'user:2', 'user:a/b'])
    expect(found.map((e) => e.value)).toEqual([6, 7, 6, 8])
    expect(found[0].createdAt).toBeInstanceOf(Date)
    for (const bad of ['a\\', '[abc', '[]', '[z-a]']) {
      expect(await codeOf(kv.find(bad))).toBe(5003)
      expect(await codeOf(kv.keys(bad))).toBe(5003)
    }
  })

  test('delete and has report live entries only', async () => {
    await kv.set('a', 1)
    expect(await kv.has('a')).toBe(true)
    expect(await kv.has('b')).toBe(false)
    expect(await kv.delete('a')).toBe(true)
    expect(await kv.delete('a')).toBe(false)
    expect(await kv.has('a')).toBe(false)
    expect(await kv.get('a')).toBeNull()
  })

  test('setMany, getMany and deleteMany act on batches', async () => {
    await kv.setMany([
      { key: 'k1', value: 1, metadata: { m: 1 } },
      { key: 'k2', value: Buffer.from('two') },
      { key: 'k3', value: [3] },
    ])
    const got = await kv.getMany(['k3', 'missing', 'k1', 'k2'])
    expect(got.map((e) => e && e.key)).toEqual(['k3', null, 'k1', 'k2'])
    expect(got[2]!.metadata).toEqual({ m: 1 })
    expect(got[3]!.value.toString()).toBe('two')
    expect(await kv.deleteMany(['k1', 'missing', 'k3'])).toEqual([true, false, true])
    expect(await kv.keys()).toEqual(['k2'])
    expect(await kv.getMany([])).toEqual([])
    expect(await kv.deleteMany([])).toEqual([])
  })

  test('a batch with one bad entry writes nothing', async () => {
    await kv.set('keep', 'old')
    expect(
      await codeOf(
        kv.setMany([
          { key: 'keep', value: 'new' },
          { key: 'other', value: 1 },
          { key: '', value: 2 },
        ]),
      ),
    ).toBe(5003)
    expect(
      await codeOf(
        kv.setMany([
          { key: 'keep', value: 'new' },
          { key: 'other', value: { bad: () => 1 } },
        ]),
      ),
    ).toBe(5004)
    expect((await kv.get('keep'))!.value).toBe('old')
    expect(await kv.has('other')).toBe(false)
  })

  test('entries expire after their TTL and leave with maintain()', async () => {
    // Only Date is faked: the manager's clock moves when the test says, I/O keeps its real timers.
    const t0 = useFakeClock()
    try {
      await kv.set('short', 'v', { a: 1 }, { ttl: 0.05 })
      await kv.set('long', 'v', undefined, { ttl: 3600 })
      await kv.set('forever', 'v')
      const short = await kv.get('short')
      expect(short!.expiresAt).toEqual(new Date(t0 + 50))
      jest.setSystemTime(t0 + 49)
      expect(await kv.has('short')).toBe(true)
      jest.setSystemTime(t0 + 50)
      expect(await kv.get('short')).toBeNull()
      expect(await kv.has('short')).toBe(false)
      expect(await kv.keys()).toEqual(['forever', 'long'])
      expect((await kv.find('*')).map((e) => e.key)).toEqual(['forever', 'long'])
      expect(await kv.getMany(['short', 'long'])).toEqual([null, expect.objectContaining({ key: 'long' })])
      expect((await kv.stats()).totalEntries).toBe(2)
      expect(await kv.delete('short')).toBe(false)
      // Written again after expiring: a new entry with a new createdAt.
      jest.setSystemTime(t0 + 60)
      await kv.set('short', 'again')
      expect((await kv.get('short'))!.createdAt).toEqual(new Date(t0 + 60))
      await kv.set('gone', 1, undefined, { ttl: 0.02 })
      jest.setSystemTime(t0 + 100)
      await kv.maintain()
      expect((await kv.stats()).totalEntries).toBe(3)
      expect(await kv.keys()).toEqual(['forever', 'long', 'short'])
      jest.setSystemTime(t0 + 3_600_000)
      expect(await kv.keys()).toEqual(['forever', 'short'])
      for (const ttl of [0, -1, NaN, Infinity, '5' as unknown as number]) {
        expect(await codeOf(kv.set('t', 1, undefined, { ttl }))).toBe(5000)
      }
    } finally {
      jest.useRealTimers()
    }
  })

  test('stats count live entries and size', async () => {
    const empty = await kv.stats()
    expect(empty.totalEntries).toBe(0)
    await kv.setMany(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: 'x'.repeat(100) })))
    const stats = await kv.stats()
    expect(stats.totalEntries).toBe(20)
    expect(stats.size).toBeGreaterThan(2000)
    if (subject.persistent) expect(stats.lastSync).toBeInstanceOf(Date)
    else expect(stats.lastSync).toBeNull()
  })

  test('clear removes every entry and the store stays usable', async () => {
    await kv.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ])
    await kv.clear()
    expect(await kv.keys()).toEqual([])
    expect((await kv.stats()).totalEntries).toBe(0)
    await kv.set('c', 3)
    expect(await kv.keys()).toEqual(['c'])
  })

  test('bad keys reject with 5003 and write nothing', async () => {
    const bad: unknown[] = ['', 'a\0b', 'x'.repeat(1025), '\u00e9'.repeat(513), 42, null, undefined, '\uD800x']
    for (const key of bad) {
      expect(await codeOf(kv.set(key as string, 1))).toBe(5003)
      expect(await codeOf(kv.get(key as string))).toBe(5003)
      expect(await codeOf(kv.delete(key as string))).toBe(5003)
    }
    await kv.set('x'.repeat(1024), 'max')
    expect((await kv.get('x'.repeat(1024)))!.value).toBe('max')
    expect(await kv.keys()).toEqual(['x'.repeat(1024)])
  })

  test('values JSON cannot carry reject with 5004 and write nothing', async () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const bad: unknown[] = [
      undefined,
      () => 1,
      Symbol('s'),
      10n,
      NaN,
      Infinity,
      { a: undefined },
      { a: { b: [1, -Infinity] } },
      [1, undefined],
      // eslint-disable-next-line no-sparse-arrays
      [1, , 3],
      cyclic,
      new Map([[1, 2]]),
      { buf: Buffer.from('x') },
      new Date(NaN),
    ]
    for (const value of bad) {
      expect(await codeOf(kv.set('k', value))).toBe(5004)
    }
    expect(await codeOf(kv.set('k', 1, { when: NaN }))).toBe(5004)
    expect(await codeOf(kv.set('k', 1, ['not', 'an', 'object'] as unknown as Record<string, unknown>))).toBe(5004)
    expect(await kv.keys()).toEqual([])
    // A repeated (not cyclic) reference is fine.
    const shared = { x: 1 }
    await kv.set('k', { a: shared, b: shared })
    expect((await kv.get('k'))!.value).toEqual({ a: { x: 1 }, b: { x: 1 } })
  })

  test('calls before init and after close reject with 5001', async () => {
    const fresh = new DefaultPersistenceManager(subject.open(dirs.next()))
    const before = await fresh.get('a').catch((e: PersistenceError) => e)
    expect(before).toBeInstanceOf(PersistenceError)
    expect((before as PersistenceError).code).toBe(5001)
    expect((before as PersistenceError).details.state).toBe('uninitialized')
    await kv.set('a', 1)
    await kv.close()
    for (const call of [kv.get('a'), kv.set('a', 2), kv.keys(), kv.stats(), kv.maintain(), kv.clear(), kv.init()]) {
      expect(await codeOf(call)).toBe(5001)
    }
    await kv.close()
  })

  test('close waits for writes in flight', async () => {
    const writes = Array.from({ length: 10 }, (_, i) => kv.set(`k${i}`, i))
    await kv.close()
    await Promise.all(writes)
    if (subject.persistent) {
      const again = await open()
      expect(await again.keys()).toHaveLength(10)
    }
  })

  if (subject.persistent) {
    test('a reopened store holds what was written, stamps and all', async () => {
      await kv.set('a', { v: 1 }, { m: true })
      await kv.set('bin', Buffer.from([1, 2, 3]))
      await kv.set('ttl', 1, undefined, { ttl: 3600 })
      await kv.delete('missing')
      const before = await kv.get('a')
      await kv.close()
      const again = await open()
      const after = await again.get('a')
      expect(after).toEqual(before)
      expect([...(await again.get('bin'))!.value]).toEqual([1, 2, 3])
      expect((await again.get('ttl'))!.expiresAt).toBeInstanceOf(Date)
      expect(await again.keys()).toEqual(['a', 'bin', 'ttl'])
    })
  }

  test('iterate pages through the matches', async () => {
    await kv.setMany(Array.from({ length: 25 }, (_, i) => ({ key: `p:${String(i).padStart(2, '0')}`, value: i })))
    await kv.set('q', 'other')
    const seen: number[] = []
    for await (const entry of kv.iterate('p:*', { pageSize: 4 })) seen.push(entry.value)
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i))
    const all: string[] = []
    for await (const entry of kv.iterate()) all.push(entry.key)
    expect(all).toHaveLength(26)
  })
})

describe('MemoryAdapter({ ttl })', () => {
  test('entries without a TTL of their own expire after the adapter ttl', async () => {
    const t0 = useFakeClock()
    try {
      const kv = new DefaultPersistenceManager(new MemoryAdapter({ ttl: 0.05 }))
      await kv.init()
      await kv.set('a', 1)
      await kv.set('b', 2, undefined, { ttl: 3600 })
      expect((await kv.get('a'))!.expiresAt).toEqual(new Date(t0 + 50))
      jest.setSystemTime(t0 + 50)
      expect(await kv.keys()).toEqual(['b'])
      await kv.close()
    } finally {
      jest.useRealTimers()
    }
    expect(() => new MemoryAdapter({ ttl: -1 })).toThrow(PersistenceError)
  })

  test('an entry expires on real time too', async () => {
    const kv = new DefaultPersistenceManager(new MemoryAdapter({ ttl: 0.02 }))
    await kv.init()
    await kv.set('a', 1)
    await sleep(40)
    expect(await kv.get('a')).toBeNull()
    await kv.close()
  })
})

describe('glob semantics agree across adapters', () => {
  /** The contract's rules as a regular expression, written independently of glob.ts and glob.rs. */
  function reference(pattern: string): RegExp | null {
    const chars = Array.from(pattern)
    let source = '^'
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i]
      if (c === '*') source += '[^]*'
      else if (c === '?') source += '[^]'
      else if (c === '\\') {
        if (++i >= chars.length) return null
        source += `\\u{${chars[i].codePointAt(0)!.toString(16)}}`
      } else if (c === '[') {
        let j = i + 1
        const negated = chars[j] === '!'
        if (negated) j++
        const members: Array<{ c: string; escaped: boolean }> = []
        while (j < chars.length && chars[j] !== ']') {
          if (chars[j] === '\\') {
            if (++j >= chars.length) return null
            members.push({ c: chars[j], escaped: true })
          } else members.push({ c: chars[j], escaped: false })
          j++
        }
        if (j >= chars.length || members.length === 0) return null
        let set = ''
        for (let m = 0; m < members.length; m++) {
          const low = members[m].c.codePointAt(0)!
          if (members[m + 1]?.c === '-' && !members[m + 1].escaped && m + 2 < members.length) {
            const high = members[m + 2].c.codePointAt(0)!
            if (high < low) return null
            set += `\\u{${low.toString(16)}}-\\u{${high.toString(16)}}`
            m += 2
          } else set += `\\u{${low.toString(16)}}`
        }
        source += `[${negated ? '^' : ''}${set}]`
        i = j
      } else source += `\\u{${c.codePointAt(0)!.toString(16)}}`
    }
    return new RegExp(`${source}$`, 'u')
  }

  test('random keys and patterns: every adapter returns what the reference matches', async () => {
    const random = rng(99)
    const alphabet = ['a', 'b', 'c', '-', '*', '?', '[', ']', '!', '\\', ':', '/', 'A', '\u00e9', '\u{1F600}', '\uE000']
    const pick = () => alphabet[Math.floor(random() * alphabet.length)]
    const keys = new Set<string>()
    while (keys.size < 300) keys.add(Array.from({ length: 1 + Math.floor(random() * 5) }, pick).join(''))
    const managers = await Promise.all(
      ADAPTERS.map(async (subject) => {
        const manager = new DefaultPersistenceManager(subject.open(dirs.next()))
        await manager.init()
        await manager.setMany([...keys].map((key) => ({ key, value: 1 })))
        return manager
      }),
    )
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    let valid = 0
    for (let n = 0; n < 300; n++) {
      const pattern = Array.from({ length: 1 + Math.floor(random() * 5) }, pick).join('')
      const regex = reference(pattern)
      for (const manager of managers) {
        if (regex === null) {
          expect(await codeOf(manager.keys(pattern))).toBe(5003)
        } else {
          expect([manager.adapter.name, pattern, await manager.keys(pattern)]).toEqual([
            manager.adapter.name,
            pattern,
            sorted.filter((key) => regex.test(key)),
          ])
        }
      }
      if (regex !== null) valid++
    }
    expect(valid).toBeGreaterThan(100)
    for (const manager of managers) await manager.close()
  })
})

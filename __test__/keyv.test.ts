// KeyvAnnvault against Keyv's published adapter suite (@keyv/test-suite,
// written for vitest: its `test` argument is mapped onto jest below), over
// the SQLite and memory adapters, plus what the suite does not check.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Keyv from 'keyv'
import { KeyvAnnvault } from '../lib/keyv'
import { DefaultPersistenceManager, MemoryAdapter, PersistenceError, SQLiteAdapter } from '../lib/persistence/index'
import { tempDirs } from './fixtures'

// Loaded untyped: its declarations import vitest's, which do not resolve under this project's settings.
type SuiteFunction = (test: unknown, keyv: unknown, store: unknown) => void
// eslint-disable-next-line @typescript-eslint/no-require-imports
const suite = require('@keyv/test-suite') as { default: SuiteFunction; keyvIteratorTests: SuiteFunction }

const dirs = tempDirs()
const stores: KeyvAnnvault[] = []
afterAll(async () => {
  for (const store of stores.splice(0)) await store.disconnect()
  dirs.cleanup()
})

/** The slice of vitest's `test` that @keyv/test-suite calls, on jest. */
const vitestLike = {
  beforeEach: (fn: () => unknown) => beforeEach(async () => void (await fn())),
  afterEach: (fn: () => unknown) => afterEach(async () => void (await fn())),
  it: (name: string, fn: (t: { expect: typeof expect }) => unknown) => test(name, async () => void (await fn({ expect }))),
}

function track(store: KeyvAnnvault): KeyvAnnvault {
  stores.push(store)
  return store
}

const backends: Array<[string, () => () => KeyvAnnvault]> = [
  [
    'sqlite',
    () => {
      const filename = join(dirs.next(), 'keyv.db')
      return () => track(new KeyvAnnvault({ adapter: new SQLiteAdapter({ filename }) }))
    },
  ],
  [
    'memory',
    () => {
      const manager = new DefaultPersistenceManager(new MemoryAdapter())
      return () => new KeyvAnnvault({ manager })
    },
  ],
]

describe.each(backends)('@keyv/test-suite over KeyvAnnvault(%s)', (_name, makeStore) => {
  const store = makeStore()
  suite.default(vitestLike, Keyv, store)
  suite.keyvIteratorTests(vitestLike, Keyv, store)
})

describe('KeyvAnnvault', () => {
  test('Keyv TTLs (ms) become entry TTLs in storage', async () => {
    const manager = new DefaultPersistenceManager(new MemoryAdapter())
    const keyv = new Keyv({ store: new KeyvAnnvault({ manager }), namespace: 'ns' })
    await keyv.set('a', 'x', 60_000)
    await keyv.set('b', 'y')
    const a = await manager.get('ns:a')
    expect(a!.expiresAt!.getTime() - a!.updatedAt.getTime()).toBe(60_000)
    expect((await manager.get('ns:b'))!.expiresAt).toBeNull()
  })

  test('clear is scoped to the namespace, glob characters included', async () => {
    const manager = new DefaultPersistenceManager(new MemoryAdapter())
    const star = new Keyv({ store: new KeyvAnnvault({ manager }), namespace: 'a*' })
    const other = new Keyv({ store: new KeyvAnnvault({ manager }), namespace: 'ab' })
    await star.set('k', 1)
    await other.set('k', 2)
    await star.clear()
    expect(await manager.keys()).toEqual(['ab:k'])
    const seen: unknown[] = []
    for await (const [key, value] of other.iterator!(undefined)) seen.push([key, value])
    expect(seen).toEqual([['k', 2]])
  })

  test('values survive a reopen of the SQLite file', async () => {
    const filename = join(dirs.next(), 'reopen.db')
    const first = new KeyvAnnvault({ adapter: new SQLiteAdapter({ filename }) })
    await new Keyv({ store: first }).set('kept', { n: 1 })
    await first.disconnect()
    const second = track(new KeyvAnnvault({ adapter: new SQLiteAdapter({ filename }) }))
    expect(await new Keyv({ store: second }).get('kept')).toEqual({ n: 1 })
  })

  test('storage errors reach Keyv as errors, not silent misses', async () => {
    const store = new KeyvAnnvault({ adapter: new MemoryAdapter() })
    await store.set('a', '1')
    await store.disconnect()
    await expect(store.get('a')).rejects.toMatchObject({ code: 5001 })
    const keyv = new Keyv({ store, throwOnErrors: true })
    await expect(keyv.set('a', 1)).rejects.toBeInstanceOf(PersistenceError)
  })

  test('the options must name exactly one backend', () => {
    expect(() => new KeyvAnnvault({})).toThrow(PersistenceError)
    expect(
      () => new KeyvAnnvault({ adapter: new MemoryAdapter(), manager: new DefaultPersistenceManager(new MemoryAdapter()) }),
    ).toThrow(PersistenceError)
  })

  const hasNative = existsSync(join(__dirname, '..', 'lib', 'persistence', 'native-adapter.ts'))
  ;(hasNative ? test.skip : test)('{ path } says the native engine is not in this build', () => {
    expect(() => new KeyvAnnvault({ path: dirs.next() })).toThrow(/native key-value engine/)
  })
})

// The filter operators `exists` and `contains` and the `or` / `and` / `not` groups through the
// package: evaluated in Rust, `list` and `search` agreeing, a filtered search still the exact
// top-k (also on repeated use, when the collection keeps the filter's matches as a bitmap, and
// after writes change them), and bad groups refused with INVALID_FILTER naming where.

import { ErrorCodes, type SearchFilters, VectorStoreError } from '../index'
import { cosine, randomVectors, selectedIds, storeHarness } from './fixtures'

const stores = storeHarness({ type: 'in-memory', collectionName: 'filters' })

const DOCS: Record<string, unknown>[] = [
  { kind: 'doc', title: 'Rust storage engines', tags: ['rust', 'db'], year: 1999 },
  { kind: 'doc', title: 'Node streams', tags: ['node'], year: 2005, draft: null },
  { kind: 'img', title: 'a rusty bike', tags: [], year: 2010 },
  { kind: 'doc', title: 'Databases in Rust', tags: ['rust', 'node', 'database'], year: 2021, draft: true },
  { kind: 'note', year: 2021 },
]

async function library() {
  const { store } = await stores.make({ dimension: 2 })
  await store.insert(
    DOCS.map((_, i) => [1, i / 10]),
    DOCS.map((_, i) => i),
    DOCS,
  )
  return store
}

/** The ids `filters` selects, from `list`, checked against `search`. */
async function ids(filters: SearchFilters): Promise<unknown[]> {
  return selectedIds(await library(), filters)
}

test('exists: present whatever the value (null too), or absent', async () => {
  expect(await ids({ draft: { exists: true } })).toEqual([1, 3])
  expect(await ids({ draft: { exists: false } })).toEqual([0, 2, 4])
  expect(await ids({ title: { exists: false }, year: 2021 })).toEqual([4])
})

test('contains: a case-sensitive substring of a string field or of a string in an array', async () => {
  expect(await ids({ title: { contains: 'Rust' } })).toEqual([0, 3])
  expect(await ids({ title: { contains: 'rust' } })).toEqual([2])
  expect(await ids({ tags: { contains: 'data' } })).toEqual([3])
  expect(await ids({ tags: { contains: 'd' } })).toEqual([0, 1, 3])
  // Numbers are not searched as text.
  expect(await ids({ year: { contains: '20' } })).toEqual([])
})

test('or, and, not: nestable groups AND-ed with the other keys', async () => {
  expect(await ids({ or: [{ kind: 'img' }, { year: { gte: 2021 } }] })).toEqual([2, 3, 4])
  expect(await ids({ or: [] })).toEqual([])
  expect(await ids({ and: [] })).toEqual([0, 1, 2, 3, 4])
  expect(await ids({ kind: 'doc', or: [{ tags: 'node' }, { year: { lt: 2000 } }] })).toEqual([0, 1, 3])
  // `not` also selects points without the field, unlike `ne`.
  expect(await ids({ not: { kind: 'doc' } })).toEqual([2, 4])
  expect(await ids({ not: { tags: 'rust' } })).toEqual([1, 2, 4])
  expect(await ids({ tags: { ne: 'rust' } })).toEqual([1, 2])
  expect(await ids({ and: [{ year: { gt: 2000 } }, { year: { ne: 2010 } }] })).toEqual([1, 3, 4])
  expect(await ids({ not: { or: [{ kind: 'doc' }, { tags: { exists: false } }] } })).toEqual([2])
  expect(await ids({ or: [{ not: { title: { contains: 'Rust' } }, kind: 'doc' }, { draft: true }] })).toEqual([1, 3])
})

test('a filtered search with groups stays the exact top-k, on repeated use and after writes', async () => {
  const { store } = await stores.make({ dimension: 12 })
  const count = 3000
  const vectors = randomVectors(count, 12, 9)
  const payloadOf = (i: number, round: number): Record<string, unknown> => {
    const p: Record<string, unknown> = { bucket: (i * 7 + round) % 50, name: `item-${i}` }
    if ((i + round) % 3 !== 0) p.owner = i % 4 === 0 ? 'ann' : 'bob'
    return p
  }
  const payloads = vectors.map((_, i) => payloadOf(i, 0))
  await store.insert(
    vectors,
    vectors.map((_, i) => i),
    payloads,
  )
  const cases: [SearchFilters, (p: Record<string, unknown>) => boolean][] = [
    [{ or: [{ bucket: 3 }, { owner: { exists: false }, bucket: { lt: 5 } }] }, (p) => p.bucket === 3 || (p.owner === undefined && (p.bucket as number) < 5)],
    [{ not: { or: [{ owner: 'bob' }, { bucket: { gte: 2 } }] } }, (p) => p.owner !== 'bob' && (p.bucket as number) < 2],
    [{ name: { contains: '-12' }, not: { owner: 'ann' } }, (p) => (p.name as string).includes('-12') && p.owner !== 'ann'],
    [{ owner: { exists: true }, or: [{ bucket: { lt: 25 } }, { name: { contains: '9' } }] }, (p) => p.owner !== undefined && ((p.bucket as number) < 25 || (p.name as string).includes('9'))],
  ]
  const check = async (query: number[]) => {
    for (const [filters, keep] of cases) {
      const expected = vectors
        .map((v, i) => ({ i, s: cosine(query, v) }))
        .filter((e) => keep(payloads[e.i]))
        .sort((x, y) => y.s - x.s)
        .slice(0, 10)
        .map((e) => e.i)
      expect(expected.length).toBe(10)
      // Three uses: the second builds the filter's bitmap, the third reads it.
      for (let use = 0; use < 3; use++) {
        const hits = await store.search(query, 10, filters)
        expect({ filters, use, ids: hits.map((h) => h.id) }).toEqual({ filters, use, ids: expected })
      }
    }
  }
  await check(randomVectors(1, 12, 101)[0])
  // Rewrite a third of the payloads: the cached bitmaps must follow.
  for (let i = 0; i < count; i += 3) {
    payloads[i] = payloadOf(i, 1)
    await store.update(i, vectors[i], payloads[i])
  }
  await check(randomVectors(1, 12, 102)[0])
})

test('bad operators and groups are refused with INVALID_FILTER naming where', async () => {
  const store = await library()
  const cases: [unknown, RegExp][] = [
    [{ or: { kind: 'doc' } }, /at or: 'or' takes an array of filters, got an object/],
    [{ or: [{ kind: 'doc' }, 'img'] }, /at or\[1\]: a filter must be an object, got a string/],
    [{ not: [] }, /at not: a filter must be an object, got an array/],
    [{ and: [{ not: { kind: { like: 'd' } } }] }, /at and\[0\]\.not: field "kind": unknown operator "like"/],
    [{ draft: { exists: 'yes' } }, /'exists' takes true or false/],
    [{ title: { contains: 3 } }, /'contains' takes a string, got a number/],
    [{ title: { contains: 'a', ne: 'b' } }, /must stand alone/],
  ]
  let deep: unknown = { kind: 'doc' }
  for (let i = 0; i < 33; i++) deep = { not: deep }
  cases.push([deep, /groups nest at most 32 levels deep/])
  for (const [filters, message] of cases) {
    for (const attempt of [() => store.search([1, 0], 3, filters as SearchFilters), () => store.list(filters as SearchFilters)]) {
      const error = await attempt().then(
        () => null,
        (e: unknown) => e,
      )
      expect({ filters, error }).toEqual({ filters, error: expect.any(VectorStoreError) })
      expect((error as VectorStoreError).code).toBe(ErrorCodes.INVALID_FILTER)
      expect((error as Error).message).toMatch(message)
    }
  }
  // Nothing changed: the store still answers.
  expect((await store.list())[1]).toBe(DOCS.length)
})

// One API, two backends: the same behaviour suite against the embedded store and against the
// PostgreSQL + pgvector store (a real server, started by this file and stopped after it).
// Results are checked against brute-force references computed here, so both backends are held to
// the same answers, not only to each other.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createVectorStore, VectorDimensionError, VectorStoreError } from '../index'
import { rng } from './fixtures'
import { startPostgres, type Postgres } from './postgres'

type Id = string | number
type Payload = Record<string, unknown>
type Distance = 'Cosine' | 'Dot' | 'Euclidean'

let postgres: Postgres
const dirs: string[] = []
let serial = 0

beforeAll(() => {
  postgres = startPostgres()
}, 180_000)

afterAll(() => {
  postgres?.stop()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

interface Backend {
  name: string
  /** A fresh collection (a new name each call) unless `name` is given. */
  open(config: { dimension: number; distance?: Distance; maxVectors?: number; name?: string; annAlgorithm?: 'flat' | 'hnsw' | 'auto' }): Promise<any>
}

const embeddedDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'annvault-backends-'))
  dirs.push(dir)
  return dir
}

const backends: Backend[] = [
  {
    name: 'in-memory',
    async open({ dimension, distance, maxVectors, name, annAlgorithm }) {
      const persistencePath = name === undefined ? embeddedDir() : join(sharedEmbedded(), '.')
      const { store } = await createVectorStore({
        collectionName: name ?? `c${serial++}`,
        dimension,
        distance,
        maxVectors,
        persistencePath,
        annAlgorithm,
      })
      return store
    },
  },
  {
    name: 'pgvector',
    async open({ dimension, distance, maxVectors, name, annAlgorithm }) {
      const { store } = await createVectorStore({
        type: 'pgvector',
        connectionString: postgres.connectionString,
        collectionName: name ?? `c${serial++}`,
        dimension,
        distance,
        maxVectors,
        annAlgorithm,
      } as any)
      return store
    },
  },
]

let shared: string | undefined
function sharedEmbedded(): string {
  shared ??= embeddedDir()
  return shared
}

// ----------------------------------------------------------- references

function score(distance: Distance, a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  let d2 = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
    d2 += (a[i] - b[i]) ** 2
  }
  if (distance === 'Dot') return dot
  if (distance === 'Euclidean') return 1 / (1 + Math.sqrt(d2))
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

function foundIn(value: unknown, field: unknown): boolean {
  if (Array.isArray(field)) return field.some((item) => item === value)
  return field === value
}

/** The filter language's meaning (filter.rs), written again independently. */
function matches(filter: Record<string, any>, payload: Payload): boolean {
  return Object.entries(filter).every(([key, clause]) => {
    if (key === 'or') return clause.some((f: Record<string, any>) => matches(f, payload))
    if (key === 'and') return clause.every((f: Record<string, any>) => matches(f, payload))
    if (key === 'not') return !matches(clause, payload)
    if (typeof clause === 'object' && 'exists' in clause) return key in payload === clause.exists
    if (!(key in payload)) return false
    const field = payload[key]
    if (typeof clause !== 'object') return foundIn(clause, field)
    if ('any' in clause) return clause.any.some((v: unknown) => foundIn(v, field))
    if ('all' in clause) return clause.all.every((v: unknown) => foundIn(v, field))
    if ('ne' in clause) return !foundIn(clause.ne, field)
    if ('nin' in clause) return !clause.nin.some((v: unknown) => foundIn(v, field))
    if ('contains' in clause) {
      const holds = (x: unknown) => typeof x === 'string' && x.includes(clause.contains)
      return Array.isArray(field) ? field.some(holds) : holds(field)
    }
    const inRange = (x: unknown) =>
      typeof x === 'number' &&
      (clause.gte === undefined || x >= clause.gte) &&
      (clause.gt === undefined || x > clause.gt) &&
      (clause.lte === undefined || x <= clause.lte) &&
      (clause.lt === undefined || x < clause.lt)
    return Array.isArray(field) ? field.some(inRange) : inRange(field)
  })
}

function dataset(n: number, dimension: number, seed: number) {
  const random = rng(seed)
  const vectors: Float32Array[] = []
  const ids: Id[] = []
  const payloads: Payload[] = []
  const tags = ['red', 'green', 'blue', 'cyan']
  for (let i = 0; i < n; i++) {
    vectors.push(Float32Array.from({ length: dimension }, () => random() * 2 - 1))
    ids.push(i % 3 === 0 ? `doc-${i}` : i)
    const payload: Payload = { rank: i, tag: tags[i % 4] }
    if (i % 2 === 0) payload.tags = [tags[i % 4], tags[(i + 1) % 4]]
    if (i % 5 === 0) payload.scores = [i / 10, -i]
    if (i % 7 === 0) payload.note = i % 2 === 0 ? null : `Note ${tags[i % 4]} ${i}`
    payloads.push(payload)
  }
  return { vectors, ids, payloads }
}

const FILTERS: Record<string, any>[] = [
  { tag: 'red' },
  { tags: 'cyan' },
  { rank: { gte: 10, lt: 40 } },
  { scores: { lt: -30 } },
  { tag: { any: ['green', 'blue'] } },
  { tags: { all: ['red', 'green'] } },
  { tags: { all: [] } },
  { tag: 'red', rank: { gt: 50 } },
  { tag: { any: [] } },
  { missing: 1 },
  { rank: 7 },
  { rank: '7' },
  { tag: { ne: 'red' } },
  { tags: { nin: ['red', 'cyan'] } },
  { note: { exists: true } },
  { note: { exists: false }, tag: 'blue' },
  { tag: { contains: 'ee' } },
  { tags: { contains: 'ya' } },
  { note: { contains: 'Note g' } },
  { or: [{ tag: 'red' }, { rank: { lt: 10 } }, { note: { exists: true } }] },
  { or: [] },
  { and: [{ rank: { gt: 20 } }, { rank: { ne: 30 } }], tag: { any: ['red', 'blue'] } },
  { not: { tag: 'red' } },
  { not: { tags: 'cyan' } },
  { not: { or: [{ tags: { exists: true } }, { rank: { gte: 60 } }] } },
  { or: [{ not: { note: { contains: 'blue' } }, tag: 'blue' }, { and: [{ scores: { lt: -100 } }] }] },
]

describe.each(backends)('$name backend', (backend) => {
  const opened: any[] = []
  const open = async (config: Parameters<Backend['open']>[0]) => {
    const store = await backend.open(config)
    opened.push(store)
    return store
  }
  afterEach(async () => {
    for (const store of opened.splice(0)) if (store.isConnected()) await store.disconnect()
  })

  test('points read back exactly: ids keep their type, vectors bit for bit, payloads as given', async () => {
    const store = await open({ dimension: 5 })
    const random = rng(7)
    const vectors = Array.from({ length: 20 }, () => Float32Array.from({ length: 5 }, () => (random() - 0.5) * 10 ** (random() * 8 - 4)))
    const ids: Id[] = vectors.map((_, i) => (i % 2 ? i * 1000003 : `é-${i}-🙂`))
    ids[0] = Number.MAX_SAFE_INTEGER
    ids[2] = -Number.MAX_SAFE_INTEGER
    ids[3] = 'x'
    const payloads = vectors.map((_, i) => ({ i, nested: { deep: [i, 'x', null, true] }, text: 'quote " and \\ and \n' }))
    await store.insert(vectors, ids, payloads)
    for (let i = 0; i < ids.length; i++) {
      const point = await store.get(ids[i])
      expect(point.id).toStrictEqual(ids[i])
      expect(Float32Array.from(point.vector)).toEqual(vectors[i])
      expect(point.payload).toEqual(payloads[i])
    }
    // 1 and '1' are two ids.
    await store.insert([vectors[0], vectors[1]], [1, '1'], [{ kind: 'number' }, { kind: 'string' }])
    expect((await store.get(1)).payload).toEqual({ kind: 'number' })
    expect((await store.get('1')).payload).toEqual({ kind: 'string' })
    expect(await store.get('missing')).toBeNull()
    expect(await store.count()).toBe(22)
  })

  test.each(['Cosine', 'Dot', 'Euclidean'] as Distance[])('%s search returns the true top k with its scores', async (distance) => {
    const dimension = 16
    const store = await open({ dimension, distance, annAlgorithm: 'flat' })
    const { vectors, ids, payloads } = dataset(300, dimension, 11)
    await store.insert(vectors, ids, payloads)
    const random = rng(99)
    for (let q = 0; q < 5; q++) {
      const query = Float32Array.from({ length: dimension }, () => random() * 2 - 1)
      const hits = await store.search(query, 10)
      const expected = ids
        .map((id, i) => ({ id, score: score(distance, query, vectors[i]) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10)
      expect(hits.map((h: any) => h.id)).toEqual(expected.map((e) => e.id))
      hits.forEach((h: any, i: number) => expect(h.score).toBeCloseTo(expected[i].score, 4))
    }
  })

  test('the graph (HNSW) search finds the nearest neighbours', async () => {
    const dimension = 24
    const store = await open({ dimension, annAlgorithm: 'hnsw' })
    const { vectors, ids, payloads } = dataset(2000, dimension, 5)
    for (let i = 0; i < 2000; i += 500) await store.insert(vectors.slice(i, i + 500), ids.slice(i, i + 500), payloads.slice(i, i + 500))
    await store.waitForIndex()
    let found = 0
    for (let q = 0; q < 20; q++) {
      const hits = await store.search(vectors[q * 37], 10)
      expect(hits).toHaveLength(10)
      if (hits[0].id === ids[q * 37]) found++
    }
    // Each query is a stored vector: a working graph puts it first nearly always.
    expect(found).toBeGreaterThanOrEqual(18)
  })

  test.each(FILTERS.map((f) => [JSON.stringify(f), f]))('filter %s: search and list return exactly the matching points', async (_name, filter) => {
    const dimension = 8
    const store = await open({ dimension, annAlgorithm: 'hnsw' })
    const { vectors, ids, payloads } = dataset(120, dimension, 3)
    await store.insert(vectors, ids, payloads)
    const expectedIds = ids.filter((_, i) => matches(filter, payloads[i]))
    const [records, total] = await store.list(filter, 1000)
    expect(total).toBe(expectedIds.length)
    expect(new Set(records.map((r: any) => r.id))).toEqual(new Set(expectedIds))
    const query = vectors[4]
    const hits = await store.search(query, 15, filter)
    const expected = ids
      .map((id, i) => ({ id, i, score: score('Cosine', query, vectors[i]) }))
      .filter((e) => matches(filter, payloads[e.i]))
      .sort((a, b) => b.score - a.score)
      .slice(0, 15)
    // The true filtered top 15 (a selective filter must not starve the graph walk).
    expect(hits.map((h: any) => h.id)).toEqual(expected.map((e) => e.id))
  })

  test('list walks ids in order: numbers ascending, then strings', async () => {
    const store = await open({ dimension: 2 })
    const ids: Id[] = ['b', 10, 'a', -5, 2, 'B', 'é']
    await store.insert(
      ids.map(() => [1, 0]),
      ids,
      ids.map(() => ({})),
    )
    const [records, total] = await store.list(undefined, 100)
    expect(total).toBe(ids.length)
    expect(records.map((r: any) => r.id)).toEqual([-5, 2, 10, 'B', 'a', 'b', 'é'])
    const [firstTwo, all] = await store.list(undefined, 2)
    expect(firstTwo.map((r: any) => r.id)).toEqual([-5, 2])
    expect(all).toBe(ids.length)
  })

  test('insert overwrites, update replaces or fails NOT_FOUND, delete and deleteCollection remove', async () => {
    const store = await open({ dimension: 3 })
    await store.insert([[1, 0, 0], [0, 1, 0]], ['a', 'b'], [{ v: 1 }, { v: 2 }])
    await store.insert([[0, 0, 1]], ['a'], [{ v: 3 }])
    expect(await store.get('a')).toEqual({ id: 'a', vector: [0, 0, 1], payload: { v: 3 } })
    await store.update('b', [1, 1, 0], { v: 4 })
    expect(await store.get('b')).toEqual({ id: 'b', vector: [1, 1, 0], payload: { v: 4 } })
    await expect(store.update('zz', [1, 1, 0], {})).rejects.toMatchObject({ kind: 'NOT_FOUND' })
    await store.delete('a')
    await store.delete('never-there')
    expect(await store.get('a')).toBeNull()
    expect(await store.count()).toBe(1)
    await store.deleteCollection()
    expect(await store.count()).toBe(0)
    expect(store.isConnected()).toBe(true)
  })

  test('bad input is refused with the same error, and nothing is written', async () => {
    const store = await open({ dimension: 3, maxVectors: 4 })
    await store.insert([[1, 0, 0]], ['keep'], [{}])
    const cases: [string, () => Promise<unknown>, string][] = [
      ['dimension', () => store.insert([[1, 0, 0], [1, 0]], ['x', 'y'], [{}, {}]), 'DIMENSION_MISMATCH'],
      ['NaN', () => store.insert([[1, NaN, 0]], ['x'], [{}]), 'NON_FINITE_VALUE'],
      ['lengths', () => store.insert([[1, 0, 0]], ['x', 'y'], [{}]), 'LENGTH_MISMATCH'],
      ['empty id', () => store.insert([[1, 0, 0]], [''], [{}]), 'INVALID_ID'],
      ['fractional id', () => store.insert([[1, 0, 0]], [1.5], [{}]), 'INVALID_ID'],
      ['long id', () => store.insert([[1, 0, 0]], ['x'.repeat(513)], [{}]), 'INVALID_ID'],
      ['duplicate id', () => store.insert([[1, 0, 0], [0, 1, 0]], ['d', 'd'], [{}, {}]), 'DUPLICATE_ID'],
      ['payload', () => store.insert([[1, 0, 0]], ['x'], [{ f: () => 1 } as any]), 'INVALID_PAYLOAD'],
      ['capacity', () => store.insert([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]], ['p', 'q', 'r', 's'], [{}, {}, {}, {}]), 'CAPACITY_EXCEEDED'],
      ['query dimension', () => store.search([1, 0], 3), 'DIMENSION_MISMATCH'],
      ['limit', () => store.search([1, 0, 0], 0), 'INVALID_ARGUMENT'],
      ['efSearch', () => store.search([1, 0, 0], 3, undefined, { efSearch: 0 }), 'INVALID_ARGUMENT'],
      ['filter', () => store.search([1, 0, 0], 3, { tag: { near: 1 } }), 'INVALID_FILTER'],
      ['list filter', () => store.list({ tag: [] }), 'INVALID_FILTER'],
      ['get id', () => store.get({} as any), 'INVALID_ID'],
      ['update dimension', () => store.update('keep', [1, 0], {}), 'DIMENSION_MISMATCH'],
    ]
    for (const [name, attempt, kind] of cases) {
      const error = await attempt().then(
        () => new Error(`${name}: no error`),
        (e) => e,
      )
      expect(error).toBeInstanceOf(VectorStoreError)
      expect([name, error.kind]).toEqual([name, kind])
    }
    const dimensionError = await store.insert([[1, 0]], ['x'], [{}]).catch((e: unknown) => e)
    expect(dimensionError).toBeInstanceOf(VectorDimensionError)
    expect(await store.count()).toBe(1)
    expect(await store.get('x')).toBeNull()
  })

  test('a reopened collection has every point; reopening with another dimension is refused', async () => {
    const name = `reopen-${backend.name}-${serial++}`
    const store = await open({ dimension: 4, name })
    const { vectors, ids, payloads } = dataset(50, 4, 8)
    await store.insert(vectors, ids, payloads)
    await store.disconnect()
    await expect(store.count()).rejects.toMatchObject({ kind: 'CLOSED' })
    const again = await open({ dimension: 4, name })
    expect(await again.count()).toBe(50)
    expect(Float32Array.from((await again.get(ids[7])).vector)).toEqual(vectors[7])
    await again.disconnect()
    await expect(open({ dimension: 5, name })).rejects.toMatchObject({ kind: 'CONFIG_MISMATCH' })
  })
})

test('pgvector: a server that is not there is a PersistenceError, not a hang or a crash', async () => {
  const { PersistenceError } = await import('../index')
  const error = await createVectorStore({
    type: 'pgvector',
    connectionString: `postgresql://postgres@${encodeURIComponent(join(tmpdir(), 'no-such-socket-dir'))}/postgres`,
    collectionName: 'c',
    dimension: 3,
  } as any).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(PersistenceError)
  expect(error).toMatchObject({ kind: 'IO' })
})

test('pgvector: config is checked like the embedded store\'s', async () => {
  const base = { type: 'pgvector', connectionString: postgres.connectionString, dimension: 3 }
  await expect(createVectorStore({ ...base, collectionName: '../x' } as any)).rejects.toMatchObject({ kind: 'INVALID_NAME' })
  await expect(createVectorStore({ ...base, collectionName: 'ok', persistencePath: '/tmp' } as any)).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
  })
  await expect(createVectorStore({ type: 'pgvector', collectionName: 'ok', dimension: 3 } as any)).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
  })
  await expect(createVectorStore({ ...base, collectionName: 'ok', distance: 'Manhattan' } as any)).rejects.toMatchObject({
    kind: 'INVALID_ARGUMENT',
  })
})

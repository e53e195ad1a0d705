/**
 * The vector store API on PostgreSQL + pgvector: `createVectorStore({ type: 'pgvector', … })`.
 *
 * The same methods, error classes and filter language as the embedded store, for applications that
 * outgrow one machine. Input is checked by the same Rust code as the embedded store's writes
 * (`checkPoints`, `checkFilter`, … in `src/validation.rs`), so both backends refuse the same input
 * with the same error; only what PostgreSQL stores and searches differs.
 *
 * Schema (created on `connect()`, in one transaction under an advisory lock):
 *
 * ```sql
 * annvault_collections(name text PRIMARY KEY, table_name text UNIQUE, dimension int, distance text,
 *                      created_at timestamptz)
 * av_<16 hex of sha256(name)>(
 *   id_key  text COLLATE "C" PRIMARY KEY,  -- 'n:<integer>' or 's:<string>': one id space, types kept apart
 *   id_num  bigint,                        -- the id when it is a number
 *   id_str  text COLLATE "C",              -- the id when it is a string
 *   embedding vector(<dimension>) NOT NULL,
 *   payload jsonb NOT NULL)
 * av_<hex>_hnsw: USING hnsw (embedding vector_<cosine|ip|l2>_ops) WITH (m, ef_construction)
 * ```
 *
 * Search: an HNSW index scan with `hnsw.ef_search`, and for a filtered search pgvector 0.8's
 * iterative scan (`hnsw.iterative_scan = strict_order`), so the filter is applied while the graph
 * is walked; when the walk stops before `limit` matches (`hnsw.max_scan_tuples`), the query is run
 * again as an exact scan, so a filtered search returns `limit` results whenever that many match.
 * Without an index (`annAlgorithm: 'flat'`, a collection of over 2,000 dimensions — pgvector's
 * HNSW limit for `vector` — or fewer than `annMinDatasetSize` points) every search is exact.
 */
import { createHash } from 'node:crypto'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const annvault = require('../index.js')
const internal = annvault.__internal

type Id = string | number
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Payload = Record<string, Json>

interface PgPool {
  connect(): Promise<PgClient>
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>
  end(): Promise<void>
}
interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>
  release(error?: Error | boolean): void
}

const CONFIG_KEYS = new Set([
  'type',
  'collectionName',
  'dimension',
  'distance',
  'maxVectors',
  'connectionString',
  'pool',
  'annAlgorithm',
  'annMinDatasetSize',
  'hnsw',
])

/** pgvector's HNSW index holds `vector` columns of at most this many dimensions. */
export const MAX_INDEXED_DIMENSION = 2000

const OPERATORS = {
  Cosine: { op: '<=>', ops: 'vector_cosine_ops' },
  Dot: { op: '<#>', ops: 'vector_ip_ops' },
  Euclidean: { op: '<->', ops: 'vector_l2_ops' },
} as const
type DistanceName = keyof typeof OPERATORS

export interface PgVectorConfig {
  type: 'pgvector'
  collectionName: string
  dimension?: number
  distance?: string
  maxVectors?: number
  /** A libpq-style URL, e.g. `postgresql://user@host/db` (one of `connectionString` and `pool`). */
  connectionString?: string
  /** An existing `pg.Pool` (the store does not end it on `disconnect()`). */
  pool?: PgPool
  /** 'auto' (default): exact below `annMinDatasetSize` points, the HNSW index from there on. */
  annAlgorithm?: 'auto' | 'flat' | 'hnsw'
  annMinDatasetSize?: number
  hnsw?: { m?: number; efConstruction?: number; efSearch?: number }
}

interface Resolved {
  collectionName: string
  dimension: number
  distance: DistanceName
  maxVectors: number | undefined
  connectionString: string | undefined
  pool: PgPool | undefined
  annAlgorithm: 'auto' | 'flat' | 'hnsw'
  annMinDatasetSize: number
  m: number
  efConstruction: number
  efSearch: number
}

function err(kind: string, operation: string, message: string, details: Record<string, unknown> = {}) {
  return internal.storeError(kind, operation, message, details)
}

function positiveInt(value: unknown, name: string, low: number, high: number, operation: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
    throw err('INVALID_ARGUMENT', operation, `${name} must be an integer from ${low} to ${high}, got ${internal.describe(value)}`, {
      argument: name,
    })
  }
  return value
}

function normalize(input: unknown): Resolved {
  const operation = 'createVectorStore'
  const config = internal.readOptions(input, 'config', operation)
  internal.checkKnown(config, CONFIG_KEYS, 'config', operation)
  const name = config.collectionName
  if (typeof name !== 'string') {
    throw err('INVALID_NAME', operation, `collectionName must be a string, got ${internal.describe(name)}`)
  }
  internal.native.checkCollectionName(name, operation)
  const dimension = positiveInt(config.dimension ?? internal.DEFAULT_DIMENSION, 'dimension', 1, 16000, operation)
  const distanceName = internal.optionOf(config, 'distance', 'string', operation) ?? 'Cosine'
  const distance = (internal.DISTANCES as string[]).find((d) => d.toLowerCase() === distanceName.toLowerCase())
  if (distance === undefined) {
    throw err('INVALID_ARGUMENT', operation, `distance must be one of Cosine, Dot, Euclidean, got ${JSON.stringify(distanceName)}`, {
      argument: 'distance',
    })
  }
  const connectionString = internal.optionOf(config, 'connectionString', 'string', operation)
  const pool = config.pool
  if ((connectionString === undefined) === (pool === undefined)) {
    throw err('INVALID_ARGUMENT', operation, "a pgvector store needs exactly one of 'connectionString' and 'pool'", {
      argument: 'connectionString',
    })
  }
  if (pool !== undefined && (typeof pool !== 'object' || pool === null || typeof pool.connect !== 'function')) {
    throw err('INVALID_ARGUMENT', operation, `pool must be a pg.Pool, got ${internal.describe(pool)}`, { argument: 'pool' })
  }
  const algorithm = internal.optionOf(config, 'annAlgorithm', 'string', operation) ?? 'auto'
  if (!['auto', 'flat', 'hnsw'].includes(algorithm)) {
    throw err('INVALID_ARGUMENT', operation, `annAlgorithm must be 'auto', 'flat' or 'hnsw', got ${JSON.stringify(algorithm)}`, {
      argument: 'annAlgorithm',
    })
  }
  const hnsw = internal.hnswOf(config, operation) ?? {}
  if (hnsw.quantization !== undefined) {
    throw err('INVALID_ARGUMENT', operation, 'hnsw.quantization is not an option of the pgvector backend (pgvector keeps f32 vectors)', {
      argument: 'hnsw.quantization',
    })
  }
  const maxVectors = config.maxVectors === undefined ? undefined : positiveInt(config.maxVectors, 'maxVectors', 1, 2 ** 32 - 1, operation)
  return {
    collectionName: name,
    dimension,
    distance: distance as DistanceName,
    maxVectors,
    connectionString,
    pool,
    annAlgorithm: algorithm,
    annMinDatasetSize: positiveInt(config.annMinDatasetSize ?? 1000, 'annMinDatasetSize', 1, 2 ** 32 - 1, operation),
    // pgvector's own bounds for the index options.
    m: positiveInt(hnsw.m ?? 16, 'hnsw.m', 2, 100, operation),
    efConstruction: positiveInt(hnsw.efConstruction ?? 100, 'hnsw.efConstruction', 4, 1000, operation),
    efSearch: positiveInt(hnsw.efSearch ?? 64, 'hnsw.efSearch', 1, 1000, operation),
  }
}

/** The id column key: numbers and strings never collide (`1` and `'1'` are two ids, as in the embedded store). */
function idKey(id: Id): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`
}

function idOf(row: { id_num: string | null; id_str: string | null }): Id {
  return row.id_num !== null ? Number(row.id_num) : (row.id_str as string)
}

function vectorText(values: ArrayLike<number>): string {
  // A Float32Array element read as a double prints the shortest decimal of that double, which
  // PostgreSQL's float4 parser rounds back to the same f32: vectors are stored bit for bit.
  let text = '['
  for (let i = 0; i < values.length; i++) text += (i ? ',' : '') + values[i]
  return text + ']'
}

function parseVector(text: string): number[] {
  return text.length <= 2 ? [] : text.slice(1, -1).split(',').map(Number)
}

/** Builds the SQL of a filter (already checked by the native parser) over `payload`. */
class FilterSql {
  readonly params: unknown[]
  constructor(params: unknown[]) {
    this.params = params
  }

  private param(value: unknown, cast: string): string {
    this.params.push(value)
    return `$${this.params.length}::${cast}`
  }

  /** `field` equals `value` (a jsonb expression) or is an array holding an element equal to it. */
  private foundIn(field: string, value: string): string {
    return `(${field} = ${value} OR (jsonb_typeof(${field}) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(${field}) e WHERE e = ${value})))`
  }

  /** A string of `field`, or of its elements when it is an array, holds `needle` (strpos: case-sensitive). */
  private containsText(field: string, needle: string): string {
    return (
      `((jsonb_typeof(${field}) = 'string' AND strpos(${field} #>> '{}', ${needle}) > 0) OR ` +
      `(jsonb_typeof(${field}) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(${field}) e ` +
      `WHERE jsonb_typeof(e) = 'string' AND strpos(e #>> '{}', ${needle}) > 0)))`
    )
  }

  clause(key: string, condition: Json): string {
    // Groups (the native parser checked their shape). Every clause is wrapped in COALESCE below,
    // so a missing field is FALSE, never NULL, and `NOT` of it is TRUE, as in the embedded store.
    if (key === 'or' || key === 'and') {
      const members = (condition as Record<string, Json>[]).map((member) => `(${this.where(member)})`)
      if (members.length === 0) return key === 'or' ? 'FALSE' : 'TRUE'
      return `(${members.join(key === 'or' ? ' OR ' : ' AND ')})`
    }
    if (key === 'not') return `(NOT (${this.where(condition as Record<string, Json>)}))`
    const field = `(payload -> ${this.param(key, 'text')})`
    if (condition === null || typeof condition !== 'object' || Array.isArray(condition)) {
      return this.foundIn(field, this.param(JSON.stringify(condition), 'jsonb'))
    }
    const ops = Object.keys(condition).filter((k) => condition[k] !== undefined)
    // `payload -> key` is SQL NULL only when the key is absent (a JSON null is jsonb 'null').
    if (ops.length === 1 && ops[0] === 'exists') return condition['exists'] ? `(${field} IS NOT NULL)` : `(${field} IS NULL)`
    if (ops.length === 1 && ops[0] === 'contains') return this.containsText(field, this.param(condition['contains'], 'text'))
    if (ops.length === 1 && ops[0] === 'ne') {
      return `(${field} IS NOT NULL AND NOT ${this.foundIn(field, this.param(JSON.stringify(condition['ne']), 'jsonb'))})`
    }
    if (ops.length === 1 && ops[0] === 'nin') {
      const list = this.param(JSON.stringify(condition['nin']), 'jsonb')
      return `(${field} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(${list}) w WHERE ${this.foundIn(field, 'w')}))`
    }
    if (ops.length === 1 && (ops[0] === 'any' || ops[0] === 'all')) {
      const list = this.param(JSON.stringify(condition[ops[0]]), 'jsonb')
      const each = this.foundIn(field, 'w')
      return ops[0] === 'any'
        ? `EXISTS (SELECT 1 FROM jsonb_array_elements(${list}) w WHERE ${each})`
        : `(${field} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(${list}) w WHERE NOT ${each}))`
    }
    const sqlOp: Record<string, string> = { gte: '>=', gt: '>', lte: '<=', lt: '<' }
    const bounds = (x: string) =>
      ops
        .map((op) => {
          if (!(op in sqlOp)) {
            throw new Error(`filter operator ${op} has no SQL translation`)
          }
          return `${x} ${sqlOp[op]} ${this.param(String(condition[op]), 'float8')}`
        })
        .join(' AND ')
    // The embedded store compares numbers as f64: so does this.
    return (
      `((jsonb_typeof(${field}) = 'number' AND ${bounds(`(${field})::float8`)}) OR ` +
      `(jsonb_typeof(${field}) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(${field}) e ` +
      `WHERE jsonb_typeof(e) = 'number' AND ${bounds('(e)::float8')})))`
    )
  }

  where(filter: Record<string, Json> | undefined): string {
    if (filter === undefined) return 'TRUE'
    const parts = Object.keys(filter)
      .filter((key) => filter[key] !== undefined)
      .map((key) => `COALESCE(${this.clause(key, filter[key])}, FALSE)`)
    return parts.length === 0 ? 'TRUE' : parts.join(' AND ')
  }
}

export class PgVectorStore {
  #config: Resolved
  #pool: PgPool | null = null
  #ownsPool = false
  #table: string
  #connecting: Promise<void> | null = null

  constructor(config: PgVectorConfig) {
    try {
      this.#config = normalize(config)
    } catch (error) {
      throw internal.translate(error, 'createVectorStore')
    }
    const hash = createHash('sha256').update(this.#config.collectionName).digest('hex').slice(0, 16)
    this.#table = `av_${hash}`
  }

  #open(operation: string): PgPool {
    if (this.#pool === null) throw err('CLOSED', operation, 'the store is not connected; call connect() first')
    return this.#pool
  }

  /** Runs `work` in one transaction on one connection; PostgreSQL errors become PersistenceErrors. */
  async #transaction<T>(operation: string, work: (client: PgClient) => Promise<T>): Promise<T> {
    const pool = this.#open(operation)
    let client: PgClient
    try {
      client = await pool.connect()
    } catch (error) {
      throw pgError(error, operation)
    }
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const result = await work(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      try {
        await client.query('ROLLBACK')
      } catch (rollback) {
        broken = rollback as Error
      }
      throw error instanceof annvault.VectorStoreError ? error : pgError(error, operation)
    } finally {
      client.release(broken)
    }
  }

  async connect(): Promise<void> {
    if (this.#pool !== null) return
    if (this.#connecting) return this.#connecting
    this.#connecting = (async () => {
      const c = this.#config
      let pool = c.pool
      if (pool === undefined) {
        let pg
        try {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          pg = require('pg')
        } catch (error) {
          throw err('INVALID_ARGUMENT', 'connect', "the pgvector backend needs the 'pg' package: npm install pg", { cause: String(error) })
        }
        pool = new pg.Pool({ connectionString: c.connectionString, max: 8 }) as PgPool
        ;(pool as any).on?.('error', () => {
          // An idle client's connection failed; the next query reports it.
        })
        this.#ownsPool = true
      }
      this.#pool = pool
      try {
        await this.#transaction('connect', (client) => this.#prepare(client))
      } catch (error) {
        this.#pool = null
        if (this.#ownsPool) await pool.end().catch(() => undefined)
        throw error
      }
    })()
    try {
      await this.#connecting
    } finally {
      this.#connecting = null
    }
  }

  async #prepare(client: PgClient): Promise<void> {
    const c = this.#config
    // One creator at a time across processes: the registry row and the table appear together.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('annvault.collections'))")
    await client.query('CREATE EXTENSION IF NOT EXISTS vector')
    await client.query(`CREATE TABLE IF NOT EXISTS annvault_collections (
      name text PRIMARY KEY, table_name text NOT NULL UNIQUE, dimension int NOT NULL,
      distance text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`)
    const found = await client.query('SELECT dimension, distance FROM annvault_collections WHERE name = $1', [c.collectionName])
    if (found.rows.length > 0) {
      const row = found.rows[0]
      if (row.dimension !== c.dimension || row.distance !== c.distance) {
        throw err(
          'CONFIG_MISMATCH',
          'connect',
          `collection '${c.collectionName}' exists with dimension ${row.dimension} and distance ${row.distance}; this config asks for dimension ${c.dimension} and distance ${c.distance}`,
          { stored: { dimension: row.dimension, distance: row.distance } },
        )
      }
      return
    }
    await client.query('INSERT INTO annvault_collections (name, table_name, dimension, distance) VALUES ($1, $2, $3, $4)', [
      c.collectionName,
      this.#table,
      c.dimension,
      c.distance,
    ])
    await client.query(`CREATE TABLE ${this.#table} (
      id_key text COLLATE "C" PRIMARY KEY, id_num bigint, id_str text COLLATE "C",
      embedding vector(${c.dimension}) NOT NULL, payload jsonb NOT NULL)`)
    if (c.annAlgorithm !== 'flat' && c.dimension <= MAX_INDEXED_DIMENSION) {
      await client.query(
        `CREATE INDEX ${this.#table}_hnsw ON ${this.#table} USING hnsw (embedding ${OPERATORS[c.distance].ops}) ` +
          `WITH (m = ${c.m}, ef_construction = ${c.efConstruction})`,
      )
    }
  }

  async disconnect(): Promise<void> {
    const pool = this.#pool
    this.#pool = null
    if (pool !== null && this.#ownsPool) await pool.end()
  }

  isConnected(): boolean {
    return this.#pool !== null
  }

  insert(vectors: unknown, ids: unknown, payloads: unknown): Promise<void> {
    return internal.call('insert', async () => {
      this.#open('insert')
      internal.checkArray(vectors, 'vectors', 'insert')
      internal.checkArray(ids, 'ids', 'insert')
      internal.checkArray(payloads, 'payloads', 'insert')
      const json: string = internal.payloadsText(payloads, 'insert')
      const { flat, lengths } = internal.packVectors(vectors, 'insert')
      const idList: Id[] = internal.copyIds(ids, 'insert')
      await internal.native.checkPoints(this.#config.dimension, flat, lengths, idList, json)
      const dim = this.#config.dimension
      const keys = idList.map(idKey)
      const nums = idList.map((id) => (typeof id === 'number' ? String(id) : null))
      const strs = idList.map((id) => (typeof id === 'string' ? id : null))
      const texts = idList.map((_, i) => vectorText(flat.subarray(i * dim, (i + 1) * dim)))
      const payloadTexts = (JSON.parse(json) as Payload[]).map((p) => JSON.stringify(p))
      await this.#transaction('insert', async (client) => {
        if (this.#config.maxVectors !== undefined) await this.#checkCapacity(client, keys)
        await client.query(
          `INSERT INTO ${this.#table} (id_key, id_num, id_str, embedding, payload)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::vector[], $5::jsonb[])
           ON CONFLICT (id_key) DO UPDATE SET embedding = EXCLUDED.embedding, payload = EXCLUDED.payload`,
          [keys, nums, strs, texts, payloadTexts],
        )
      })
    })
  }

  /** Refuses a batch that would take the collection past `maxVectors`, as the embedded store does. */
  async #checkCapacity(client: PgClient, keys: string[]): Promise<void> {
    // Writers of one collection queue here, so two batches cannot both pass the check.
    await client.query(`LOCK TABLE ${this.#table} IN SHARE ROW EXCLUSIVE MODE`)
    const result = await client.query(
      `SELECT (SELECT count(*) FROM ${this.#table}) AS live,
              (SELECT count(*) FROM ${this.#table} WHERE id_key = ANY($1::text[])) AS present`,
      [keys],
    )
    const live = Number(result.rows[0].live)
    const adding = keys.length - Number(result.rows[0].present)
    const max = this.#config.maxVectors as number
    if (live + adding > max) {
      throw err('CAPACITY_EXCEEDED', 'insert', `the batch would add ${adding} points to ${live}, past maxVectors ${max}`, {
        maxVectors: max,
        count: live,
        adding,
      })
    }
  }

  search(query: unknown, limit: unknown = internal.DEFAULT_SEARCH_LIMIT, filters?: unknown, options?: unknown): Promise<unknown[]> {
    return internal.call('search', async () => {
      this.#open('search')
      const vector: Float32Array = internal.toFloat32(query, 'search', 'query')
      const efOption = internal.searchOptions(options)
      const filterJson: string | undefined = internal.filterText(filters, 'search')
      const k = internal.native.checkLimits(internal.checkLimit(limit, 'search'), efOption, 'search')
      internal.native.checkQuery(this.#config.dimension, vector, 'search')
      if (filterJson !== undefined) internal.native.checkFilter(filterJson, 'search')
      const filter = filterJson === undefined ? undefined : (JSON.parse(filterJson) as Record<string, Json>)
      const efSearch = Math.min(Math.max(efOption ?? this.#config.efSearch, 1), 1000)
      const { op } = OPERATORS[this.#config.distance]
      const params: unknown[] = [vectorText(vector)]
      const where = new FilterSql(params).where(filter)
      params.push(k)
      const sql =
        `SELECT id_num, id_str, payload, embedding ${op} $1::vector AS d FROM ${this.#table} ` +
        `WHERE ${where} ORDER BY embedding ${op} $1::vector LIMIT $${params.length}`
      const rows = await this.#transaction('search', async (client) => {
        const useIndex = await this.#usesIndex(client)
        if (!useIndex) {
          await client.query('SET LOCAL enable_indexscan = off')
          return (await client.query(sql, params)).rows
        }
        await client.query(`SET LOCAL hnsw.ef_search = ${Math.max(efSearch, Math.min(k, 1000))}`)
        if (filter !== undefined) await client.query("SET LOCAL hnsw.iterative_scan = 'strict_order'")
        const first = (await client.query(sql, params)).rows
        if (first.length >= k) return first
        // The walk ended before `limit` results (few matches, or `limit` past ef_search): an exact
        // scan finds every match there is.
        await client.query('SET LOCAL enable_indexscan = off')
        return (await client.query(sql, params)).rows
      })
      return rows.map((row: any) => ({ id: idOf(row), score: this.#score(Number(row.d)), payload: row.payload }))
    })
  }

  /** Whether a search walks the HNSW index (else an exact scan), per `annAlgorithm`. */
  async #usesIndex(client: PgClient): Promise<boolean> {
    const c = this.#config
    if (c.annAlgorithm === 'flat' || c.dimension > MAX_INDEXED_DIMENSION) return false
    if (c.annAlgorithm === 'hnsw') return true
    // 'auto': exact below annMinDatasetSize points (an estimate is enough for choosing a plan).
    const result = await client.query(`SELECT count(*) AS n FROM (SELECT 1 FROM ${this.#table} LIMIT $1) s`, [c.annMinDatasetSize])
    return Number(result.rows[0].n) >= c.annMinDatasetSize
  }

  /** pgvector's distance → the embedded store's higher-is-closer score. */
  #score(distance: number): number {
    switch (this.#config.distance) {
      case 'Cosine':
        // pgvector's cosine distance against an all-zero vector is NaN; the embedded store scores it 0.
        return Number.isNaN(distance) ? 0 : 1 - distance
      case 'Dot':
        return -distance
      case 'Euclidean':
        return 1 / (1 + distance)
    }
  }

  waitForIndex(timeoutMs: unknown = 600000): Promise<boolean> {
    return internal.call('waitForIndex', async () => {
      if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
        throw err('INVALID_ARGUMENT', 'waitForIndex', `timeoutMs must be a non-negative number, got ${internal.describe(timeoutMs)}`, {
          argument: 'timeoutMs',
        })
      }
      this.#open('waitForIndex')
      // PostgreSQL updates the index inside each write's transaction: it is never behind.
      return true
    })
  }

  get(id: unknown): Promise<unknown> {
    return internal.call('get', async () => {
      const pool = this.#open('get')
      internal.native.checkPointId(id, 'get')
      const result = await pool
        .query(`SELECT id_num, id_str, embedding::text AS v, payload FROM ${this.#table} WHERE id_key = $1`, [idKey(id as Id)])
        .catch((error) => {
          throw pgError(error, 'get')
        })
      if (result.rows.length === 0) return null
      const row = result.rows[0]
      return { id: idOf(row), vector: parseVector(row.v), payload: row.payload }
    })
  }

  update(id: unknown, vector: unknown, payload: unknown): Promise<void> {
    return internal.call('update', async () => {
      this.#open('update')
      const packed: Float32Array = internal.toFloat32(vector, 'update', 'vector')
      const text: string = internal.payloadText(payload, 'update')
      internal.native.checkPointId(id, 'update')
      internal.native.checkQuery(this.#config.dimension, packed, 'update')
      internal.native.checkPayload(text, 'update')
      await this.#transaction('update', async (client) => {
        const result = await client.query(`UPDATE ${this.#table} SET embedding = $2::vector, payload = $3::jsonb WHERE id_key = $1`, [
          idKey(id as Id),
          vectorText(packed),
          text,
        ])
        if (result.rowCount === 0) {
          throw err('NOT_FOUND', 'update', `no point with id ${JSON.stringify(id)}`, { id })
        }
      })
    })
  }

  delete(id: unknown): Promise<void> {
    return internal.call('delete', async () => {
      const pool = this.#open('delete')
      internal.native.checkPointId(id, 'delete')
      await pool.query(`DELETE FROM ${this.#table} WHERE id_key = $1`, [idKey(id as Id)]).catch((error) => {
        throw pgError(error, 'delete')
      })
    })
  }

  deleteCollection(): Promise<void> {
    return internal.call('deleteCollection', async () => {
      await this.#transaction('deleteCollection', async (client) => {
        await client.query(`TRUNCATE ${this.#table}`)
      })
    })
  }

  list(filters?: unknown, limit: unknown = internal.DEFAULT_LIST_LIMIT): Promise<[unknown[], number]> {
    return internal.call('list', async () => {
      this.#open('list')
      const filterJson: string | undefined = internal.filterText(filters, 'list')
      const k = internal.native.checkLimits(internal.checkLimit(limit, 'list'), undefined, 'list')
      if (filterJson !== undefined) internal.native.checkFilter(filterJson, 'list')
      const params: unknown[] = []
      const where = new FilterSql(params).where(filterJson === undefined ? undefined : JSON.parse(filterJson))
      params.push(k)
      return this.#transaction('list', async (client) => {
        // Id order as in the embedded store: numbers (ascending) before strings (byte order).
        const page = await client.query(
          `SELECT id_num, id_str, payload FROM ${this.#table} WHERE ${where} ` +
            `ORDER BY id_num IS NULL, id_num, id_str LIMIT $${params.length}`,
          params,
        )
        const total = await client.query(`SELECT count(*) AS n FROM ${this.#table} WHERE ${where}`, params.slice(0, -1))
        return [page.rows.map((row: any) => ({ id: idOf(row), payload: row.payload })), Number(total.rows[0].n)] as [unknown[], number]
      })
    })
  }

  count(): Promise<number> {
    return internal.call('count', async () => {
      const result = await this.#open('count')
        .query(`SELECT count(*) AS n FROM ${this.#table}`)
        .catch((error) => {
          throw pgError(error, 'count')
        })
      return Number(result.rows[0].n)
    })
  }

  /** Every write is durable when it resolves (PostgreSQL's commit); there is nothing to checkpoint. */
  checkpoint(): Promise<void> {
    return internal.call('checkpoint', async () => {
      this.#open('checkpoint')
    })
  }

  flush(): Promise<void> {
    return this.checkpoint()
  }

  stats(): Promise<unknown> {
    return internal.call('stats', async () => {
      const pool = this.#open('stats')
      const result = await pool
        .query(
          `SELECT (SELECT count(*) FROM ${this.#table}) AS n, pg_total_relation_size('${this.#table}') AS bytes,
                  (SELECT count(*) FROM pg_indexes WHERE tablename = '${this.#table}' AND indexname = '${this.#table}_hnsw') AS indexed`,
        )
        .catch((error) => {
          throw pgError(error, 'stats')
        })
      const row = result.rows[0]
      return {
        backend: 'pgvector',
        count: Number(row.n),
        persistent: true,
        table: this.#table,
        bytesOnDisk: Number(row.bytes),
        index: { algorithm: Number(row.indexed) > 0 ? 'hnsw' : 'flat', configured: this.#config.annAlgorithm, efSearch: this.#config.efSearch },
      }
    })
  }

  exportLegacy(): Promise<void> {
    return Promise.reject(err('INVALID_ARGUMENT', 'exportLegacy', 'exportLegacy() writes the embedded store\'s files; the pgvector backend has none'))
  }

  getBackendType(): 'pgvector' {
    return 'pgvector'
  }

  getDimension(): number {
    return this.#config.dimension
  }

  getCollectionName(): string {
    return this.#config.collectionName
  }

  getConfig() {
    const { pool: _pool, connectionString: _url, ...rest } = this.#config
    return { type: 'pgvector' as const, ...rest }
  }

  getInfo() {
    const c = this.#config
    return {
      type: 'pgvector',
      collectionName: c.collectionName,
      dimension: c.dimension,
      distance: c.distance,
      maxVectors: c.maxVectors ?? null,
      table: this.#table,
      persistent: true,
      annAlgorithm: c.annAlgorithm,
      connected: this.isConnected(),
    }
  }
}

/** A PostgreSQL failure as a PersistenceError: `IO` (5002), the server's SQLSTATE in `details`. */
function pgError(error: unknown, operation: string): Error {
  if (error instanceof annvault.VectorStoreError) return error as Error
  const e = error as { message?: string; code?: string }
  return new annvault.PersistenceError(`PostgreSQL: ${e?.message ?? String(error)}`, annvault.ErrorCodes.IO, { sqlstate: e?.code ?? null }, {
    operation,
    kind: 'IO',
  })
}

// `annvault/llamaindex`: an annvault collection as a LlamaIndex.TS vector store
// (`BaseVectorStore` of @llamaindex/core).
//
// Each node is one point: its id the node's `id_`, its vector the node's
// embedding, its payload what LlamaIndex's own stores write
// (`nodeToMetadata`): the node's metadata at the top level (so filters select
// on it), the serialised node under `_node_content` (so `storesText` holds
// and `query` returns whole nodes), and `ref_doc_id` / `doc_id` /
// `document_id`, the source document, which `delete(refDocId)` selects on.
//
// Filters: LlamaIndex `MetadataFilters` become one annvault filter, evaluated in
// Rust (exact, and cached as a bitmap when repeated). `condition: 'or'` is an
// annvault `or` group; `text_match` is `contains` (a case-sensitive substring of
// a string field, or of a string in an array field); `is_empty` selects the
// nodes whose metadata lacks the key or holds `null` or `[]` there (LlamaIndex's
// own in-memory store also counts `""`, which annvault's equality cannot tell
// from an array holding `""`).
//
// Every write is durable (WAL + fsync) when its Promise resolves, and each add
// or delete is one WAL record, not a rewrite of the whole store: `persist()`
// has nothing left to do.

import type { BaseNode, Metadata } from '@llamaindex/core/schema'
import {
  BaseVectorStore,
  metadataDictToNode,
  nodeToMetadata,
  type MetadataFilter,
  type MetadataFilters,
  type VectorStoreBaseParams,
  type VectorStoreQuery,
  type VectorStoreQueryResult,
} from '@llamaindex/core/vector-store'
import { ErrorCodes, VectorStoreError, type FieldCondition, type InMemoryVectorStore, type SearchFilters } from '../index'
import { type CollectionArgs, LazyCollection } from './adapters/collection'

export type AnnvaultVectorStoreParams = CollectionArgs & VectorStoreBaseParams

type Clause = FieldCondition
type Range = { gte?: number; gt?: number; lte?: number; lt?: number }

function filterError(message: string, details: Record<string, unknown> = {}): VectorStoreError {
  return new VectorStoreError(message, 'query', { code: ErrorCodes.INVALID_FILTER, kind: 'INVALID_FILTER', details })
}

const RANGE_OPERATORS: Record<string, keyof Range> = { '>': 'gt', '>=': 'gte', '<': 'lt', '<=': 'lte' }

function scalarOf(filter: MetadataFilter): string | number {
  const value = filter.value
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw filterError(`filter on '${filter.key}' with '${filter.operator}' needs a string or number value`, { key: filter.key })
  }
  return value
}

function listOf(filter: MetadataFilter): (string | number)[] {
  const value = filter.value
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' || typeof v === 'number')) {
    throw filterError(`filter on '${filter.key}' with '${filter.operator}' needs an array of strings or numbers`, { key: filter.key })
  }
  return [...value]
}

function numberOf(filter: MetadataFilter): number {
  if (typeof filter.value !== 'number') {
    throw filterError(`filter on '${filter.key}' with '${filter.operator}' needs a number`, { key: filter.key })
  }
  return filter.value
}

function stringOf(filter: MetadataFilter): string {
  if (typeof filter.value !== 'string') {
    throw filterError(`filter on '${filter.key}' with '${filter.operator}' needs a string`, { key: filter.key })
  }
  return filter.value
}

/** One LlamaIndex filter as an annvault clause on its key. */
function clauseOf(filter: MetadataFilter): Clause {
  const operator = filter.operator ?? '=='
  if (operator in RANGE_OPERATORS) return { [RANGE_OPERATORS[operator]]: numberOf(filter) }
  switch (operator) {
    case '==':
      return scalarOf(filter)
    // A field equal to one of the values, or an array holding one of them.
    case 'in':
    case 'any':
      return { any: listOf(filter) }
    case 'all':
      return { all: listOf(filter) }
    // Among the nodes that have the key (annvault's `ne`/`nin`: a missing field matches nothing).
    case '!=':
      return { ne: scalarOf(filter) }
    case 'nin':
      return { nin: listOf(filter) }
    // An array field holding the value (a scalar field equal to it matches too).
    case 'contains':
      return scalarOf(filter)
    case 'text_match':
      return { contains: stringOf(filter) }
    default:
      throw filterError(`unknown filter operator '${operator}' on '${filter.key}'`, { key: filter.key, operator })
  }
}

function isRange(clause: Clause): clause is Range {
  return (
    typeof clause === 'object' &&
    clause !== null &&
    Object.keys(clause).length > 0 &&
    Object.keys(clause).every((k) => k === 'gte' || k === 'gt' || k === 'lte' || k === 'lt')
  )
}

/** Two clauses on one key, both to hold, as one annvault clause (AND); `null` when they do not merge. */
function combine(a: Clause, b: Clause): Clause | null {
  if (isRange(a) && isRange(b)) {
    if (Object.keys(b).some((bound) => bound in a)) return null
    return { ...a, ...b }
  }
  const scalar = (c: Clause) => typeof c === 'string' || typeof c === 'number' || typeof c === 'boolean'
  const values = (c: Clause) => (scalar(c) ? [c] : typeof c === 'object' && c !== null && 'all' in c ? c.all : null)
  const [va, vb] = [values(a), values(b)]
  // Equalities (and `all`) on one key: the field holds every value.
  if (va && vb) return { all: [...va, ...vb] } as Clause
  return null
}

/**
 * `is_empty`: the key is missing, or its value is none of a string, a number or a boolean and
 * holds none (`null`, `[]`; in LlamaIndex's flat metadata nothing else). `""` is not empty here:
 * annvault's equality cannot tell `""` from an array holding `""`.
 */
function isEmptyFilter(key: string): SearchFilters {
  const holdsAValue: SearchFilters[] = [
    { [key]: { contains: '' } },
    { [key]: { gte: 0 } },
    { [key]: { lt: 0 } },
    { [key]: { any: [true, false] } },
  ]
  return { or: [{ [key]: { exists: false } }, { [key]: { exists: true }, not: { or: holdsAValue } }] }
}

const GROUP_KEYS = new Set(['or', 'and', 'not'])

/** One LlamaIndex filter as a whole annvault filter. */
function memberOf(filter: MetadataFilter): SearchFilters {
  if (GROUP_KEYS.has(filter.key)) {
    throw filterError(`metadata key '${filter.key}' cannot be filtered on: annvault reads it as a filter group`, { key: filter.key })
  }
  if (filter.operator === 'is_empty') return isEmptyFilter(filter.key)
  return { [filter.key]: clauseOf(filter) }
}

/**
 * LlamaIndex `MetadataFilters` (and `docIds`) as an annvault filter: `condition: 'or'` as an `or`
 * group of the filters, `'and'` (the default) as clauses merged per key where they merge (two
 * bounds, two equalities) and an `and` group for the rest. `docIds` always AND-ed.
 */
export function toAnnvaultFilter(filters?: MetadataFilters, docIds?: string[]): SearchFilters | undefined {
  const list = [...(filters?.filters ?? [])]
  const out: SearchFilters = {}
  const rest: SearchFilters[] = []
  if (filters?.condition === 'or' && list.length > 1) {
    out.or = list.map(memberOf)
    list.length = 0
  }
  if (docIds !== undefined) list.push({ key: 'ref_doc_id', operator: 'in', value: docIds })
  if (list.length === 0 && out.or === undefined) return undefined
  for (const filter of list) {
    const member = memberOf(filter)
    if (filter.operator === 'is_empty') {
      rest.push(member)
      continue
    }
    const clause = member[filter.key] as Clause
    const merged = filter.key in out ? combine(out[filter.key] as Clause, clause) : clause
    if (merged === null) rest.push(member)
    else out[filter.key] = merged
  }
  if (rest.length > 0) out.and = rest
  return out
}

/** Whether `value` is a plain object of some realm (its prototype is that realm's Object.prototype, or null). */
function isPlainInAnyRealm(value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  return proto === null || (Object.getPrototypeOf(proto) === null && proto.constructor?.name === 'Object')
}

/**
 * `nodeToMetadata` copies metadata with `structuredClone`, whose objects belong to the main realm
 * even when the caller runs in another (a `vm` context, a jest sandbox), where annvault would
 * not take them for plain objects. Plain objects and arrays are re-created here; anything else
 * (a Date, a class instance) is left as it is, for the store to reject as not plain JSON.
 */
function rehome(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rehome)
  if (value !== null && typeof value === 'object' && isPlainInAnyRealm(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = rehome(item)
    return out
  }
  return value
}

export class AnnvaultVectorStore extends BaseVectorStore<InMemoryVectorStore> {
  storesText = true
  readonly collection: LazyCollection

  /** `embedModel` (or `Settings.embedModel`) is LlamaIndex's; the store itself needs none. */
  constructor(params: AnnvaultVectorStoreParams = {}) {
    super(params)
    this.collection = new LazyCollection(params, 'llamaindex')
  }

  /**
   * The annvault store. It opens on the first add or query (its dimension comes from the first
   * embedding, or from the collection on disk); before that, call `open()`.
   */
  client(): InMemoryVectorStore {
    const store = this.collection.current()
    if (!store) throw new VectorStoreError('the collection is not open yet: call open(), add() or query() first', 'client', { code: ErrorCodes.CLOSED, kind: 'CLOSED' })
    return store
  }

  /** Opens the collection now (with `dimension` if it is new and none was configured). */
  async open(dimension?: number): Promise<InMemoryVectorStore> {
    return this.collection.get(dimension)
  }

  async add(nodes: BaseNode[]): Promise<string[]> {
    if (nodes.length === 0) return []
    const vectors = nodes.map((node) => node.getEmbedding())
    const ids = nodes.map((node) => node.id_)
    const payloads = nodes.map((node) => rehome(nodeToMetadata(node)) as Record<string, unknown>)
    const store = await this.collection.get(vectors[0].length)
    await store.insert(vectors, ids, payloads)
    return ids
  }

  /** Deletes every node whose source document is `refDocId`. */
  async delete(refDocId: string): Promise<void> {
    if (this.collection.isAbsent()) return
    const store = await this.collection.get()
    const filter = { ref_doc_id: refDocId }
    const [matching, total] = await store.list(filter, 1)
    if (total === 0) return
    const [all] = total > matching.length ? await store.list(filter, total) : [matching]
    // Not awaited one by one: writes apply in call order and share fsyncs (group commit).
    await Promise.all(all.map((point) => store.delete(point.id)))
  }

  async query(query: VectorStoreQuery): Promise<VectorStoreQueryResult> {
    if (query.mode !== undefined && query.mode !== 'default') {
      throw new VectorStoreError(`query mode '${query.mode}' is not supported (only 'default')`, 'query', {
        code: ErrorCodes.INVALID_ARGUMENT,
        kind: 'INVALID_ARGUMENT',
      })
    }
    if (!query.queryEmbedding) {
      throw new VectorStoreError('query needs a queryEmbedding', 'query', { code: ErrorCodes.INVALID_ARGUMENT, kind: 'INVALID_ARGUMENT' })
    }
    const filter = toAnnvaultFilter(query.filters, query.docIds)
    if (this.collection.isAbsent()) return { nodes: [], similarities: [], ids: [] }
    const store = await this.collection.get(query.queryEmbedding.length)
    const hits = await store.search(query.queryEmbedding, query.similarityTopK, filter)
    return {
      nodes: hits.map((hit) => metadataDictToNode(hit.payload as Metadata)),
      similarities: hits.map((hit) => hit.score),
      ids: hits.map((hit) => String(hit.id)),
    }
  }

  /**
   * Nothing to do: every add and delete was durable (written to the WAL and fsynced) when it
   * resolved. Kept for code written against stores that save on demand.
   */
  async persist(): Promise<void> {}

  /** Checkpoints and releases the collection (when this object opened it). */
  async close(): Promise<void> {
    await this.collection.close()
  }
}

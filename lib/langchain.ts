// `annvault/langchain`: an annvault collection as a LangChain.js VectorStore.
//
// Each document is one point: its id is the document's id (from
// `options.ids`, else `document.id`, else a random UUID), its payload the
// document's metadata with the text under `pageContent`. Metadata stays at
// the payload's top level so that annvault's filters (evaluated in Rust,
// exact top-k) select on it directly: `{ source: 'a.md' }`,
// `{ year: { gte: 2020 } }`, `{ tags: { any: ['x', 'y'] } }`.
//
// Scores are annvault's, higher is closer (cosine similarity by default), so
// score-threshold retrievers keep the best documents rather than the worst.
// Every write is durable (WAL + fsync) before its Promise resolves: there is
// no `save()` to forget, and a restart finds the documents where they were
// (`AnnvaultVectorStore.load`).

import { randomUUID } from 'node:crypto'
import { basename, dirname, resolve } from 'node:path'
import type { EmbeddingsInterface } from '@langchain/core/embeddings'
import { Document, type DocumentInterface } from '@langchain/core/documents'
import { VectorStore, type MaxMarginalRelevanceSearchOptions } from '@langchain/core/vectorstores'
import { maximalMarginalRelevance } from '@langchain/core/utils/math'
import { ErrorCodes, VectorStoreError, type InMemoryVectorStore, type Payload, type SearchFilters } from '../index'
import { type CollectionArgs, LazyCollection } from './adapters/collection'
import { readManifestHint } from './cli/layout'

/** The payload key that holds a document's text; metadata may not use it. */
export const PAGE_CONTENT_KEY = 'pageContent'

export type AnnvaultLibArgs = CollectionArgs

export interface AnnvaultAddOptions {
  /** One id per document; overrides `document.id`. Re-adding an id overwrites that document. */
  ids?: string[]
}

export interface AnnvaultDeleteParams {
  /** Documents to delete; ids that do not exist are ignored. */
  ids?: string[]
  /** Deletes every document matching this annvault filter. */
  filter?: SearchFilters
}

function invalid(kind: 'INVALID_ARGUMENT' | 'INVALID_PAYLOAD' | 'NOT_FOUND', operation: string, message: string): VectorStoreError {
  return new VectorStoreError(message, operation, { code: ErrorCodes[kind], kind })
}

function toDocument(id: string | number, payload: Payload): Document {
  const { [PAGE_CONTENT_KEY]: pageContent, ...metadata } = payload
  return new Document({ id: String(id), pageContent: typeof pageContent === 'string' ? pageContent : '', metadata })
}

export class AnnvaultVectorStore extends VectorStore {
  declare FilterType: SearchFilters

  readonly collection: LazyCollection

  _vectorstoreType(): string {
    return 'annvault'
  }

  constructor(embeddings: EmbeddingsInterface, args: AnnvaultLibArgs = {}) {
    super(embeddings, args)
    this.collection = new LazyCollection(args, 'langchain')
  }

  /** The underlying annvault store (opened on first use). */
  async store(): Promise<InMemoryVectorStore> {
    const dimension = this.collection.knownDimension() ?? (await this.embeddings.embedQuery('')).length
    return this.collection.get(dimension)
  }

  async addDocuments(documents: DocumentInterface[], options?: AnnvaultAddOptions): Promise<string[]> {
    const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent))
    return this.addVectors(vectors, documents, options)
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options?: AnnvaultAddOptions): Promise<string[]> {
    if (vectors.length !== documents.length) {
      throw invalid('INVALID_ARGUMENT', 'addVectors', `${vectors.length} vectors for ${documents.length} documents`)
    }
    if (options?.ids !== undefined && options.ids.length !== documents.length) {
      throw invalid('INVALID_ARGUMENT', 'addVectors', `${options.ids.length} ids for ${documents.length} documents`)
    }
    if (documents.length === 0) return []
    const ids = documents.map((d, i) => options?.ids?.[i] ?? d.id ?? randomUUID())
    const payloads = documents.map((d, i) => {
      const metadata = d.metadata ?? {}
      if (Object.prototype.hasOwnProperty.call(metadata, PAGE_CONTENT_KEY)) {
        throw invalid('INVALID_PAYLOAD', 'addVectors', `document ${i}: metadata may not have a '${PAGE_CONTENT_KEY}' key (it holds the text)`)
      }
      // A new object: the caller's metadata is not changed.
      return { ...metadata, [PAGE_CONTENT_KEY]: d.pageContent }
    })
    const store = await this.collection.get(vectors[0].length)
    await store.insert(vectors, ids, payloads)
    return ids
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: SearchFilters): Promise<[Document, number][]> {
    if (this.collection.isAbsent()) return []
    const store = await this.collection.get(query.length)
    const hits = await store.search(query, k, filter)
    return hits.map((h) => [toDocument(h.id, h.payload), h.score])
  }

  /**
   * Maximal marginal relevance: the `fetchK` (default 20) nearest documents, of which `k` are
   * chosen for being close to the query and far from each other (`lambda` 0 = most diverse).
   */
  async maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<SearchFilters>): Promise<Document[]> {
    const queryVector = await this.embeddings.embedQuery(query)
    if (this.collection.isAbsent()) return []
    const store = await this.collection.get(queryVector.length)
    const hits = await store.search(queryVector, options.fetchK ?? 20, options.filter)
    const points = await Promise.all(hits.map((h) => store.get(h.id)))
    const found = points.flatMap((p) => (p ? [p] : []))
    const chosen = maximalMarginalRelevance(queryVector, found.map((p) => p.vector), options.lambda, options.k)
    return chosen.map((i) => toDocument(found[i].id, found[i].payload))
  }

  /** Deletes by id (missing ids are ignored) and/or by filter. */
  async delete(params: AnnvaultDeleteParams = {}): Promise<void> {
    if (params.ids === undefined && params.filter === undefined) {
      throw invalid('INVALID_ARGUMENT', 'delete', 'delete needs { ids } or { filter }')
    }
    if (this.collection.isAbsent()) return
    const store = await this.store()
    const ids: (string | number)[] = [...(params.ids ?? [])]
    if (params.filter !== undefined) {
      const [matching] = await store.list(params.filter, Math.max(1, await store.count()))
      ids.push(...matching.map((m) => m.id))
    }
    // Not awaited one by one: writes apply in call order and share fsyncs (group commit).
    await Promise.all(ids.map((id) => store.delete(id)))
  }

  /** The documents with these ids, in that order; ids that do not exist are left out. */
  async getByIds(ids: string[]): Promise<Document[]> {
    if (this.collection.isAbsent()) return []
    const store = await this.store()
    const points = await Promise.all(ids.map((id) => store.get(id)))
    return points.flatMap((p) => (p ? [toDocument(p.id, p.payload)] : []))
  }

  /** Checkpoints and releases the collection (when this object opened it). */
  async close(): Promise<void> {
    await this.collection.close()
  }

  static async fromTexts(
    texts: string[],
    metadatas: object[] | object,
    embeddings: EmbeddingsInterface,
    args: AnnvaultLibArgs = {},
  ): Promise<AnnvaultVectorStore> {
    const documents = texts.map(
      (pageContent, i) =>
        new Document({ pageContent, metadata: { ...((Array.isArray(metadatas) ? metadatas[i] : metadatas) ?? {}) } }),
    )
    return AnnvaultVectorStore.fromDocuments(documents, embeddings, args)
  }

  static async fromDocuments(
    documents: DocumentInterface[],
    embeddings: EmbeddingsInterface,
    args: AnnvaultLibArgs = {},
  ): Promise<AnnvaultVectorStore> {
    const instance = new this(embeddings, args)
    await instance.addDocuments(documents)
    return instance
  }

  /** Opens an existing collection; rejects with NOT_FOUND when there is none. */
  static async fromExistingCollection(embeddings: EmbeddingsInterface, args: AnnvaultLibArgs = {}): Promise<AnnvaultVectorStore> {
    const instance = new this(embeddings, args)
    if (instance.collection.isAbsent()) {
      throw invalid(
        'NOT_FOUND',
        'fromExistingCollection',
        `no collection '${instance.collection.collectionName}' in ${instance.collection.persistencePath}`,
      )
    }
    await instance.collection.get()
    return instance
  }

  /**
   * Opens the collection in `directory` (a collection's directory, as `save` wrote it for
   * HNSWLib; here every write is already durable). `args` may set store options.
   */
  static async load(directory: string, embeddings: EmbeddingsInterface, args: Omit<AnnvaultLibArgs, 'persistencePath' | 'collectionName'> = {}): Promise<AnnvaultVectorStore> {
    const path = resolve(directory)
    if (readManifestHint(path) === null) {
      throw invalid('NOT_FOUND', 'load', `${directory} holds no annvault collection (no readable MANIFEST)`)
    }
    return AnnvaultVectorStore.fromExistingCollection(embeddings, { ...args, persistencePath: dirname(path), collectionName: basename(path) })
  }
}

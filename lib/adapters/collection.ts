// The collection behind a framework adapter (annvault/langchain,
// annvault/llamaindex), opened on first use.
//
// Frameworks create a vector store before they know the embedding size, but
// an annvault collection needs its dimension when it is opened. So the
// collection is opened lazily: with the configured dimension, else the one
// its MANIFEST records (an existing collection), else the length of the
// first vector written or searched for. One open at a time; a failed open is
// not cached, so the next call tries again.

import { createVectorStore, type InMemoryVectorStore, type VectorStoreConfig, type VectorStoreHandle } from '../../index'
import { readManifestHint } from '../cli/layout'
import { join } from 'node:path'

export interface CollectionArgs {
  /** Directory holding the collection's directory. Default './data/vector-storage'. */
  persistencePath?: string
  collectionName?: string
  /** Embedding size; by default the existing collection's, else the first vector's. */
  dimension?: number
  /** Default 'Cosine' (scores are cosine similarities, higher is closer). */
  distance?: VectorStoreConfig['distance']
  /** Any other store option (durability, annAlgorithm, hnsw, …), passed to `createVectorStore`. */
  storeConfig?: Omit<VectorStoreConfig, 'collectionName' | 'dimension' | 'distance' | 'persistencePath'>
  /** An already connected store to use instead; it is not disconnected by `close()`. */
  store?: InMemoryVectorStore
}

export const DEFAULT_PERSISTENCE_PATH = './data/vector-storage'

export class LazyCollection {
  readonly persistencePath: string
  readonly collectionName: string
  #args: CollectionArgs
  #handle: VectorStoreHandle | null = null
  #store: InMemoryVectorStore | null
  #opening: Promise<InMemoryVectorStore> | null = null

  constructor(args: CollectionArgs, defaultName: string) {
    this.#args = args
    this.#store = args.store ?? null
    this.persistencePath = args.store?.getConfig().persistencePath ?? args.persistencePath ?? DEFAULT_PERSISTENCE_PATH
    this.collectionName = args.store?.getCollectionName() ?? args.collectionName ?? defaultName
  }

  /** The dimension the collection has or will be opened with, if known without a vector. */
  knownDimension(): number | undefined {
    if (this.#store) return this.#store.getDimension()
    return this.#args.dimension ?? readManifestHint(join(this.persistencePath, this.collectionName))?.dimension
  }

  /** The open store, opening it (with `vectorLength` as the dimension when nothing else says it). */
  async get(vectorLength?: number): Promise<InMemoryVectorStore> {
    if (this.#store) return this.#store
    if (this.#opening) return this.#opening
    const dimension = this.knownDimension() ?? vectorLength
    if (dimension === undefined) {
      // Nothing written yet and nothing on disk: an empty store holds no match.
      return Promise.reject(new Error('annvault: the collection is not open yet and its dimension is unknown'))
    }
    const distance = this.#args.distance ?? (readManifestHint(join(this.persistencePath, this.collectionName))?.distance as VectorStoreConfig['distance'])
    this.#opening = createVectorStore({
      ...this.#args.storeConfig,
      collectionName: this.collectionName,
      persistencePath: this.persistencePath,
      dimension,
      distance,
    }).then(
      (handle) => {
        this.#handle = handle
        this.#store = handle.store
        this.#opening = null
        return handle.store
      },
      (error: unknown) => {
        this.#opening = null
        throw error
      },
    )
    return this.#opening
  }

  /** The store if it is open, else null. */
  current(): InMemoryVectorStore | null {
    return this.#store
  }

  /** Whether there is nothing to read: not open, and no collection on disk. */
  isAbsent(): boolean {
    return this.#store === null && this.#opening === null && this.knownDimension() === undefined
  }

  /** Checkpoints and releases the collection if this object opened it. */
  async close(): Promise<void> {
    if (this.#opening) await this.#opening.catch(() => undefined)
    const handle = this.#handle
    this.#handle = null
    if (handle) {
      this.#store = null
      await handle.manager.disconnect()
    }
  }
}

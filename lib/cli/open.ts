// Opening a collection the way it was created, from what its files say.
//
// The store needs a dimension and a distance to open a collection; the CLI
// takes them from MANIFEST (an unverified hint: the store checks the
// manifest's checksum and refuses a damaged one with CORRUPT, and a wrong
// hint with CONFIG_MISMATCH). Snapshot compression and the saved graph's
// quantization are read the same way, so a compaction writes the collection
// back as it was made and keeps its graph.
//
// Read-only commands (inspect, search, get) open with annAlgorithm 'flat':
// no graph is loaded or built, searches are exact, and the command never
// disconnects. A disconnect would checkpoint (writing a snapshot if the WAL
// holds anything); instead the process exits and the directory lock goes with
// it, as after a crash, which the store is built to recover from. So these
// commands write nothing of their own; like any open, they do cut a torn WAL
// tail and remove leftover temp files (see README, Persistence).

import { createVectorStore, type InMemoryVectorStore, type VectorStoreHandle } from '../../index'
import { type CollectionLocation, listFiles, readManifestHint, savedGraph, snapshotCompression } from './layout'
import { storeFailure } from './errors'

export interface OpenedCollection {
  location: CollectionLocation
  handle: VectorStoreHandle
  store: InMemoryVectorStore
  dimension: number
  distance: string
}

export type OpenMode =
  /** No graph, exact search, never closed: writes nothing of its own. */
  | 'read'
  /** As the collection was made (graph kept when one is saved), closed with a checkpoint. */
  | 'write'

export async function openCollection(location: CollectionLocation, mode: OpenMode): Promise<OpenedCollection> {
  const hint = readManifestHint(location.path)
  // Without a readable manifest, open anyway: the store then says what is wrong (CORRUPT, with
  // the file and offset), which is what the user needs to see. The placeholder never opens data.
  const dimension = hint?.dimension ?? 1
  const distance = hint?.distance ?? 'Cosine'
  const generation = hint?.snapshot ?? 0
  const graph = mode === 'write' ? savedGraph(location.path, listFiles(location.path), generation) : null
  try {
    const handle = await createVectorStore({
      collectionName: location.name,
      persistencePath: location.persistencePath,
      dimension,
      distance: distance as 'Cosine',
      compression: snapshotCompression(location.path, generation) ?? 'none',
      annAlgorithm: graph ? 'hnsw' : 'flat',
      hnsw: graph?.quantization ? { quantization: graph.quantization } : undefined,
    })
    return { location, handle, store: handle.store, dimension, distance }
  } catch (error) {
    throw storeFailure(error, `collection '${location.name}'`)
  }
}

import {
  createPersistentInMemoryStore,
  VectorDimensionError,
  type SearchFilters,
  type SearchResult,
  type VectorStore,
  type VectorStoreResult,
} from 'annvault'

async function ingest(store: VectorStore): Promise<number> {
  const vectors: Float32Array[] = [new Float32Array([1, 0, 0, 0]), new Float32Array([0, 1, 0, 0])]
  await store.insert(vectors, [1, 'b'], [{ tag: 'x', year: 2020 }, { tag: 'y', year: 2021 }])
  const filters: SearchFilters = { year: { gte: 2021 }, tag: { any: ['y', 'z'] } }
  const hits: SearchResult[] = await store.search([0, 1, 0, 0], 5, filters)
  const [page, total]: [VectorStoreResult[], number] = await store.list()
  return hits.length * 100 + page.length * 10 + total
}

async function main(): Promise<void> {
  const { manager, store } = await createPersistentInMemoryStore('typed', 4)
  const checksum = await ingest(store)
  let dims: [number, number] | null = null
  try {
    await store.update(1, [1, 2], {})
  } catch (error: unknown) {
    if (error instanceof VectorDimensionError) dims = [error.expectedDimension, error.actualDimension]
  }
  await manager.disconnect()
  console.log(JSON.stringify({ checksum, dims }))
}

void main()

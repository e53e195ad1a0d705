import annvault, { createVectorStore, VectorStoreError } from 'annvault'

const { manager, store } = await createVectorStore({ type: 'in-memory', collectionName: 'esm', dimension: 3, distance: 'Dot' })
await store.insert([[1, 2, 3], new Float32Array([3, 2, 1])], [1, 'two'], [{ n: 1 }, { n: 2 }])
const hits = await store.search([1, 0, 0], 2)
let caught = null
try {
  await store.insert([[1, 2, 3]], [''], [{}])
} catch (error) {
  caught = { instance: error instanceof VectorStoreError, sameClass: annvault.VectorStoreError === VectorStoreError, kind: error.kind }
}
await manager.disconnect()
console.log(JSON.stringify({ hits, caught }))

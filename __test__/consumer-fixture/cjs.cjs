// CommonJS, with the factory's defaults ('./data/vector-storage', 1536).
const { createPersistentInMemoryStore, VectorDimensionError, VectorStoreError } = require('annvault')

async function main() {
  const { manager, store } = await createPersistentInMemoryStore('cjs')
  const vector = Array.from({ length: 1536 }, (_, i) => Math.sin(i))
  await store.insert([vector], ['doc-1'], [{ title: 'hello' }])
  const hits = await store.search(vector, 5)
  let dimensionError = null
  try {
    await store.search([1, 2, 3])
  } catch (error) {
    dimensionError = {
      isDimension: error instanceof VectorDimensionError,
      isStore: error instanceof VectorStoreError,
      expected: error.expectedDimension,
      actual: error.actualDimension,
    }
  }
  const info = manager.getInfo()
  await manager.disconnect()
  console.log(JSON.stringify({ hits, dimensionError, info }))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

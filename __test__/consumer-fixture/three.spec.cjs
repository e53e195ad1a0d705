const { appendFileSync } = require('node:fs')
const { createVectorStore, VectorStoreError } = require('annvault')

// Which jest worker ran this file, so the harness can see that workers ran in parallel.
appendFileSync(`${__dirname}/workers.log`, `three ${process.env.JEST_WORKER_ID}\n`)

test('store works in a jest worker (three)', async () => {
  const { manager, store } = await createVectorStore({ collectionName: 'three', dimension: 3 })
  await store.insert([[1, 2, 3]], ['three'], [{ file: 'three' }])
  const [hit] = await store.search([1, 2, 3], 1)
  expect(hit).toMatchObject({ id: 'three', payload: { file: 'three' } })
  await expect(store.insert([[1, 2]], ['x'], [{}])).rejects.toBeInstanceOf(VectorStoreError)
  await manager.disconnect()
})

test('store works after jest.resetModules() (three)', async () => {
  jest.resetModules()
  const fresh = require('annvault')
  const { manager, store } = await fresh.createVectorStore({ collectionName: 'three-again', dimension: 2 })
  await store.insert([[1, 0]], [1], [{}])
  await expect(store.search([1], 1)).rejects.toBeInstanceOf(fresh.VectorDimensionError)
  expect(await store.count()).toBe(1)
  await manager.disconnect()
})

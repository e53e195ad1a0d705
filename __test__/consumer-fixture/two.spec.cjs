const { appendFileSync } = require('node:fs')
const { createVectorStore, VectorStoreError } = require('annvault')

// Which jest worker ran this file, so the harness can see that workers ran in parallel.
appendFileSync(`${__dirname}/workers.log`, `two ${process.env.JEST_WORKER_ID}\n`)

test('store works in a jest worker (two)', async () => {
  const { manager, store } = await createVectorStore({ collectionName: 'two', dimension: 3 })
  await store.insert([[1, 2, 3]], ['two'], [{ file: 'two' }])
  const [hit] = await store.search([1, 2, 3], 1)
  expect(hit).toMatchObject({ id: 'two', payload: { file: 'two' } })
  await expect(store.insert([[1, 2]], ['x'], [{}])).rejects.toBeInstanceOf(VectorStoreError)
  await manager.disconnect()
})

test('store works after jest.resetModules() (two)', async () => {
  jest.resetModules()
  const fresh = require('annvault')
  const { manager, store } = await fresh.createVectorStore({ collectionName: 'two-again', dimension: 2 })
  await store.insert([[1, 0]], [1], [{}])
  await expect(store.search([1], 1)).rejects.toBeInstanceOf(fresh.VectorDimensionError)
  expect(await store.count()).toBe(1)
  await manager.disconnect()
})

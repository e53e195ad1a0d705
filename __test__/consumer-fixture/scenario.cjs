// The tests every spec file runs, under its own name, so that several files
// (and so several jest workers) use the addon at once.
const { appendFileSync } = require('node:fs')
const { createVectorStore, VectorStoreError } = require('annvault')

module.exports = function scenario(name) {
  // Which jest worker ran this file, so the harness can see that workers ran in parallel.
  appendFileSync(`${__dirname}/workers.log`, `${name} ${process.env.JEST_WORKER_ID}\n`)

  test(`store works in a jest worker (${name})`, async () => {
    const { manager, store } = await createVectorStore({ collectionName: name, dimension: 3 })
    await store.insert([[1, 2, 3]], [name], [{ file: name }])
    const [hit] = await store.search([1, 2, 3], 1)
    expect(hit).toMatchObject({ id: name, payload: { file: name } })
    await expect(store.insert([[1, 2]], ['x'], [{}])).rejects.toBeInstanceOf(VectorStoreError)
    await manager.disconnect()
  })

  test(`store works after jest.resetModules() (${name})`, async () => {
    jest.resetModules()
    const fresh = require('annvault')
    const { manager, store } = await fresh.createVectorStore({ collectionName: `${name}-again`, dimension: 2 })
    await store.insert([[1, 0]], [1], [{}])
    await expect(store.search([1], 1)).rejects.toBeInstanceOf(fresh.VectorDimensionError)
    expect(await store.count()).toBe(1)
    await manager.disconnect()
  })
}

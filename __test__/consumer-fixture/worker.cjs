// The addon loaded in the main thread and in two worker threads at once.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
const { createVectorStore } = require('annvault')

async function work(name) {
  const { manager, store } = await createVectorStore({ collectionName: name, dimension: 2 })
  await store.insert([[1, 0], [0, 1]], ['a', 'b'], [{ from: name }, { from: name }])
  const [hit] = await store.search([0, 1], 1)
  await manager.disconnect()
  return `${name}:${hit.id}:${hit.payload.from}`
}

if (isMainThread) {
  const spawn = (name) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(__filename, { workerData: name })
      worker.once('message', resolve)
      worker.once('error', reject)
    })
  Promise.all([work('main'), spawn('w1'), spawn('w2')]).then(
    (results) => console.log(JSON.stringify(results)),
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
} else {
  work(workerData).then((result) => parentPort.postMessage(result))
}

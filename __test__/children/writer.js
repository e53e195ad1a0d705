// A child process that writes as fast as it can and reports each write the
// store acknowledged, one line per write, until it is killed.
//   node writer.js <persistencePath> <collection> <startId> <durability>
const { createVectorStore } = require('../..')

async function main() {
  const [path, collectionName, start, durability] = process.argv.slice(2)
  const { store } = await createVectorStore({
    collectionName,
    dimension: 8,
    persistencePath: path,
    durability,
    checkpointWalBytes: 64 * 1024,
  })
  process.stdout.write('ready\n')
  for (let id = Number(start); ; id++) {
    const vector = Array.from({ length: 8 }, (_, d) => Math.sin(id * 8 + d))
    if (id % 7 === 3) {
      // A batch: all of it or none of it.
      await store.insert([vector, vector], [id, `batch-${id}`], [{ id, batch: true }, { id, batch: true }])
    } else {
      await store.insert([vector], [id], [{ id }])
    }
    process.stdout.write(`ack ${id}\n`)
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

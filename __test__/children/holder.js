// A child process that opens a collection, says so, and holds it until killed.
//   node holder.js <persistencePath> <collection>
const { createVectorStore } = require('../..')

createVectorStore({ collectionName: process.argv[3], dimension: 2, persistencePath: process.argv[2] }).then(
  () => {
    process.stdout.write('open\n')
    setInterval(() => {}, 1000)
  },
  (error) => {
    process.stdout.write(`error ${JSON.stringify({ name: error.name, kind: error.kind, code: error.code })}\n`)
    process.exit(0)
  },
)

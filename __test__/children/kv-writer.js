// A child process that writes batches to a key-value adapter until killed.
//   node kv-writer.js <file|sqlite> <place> <first round>
// Round r writes keys b0…b9 with value r in one setMany and prints `ack r`
// once it resolved; the parent kills it at a random moment.
const { DefaultPersistenceManager, FileAdapter, SQLiteAdapter } = require('../../dist/persistence/index.js')

const [kind, place, first] = process.argv.slice(2)
const adapter = kind === 'file' ? new FileAdapter({ basePath: place }) : new SQLiteAdapter({ filename: place })
const kv = new DefaultPersistenceManager(adapter)

kv.init().then(async () => {
  process.stdout.write('ready\n')
  for (let round = Number(first); ; round++) {
    const batch = Array.from({ length: 10 }, (_, i) => ({ key: `b${i}`, value: round, metadata: { round } }))
    await kv.setMany(batch)
    process.stdout.write(`ack ${round}\n`)
  }
}, (error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

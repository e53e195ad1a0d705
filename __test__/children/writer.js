// A child process that writes as fast as it can and prints `ack <n>` for each
// write the store acknowledged (its Promise resolved), until it is killed.
//   node writer.js <persistencePath> <collection> <startId> <durability> <mode>
// Every write is one insert, led by the numeric id n = startId, startId + 1, …;
// when n % 7 === 3 it is a batch of BATCH points (n, 'batch-<n>-1', …), which
// a crash must keep whole or drop whole. Every point's payload is
// { id: n, size }, size being its insert's number of points.
// mode 'serial': each write awaited before the next is issued.
// mode 'burst': BURST writes issued without awaiting (concurrent writers: the
//   store commits them together, one WAL record and one fsync), each acked as
//   its own Promise resolves, then the next burst.
const { createVectorStore } = require('../..')

const BATCH = 3
const BURST = 16

function write(store, n) {
  const vector = Array.from({ length: 8 }, (_, d) => Math.sin(n * 8 + d))
  const size = n % 7 === 3 ? BATCH : 1
  const ids = [n, ...Array.from({ length: size - 1 }, (_, k) => `batch-${n}-${k + 1}`)]
  return store
    .insert(
      ids.map(() => vector),
      ids,
      ids.map(() => ({ id: n, size })),
    )
    .then(() => {
      process.stdout.write(`ack ${n}\n`) // a pipe: a synchronous write on Linux
    })
}

async function main() {
  const [path, collectionName, start, durability, mode] = process.argv.slice(2)
  const { store } = await createVectorStore({
    collectionName,
    dimension: 8,
    persistencePath: path,
    durability,
    checkpointWalBytes: 64 * 1024,
    // ANNVAULT_TEST_VECTORS=disk: vectors served from the checkpoint files.
    storage: process.env.ANNVAULT_TEST_VECTORS ? { vectors: process.env.ANNVAULT_TEST_VECTORS } : undefined,
  })
  process.stdout.write('ready\n')
  for (let n = Number(start); ; ) {
    if (mode === 'burst') {
      const burst = []
      for (let i = 0; i < BURST; i++) burst.push(write(store, n++))
      await Promise.all(burst)
    } else {
      await write(store, n++)
    }
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

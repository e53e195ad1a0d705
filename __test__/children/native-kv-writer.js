// A child process that writes to a NativeAdapter as fast as it can and prints
// `ack <n>` for each set the adapter acknowledged (its Promise resolved),
// until it is killed.
//   node kv-writer.js <path> <startN> <durability> <mode>
// Write n sets key `k<n>` to { n }; when n % 5 === 2 it is a batch of three
// keys (k<n>, k<n>-b1, k<n>-b2), which a crash must keep whole or drop whole.
// mode 'serial': each set awaited before the next; 'burst': 64 in flight.
const { NativeAdapter } = require('../../dist/persistence/native.js')

const BURST = 64

function write(adapter, n) {
  const keys = n % 5 === 2 ? [`k${n}`, `k${n}-b1`, `k${n}-b2`] : [`k${n}`]
  const writes = keys.map((key) => ({
    key,
    value: { kind: 'json', text: JSON.stringify({ n }) },
    metadata: '{}',
    expiresAt: null,
  }))
  return adapter.set(writes, Date.now()).then(() => {
    process.stdout.write(`ack ${n}\n`) // a pipe: a synchronous write on Linux
  })
}

async function main() {
  const [path, start, durability, mode] = process.argv.slice(2)
  const adapter = new NativeAdapter({ path, durability })
  await adapter.init()
  process.stdout.write('ready\n')
  for (let n = Number(start); ; ) {
    if (mode === 'burst') {
      const burst = []
      for (let i = 0; i < BURST; i++) burst.push(write(adapter, n++))
      await Promise.all(burst)
    } else {
      await write(adapter, n++)
    }
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

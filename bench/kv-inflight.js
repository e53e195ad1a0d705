// Sets per second with 64 in flight through DefaultPersistenceManager over NativeAdapter, alone (no reference
// engine): with --durability flush no fsync is made, so the figure is the CPU a set costs on the JS thread and
// the commit thread. Five rounds of --n sets each; prints each round's rate and the best round's µs per set.
//
//   node bench/kv-inflight.js [--package DIR] [--durability flush|fsync] [--n 20000]
'use strict'

const path = require('node:path')
const fs = require('node:fs')
const os = require('node:os')
const m = require('./lib/measure')

const options = m.parseArgs(
  process.argv.slice(2),
  { package: path.join(__dirname, '..'), durability: 'flush', n: 20000 },
  'node bench/kv-inflight.js [--package DIR] [--durability flush|fsync] [--n 20000]',
)
const { DefaultPersistenceManager, NativeAdapter } = require(path.join(path.resolve(options.package), 'dist/persistence/index.js'))
const value = (i) => ({ id: i, name: `user ${i}`, email: `user${i}@example.com`, tags: ['a', 'b'], score: i / 7 })

async function main() {
  const n = Number(options.n)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-kv-inflight-'))
  const manager = new DefaultPersistenceManager(new NativeAdapter({ path: dir, durability: options.durability }))
  await manager.init()
  const rates = []
  try {
    for (let round = 0; round < 5; round++) {
      const t0 = process.hrtime.bigint()
      let next = 0
      const worker = async () => {
        while (next < n) {
          const i = next++
          await manager.set(`user:${round}:${i}`, value(i))
        }
      }
      await Promise.all(Array.from({ length: 64 }, worker))
      rates.push(Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9)))
    }
  } finally {
    await manager.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  console.log(`${options.durability}: sets/s with 64 in flight, 5 rounds: ${rates.join(' ')}; best ${(1e6 / Math.max(...rates)).toFixed(1)} µs per set`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

// find('user:*') on the native engine: cost proportional to the matches, not to the keys.
//
// Two tables hold the same 10,000 'user:' keys among 'item:' keys: 1,000,000 keys in all (1 % match) and 100,000
// (10 % match). The time of find('user:*') is compared between the two: a scan of every key would take 10 times longer on
// the big table; a prefix walk takes the same. For contrast, find('*:0000042') (no literal prefix: every key must be
// tested) is timed on both.
//
//   node bench/kv-find.js [--package DIR] [--dir DIR] [--matches 10000] [--repeats 5] [--json]
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const m = require('./lib/measure')

const usage = 'node bench/kv-find.js [--package DIR] [--dir DIR] [--matches 10000] [--repeats 5] [--json]'
const options = m.parseArgs(
  process.argv.slice(2),
  { package: path.join(__dirname, '..'), dir: '', matches: 10000, repeats: 5, json: false },
  usage,
)
const { DefaultPersistenceManager, NativeAdapter } = require(path.join(path.resolve(options.package), 'dist/persistence/index.js'))

const BATCH = 10000

async function fill(manager, total, matches) {
  const key = (i) => (i < matches ? `user:${String(i).padStart(7, '0')}` : `item:${String(i).padStart(7, '0')}`)
  for (let start = 0; start < total; start += BATCH) {
    const entries = []
    for (let i = start; i < Math.min(total, start + BATCH); i++) entries.push({ key: key(i), value: { i } })
    await manager.setMany(entries)
  }
}

/** The median of `repeats` timed runs of `work`, in ms (after one untimed run). */
async function medianMs(work) {
  await work()
  const times = []
  for (let r = 0; r < options.repeats; r++) {
    const start = m.now()
    await work()
    times.push(m.now() - start)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}

async function measure(dir, total) {
  // 'flush': the fill is not what is measured.
  const manager = new DefaultPersistenceManager(new NativeAdapter({ path: path.join(dir, `t${total}`), durability: 'flush' }))
  await manager.init()
  m.phase(`${total} keys (${options.matches} match 'user:*')`)
  await fill(manager, total, options.matches)
  // Checkpoint now, so that no background checkpoint of the fill competes with the timed finds.
  await manager.maintain()
  const prefixMs = await medianMs(async () => {
    const found = await manager.find('user:*')
    if (found.length !== options.matches) throw new Error(`found ${found.length}, expected ${options.matches}`)
  })
  const scanMs = await medianMs(async () => {
    const found = await manager.find('*:0000042')
    if (found.length !== 1) throw new Error(`found ${found.length}, expected 1`)
  })
  await manager.close()
  return { total, prefixMs, scanMs }
}

async function main() {
  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-kv-find-'))
  fs.mkdirSync(dir, { recursive: true })
  try {
    const small = await measure(dir, options.matches * 10)
    const big = await measure(dir, options.matches * 100)
    const summary = {
      matches: options.matches,
      small,
      big,
      prefixBigOverSmall: big.prefixMs / small.prefixMs,
      scanBigOverSmall: big.scanMs / small.scanMs,
    }
    const table = m.textTable(
      ['keys', `find('user:*') (${options.matches} found)`, "find('*:0000042') (no prefix: full scan)"],
      [
        [String(small.total), `${small.prefixMs.toFixed(1)} ms`, `${small.scanMs.toFixed(1)} ms`],
        [String(big.total), `${big.prefixMs.toFixed(1)} ms`, `${big.scanMs.toFixed(1)} ms`],
        ['10× the keys costs', m.fmt.ratio(summary.prefixBigOverSmall), m.fmt.ratio(summary.scanBigOverSmall)],
      ],
    )
    if (options.json) {
      process.stderr.write(`${table}\n`)
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    } else process.stdout.write(`${table}\n`)
  } finally {
    if (!options.dir) fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

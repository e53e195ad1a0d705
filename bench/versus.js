#!/usr/bin/env node
// Search head to head: annvault and hnswlib-node in one process, on the
// indexes bench/ann.js kept (--keep), the same queries in alternating blocks.
//
// Why: this machine's speed drifts (by a third, sometimes half, between
// minutes), and bench/ann.js measures each engine in its own process, one
// after the other, so a search sweep of one engine may run in a slow minute
// and the other's in a fast one. Here every block of BLOCK queries is run by
// both engines back to back, in alternating order, and each engine's time
// is summed over all blocks: drift hits both alike, and their ratio is what
// is left. One query per call from JS, as in bench/ann.js.
//
//   node bench/versus.js --dataset real --annvault <dir> --hnswlib <file>
//                        [--ef 16,24,32,48,64,96,128] [--rounds 4] [--m 16] [--ef-construction 100]
'use strict'

const { loadDataset, groundTruth, recallAt, row, K } = require('./lib/datasets')
const m = require('./lib/measure')

const USAGE =
  'usage: node bench/versus.js --dataset real|clustered-<n>x<dim> --annvault <dir> --hnswlib <file> ' +
  '[--ef 16,24,32,48,64,96,128] [--rounds 4] [--m 16] [--ef-construction 100]'
const options = m.parseArgs(
  process.argv.slice(2),
  { dataset: 'real', annvault: '', hnswlib: '', ef: '16,24,32,48,64,96,128', rounds: 4, m: 16, efConstruction: 100 },
  USAGE,
)
/** Queries per block: short enough that drift within a block is small. */
const BLOCK = 25

async function main() {
  if (!options.annvault || !options.hnswlib) throw new Error(`--annvault and --hnswlib are required\n${USAGE}`)
  const dataset = loadDataset(options.dataset)
  const truth = (await groundTruth(dataset)).none
  const count = dataset.queries.length / dataset.dim
  const float32 = Array.from({ length: count }, (_, q) => row(dataset.queries, dataset.dim, q))
  // hnswlib-node takes number[]; made outside the timed calls, as in bench/ann.js.
  const plain = float32.map((q) => Array.from(q))

  const { HierarchicalNSW } = require('hnswlib-node')
  const hnswlib = new HierarchicalNSW('cosine', dataset.dim)
  hnswlib.readIndexSync(options.hnswlib)
  const { createVectorStore } = require('..')
  const { manager, store } = await createVectorStore({
    collectionName: 'bench',
    dimension: dataset.dim,
    persistencePath: options.annvault,
    hnsw: { m: options.m, efConstruction: options.efConstruction },
  })
  await store.waitForIndex()

  const engines = [
    { name: 'annvault', search: async (q, ef) => (await store.search(float32[q], K, undefined, { efSearch: ef })).map((h) => h.id) },
    {
      name: 'hnswlib',
      search: async (q, ef) => {
        hnswlib.setEf(Math.max(ef, K))
        return hnswlib.searchKnn(plain[q], K).neighbors
      },
    },
  ]
  const sweep = []
  for (const ef of options.ef.split(',').map(Number)) {
    m.phase(`head to head at efSearch ${ef}: ${options.rounds} rounds of ${count} queries, blocks of ${BLOCK}, engines alternating`)
    const entry = { ef }
    for (const engine of engines) {
      // The first pass warms up (caches, JIT) and gives the recall.
      const ids = []
      for (let q = 0; q < count; q++) ids.push(await engine.search(q, ef))
      entry[engine.name] = { recall: recallAt(ids, truth), ms: 0 }
    }
    for (let round = 0; round < options.rounds; round++) {
      for (let from = 0, block = 0; from < count; from += BLOCK, block++) {
        const to = Math.min(count, from + BLOCK)
        const order = (round + block) % 2 ? [...engines].reverse() : engines
        for (const engine of order) {
          const start = m.now()
          for (let q = from; q < to; q++) await engine.search(q, ef)
          entry[engine.name].ms += m.now() - start
        }
      }
    }
    for (const engine of engines) {
      const e = entry[engine.name]
      e.qps = (options.rounds * count) / (e.ms / 1000)
      e.usPerQuery = (e.ms * 1000) / (options.rounds * count)
    }
    entry.ratio = entry.annvault.qps / entry.hnswlib.qps
    m.log(
      `  annvault recall ${entry.annvault.recall.toFixed(4)} ${Math.round(entry.annvault.qps)}/s; ` +
        `hnswlib recall ${entry.hnswlib.recall.toFixed(4)} ${Math.round(entry.hnswlib.qps)}/s; ratio ${entry.ratio.toFixed(2)}`,
    )
    sweep.push(entry)
  }
  await manager.disconnect()
  process.stdout.write(`${JSON.stringify({ dataset: dataset.spec, block: BLOCK, rounds: options.rounds, sweep })}\n`)
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})

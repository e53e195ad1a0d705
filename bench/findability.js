#!/usr/bin/env node
// Findability at scale (issue 21): ingest a clustered set quickly (batches of
// 5,000, durability 'flush'), wait until the index is complete (graph built,
// every point audited), then report the pinned and unfindable points, how
// long the index took, and queries/s and recall@10 at efSearch 32 and 64.
// Prints one JSON line per efSearch.
//
//   node bench/findability.js [--dataset clustered-100000x384] [--ef 32,64]
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDataset, groundTruth, recallAt, row, K } = require('./lib/datasets')
const m = require('./lib/measure')

const options = m.parseArgs(
  process.argv.slice(2),
  { dataset: 'clustered-100000x384', ef: '32,64', batch: 5000 },
  'usage: node bench/findability.js [--dataset clustered-<n>x<dim>|real] [--ef 32,64] [--batch 5000]',
)

async function main() {
  const { createVectorStore } = require('..')
  const dataset = loadDataset(options.dataset)
  const truth = await groundTruth(dataset)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-findability-'))
  try {
    const { manager, store } = await createVectorStore({
      collectionName: 'findability',
      dimension: dataset.dim,
      persistencePath: dir,
      durability: 'flush',
    })
    m.phase(`ingest ${dataset.rows} in batches of ${options.batch}`)
    let start = m.now()
    for (let from = 0; from < dataset.rows; from += options.batch) {
      const ids = Array.from({ length: Math.min(options.batch, dataset.rows - from) }, (_, k) => from + k)
      await store.insert(ids.map((i) => row(dataset.data, dataset.dim, i)), ids, ids.map(() => ({})))
    }
    const ingestSeconds = (m.now() - start) / 1000
    m.phase('waitForIndex(): graph built, every point audited')
    start = m.now()
    await store.waitForIndex()
    const indexSeconds = (m.now() - start) / 1000
    const index = (await store.stats()).index
    const queries = dataset.queries.length / dataset.dim
    for (const ef of options.ef.split(',').map(Number)) {
      m.phase(`${queries} queries at efSearch ${ef}`)
      const ids = []
      const t0 = m.now()
      for (let q = 0; q < queries; q++) {
        ids.push((await store.search(row(dataset.queries, dataset.dim, q), K, undefined, { efSearch: ef })).map((h) => h.id))
      }
      const qps = queries / ((m.now() - t0) / 1000)
      process.stdout.write(
        `${JSON.stringify({
          dataset: dataset.spec,
          ef,
          ingestSeconds,
          indexSeconds,
          points: dataset.rows,
          graphSize: index.graphSize,
          pinned: index.pinned,
          unfindable: index.unfindable,
          qps,
          recall: recallAt(ids, truth.none),
        })}\n`,
      )
    }
    await manager.disconnect()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

#!/usr/bin/env node
// Findability at scale (issue 21): ingest a clustered set quickly (batches of
// 5,000, durability 'flush'), then either wait until the index is complete
// (graph built, every point audited) or, with --reopen, disconnect() right
// after the ingest, open the store again in this process and wait there (the
// issue's flow: the time to a complete graph after a reopen). Reports the
// pinned and unfindable points, why they are few (points inserted again,
// rechecks, full audits, the graph's links per node), where the indexer's
// time went (inserts, builds, audits), resident memory, and queries/s and
// recall@10 at each efSearch. With --check-all, every stored point is then
// searched for by its own vector (k = 1) and the misses counted: a point is
// found when it comes back, or a point with the same score does.
// Prints one JSON object.
//
//   node bench/findability.js [--dataset clustered-100000x384] [--ef 32,64] [--reopen] [--check-all]
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDataset, groundTruth, recallAt, row, K } = require('./lib/datasets')
const m = require('./lib/measure')

const options = m.parseArgs(
  process.argv.slice(2),
  { dataset: 'clustered-100000x384', ef: '32,64', batch: 5000, reopen: false, checkAll: false },
  'usage: node bench/findability.js [--dataset clustered-<n>x<dim>|real] [--ef 32,64] [--batch 5000] [--reopen] [--check-all]',
)

async function main() {
  const { createVectorStore } = require('..')
  const dataset = loadDataset(options.dataset)
  const truth = await groundTruth(dataset)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-findability-'))
  const rss = m.rssSampler()
  const open = () =>
    createVectorStore({ collectionName: 'findability', dimension: dataset.dim, persistencePath: dir, durability: 'flush' })
  const result = { dataset: dataset.spec, points: dataset.rows, reopen: Boolean(options.reopen) }
  try {
    let { manager, store } = await open()
    m.phase(`ingest ${dataset.rows} in batches of ${options.batch}`)
    let start = m.now()
    for (let from = 0; from < dataset.rows; from += options.batch) {
      const ids = Array.from({ length: Math.min(options.batch, dataset.rows - from) }, (_, k) => from + k)
      await store.insert(ids.map((i) => row(dataset.data, dataset.dim, i)), ids, ids.map(() => ({})))
    }
    result.ingestSeconds = (m.now() - start) / 1000
    if (options.reopen) {
      m.phase('disconnect() right after the ingest, then open again')
      start = m.now()
      await manager.disconnect()
      result.disconnectSeconds = (m.now() - start) / 1000
      ;({ manager, store } = await open())
      result.unindexedAtOpen = (await store.stats()).index.unindexed
    }
    m.phase('waitForIndex(): graph built, every point audited')
    start = m.now()
    await store.waitForIndex()
    result.indexSeconds = (m.now() - start) / 1000
    result.index = (await store.stats()).index
    result.rssBytes = rss.sample()
    result.peakRssBytes = rss.peak()
    result.rawF32Bytes = dataset.rows * dataset.dim * 4
    const queries = dataset.queries.length / dataset.dim
    result.search = []
    for (const ef of options.ef.split(',').map(Number)) {
      m.phase(`${queries} queries at efSearch ${ef}`)
      const ids = []
      const t0 = m.now()
      for (let q = 0; q < queries; q++) {
        ids.push((await store.search(row(dataset.queries, dataset.dim, q), K, undefined, { efSearch: ef })).map((h) => h.id))
      }
      result.search.push({ ef, qps: queries / ((m.now() - t0) / 1000), recall: recallAt(ids, truth.none) })
    }
    if (options.checkAll) {
      m.phase(`every one of the ${dataset.rows} points searched for by its own vector`)
      let missed = 0
      const t0 = m.now()
      for (let i = 0; i < dataset.rows; i++) {
        const vector = row(dataset.data, dataset.dim, i)
        const [hit] = await store.search(vector, 1)
        // Cosine: a point scores 1 against its own vector, and so does a duplicate.
        if (hit.id !== i && !(hit.score >= 1 - 1e-5)) missed++
      }
      result.checkAll = { missed, seconds: (m.now() - t0) / 1000 }
    }
    await manager.disconnect()
  } finally {
    rss.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

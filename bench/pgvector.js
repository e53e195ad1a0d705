#!/usr/bin/env node
// The same workload on the embedded store and on the pgvector backend (issue 19,
// part 2: the scale-out path; no target, figures side by side). PostgreSQL 18 +
// pgvector 0.8 is started by this script (scripts/postgres-server.js) on a Unix
// socket, with its default durability (fsync on, synchronous_commit on).
//
//   node bench/pgvector.js [--dataset real] [--batch 1000] [--ef-search 64] [--queries 500] [--json]
//
// Per engine: ingest in batches (each batch one durable write), time until the
// index is complete, then sequential queries (k = 10) without filter, with a 1 %
// and a 25 % filter: queries/s and recall@10 against exact ground truth; bytes on disk.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDataset, groundTruth, recallAt, row, FILTERS, K } = require('./lib/datasets')
const m = require('./lib/measure')
const { startPostgres } = require('../scripts/postgres-server')
const { createVectorStore } = require('..')

const USAGE = 'usage: node bench/pgvector.js [--dataset real|clustered-<n>x<dim>] [--batch 1000] [--ef-search 64] [--queries 500] [--json]'
const options = m.parseArgs(process.argv.slice(2), { dataset: 'real', batch: 1000, efSearch: 64, queries: 500, json: false }, USAGE)

async function measure(engine, store, dataset, truth) {
  const { dim, rows } = dataset
  const ids = Array.from({ length: rows }, (_, i) => i)
  let start = m.now()
  for (let from = 0; from < rows; from += options.batch) {
    const to = Math.min(rows, from + options.batch)
    const vectors = []
    const payloads = []
    for (let i = from; i < to; i++) {
      vectors.push(row(dataset.data, dim, i))
      payloads.push(dataset.payload(i))
    }
    await store.insert(vectors, ids.slice(from, to), payloads)
  }
  const ingestMs = m.now() - start
  start = m.now()
  await store.waitForIndex()
  const indexMs = m.now() - start
  const queries = Math.min(options.queries, dataset.queries.length / dim)
  const result = { engine, ingestMs, ingestPerSec: rows / (ingestMs / 1000), indexMs }
  for (const [name, spec] of Object.entries(FILTERS)) {
    const found = []
    start = m.now()
    for (let q = 0; q < queries; q++) {
      const hits = await store.search(row(dataset.queries, dim, q), K, spec.filter, { efSearch: options.efSearch })
      found.push(hits.map((h) => h.id))
    }
    const ms = m.now() - start
    result[name] = { qps: queries / (ms / 1000), recall: recallAt(found, truth[name].slice(0, queries)) }
    m.log(`  ${engine} ${spec.label}: ${result[name].qps.toFixed(0)} q/s, recall@10 ${result[name].recall.toFixed(3)}`)
  }
  result.bytesOnDisk = (await store.stats()).bytesOnDisk
  return result
}

async function main() {
  const dataset = loadDataset(options.dataset)
  const truth = await groundTruth(dataset)
  m.log(`dataset: ${dataset.name}`)
  const results = []
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-bench-pg-'))
  try {
    m.phase('annvault (embedded)')
    const { store } = await createVectorStore({
      collectionName: 'bench',
      dimension: dataset.dim,
      persistencePath: dir,
      hnsw: { efSearch: options.efSearch },
    })
    results.push(await measure('annvault', store, dataset, truth))
    await store.disconnect()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const server = startPostgres({ shared_buffers: '1GB', maintenance_work_mem: '1GB' })
  try {
    m.phase('pgvector (PostgreSQL 18, pgvector 0.8, same machine, Unix socket)')
    const { store } = await createVectorStore({
      type: 'pgvector',
      connectionString: server.connectionString,
      collectionName: 'bench',
      dimension: dataset.dim,
      annAlgorithm: 'hnsw',
      hnsw: { efSearch: options.efSearch },
    })
    results.push(await measure('pgvector', store, dataset, truth))
    await store.disconnect()
  } finally {
    server.stop()
  }
  const [a, p] = results
  const rows = results.map((r) => [
    r.engine,
    r.ingestPerSec.toFixed(0),
    (r.indexMs / 1000).toFixed(1),
    `${r.none.qps.toFixed(0)} / ${r.none.recall.toFixed(3)}`,
    `${r.pct1.qps.toFixed(0)} / ${r.pct1.recall.toFixed(3)}`,
    `${r.quarter.qps.toFixed(0)} / ${r.quarter.recall.toFixed(3)}`,
    (r.bytesOnDisk / 2 ** 20).toFixed(0),
  ])
  rows.push([
    'pgvector / annvault',
    (p.ingestPerSec / a.ingestPerSec).toFixed(2),
    '',
    (p.none.qps / a.none.qps).toFixed(2),
    (p.pct1.qps / a.pct1.qps).toFixed(2),
    (p.quarter.qps / a.quarter.qps).toFixed(2),
    (p.bytesOnDisk / a.bytesOnDisk).toFixed(2),
  ])
  process.stderr.write(
    m.textTable(['engine', 'ingest pts/s', 'index wait s', 'q/s / recall', '1 % filter', '25 % filter', 'MiB on disk'], rows) + '\n',
  )
  if (options.json) process.stdout.write(JSON.stringify({ dataset: dataset.name, efSearch: options.efSearch, results }) + '\n')
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

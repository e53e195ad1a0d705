#!/usr/bin/env node
// One engine on one dataset, in a process of its own (so that peak RSS is
// the engine's): ingest, search at several efSearch, filtered search,
// single inserts, reopen. Prints one JSON object on stdout; progress on
// stderr. `bench/run.js` runs it for annvault and hnswlib-node and compares.
//
//   node bench/ann.js --engine annvault|hnswlib --dataset real [--ef 16,24,32,48,64,96,128]
//                     [--inserts 500] [--durability fsync|flush] [--algorithm auto|hnsw|flat]
//                     [--m 16] [--ef-construction 100] [--quantization auto] [--dir <path>]
//                     [--keep <path>]   (a copy of the searched index, for bench/versus.js)
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDataset, groundTruth, recallAt, row, FILTERS, K } = require('./lib/datasets')
const m = require('./lib/measure')

const USAGE =
  'usage: node bench/ann.js --engine annvault|hnswlib --dataset real|clustered-<n>x<dim> [--ef 16,24,32,48,64,96,128] ' +
  '[--inserts 500] [--hnswlib-inserts 100] [--durability fsync|flush] [--algorithm auto|hnsw|flat|faiss] [--faiss-index HNSW32,Flat] [--nprobe 0] [--m 16] ' +
  '[--ef-construction 100] [--ef-search 64] [--quantization auto|i8|f16|f32] [--dir <path>] [--keep <path>]'
const options = m.parseArgs(
  process.argv.slice(2),
  {
    engine: 'annvault',
    dataset: 'real',
    ef: '16,24,32,48,64,96,128',
    inserts: 500,
    hnswlibInserts: 100,
    durability: 'fsync',
    algorithm: 'auto',
    m: 16,
    efConstruction: 100,
    efSearch: 64,
    quantization: 'auto',
    faissIndex: 'HNSW32,Flat',
    nprobe: 0,
    dir: '',
    keep: '',
    batch: 1000,
  },
  USAGE,
)
const EFS = options.ef.split(',').map(Number)
const REOPENS = 3

/** Search every query (by its index) once, one call at a time; QPS and ids. */
async function sweep(search, dataset) {
  const queries = dataset.queries.length / dataset.dim
  const ids = []
  const start = m.now()
  for (let q = 0; q < queries; q++) ids.push(await search(q))
  const seconds = (m.now() - start) / 1000
  return { ids, qps: queries / seconds, usPerQuery: (seconds * 1e6) / queries }
}

async function searchPhases(name, dataset, truth, searchAt, results) {
  results.search = []
  for (const ef of EFS) {
    m.phase(`${name}: ${dataset.queries.length / dataset.dim} queries at efSearch ${ef}, one per call`)
    // One warm-up pass (caches, JIT), then the timed one.
    await sweep((q) => searchAt(q, ef, 'none'), dataset)
    const run = await sweep((q) => searchAt(q, ef, 'none'), dataset)
    results.search.push({ ef, qps: run.qps, usPerQuery: run.usPerQuery, recall: recallAt(run.ids, truth.none) })
    m.log(`  recall@${K} ${results.search.at(-1).recall.toFixed(4)}, ${Math.round(run.qps)} queries/s`)
  }
  results.filtered = {}
  for (const key of ['pct1', 'quarter']) {
    m.phase(`${name}: ${FILTERS[key].label} at efSearch ${options.efSearch}`)
    await sweep((q) => searchAt(q, options.efSearch, key), dataset)
    const run = await sweep((q) => searchAt(q, options.efSearch, key), dataset)
    const recall = recallAt(run.ids, truth[key])
    const full = run.ids.every((ids, q) => ids.length === truth[key][q].length)
    results.filtered[key] = { ef: options.efSearch, qps: run.qps, usPerQuery: run.usPerQuery, recall, alwaysK: full }
    m.log(`  recall@${K} ${recall.toFixed(4)}, ${Math.round(run.qps)} queries/s`)
  }
}

// ------------------------------------------------------------------ annvault

async function annvault(dataset, truth, dir, rss) {
  const { createVectorStore } = require('..')
  const results = { engine: 'annvault' }
  const config = {
    collectionName: 'bench',
    dimension: dataset.dim,
    persistencePath: dir,
    durability: options.durability,
    annAlgorithm: options.algorithm,
    hnsw: { m: options.m, efConstruction: options.efConstruction, efSearch: options.efSearch, quantization: options.quantization },
    // --algorithm faiss: a faiss index (any factory string) behind the same store.
    faiss:
      options.algorithm === 'faiss'
        ? { index: options.faissIndex, nprobe: options.nprobe > 0 ? options.nprobe : undefined, trainPoints: Math.min(dataset.rows, 20000) }
        : undefined,
  }
  let { manager, store } = await createVectorStore(config)

  m.phase(`annvault: bulk ingest of ${dataset.rows} vectors in batches of ${options.batch} (durability ${options.durability}), index built and checkpointed`)
  {
    const start = m.now()
    for (let from = 0; from < dataset.rows; from += options.batch) {
      const to = Math.min(dataset.rows, from + options.batch)
      const vectors = []
      const ids = []
      const payloads = []
      for (let i = from; i < to; i++) {
        vectors.push(row(dataset.data, dataset.dim, i))
        ids.push(i)
        payloads.push(dataset.payload(i))
      }
      await store.insert(vectors, ids, payloads)
      if (to % (options.batch * 10) === 0 || to === dataset.rows) m.log(`  inserted ${to}/${dataset.rows}`)
    }
    const inserted = m.now()
    let ready = false
    const progress = setInterval(async () => {
      if (ready) return
      const s = (await store.stats()).index
      m.log(`  indexing: graph ${s.graphSize}, unindexed ${s.unindexed}`)
    }, 2000)
    await store.waitForIndex()
    ready = true
    clearInterval(progress)
    const indexed = m.now()
    await store.checkpoint()
    const done = m.now()
    const stats = await store.stats()
    results.ingest = {
      vectors: dataset.rows,
      seconds: (done - start) / 1000,
      perSecond: dataset.rows / ((done - start) / 1000),
      insertSeconds: (inserted - start) / 1000,
      indexSeconds: (indexed - inserted) / 1000,
      checkpointSeconds: (done - indexed) / 1000,
      index: stats.index,
    }
  }
  rss.sample()

  const queries = Array.from({ length: dataset.queries.length / dataset.dim }, (_, q) => row(dataset.queries, dataset.dim, q))
  const searchAt = async (q, ef, filter) => {
    const hits = await store.search(queries[q], K, FILTERS[filter].filter, { efSearch: ef })
    return hits.map((h) => h.id)
  }
  await searchPhases('annvault', dataset, truth, searchAt, results)
  rss.sample()
  if (options.keep) {
    // The collection as it was searched (checkpointed above; searches write
    // nothing), before the single inserts below add copies of its rows.
    fs.cpSync(dir, options.keep, { recursive: true, filter: (from) => path.basename(from) !== 'LOCK' })
  }

  m.phase(`reference: ${options.inserts} × (write 1600 B + fdatasync) in the store's directory`)
  const before = m.rawFdatasync(dir, options.inserts)
  m.phase(`annvault: ${options.inserts} single inserts into the ${dataset.rows}-vector collection, each awaited (durability ${options.durability})`)
  {
    const latencies = []
    const start = m.now()
    for (let k = 0; k < options.inserts; k++) {
      const source = k % dataset.rows
      const id = dataset.rows + k
      const t0 = m.now()
      await store.insert([row(dataset.data, dataset.dim, source)], [id], [dataset.payload(source)])
      latencies.push(m.now() - t0)
    }
    const seconds = (m.now() - start) / 1000
    const after = m.rawFdatasync(dir, options.inserts)
    const reference = (before.perSecond + after.perSecond) / 2
    results.singleInserts = {
      inserts: options.inserts,
      durability: options.durability,
      perSecond: options.inserts / seconds,
      ...m.latencySummary(latencies),
      algorithm: (await store.stats()).index.algorithm,
      fdatasyncPerSecond: reference,
      fdatasyncRuns: [before.perSecond, after.perSecond],
      ratioToFdatasync: options.inserts / seconds / reference,
    }
  }
  rss.sample()

  m.phase('annvault: disconnect (checkpoint)')
  {
    const start = m.now()
    await manager.disconnect()
    results.disconnectMs = m.now() - start
  }
  const files = m.filesIn(dir)
  results.bytesOnDisk = m.bytesOf(files)
  m.phase(`reference: readFileSync of the collection's ${files.length} files (${m.fmt.mib(results.bytesOnDisk)})`)
  results.rawRead = m.rawRead(files)

  m.phase(`annvault: reopen + first search answered, ${REOPENS} times`)
  const runs = []
  for (let r = 0; r < REOPENS; r++) {
    m.collectGarbage()
    const start = m.now()
    ;({ manager, store } = await createVectorStore(config))
    const opened = m.now()
    const hits = await store.search(row(dataset.queries, dataset.dim, r), K)
    const answered = m.now()
    const stats = await store.stats()
    runs.push({
      ms: answered - start,
      openMs: opened - start,
      searchMs: answered - opened,
      hits: hits.length,
      loadedFromDisk: stats.index.loadedFromDisk,
      builds: stats.index.builds,
      algorithm: stats.index.algorithm,
      count: stats.count,
    })
    rss.sample()
    await manager.disconnect()
  }
  results.reopen = { runs, ms: m.median(runs.map((r) => r.ms)), rebuilt: runs.some((r) => r.builds > 0 || !r.loadedFromDisk) }
  results.reopen.ratioToRawRead = results.reopen.ms / results.rawRead.ms
  return results
}

// --------------------------------------------------------------- hnswlib-node

async function hnswlib(dataset, truth, dir, rss) {
  let HierarchicalNSW
  try {
    ;({ HierarchicalNSW } = require('hnswlib-node'))
  } catch (error) {
    return { engine: 'hnswlib-node', unavailable: `hnswlib-node is not installed (${error.message.split('\n')[0]})` }
  }
  const results = { engine: 'hnswlib-node' }
  const file = path.join(dir, 'hnswlib.index')
  const capacity = dataset.rows + options.hnswlibInserts
  const toArray = (v) => Array.from(v)

  m.phase(`hnswlib-node: build of ${dataset.rows} vectors (addPoint one by one, M ${options.m}, efConstruction ${options.efConstruction}) + writeIndexSync once`)
  let index = new HierarchicalNSW('cosine', dataset.dim)
  {
    const start = m.now()
    index.initIndex(capacity, options.m, options.efConstruction, 100)
    const step = Math.ceil(dataset.rows / 10)
    for (let i = 0; i < dataset.rows; i++) {
      index.addPoint(toArray(row(dataset.data, dataset.dim, i)), i)
      if ((i + 1) % step === 0) m.log(`  added ${i + 1}/${dataset.rows}`)
    }
    const built = m.now()
    index.writeIndexSync(file)
    const done = m.now()
    results.ingest = {
      vectors: dataset.rows,
      seconds: (done - start) / 1000,
      perSecond: dataset.rows / ((done - start) / 1000),
      buildSeconds: (built - start) / 1000,
      writeSeconds: (done - built) / 1000,
    }
  }
  rss.sample()

  // The query as number[] is made outside the timed call, as an app that
  // holds number[] embeddings would pass it.
  const queries = Array.from({ length: dataset.queries.length / dataset.dim }, (_, q) => toArray(row(dataset.queries, dataset.dim, q)))
  const keep = { none: undefined, pct1: (label) => FILTERS.pct1.keep(label), quarter: (label) => FILTERS.quarter.keep(label) }
  const searchAt = async (q, ef, filter) => {
    index.setEf(Math.max(ef, K))
    return index.searchKnn(queries[q], K, keep[filter]).neighbors
  }
  await searchPhases('hnswlib-node', dataset, truth, searchAt, results)
  rss.sample()
  if (options.keep) index.writeIndexSync(options.keep)

  m.phase(`hnswlib-node: ${options.hnswlibInserts} single inserts, each followed by writeIndexSync (how such stores persist; no fsync)`)
  {
    const latencies = []
    const start = m.now()
    for (let k = 0; k < options.hnswlibInserts; k++) {
      const t0 = m.now()
      index.addPoint(toArray(row(dataset.data, dataset.dim, k % dataset.rows)), dataset.rows + k)
      index.writeIndexSync(file)
      latencies.push(m.now() - t0)
    }
    const seconds = (m.now() - start) / 1000
    results.singleInserts = { inserts: options.hnswlibInserts, perSecond: options.hnswlibInserts / seconds, ...m.latencySummary(latencies) }
  }
  rss.sample()

  const files = m.filesIn(dir)
  results.bytesOnDisk = m.bytesOf(files)
  m.phase(`reference: readFileSync of the index file (${m.fmt.mib(results.bytesOnDisk)})`)
  results.rawRead = m.rawRead(files)

  m.phase(`hnswlib-node: readIndexSync + first search answered, ${REOPENS} times`)
  const runs = []
  for (let r = 0; r < REOPENS; r++) {
    index = null
    m.collectGarbage()
    const start = m.now()
    index = new HierarchicalNSW('cosine', dataset.dim)
    index.readIndexSync(file)
    const opened = m.now()
    index.setEf(options.efSearch)
    const hits = index.searchKnn(queries[r], K).neighbors
    const answered = m.now()
    runs.push({ ms: answered - start, openMs: opened - start, searchMs: answered - opened, hits: hits.length })
    rss.sample()
  }
  results.reopen = { runs, ms: m.median(runs.map((r) => r.ms)) }
  results.reopen.ratioToRawRead = results.reopen.ms / results.rawRead.ms
  return results
}

// ----------------------------------------------------------------------- main

async function main() {
  const engines = { annvault, hnswlib }
  const run = engines[options.engine]
  if (!run) throw new Error(`unknown engine '${options.engine}'\n${USAGE}`)
  m.log(`loading dataset ${options.dataset}`)
  const dataset = loadDataset(options.dataset)
  const truth = await groundTruth(dataset)
  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), `annvault-bench-${options.engine}-`))
  fs.mkdirSync(dir, { recursive: true })
  const rss = m.rssSampler()
  const baselineRss = rss.sample()
  try {
    const results = await run(dataset, truth, dir, rss)
    results.dataset = { spec: dataset.spec, name: dataset.name, rows: dataset.rows, dim: dataset.dim }
    results.options = { ...options }
    results.peakRssBytes = rss.peak()
    results.baselineRssBytes = baselineRss
    process.stdout.write(`${JSON.stringify(results)}\n`)
  } finally {
    rss.stop()
    if (!options.dir) fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})

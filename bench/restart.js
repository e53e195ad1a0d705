#!/usr/bin/env node
// The restart flow (issue 13), as a short-lived process runs it: one process
// ingests (batches, then single awaited inserts) and stops; the next opens the
// store and searches at once. Measured for annvault and hnswlib-node, each
// process on its own, with raw fdatasync on the same disk as the reference for
// the single inserts. Prints one JSON object on stdout, a table on stderr.
//
//   node bench/restart.js [--dataset real] [--engines annvault,hnswlib] [--singles 1000]
//                         [--stop close|kill] [--ef-search 64] [--hnswlib-singles 100]
//
// --stop close: the ingesting process calls disconnect() (hnswlib-node:
//   writeIndexSync) and exits. --stop kill: it is killed with SIGKILL right
//   after its last acknowledged insert (annvault only: hnswlib-node has
//   nothing on disk but what it wrote).
// Internal: --phase ingest|query --engine <e> --dir <d> run one side.
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDataset, groundTruth, recallAt, row, K } = require('./lib/datasets')
const m = require('./lib/measure')

const USAGE =
  'usage: node bench/restart.js [--dataset real|clustered-<n>x<dim>] [--engines annvault,hnswlib] [--singles 1000] ' +
  '[--hnswlib-singles 100] [--stop close|kill] [--ef-search 64] [--m 16] [--ef-construction 100] [--json]'
const options = m.parseArgs(
  process.argv.slice(2),
  {
    dataset: 'real',
    engines: 'annvault,hnswlib',
    singles: 1000,
    hnswlibSingles: 100,
    stop: 'close',
    efSearch: 64,
    m: 16,
    efConstruction: 100,
    batch: 1000,
    json: false,
    phase: '',
    engine: '',
    dir: '',
  },
  USAGE,
)

const emit = (result) => process.stdout.write(`${JSON.stringify(result)}\n`)

// ------------------------------------------------------------ the ingester

function annvaultConfig(dataset, dir) {
  return {
    collectionName: 'restart',
    dimension: dataset.dim,
    persistencePath: dir,
    hnsw: { m: options.m, efConstruction: options.efConstruction, efSearch: options.efSearch },
  }
}

async function ingestAnnvault(dataset, dir) {
  const { createVectorStore } = require('..')
  const { manager, store } = await createVectorStore(annvaultConfig(dataset, dir))
  const bulk = dataset.rows - options.singles
  const start = m.now()
  for (let from = 0; from < bulk; from += options.batch) {
    const to = Math.min(bulk, from + options.batch)
    const ids = Array.from({ length: to - from }, (_, k) => from + k)
    await store.insert(
      ids.map((i) => row(dataset.data, dataset.dim, i)),
      ids,
      ids.map((i) => dataset.payload(i)),
    )
  }
  const bulkDone = m.now()
  // Single durable inserts while the indexer still takes in the batches,
  // with raw fdatasync on the same disk just before and just after (the
  // disk's speed drifts: the reference must be taken beside the workload).
  const before = (await store.stats()).index
  // Records as large as the inserts' vectors, so both grow the file alike.
  const recordBytes = dataset.dim * 4 + 64
  const referenceBefore = m.rawFdatasync(dir, 200, recordBytes)
  const singlesStart = m.now()
  for (let i = bulk; i < dataset.rows; i++) {
    await store.insert([row(dataset.data, dataset.dim, i)], [i], [dataset.payload(i)])
  }
  const singlesDone = m.now()
  const after = (await store.stats()).index
  const referenceAfter = m.rawFdatasync(dir, 200, recordBytes)
  const result = {
    bulkSeconds: (bulkDone - start) / 1000,
    singlesPerSecond: options.singles / ((singlesDone - singlesStart) / 1000),
    rawFdatasyncPerSecond: (referenceBefore.perSecond + referenceAfter.perSecond) / 2,
    unindexedBeforeSingles: before.unindexed,
    unindexedAfterSingles: after.unindexed,
  }
  if (options.stop === 'kill') {
    emit(result) // the parent kills this process on reading it
    await new Promise(() => {})
  }
  const closing = m.now()
  await manager.disconnect()
  result.closeSeconds = (m.now() - closing) / 1000
  emit(result)
}

async function ingestHnswlib(dataset, dir) {
  const { HierarchicalNSW } = require('hnswlib-node')
  const file = path.join(dir, 'hnswlib.index')
  const index = new HierarchicalNSW('cosine', dataset.dim)
  index.initIndex(dataset.rows, options.m, options.efConstruction, 100)
  const bulk = dataset.rows - options.singles
  const start = m.now()
  for (let i = 0; i < bulk; i++) index.addPoint(Array.from(row(dataset.data, dataset.dim, i)), i)
  index.writeIndexSync(file)
  const bulkDone = m.now()
  // How such stores persist a single insert: the index rewritten (no fsync).
  // Only the first --hnswlib-singles are timed so; the rest are added and
  // written once, so the next process gets the same points.
  for (let i = bulk; i < bulk + options.hnswlibSingles; i++) {
    index.addPoint(Array.from(row(dataset.data, dataset.dim, i)), i)
    index.writeIndexSync(file)
  }
  const singlesDone = m.now()
  for (let i = bulk + options.hnswlibSingles; i < dataset.rows; i++) {
    index.addPoint(Array.from(row(dataset.data, dataset.dim, i)), i)
  }
  index.writeIndexSync(file)
  emit({
    bulkSeconds: (bulkDone - start) / 1000,
    singlesPerSecond: options.hnswlibSingles / ((singlesDone - bulkDone) / 1000),
  })
}

// --------------------------------------------------------- the next process

/** Runs the queries one per call; QPS over all, and over the first second. */
async function timedQueries(dataset, search, openedAt) {
  const queries = dataset.queries.length / dataset.dim
  const ids = []
  const start = m.now()
  let firstSecond = 0
  for (let q = 0; q < queries; q++) {
    ids.push(await search(row(dataset.queries, dataset.dim, q)))
    if (m.now() - start < 1000) firstSecond++
  }
  const seconds = (m.now() - start) / 1000
  return {
    ids,
    openMs: start - openedAt,
    qps: queries / seconds,
    firstSecondQueries: firstSecond,
  }
}

async function queryAnnvault(dataset, dir, truth) {
  const { createVectorStore } = require('..')
  const opened = m.now()
  const { manager, store } = await createVectorStore(annvaultConfig(dataset, dir))
  const index = (await store.stats()).index
  const run = await timedQueries(dataset, async (q) => (await store.search(q, K)).map((hit) => hit.id), opened)
  const searched = m.now()
  await store.waitForIndex()
  const complete = m.now()
  await manager.disconnect()
  return {
    openMs: run.openMs,
    qps: run.qps,
    firstSecondQueries: run.firstSecondQueries,
    recall: recallAt(run.ids, truth.none),
    unindexedAtOpen: index.unindexed,
    graphLoaded: index.loadedFromDisk,
    secondsToCompleteIndex: (complete - opened) / 1000,
    waitAfterQueriesSeconds: (complete - searched) / 1000,
  }
}

async function queryHnswlib(dataset, dir, truth) {
  const { HierarchicalNSW } = require('hnswlib-node')
  const opened = m.now()
  const index = new HierarchicalNSW('cosine', dataset.dim)
  index.readIndexSync(path.join(dir, 'hnswlib.index'))
  index.setEf(options.efSearch)
  const run = await timedQueries(dataset, async (q) => index.searchKnn(Array.from(q), K).neighbors, opened)
  return {
    openMs: run.openMs,
    qps: run.qps,
    firstSecondQueries: run.firstSecondQueries,
    recall: recallAt(run.ids, truth.none),
    secondsToCompleteIndex: 0,
  }
}

// ------------------------------------------------------------ orchestration

function child(args, kill) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [__filename, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    proc.stdout.on('data', (chunk) => {
      out += chunk
      if (kill && out.includes('\n')) proc.kill('SIGKILL')
    })
    proc.on('error', reject)
    proc.on('exit', (code, signal) => {
      const line = out.trim().split('\n').at(-1)
      if (!line || (code !== 0 && signal !== 'SIGKILL')) {
        reject(new Error(`restart.js ${args.join(' ')} failed (${code ?? signal})`))
      } else resolve(JSON.parse(line))
    })
  })
}

async function main() {
  const dataset = loadDataset(options.dataset)
  if (options.phase) {
    const truth = options.phase === 'query' ? await groundTruth(dataset) : null
    const run = {
      'ingest annvault': () => ingestAnnvault(dataset, options.dir),
      'ingest hnswlib': () => ingestHnswlib(dataset, options.dir),
      'query annvault': async () => emit(await queryAnnvault(dataset, options.dir, truth)),
      'query hnswlib': async () => emit(await queryHnswlib(dataset, options.dir, truth)),
    }[`${options.phase} ${options.engine}`]
    if (!run) throw new Error(`unknown phase/engine ${options.phase} ${options.engine}`)
    return run()
  }
  await groundTruth(dataset) // cached before anything is timed
  const results = { dataset: dataset.name, stop: options.stop, singles: options.singles, engines: {} }
  for (const engine of options.engines.split(',')) {
    if (engine === 'hnswlib' && options.stop === 'kill') continue
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `annvault-restart-${engine}-`))
    try {
      const common = ['--dataset', options.dataset, '--engine', engine, '--dir', dir, '--ef-search', String(options.efSearch),
        '--m', String(options.m), '--ef-construction', String(options.efConstruction), '--singles', String(options.singles),
        '--hnswlib-singles', String(options.hnswlibSingles), '--stop', options.stop]
      m.log(`${engine}: ingest ${dataset.rows - options.singles} in batches of ${options.batch}, then ${options.singles} single inserts; stop: ${options.stop}`)
      const ingest = await child(['--phase', 'ingest', ...common], options.stop === 'kill')
      m.log(`${engine}: a new process opens the store and runs the queries at once`)
      const query = await child(['--phase', 'query', ...common], false)
      results.engines[engine] = { ingest, query }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  const a = results.engines.annvault
  const h = results.engines.hnswlib
  const ratio = (x, y) => (x && y ? x / y : null)
  results.ratios = {
    firstQueriesQps: ratio(a?.query.qps, h?.query.qps),
    singlesVsFdatasync: ratio(a?.ingest.singlesPerSecond, a?.ingest.rawFdatasyncPerSecond),
  }
  const f = (x, d = 0) => (x === null || x === undefined ? '—' : Number(x).toFixed(d))
  const rows = Object.entries(results.engines).map(([engine, r]) => [
    engine,
    f(r.query.qps),
    f(r.query.recall, 3),
    f(r.query.openMs, 1),
    f(r.query.firstSecondQueries),
    f(r.query.secondsToCompleteIndex, 2),
    f(r.query.unindexedAtOpen),
    f(r.ingest.singlesPerSecond),
    f(r.ingest.rawFdatasyncPerSecond),
    f(r.ingest.closeSeconds, 2),
  ])
  m.log(`\n${dataset.name}, stop: ${options.stop}\n` + m.textTable(
    ['engine', 'first 500 q/s', 'recall@10', 'open ms', 'q in 1st s', 's to full index', 'unindexed at open', 'single ins/s', 'raw fdatasync/s', 'close s'],
    rows,
  ))
  m.log(`ratios: first queries ${f(results.ratios.firstQueriesQps, 2)} × hnswlib-node; single inserts ${f(results.ratios.singlesVsFdatasync, 2)} × raw fdatasync`)
  emit(results)
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

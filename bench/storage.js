#!/usr/bin/env node
// annvault storage benchmark: durable writes, checkpoint and reopen, each
// set against a reference measured in the same run on the same disk.
//
//   node bench/storage.js [--n 20000] [--dim 384] [--inserts 2000] [--json]
//                         [--compression none|gzip] [--keep]
//
// Needs the release addon (`npm run build`). See bench/README.md.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const { createVectorStore } = require('..')
const { mulberry32, readF32 } = require('./lib/datasets')
const { collectGarbage, latencySummary, log, median, now, parseArgs, phase, rawFdatasync: fdatasyncLoop, rssSampler } = require('./lib/measure')

// ------------------------------------------------------------------ options

const USAGE = 'usage: node bench/storage.js [--n 20000] [--dim 384] [--inserts 2000] [--json] [--compression none|gzip] [--keep]'
const options = parseArgs(process.argv.slice(2), { n: 20000, dim: 384, inserts: 2000, json: false, compression: 'none', keep: false }, USAGE)
for (const key of ['n', 'dim', 'inserts']) {
  if (!Number.isSafeInteger(options[key]) || options[key] < 1) throw new Error(`--${key} must be a positive integer`)
}
const CONCURRENCY = 8
const BULK_BATCH = 1000
const REFERENCE_RECORD_BYTES = 1600
const REOPEN_REPEATS = 3
const DATA_DIR = '/work/shared/data'

// --------------------------------------------------------------- peak RSS

const rss = rssSampler()
const sampleRss = rss.sample

// ------------------------------------------------------------------ dataset

/**
 * `rows` vectors of `dim` floats in one Float32Array: the real-text
 * embeddings when dim is 384 and the file exists, else seeded synthetic
 * unit vectors. `sources[i]` is the payload's `source` for row i.
 */
function loadDataset(dim) {
  const file = path.join(DATA_DIR, 'docs-384.f32')
  if (dim === 384 && fs.existsSync(file)) {
    const data = readF32(file)
    const rows = data.length / dim
    let sources = null
    const jsonl = path.join(DATA_DIR, 'docs.jsonl')
    if (fs.existsSync(jsonl)) {
      sources = fs
        .readFileSync(jsonl, 'utf8')
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line).source)
      if (sources.length !== rows) sources = null
    }
    let query = data.subarray(0, dim)
    const queries = path.join(DATA_DIR, 'queries-384.f32')
    if (fs.existsSync(queries)) query = readF32(queries).subarray(0, dim)
    return { name: `docs-384.f32 (${rows} real-text embeddings)`, data, rows, sources, query }
  }
  const rows = 20000
  const random = mulberry32(20260101)
  const data = new Float32Array(rows * dim)
  for (let r = 0; r < rows; r++) {
    let norm = 0
    for (let d = 0; d < dim; d++) {
      const x = random() * 2 - 1
      data[r * dim + d] = x
      norm += x * x
    }
    const scale = 1 / Math.sqrt(norm)
    for (let d = 0; d < dim; d++) data[r * dim + d] *= scale
  }
  return { name: `synthetic (${rows} seeded unit vectors, dim ${dim})`, data, rows, sources: null, query: data.subarray(0, dim) }
}

// ------------------------------------------------------------------ helpers

function fileSizes(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => ({ name: entry.name, bytes: fs.statSync(path.join(dir, entry.name)).size }))
}

// --------------------------------------------------------------- the phases

/** Reference 1: append 1,600-byte records then fdatasync, `iterations` times. */
function rawFdatasync(dir, iterations) {
  return fdatasyncLoop(dir, iterations, REFERENCE_RECORD_BYTES)
}

/** Reference for the checkpoint: write `bytes` to a new file, fdatasync it. */
function rawWriteSync(dir, bytes) {
  const file = path.join(dir, 'write-reference.bin')
  const buffer = Buffer.alloc(bytes, 0x5a)
  const start = now()
  const fd = fs.openSync(file, 'w')
  try {
    fs.writeSync(fd, buffer)
    fs.fdatasyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  const ms = now() - start
  fs.rmSync(file, { force: true })
  return { bytes, ms, miBps: bytes / 1048576 / (ms / 1000) }
}

/** Reference 2: read `files` with readFileSync; returns ms. */
function rawRead(dir, files) {
  const start = now()
  let total = 0
  for (const { name } of files) total += fs.readFileSync(path.join(dir, name)).length
  const ms = now() - start
  return { ms, bytes: total }
}

async function run() {
  const { n, dim, inserts } = options
  const root = path.join(__dirname, '.cache', `run-${process.pid}`)
  fs.mkdirSync(root, { recursive: true })
  const results = {
    config: { n, dim, inserts, concurrency: CONCURRENCY, bulkBatch: BULK_BATCH, compression: options.compression, referenceRecordBytes: REFERENCE_RECORD_BYTES },
    machine: { node: process.version, nproc: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memoryBytes: os.totalmem(), uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4) },
    directory: root,
  }

  try {
    log(`loading dataset (dim ${dim})`)
    const dataset = loadDataset(dim)
    results.dataset = dataset.name
    const vectorOf = (i) => dataset.data.subarray((i % dataset.rows) * dim, ((i % dataset.rows) + 1) * dim)
    const payloadOf = (i) => ({ i, source: dataset.sources ? dataset.sources[i % dataset.rows] : 'synthetic' })

    /** `count` single inserts of ids from `firstId`, each awaited before the next; rate and latencies. */
    async function awaitedSingleInserts(store, firstId, count) {
      const latencies = new Float64Array(count)
      const start = now()
      for (let k = 0; k < count; k++) {
        const id = firstId + k
        const t0 = now()
        await store.insert([vectorOf(id)], [id], [payloadOf(id)])
        latencies[k] = now() - t0
      }
      const seconds = (now() - start) / 1000
      return { inserts: count, seconds, perSecond: count / seconds, ...latencySummary(latencies) }
    }

    /** `count` single inserts of ids from `firstId`, CONCURRENCY in flight at a time. */
    async function concurrentInserts(store, firstId, count) {
      const start = now()
      for (let k = 0; k < count; k += CONCURRENCY) {
        const round = []
        for (let j = 0; j < CONCURRENCY && k + j < count; j++) {
          const id = firstId + k + j
          round.push(store.insert([vectorOf(id)], [id], [payloadOf(id)]))
        }
        await Promise.all(round)
      }
      const seconds = (now() - start) / 1000
      return { inserts: count, concurrency: CONCURRENCY, seconds, perSecond: count / seconds }
    }
    sampleRss()

    const baseConfig = {
      collectionName: 'bench',
      dimension: dim,
      persistencePath: root,
      compression: options.compression,
    }

    // 3. Bulk ingest, durability fsync.
    let { manager, store } = await createVectorStore({ ...baseConfig, durability: 'fsync' })
    const collectionDir = (await store.stats()).path
    phase(`bulk ingest: ${n} vectors in batches of ${BULK_BATCH} (durability fsync)`)
    {
      const start = now()
      for (let from = 0; from < n; from += BULK_BATCH) {
        const to = Math.min(n, from + BULK_BATCH)
        const vectors = []
        const ids = []
        const payloads = []
        for (let i = from; i < to; i++) {
          vectors.push(vectorOf(i))
          ids.push(i)
          payloads.push(payloadOf(i))
        }
        await store.insert(vectors, ids, payloads)
        if ((to / BULK_BATCH) % 5 === 0 || to === n) log(`  ${to}/${n}`)
      }
      const seconds = (now() - start) / 1000
      const stats = await store.stats()
      results.bulk = { vectors: n, seconds, perSecond: n / seconds, walBytes: stats.walBytes }
    }
    sampleRss()

    // The graph (annAlgorithm 'auto': n is past annMinDatasetSize) is built in
    // the background; the phases below measure a loaded collection, not one
    // whose graph is still being built on both cores.
    phase('waiting for the background indexer (graph build and audit)')
    {
      const start = now()
      await store.waitForIndex()
      results.bulk.indexSeconds = (now() - start) / 1000
      results.bulk.index = (await store.stats()).index
    }

    // 7. Checkpoint of the N-vector collection (its WAL holds the bulk ingest).
    phase('checkpoint')
    {
      const start = now()
      await store.checkpoint()
      const ms = now() - start
      const stats = await store.stats()
      results.checkpoint = { count: stats.count, ms, bytesOnDisk: stats.bytesOnDisk }
    }
    sampleRss()
    {
      const snapshot = fileSizes(collectionDir).find((f) => f.name.startsWith('snapshot-'))
      phase(`reference: write ${(snapshot.bytes / 1048576).toFixed(1)} MiB (the snapshot's size) + fdatasync`)
      results.checkpoint.snapshotBytes = snapshot.bytes
      results.reference = { writeSnapshotBytes: rawWriteSync(root, snapshot.bytes) }
      results.checkpoint.ratioToRawWrite = results.checkpoint.ms / results.reference.writeSnapshotBytes.ms
    }

    // 1. Reference: raw append + fdatasync (before the durable inserts).
    phase(`reference: ${inserts} × (write ${REFERENCE_RECORD_BYTES} B + fdatasync)`)
    const refBefore = rawFdatasync(root, inserts, 'before')

    // 4. Durable single inserts, each awaited.
    let nextId = n
    phase(`durable single inserts: ${inserts}, awaited one at a time (durability fsync)`)
    results.durableSingle = await awaitedSingleInserts(store, nextId, inserts)
    nextId += inserts
    sampleRss()

    // 6. Durable single inserts, CONCURRENCY in flight (group commit).
    phase(`durable single inserts: ${inserts}, ${CONCURRENCY} in flight (durability fsync)`)
    {
      const before = (await store.stats()).sequence
      const timed = await concurrentInserts(store, nextId, inserts)
      nextId += inserts
      const records = (await store.stats()).sequence - before
      results.durableConcurrent = { ...timed, walRecords: records, insertsPerFsync: inserts / records }
    }
    sampleRss()

    // Diagnostic: awaited single inserts while a checkpoint runs; the
    // longest one is how long the checkpoint holds writers up.
    phase('checkpoint under write load: awaited single inserts while it runs (durability fsync)')
    {
      let done = false
      const start = now()
      const checkpoint = store.checkpoint().then(() => {
        done = true
        return now() - start
      })
      const latencies = []
      while (!done) {
        const id = nextId++
        const t0 = now()
        await store.insert([vectorOf(id)], [id], [payloadOf(id)])
        latencies.push(now() - t0)
      }
      const ms = await checkpoint
      results.checkpointUnderLoad = { ms, inserts: latencies.length, ...latencySummary(latencies) }
    }
    sampleRss()

    // 1'. Reference again, after, to see drift of the disk during the run.
    phase(`reference again: ${inserts} × (write ${REFERENCE_RECORD_BYTES} B + fdatasync)`)
    const refAfter = rawFdatasync(root, inserts, 'after')
    const refRate = (refBefore.perSecond + refAfter.perSecond) / 2
    results.reference.fdatasync = { before: refBefore, after: refAfter, perSecond: refRate, perOpUs: 1e6 / refRate }
    results.durableSingle.ratioToFdatasync = results.durableSingle.perSecond / refRate
    results.durableConcurrent.ratioToFdatasync = results.durableConcurrent.perSecond / refRate

    // 5. Same collection reopened with durability 'flush'.
    log('reopening the collection with durability flush')
    await manager.disconnect()
    ;({ manager, store } = await createVectorStore({ ...baseConfig, durability: 'flush' }))
    phase(`flush single inserts: ${inserts}, awaited one at a time (durability flush)`)
    results.flushSingle = await awaitedSingleInserts(store, nextId, inserts)
    nextId += inserts
    phase(`flush single inserts: ${inserts}, ${CONCURRENCY} in flight (durability flush)`)
    results.flushConcurrent = await concurrentInserts(store, nextId, inserts)
    nextId += inserts
    sampleRss()

    // Diagnostic: the same awaited single inserts into a memory-only store
    // (annPersistIndex: false): everything but the file I/O.
    phase(`memory-only single inserts: ${inserts}, awaited (no file I/O: the per-call overhead)`)
    {
      const memory = await createVectorStore({ collectionName: 'bench-memory', dimension: dim, annPersistIndex: false })
      results.memorySingle = await awaitedSingleInserts(memory.store, 0, inserts)
      await memory.manager.disconnect()
    }

    // 8. Reopen vs. reading the same bytes.
    phase('disconnect (checkpoints)')
    {
      const start = now()
      await manager.disconnect()
      results.disconnectMs = now() - start
    }
    const files = fileSizes(collectionDir)
    const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0)
    phase(`raw read of the collection's ${files.length} files (${(totalBytes / 1048576).toFixed(1)} MiB)`)
    const firstRead = rawRead(collectionDir, files)
    const warmReads = []
    for (let r = 0; r < REOPEN_REPEATS; r++) warmReads.push(rawRead(collectionDir, files).ms)
    const rawReadMs = median(warmReads)

    phase(`reopen + first search, ${REOPEN_REPEATS} times`)
    const reopens = []
    let reopenStats = null
    let firstHits = null
    for (let r = 0; r < REOPEN_REPEATS; r++) {
      collectGarbage()
      const start = now()
      const opened = await createVectorStore({ ...baseConfig, durability: 'fsync' })
      const openedAt = now()
      firstHits = await opened.store.search(dataset.query, 10)
      const searchedAt = now()
      reopens.push({ totalMs: searchedAt - start, openMs: openedAt - start, searchMs: searchedAt - openedAt })
      reopenStats = await opened.store.stats()
      sampleRss()
      const closeStart = now()
      await opened.manager.disconnect()
      reopens[r].disconnectMs = now() - closeStart
    }
    const reopenMs = median(reopens.map((r) => r.totalMs))
    results.reopen = {
      files,
      bytes: totalBytes,
      rawReadFirstMs: firstRead.ms,
      rawReadWarmMs: warmReads,
      rawReadMs,
      rawReadMiBps: totalBytes / 1048576 / (rawReadMs / 1000),
      runs: reopens,
      reopenMs,
      ratioToRawRead: reopenMs / rawReadMs,
      count: reopenStats.count,
      firstHitCount: firstHits.length,
    }
    results.bytesOnDisk = reopenStats.bytesOnDisk
    results.finalCount = reopenStats.count
    sampleRss()
    results.peakRssBytes = rss.peak()
    results.targets = {
      durableSingleVsFdatasync: { target: '>= 0.40', value: results.durableSingle.ratioToFdatasync, met: results.durableSingle.ratioToFdatasync >= 0.4 },
      flushSingle: { target: '>= 50000/s', value: results.flushSingle.perSecond, met: results.flushSingle.perSecond >= 50000 },
      reopenVsRawRead: { target: '<= 2.0', value: results.reopen.ratioToRawRead, met: results.reopen.ratioToRawRead <= 2.0 },
    }
    return results
  } finally {
    if (!options.keep) fs.rmSync(root, { recursive: true, force: true })
    else log(`kept ${root}`)
  }
}

// ------------------------------------------------------------------ report

function fmtRate(x) {
  return `${Math.round(x).toLocaleString('en-US')}/s`
}
const fmtMs = (x) => `${x.toFixed(1)} ms`
const fmtRatio = (x) => `${x.toFixed(2)}`
const fmtMiB = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`
const yes = (met) => (met ? 'met' : 'MISSED')

function table(r) {
  const ref = r.reference.fdatasync
  const rows = [
    ['reference: write 1600 B + fdatasync', fmtRate(ref.perSecond), `${ref.perOpUs.toFixed(0)} µs/op (before ${fmtRate(ref.before.perSecond)}, after ${fmtRate(ref.after.perSecond)})`, ''],
    [`bulk ingest, batches of ${r.config.bulkBatch} (fsync)`, fmtRate(r.bulk.perSecond), `${r.bulk.seconds.toFixed(2)} s for ${r.bulk.vectors}; graph (${r.bulk.index.algorithm}) ready ${r.bulk.indexSeconds.toFixed(2)} s later`, ''],
    ['durable single inserts, awaited (fsync)', fmtRate(r.durableSingle.perSecond), `${fmtRatio(r.durableSingle.ratioToFdatasync)} × fdatasync; p50 ${r.durableSingle.p50Us.toFixed(0)} µs, p99 ${r.durableSingle.p99Us.toFixed(0)} µs`, `≥ 0.40: ${yes(r.targets.durableSingleVsFdatasync.met)}`],
    [`durable single inserts, ${r.config.concurrency} in flight (fsync)`, fmtRate(r.durableConcurrent.perSecond), `${fmtRatio(r.durableConcurrent.ratioToFdatasync)} × fdatasync; ${r.durableConcurrent.insertsPerFsync.toFixed(2)} inserts per WAL record`, ''],
    ['single inserts, awaited (flush)', fmtRate(r.flushSingle.perSecond), `p50 ${r.flushSingle.p50Us.toFixed(0)} µs, p99 ${r.flushSingle.p99Us.toFixed(0)} µs`, `≥ 50,000/s: ${yes(r.targets.flushSingle.met)}`],
    [`single inserts, ${r.config.concurrency} in flight (flush)`, fmtRate(r.flushConcurrent.perSecond), 'diagnostic', ''],
    ['single inserts, awaited (memory only)', fmtRate(r.memorySingle.perSecond), `diagnostic: p50 ${r.memorySingle.p50Us.toFixed(0)} µs, no file I/O`, ''],
    ['reference: write snapshot-sized file + fdatasync', fmtMs(r.reference.writeSnapshotBytes.ms), `${fmtMiB(r.reference.writeSnapshotBytes.bytes)}, ${r.reference.writeSnapshotBytes.miBps.toFixed(0)} MiB/s`, ''],
    [`checkpoint (${r.checkpoint.count} vectors)`, fmtMs(r.checkpoint.ms), `${fmtRatio(r.checkpoint.ratioToRawWrite)} × raw write; ${fmtMiB(r.checkpoint.bytesOnDisk)} on disk after`, ''],
    ['checkpoint under write load', fmtMs(r.checkpointUnderLoad.ms), `diagnostic: ${r.checkpointUnderLoad.inserts} awaited inserts meanwhile, longest ${(r.checkpointUnderLoad.maxUs / 1000).toFixed(1)} ms`, ''],
    ['disconnect (checkpoints)', fmtMs(r.disconnectMs), '', ''],
    ['reference: readFileSync of the collection files (warm)', fmtMs(r.reopen.rawReadMs), `${fmtMiB(r.reopen.bytes)}, ${r.reopen.rawReadMiBps.toFixed(0)} MiB/s (first read ${fmtMs(r.reopen.rawReadFirstMs)})`, ''],
    [`reopen + first search (${r.reopen.count} vectors, warm)`, fmtMs(r.reopen.reopenMs), `${fmtRatio(r.reopen.ratioToRawRead)} × raw read; open ${fmtMs(median(r.reopen.runs.map((x) => x.openMs)))}, search ${fmtMs(median(r.reopen.runs.map((x) => x.searchMs)))}`, `≤ 2.0: ${yes(r.targets.reopenVsRawRead.met)}`],
    ['peak RSS', fmtMiB(r.peakRssBytes), '', ''],
    ['bytes on disk', fmtMiB(r.bytesOnDisk), `${r.finalCount} vectors`, ''],
  ]
  const header = ['measure', 'value', 'detail', 'target']
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)))
  const line = (cells) => cells.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()
  return [
    `annvault storage benchmark: n=${r.config.n} dim=${r.config.dim} inserts=${r.config.inserts} compression=${r.config.compression}`,
    `dataset: ${r.dataset}`,
    `machine: ${r.machine.nproc} × ${r.machine.cpu}, node ${r.machine.node}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
  ].join('\n')
}

run()
  .then((results) => {
    if (options.json) {
      process.stdout.write(`${JSON.stringify(results)}\n`)
      process.stderr.write(table(results))
    }
    else process.stdout.write(table(results))
  })
  .catch((error) => {
    process.stderr.write(`${error?.stack ?? error}\n`)
    process.exitCode = 1
  })

#!/usr/bin/env node
// Export/import benchmark: the `annvault` bundle against the disk's own
// sequential write (write + fsync) and read rates, and JSON export against
// `JSON.stringify` + `fs.writeFileSync` of the same data in Node; import
// (merge, and replace) also against the store's own insert + checkpoint of
// the same points; every reference measured in the same run, on the same disk.
// Reads are measured twice: warm (the file was just written, so from the page
// cache) and cold (the file dropped from the page cache first, see
// `dropFromPageCache` in lib/measure.js: the disk's own sequential read), and
// import is timed from a cold file too. Each import's phases (validate, apply,
// write) are timed from its progress events.
//
//   node bench/export.js [--n 100000] [--dim 384] [--dir <tmp>]
//
// Prints one JSON object of rates (MB/s) and ratios.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createVectorStore } = require('..')

const m = require('./lib/measure')

const options = m.parseArgs(
  process.argv.slice(2),
  { n: 100000, dim: 384, dir: os.tmpdir() },
  'node bench/export.js [--n 100000] [--dim 384] [--dir <tmp>]',
)
const N = options.n
const DIM = options.dim
const ROOT = fs.mkdtempSync(path.join(options.dir, 'annvault-export-bench-'))
const now = () => Number(process.hrtime.bigint()) / 1e9
const mb = (bytes, seconds) => bytes / 1e6 / seconds

async function main() {
  let seed = 1
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1
  const vectors = []
  for (let i = 0; i < N; i++) vectors.push(Float32Array.from({ length: DIM }, random))
  const ids = vectors.map((_, i) => i)
  const payloads = vectors.map((_, i) => ({ i, title: `doc ${i}` }))
  const { manager, store } = await createVectorStore({
    collectionName: 'bench', dimension: DIM, persistencePath: path.join(ROOT, 'store'), annAlgorithm: 'flat', durability: 'flush',
  })
  for (let i = 0; i < N; i += 5000) await store.insert(vectors.slice(i, i + 5000), ids.slice(i, i + 5000), payloads.slice(i, i + 5000))

  // annvault export, then the disk's write + fsync of a file of the same size.
  const bundle = path.join(ROOT, 'out.avb')
  let t = now()
  const exported = await store.export(bundle)
  const exportSeconds = now() - t
  const bytes = exported.bytes
  const chunk = Buffer.alloc(1 << 20, 7)
  const reference = path.join(ROOT, 'reference.bin')
  t = now()
  const fd = fs.openSync(reference, 'w')
  for (let written = 0; written < bytes; written += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written))
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  const diskWriteSeconds = now() - t

  // Sequential read of the reference: warm (it was just written: from the page cache), then cold
  // (dropped from the page cache first: from the disk).
  const readSeconds = () => {
    const start = now()
    const rfd = fs.openSync(reference, 'r')
    const readBuffer = Buffer.alloc(1 << 20)
    while (fs.readSync(rfd, readBuffer, 0, readBuffer.length, null) > 0);
    fs.closeSync(rfd)
    return now() - start
  }
  const diskReadSeconds = readSeconds()
  const drop = m.dropFromPageCache(reference)
  const coldReadSeconds = readSeconds()
  const target = await createVectorStore({
    collectionName: 'target', dimension: DIM, persistencePath: path.join(ROOT, 'store'), annAlgorithm: 'flat', durability: 'flush',
  })
  // An import, its time and the time of each phase (from one phase's first event to the next's).
  const timedImport = async (store, mode, cold) => {
    if (cold) m.dropFromPageCache(bundle)
    const marks = []
    const start = now()
    await store.import(bundle, {
      mode,
      onProgress: (e) => {
        if (e.current === 0) marks.push([e.phase, now()])
      },
    })
    const end = now()
    const phases = {}
    marks.forEach(([phase, at], i) => {
      phases[phase] = (phases[phase] ?? 0) + ((marks[i + 1]?.[1] ?? end) - at)
    })
    return { seconds: end - start, phases }
  }
  const merge = await timedImport(target.store, 'merge', false)
  // mode 'replace' installs the file as one checkpoint (no WAL record per point).
  const replace = await timedImport(target.store, 'replace', false)
  const coldReplace = await timedImport(target.store, 'replace', true)
  const coldTarget = await createVectorStore({
    collectionName: 'cold', dimension: DIM, persistencePath: path.join(ROOT, 'store'), annAlgorithm: 'flat', durability: 'flush',
  })
  const coldMerge = await timedImport(coldTarget.store, 'merge', true)
  await coldTarget.manager.disconnect()
  const importSeconds = merge.seconds
  const importReplaceSeconds = replace.seconds
  // The store's own insert of the same points, in batches of 5,000, into another empty store: what an
  // application that re-ingests instead of importing would pay.
  const again = await createVectorStore({
    collectionName: 'again', dimension: DIM, persistencePath: path.join(ROOT, 'store'), annAlgorithm: 'flat', durability: 'flush',
  })
  t = now()
  for (let i = 0; i < N; i += 5000) await again.store.insert(vectors.slice(i, i + 5000), ids.slice(i, i + 5000), payloads.slice(i, i + 5000))
  await again.store.checkpoint()
  const insertSeconds = now() - t
  await again.manager.disconnect()

  // JSON: the store's export against JSON.stringify + writeFileSync of the same points.
  t = now()
  const json = await store.export(path.join(ROOT, 'out.json'), { format: 'json' })
  const jsonSeconds = now() - t
  // Past Node's string limit (about 100,000 × 384 numbers) the reference cannot run: null.
  t = now()
  let nodeJsonSeconds = null
  try {
    const text = JSON.stringify({ dimension: DIM, points: vectors.map((v, i) => ({ id: ids[i], vector: Array.from(v), payload: payloads[i] })) })
    fs.writeFileSync(path.join(ROOT, 'node.json'), text)
    nodeJsonSeconds = now() - t
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
  }

  await target.manager.disconnect()
  await manager.disconnect()
  fs.rmSync(ROOT, { recursive: true, force: true })
  const result = {
    points: N,
    dimension: DIM,
    bundleBytes: bytes,
    exportMBps: mb(bytes, exportSeconds),
    diskWriteMBps: mb(bytes, diskWriteSeconds),
    exportVsDiskWrite: diskWriteSeconds / exportSeconds,
    pageCacheDrop: drop.method,
    bytesStillCachedAfterDrop: drop.cachedBytes,
    diskReadWarmMBps: mb(bytes, diskReadSeconds),
    diskReadColdMBps: mb(bytes, coldReadSeconds),
    importMergeWarmMBps: mb(bytes, importSeconds),
    importReplaceWarmMBps: mb(bytes, importReplaceSeconds),
    importMergeColdMBps: mb(bytes, coldMerge.seconds),
    importReplaceColdMBps: mb(bytes, coldReplace.seconds),
    // The target's reference: the disk's cold sequential read of the same bytes.
    importMergeColdVsColdRead: coldReadSeconds / coldMerge.seconds,
    importReplaceColdVsColdRead: coldReadSeconds / coldReplace.seconds,
    importReplaceWarmVsWarmRead: diskReadSeconds / importReplaceSeconds,
    // What any durable import must at least do: read the file cold, write its bytes + fsync.
    importReplaceColdVsColdReadPlusWrite: (coldReadSeconds + diskWriteSeconds) / coldReplace.seconds,
    phaseSeconds: {
      mergeWarm: merge.phases,
      replaceWarm: replace.phases,
      mergeCold: coldMerge.phases,
      replaceCold: coldReplace.phases,
    },
    insertAndCheckpointSeconds: insertSeconds,
    importMergeVsInsert: insertSeconds / importSeconds,
    importReplaceVsInsert: insertSeconds / importReplaceSeconds,
    jsonBytes: json.bytes,
    jsonExportSeconds: jsonSeconds,
    nodeStringifyWriteSeconds: nodeJsonSeconds,
    jsonVsNode: nodeJsonSeconds === null ? null : nodeJsonSeconds / jsonSeconds,
  }
  console.log(JSON.stringify(result, null, 2))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

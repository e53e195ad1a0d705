#!/usr/bin/env node
// Export/import benchmark: the `annvault` bundle against the disk's own
// sequential write (write + fsync) and read rates, and JSON export against
// `JSON.stringify` + `fs.writeFileSync` of the same data in Node; import
// (merge, and replace) also against the store's own insert + checkpoint of
// the same points; every reference measured in the same run, on the same disk.
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

  // Sequential read of the reference, then import of the bundle into an empty store. Both files
  // were just written, so both reads may come from the page cache: same conditions, no cache drop
  // (Node cannot reach posix_fadvise).
  t = now()
  const rfd = fs.openSync(reference, 'r')
  const readBuffer = Buffer.alloc(1 << 20)
  while (fs.readSync(rfd, readBuffer, 0, readBuffer.length, null) > 0);
  fs.closeSync(rfd)
  const diskReadSeconds = now() - t
  const target = await createVectorStore({
    collectionName: 'target', dimension: DIM, persistencePath: path.join(ROOT, 'store'), annAlgorithm: 'flat', durability: 'flush',
  })
  t = now()
  await target.store.import(bundle)
  const importSeconds = now() - t
  // mode 'replace' installs the file as one checkpoint (no WAL record per point).
  t = now()
  await target.store.import(bundle, { mode: 'replace' })
  const importReplaceSeconds = now() - t
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
  t = now()
  const text = JSON.stringify({ dimension: DIM, points: vectors.map((v, i) => ({ id: ids[i], vector: Array.from(v), payload: payloads[i] })) })
  fs.writeFileSync(path.join(ROOT, 'node.json'), text)
  const nodeJsonSeconds = now() - t

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
    importMBps: mb(bytes, importSeconds),
    diskReadMBps: mb(bytes, diskReadSeconds),
    importVsDiskRead: diskReadSeconds / importSeconds,
    importReplaceMBps: mb(bytes, importReplaceSeconds),
    importReplaceVsDiskRead: diskReadSeconds / importReplaceSeconds,
    insertAndCheckpointSeconds: insertSeconds,
    importMergeVsInsert: insertSeconds / importSeconds,
    importReplaceVsInsert: insertSeconds / importReplaceSeconds,
    jsonBytes: json.bytes,
    jsonExportSeconds: jsonSeconds,
    nodeStringifyWriteSeconds: nodeJsonSeconds,
    jsonVsNode: nodeJsonSeconds / jsonSeconds,
  }
  console.log(JSON.stringify(result, null, 2))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

#!/usr/bin/env node
// DatabasePersistence: bytes and time of a full save() against
// saveIncremental() after 1 % of the points changed (a third updated, a
// third deleted, a third inserted), on 100,000 × 384 by default, for each
// format. The reference is the full save measured in the same run, on the
// same disk; the target (issue #15) is delta bytes ≤ 5 % of full-save bytes.
//
//   node bench/database-persistence.js [--n 100000] [--dim 384] [--formats binary,json,sqlite] [--dir <tmp>]
//
// Prints one JSON object: per format, full and incremental bytes (measured
// with statSync on the files written) and milliseconds, and their ratios.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { VectorDB, DatabasePersistence } = require('..')

const args = process.argv.slice(2)
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : fallback
}
const N = Number(arg('n', 100000))
const DIM = Number(arg('dim', 384))
const FORMATS = String(arg('formats', 'binary,json,sqlite')).split(',')
const ROOT = fs.mkdtempSync(path.join(arg('dir', os.tmpdir()), 'annvault-dbp-bench-'))
const now = () => Number(process.hrtime.bigint()) / 1e6

async function measure(format) {
  let seed = 12345
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1
  const db = new VectorDB({ dimension: DIM, annAlgorithm: 'flat' })
  await db.connect()
  for (let i = 0; i < N; i += 5000) {
    const count = Math.min(5000, N - i)
    const vectors = Array.from({ length: count }, () => Float32Array.from({ length: DIM }, random))
    const ids = vectors.map((_, k) => i + k)
    await db.insert(vectors, ids, ids.map((id) => ({ id, title: `doc ${id}` })))
  }
  const baseDir = path.join(ROOT, format)
  const p = new DatabasePersistence(db, { baseDir, format })
  let t = now()
  const full = await p.save()
  const fullMs = now() - t
  const fullBytes = fs.statSync(path.join(baseDir, full.file)).size

  const changes = Math.round(N / 100)
  for (let k = 0; k < changes; k++) {
    const id = (k * 7919) % N // distinct for k < N (7919 is prime): no update of a deleted id
    if (k % 3 === 0) await db.update(id, Float32Array.from({ length: DIM }, random), { id, title: 'updated' })
    else if (k % 3 === 1) await db.delete(id)
    else await db.insert([Float32Array.from({ length: DIM }, random)], [N + k], [{ id: N + k, title: 'new' }])
  }
  t = now()
  const delta = await p.saveIncremental()
  const incrementalMs = now() - t
  if (delta.kind !== 'incremental') throw new Error(`expected an incremental save, got ${JSON.stringify(delta)}`)
  const incrementalBytes = fs.statSync(path.join(baseDir, delta.file)).size

  t = now()
  const other = new VectorDB({ dimension: DIM, annAlgorithm: 'flat' })
  await p.shutdown()
  const q = new DatabasePersistence(other, { baseDir, format })
  await q.load()
  const loadMs = now() - t
  if ((await other.count()) !== (await db.count())) throw new Error('load lost points')
  await q.shutdown()
  await db.disconnect()
  await other.disconnect()
  return {
    format,
    fullBytes,
    fullMs: Math.round(fullMs),
    incrementalBytes,
    incrementalMs: Math.round(incrementalMs),
    upserts: delta.upserts,
    deletes: delta.deletes,
    bytesRatio: Number((incrementalBytes / fullBytes).toFixed(4)),
    timeRatio: Number((incrementalMs / fullMs).toFixed(4)),
    loadChainMs: Math.round(loadMs),
  }
}

;(async () => {
  const results = []
  for (const format of FORMATS) results.push(await measure(format))
  console.log(JSON.stringify({ n: N, dim: DIM, changedPercent: 1, results }, null, 2))
  fs.rmSync(ROOT, { recursive: true, force: true })
})().catch((error) => {
  console.error(error)
  process.exit(1)
})

#!/usr/bin/env node
// Named snapshots: createSnapshot on a collection of 10,000 and of 100,000
// points (× 384 by default), the ratio of the two, and its time once many
// snapshots exist. Reference measured in the same run, on the same disk:
// what a snapshot by copy would cost, copyFileSync + fsync of the
// collection's checkpoint file.
//
//   node bench/snapshots.js [--sizes 10000,100000] [--dim 384] [--repeat 7] [--dir <tmp>]
//
// Each size: insert, checkpoint, one createSnapshot timed right away
// (`firstAfterLoadMs`: its fsyncs then also wait for the kernel to write back
// the bulk load), then `sync` (coreutils) so the disk is quiet, then `repeat`
// rounds of (one small insert, createSnapshot), median reported; the same
// with 30 more snapshots present; then restoreSnapshot once. Prints one JSON
// object.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { createVectorStore } = require('..')

const m = require('./lib/measure')

const options = m.parseArgs(
  process.argv.slice(2),
  { sizes: '10000,100000', dim: 384, repeat: 7, dir: os.tmpdir() },
  'node bench/snapshots.js [--sizes 10000,100000] [--dim 384] [--repeat 7] [--dir <tmp>]',
)
const SIZES = String(options.sizes).split(',').map(Number)
const DIM = options.dim
const REPEAT = options.repeat
const ROOT = fs.mkdtempSync(path.join(options.dir, 'annvault-snapshot-bench-'))
const { now, median } = m

async function measure(n) {
  let seed = n
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1
  const { manager, store } = await createVectorStore({
    collectionName: 'bench',
    dimension: DIM,
    persistencePath: path.join(ROOT, String(n)),
    annAlgorithm: 'flat',
    durability: 'flush',
  })
  for (let i = 0; i < n; i += 5000) {
    const count = Math.min(5000, n - i)
    const vectors = Array.from({ length: count }, () => Float32Array.from({ length: DIM }, random))
    const ids = vectors.map((_, k) => i + k)
    await store.insert(vectors, ids, ids.map((id) => ({ id, title: `doc ${id}` })))
  }
  await store.checkpoint()
  const dir = path.join(ROOT, String(n), 'bench')
  const checkpoint = fs.readdirSync(dir).find((f) => f.startsWith('snapshot-'))
  const checkpointBytes = fs.statSync(path.join(dir, checkpoint)).size

  let t = now()
  await store.createSnapshot('first')
  const firstAfterLoadMs = now() - t
  execFileSync('sync')

  const times = []
  let last
  for (let k = 0; k < REPEAT; k++) {
    await store.insert([Float32Array.from({ length: DIM }, random)], [`late-${k}`], [{ k }])
    const t = now()
    last = await store.createSnapshot(`s${k}`)
    times.push(now() - t)
  }
  // With many snapshots already there.
  for (let k = 0; k < 30; k++) await store.createSnapshot(`filler${k}`)
  const crowded = []
  for (let k = 0; k < REPEAT; k++) {
    await store.insert([Float32Array.from({ length: DIM }, random)], [`later-${k}`], [{ k }])
    const t = now()
    await store.createSnapshot(`c${k}`)
    crowded.push(now() - t)
  }

  // Reference 1: one small durable write on the same disk (write 4 KiB, fdatasync), the unit a
  // snapshot's cost is made of (it is a fixed number of fsyncs, see README).
  const fsyncs = []
  const probe = path.join(ROOT, `probe-${n}`)
  const pfd = fs.openSync(probe, 'w')
  for (let k = 0; k < 15; k++) {
    const t1 = now()
    fs.writeSync(pfd, Buffer.alloc(4096, k))
    fs.fdatasyncSync(pfd)
    fsyncs.push(now() - t1)
  }
  fs.closeSync(pfd)
  fs.rmSync(probe)

  // Reference 2: copying the checkpoint file durably, as a copy-based snapshot must.
  const copies = []
  for (let k = 0; k < 3; k++) {
    const target = path.join(ROOT, `copy-${n}-${k}`)
    const t = now()
    fs.copyFileSync(path.join(dir, checkpoint), target)
    const fd = fs.openSync(target, 'r+')
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    copies.push(now() - t)
    fs.rmSync(target)
  }

  t = now()
  await store.restoreSnapshot(last.id)
  const restoreMs = now() - t
  const count = await store.count()
  await manager.disconnect()
  return {
    points: n,
    checkpointMB: +(checkpointBytes / 1e6).toFixed(1),
    firstAfterLoadMs: +firstAfterLoadMs.toFixed(2),
    createMs: +median(times).toFixed(2),
    createMsAll: times.map((x) => +x.toFixed(2)),
    createMsWith30More: +median(crowded).toFixed(2),
    copyCheckpointMs: +median(copies).toFixed(2),
    fsyncMs: +median(fsyncs).toFixed(2),
    createInFsyncs: +(median(times) / median(fsyncs)).toFixed(1),
    restoreMs: +restoreMs.toFixed(1),
    restoredCount: count,
    snapshotBytes: last.bytes,
  }
}

async function main() {
  const results = []
  for (const n of SIZES) results.push(await measure(n))
  const [small, large] = [results[0], results[results.length - 1]]
  console.log(
    JSON.stringify(
      {
        dim: DIM,
        repeat: REPEAT,
        results,
        ratioLargeToSmall: +(large.createMs / small.createMs).toFixed(2),
        largeVsCopy: +(large.createMs / large.copyCheckpointMs).toFixed(3),
      },
      null,
      2,
    ),
  )
  fs.rmSync(ROOT, { recursive: true, force: true })
}

main().catch((error) => {
  console.error(error)
  fs.rmSync(ROOT, { recursive: true, force: true })
  process.exit(1)
})

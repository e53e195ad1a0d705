#!/usr/bin/env node
// Repeated imports of one `annvault` bundle into one store, for comparing two
// builds of the import path: the median of --reps imports (the file is in the
// page cache after the first), and each import's phases from its progress
// events. Run it for each build in turn, alternating, on the same machine.
//
//   node bench/import-repeat.js [--n 100000] [--dim 384] [--reps 5] [--mode replace|merge] [--dir <tmp>]
//
// Prints one JSON object: every import's seconds and phases, and the median.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createVectorStore } = require('..')
const m = require('./lib/measure')

const options = m.parseArgs(
  process.argv.slice(2),
  { n: 100000, dim: 384, reps: 5, mode: 'replace', dir: os.tmpdir() },
  'node bench/import-repeat.js [--n 100000] [--dim 384] [--reps 5] [--mode replace|merge] [--dir <tmp>]',
)
const ROOT = fs.mkdtempSync(path.join(options.dir, 'annvault-import-bench-'))
const now = () => Number(process.hrtime.bigint()) / 1e9

async function main() {
  const { n: N, dim: DIM } = options
  let seed = 1
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1
  const config = (name) => ({ collectionName: name, dimension: DIM, persistencePath: ROOT, annAlgorithm: 'flat', durability: 'flush' })
  const source = await createVectorStore(config('source'))
  for (let i = 0; i < N; i += 5000) {
    const vectors = Array.from({ length: Math.min(5000, N - i) }, () => Float32Array.from({ length: DIM }, random))
    await source.store.insert(vectors, vectors.map((_, j) => i + j), vectors.map((_, j) => ({ i: i + j, title: `doc ${i + j}` })))
  }
  const bundle = path.join(ROOT, 'points.avb')
  const { bytes } = await source.store.export(bundle)
  await source.manager.disconnect()
  const target = await createVectorStore(config('target'))
  const runs = []
  for (let r = 0; r < options.reps; r++) {
    const marks = []
    const start = now()
    await target.store.import(bundle, {
      mode: options.mode,
      onProgress: (e) => {
        if (e.current === 0) marks.push([e.phase, now()])
      },
    })
    const end = now()
    const phases = {}
    marks.forEach(([phase, at], i) => {
      phases[phase] = Number(((marks[i + 1]?.[1] ?? end) - at).toFixed(3))
    })
    runs.push({ seconds: Number((end - start).toFixed(3)), phases })
  }
  await target.manager.disconnect()
  fs.rmSync(ROOT, { recursive: true, force: true })
  const median = m.median(runs.map((r) => r.seconds))
  console.log(JSON.stringify({ points: N, dimension: DIM, mode: options.mode, bundleBytes: bytes, medianSeconds: median, medianMBps: bytes / 1e6 / median, runs }, null, 2))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

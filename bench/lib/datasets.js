// Benchmark datasets and their exact ground truth.
//
// - `real`: the real-text dataset (20,000 × 384 MiniLM embeddings of
//   docstrings, 500 queries) from ../shared/data, or ANNVAULT_DATASET.
// - `clustered-<n>x<dim>`: unit vectors drawn around 100 random centres from
//   a fixed seed, 500 queries drawn the same way (not in the data).
//
// Every point i carries the payload { i, pct: i % 100, quarter: i % 4, ... }:
// the filters { pct: 7 } (1 % of the points) and { quarter: 1 } (25 %) are
// the benchmark's filtered searches. Exact top-10 for the unfiltered and both
// filtered searches is computed once (on every core) and cached under
// bench/.cache/ (git-ignored).
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { log, now } = require('./measure')
const { mulberry32 } = require('./random')

const CACHE = path.join(__dirname, '..', '.cache')
const K = 10
const QUERIES = 500
const FILTERS = {
  none: { filter: undefined, keep: () => true, label: 'no filter' },
  pct1: { filter: { pct: 7 }, keep: (i) => i % 100 === 7, label: '1 % filter { pct: 7 }' },
  quarter: { filter: { quarter: 1 }, keep: (i) => i % 4 === 1, label: '25 % filter { quarter: 1 }' },
}

function dataDir() {
  const candidates = [process.env.ANNVAULT_DATASET, path.join(__dirname, '..', '..', '..', 'shared', 'data'), '/work/shared/data']
  return candidates.find((d) => d && fs.existsSync(path.join(d, 'docs-384.f32')))
}

function readF32(file) {
  const bytes = fs.readFileSync(file)
  const copy = new ArrayBuffer(bytes.length)
  new Uint8Array(copy).set(bytes)
  return new Float32Array(copy)
}

/** Approximately normal, from the sum of uniforms. */
function gaussian(random) {
  return (random() + random() + random() + random() - 2) * 1.732
}

function clustered(n, dim, seed) {
  const random = mulberry32(seed)
  const clusters = 100
  const centres = new Float32Array(clusters * dim)
  for (let i = 0; i < centres.length; i++) centres[i] = random() * 2 - 1
  const draw = (count) => {
    const out = new Float32Array(count * dim)
    for (let r = 0; r < count; r++) {
      const c = Math.floor(random() * clusters)
      let norm = 0
      for (let d = 0; d < dim; d++) {
        const x = centres[c * dim + d] + gaussian(random) * 0.45
        out[r * dim + d] = x
        norm += x * x
      }
      const scale = 1 / Math.sqrt(norm)
      for (let d = 0; d < dim; d++) out[r * dim + d] *= scale
    }
    return out
  }
  const data = draw(n)
  const queries = draw(QUERIES)
  return { data, queries }
}

const WORDS = ['vector', 'index', 'search', 'payload', 'durable', 'store', 'graph', 'query', 'cluster', 'embedding', 'node', 'recall']

/**
 * Loads `spec`: 'real' or 'clustered-<n>x<dim>'. Returns
 * { name, spec, dim, rows, data, queries, payload(i), describe }.
 */
function loadDataset(spec) {
  if (spec === 'real') {
    const dir = dataDir()
    if (!dir) throw new Error('the real-text dataset (../shared/data/docs-384.f32) is not on this machine; set ANNVAULT_DATASET')
    const dim = 384
    const data = readF32(path.join(dir, 'docs-384.f32'))
    const queries = readF32(path.join(dir, 'queries-384.f32'))
    const docs = fs
      .readFileSync(path.join(dir, 'docs.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line))
    const rows = data.length / dim
    return {
      spec,
      name: `real-text, ${rows.toLocaleString('en-US')} × ${dim} (MiniLM docstrings, ${queries.length / dim} queries)`,
      dim,
      rows,
      data,
      queries,
      payload: (i) => ({ i, pct: i % 100, quarter: i % 4, source: docs[i]?.source ?? '', text: docs[i]?.text ?? '' }),
    }
  }
  const match = /^clustered-(\d+)x(\d+)$/.exec(spec)
  if (!match) throw new Error(`unknown dataset '${spec}' (expected 'real' or 'clustered-<n>x<dim>')`)
  const rows = Number(match[1])
  const dim = Number(match[2])
  const { data, queries } = clustered(rows, dim, 20261123 + dim)
  return {
    spec,
    name: `clustered synthetic, ${rows.toLocaleString('en-US')} × ${dim} (100 centres, seed ${20261123 + dim}, ${QUERIES} queries)`,
    dim,
    rows,
    data,
    queries,
    payload: (i) => ({
      i,
      pct: i % 100,
      quarter: i % 4,
      source: `synthetic/${i % 97}`,
      text: `${WORDS[i % WORDS.length]} ${WORDS[(i >> 3) % WORDS.length]} document ${i}`,
    }),
  }
}

const row = (array, dim, i) => array.subarray(i * dim, (i + 1) * dim)

/**
 * Exact top-K (cosine; all vectors are unit length, so the dot product) of
 * every query, without filter and with each filter: { none, pct1, quarter },
 * each an array of id arrays. Cached in bench/.cache/truth-<spec>.json.
 */
async function groundTruth(dataset) {
  fs.mkdirSync(CACHE, { recursive: true })
  const file = path.join(CACHE, `truth-${dataset.spec}.json`)
  if (fs.existsSync(file)) {
    const cached = JSON.parse(fs.readFileSync(file, 'utf8'))
    if (cached.rows === dataset.rows && cached.dim === dataset.dim && cached.k === K) return cached.truth
  }
  const queries = dataset.queries.length / dataset.dim
  const workers = Math.max(1, Math.min(os.cpus().length, 8))
  log(`exact ground truth for ${queries} queries over ${dataset.rows} vectors on ${workers} threads (cached afterwards)`)
  const start = now()
  const shared = new SharedArrayBuffer(dataset.data.byteLength)
  new Float32Array(shared).set(dataset.data)
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const from = Math.floor((queries * w) / workers)
      const to = Math.floor((queries * (w + 1)) / workers)
      const mine = dataset.queries.slice(from * dataset.dim, to * dataset.dim)
      return new Promise((resolve, reject) => {
        const worker = new Worker(path.join(__dirname, 'truth-worker.js'), {
          workerData: { data: shared, queries: mine, dim: dataset.dim, k: K },
        })
        worker.once('message', resolve)
        worker.once('error', reject)
      })
    }),
  )
  const truth = { none: [], pct1: [], quarter: [] }
  for (const part of parts) for (const key of Object.keys(truth)) truth[key].push(...part[key])
  fs.writeFileSync(file, JSON.stringify({ rows: dataset.rows, dim: dataset.dim, k: K, truth }))
  log(`  done in ${((now() - start) / 1000).toFixed(1)} s`)
  return truth
}

/** Mean recall@K of `results` (arrays of ids per query) against `truth`. */
function recallAt(results, truth) {
  let found = 0
  let expected = 0
  for (let q = 0; q < truth.length; q++) {
    const wanted = new Set(truth[q])
    for (const id of results[q].slice(0, K)) if (wanted.has(Number(id))) found++
    expected += truth[q].length
  }
  return found / expected
}

module.exports = { loadDataset, groundTruth, recallAt, row, mulberry32, readF32, FILTERS, K }

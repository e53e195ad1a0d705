#!/usr/bin/env node
// annvault's benchmark suite (`npm run bench`): for each dataset, annvault
// and hnswlib-node side by side (each in a process of its own), set against
// references measured in the same run on the same disk (raw fdatasync, raw
// file read); then the two engines' search head to head in one process
// (bench/versus.js: alternating blocks of queries, so that the machine's
// drift hits both alike); then the storage benchmark (bench/storage.js). A
// table per dataset on stdout, or one JSON object with --json. See
// bench/README.md.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDataset, groundTruth } = require('./lib/datasets')
const { fmt, log, parseArgs, textTable } = require('./lib/measure')

const DATASETS = { real: 'real', '100k': 'clustered-100000x384', '1536': 'clustered-20000x1536' }
const USAGE = [
  'usage: npm run bench -- [options]        (or: node bench/run.js [options], after npm run build)',
  '  --datasets real,100k,1536   which datasets: real (20,000 × 384 real text), 100k (clustered 100,000 × 384),',
  '                              1536 (clustered 20,000 × 1536), or clustered-<n>x<dim>; default: all three',
  '  --n N --dim D               one clustered dataset of N × D instead of --datasets',
  '  --engines annvault,hnswlib  default: both',
  '  --ef 16,24,32,48,64,96,128  efSearch values of the search sweep',
  '  --durability fsync|flush    annvault durability (default fsync)',
  '  --algorithm auto|hnsw|flat  annvault annAlgorithm (default auto)',
  '  --quantization auto|i8|f16|f32   annvault hnsw.quantization (default auto)',
  '  --m 16 --ef-construction 100 --ef-search 64   graph parameters, the same for both engines',
  '  --inserts 500               annvault single inserts (hnswlib-node: --hnswlib-inserts 100)',
  '  --rounds 4                  rounds of the head-to-head search (bench/versus.js)',
  '  --no-versus                 skip the head-to-head search',
  '  --no-restart                skip the restart flow (bench/restart.js)',
  '  --no-storage                skip bench/storage.js',
  '  --json                      one JSON object on stdout (tables go to stderr)',
].join('\n')

const options = parseArgs(
  process.argv.slice(2),
  {
    datasets: 'real,100k,1536',
    n: 0,
    dim: 0,
    engines: 'annvault,hnswlib',
    ef: '16,24,32,48,64,96,128',
    durability: 'fsync',
    algorithm: 'auto',
    quantization: 'auto',
    m: 16,
    efConstruction: 100,
    efSearch: 64,
    inserts: 500,
    hnswlibInserts: 100,
    rounds: 4,
    noVersus: false,
    noRestart: false,
    noStorage: false,
    json: false,
  },
  USAGE,
)

function runChild(script, args) {
  const child = spawnSync(process.execPath, [path.join(__dirname, script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
  if (child.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (exit ${child.status ?? child.signal})`)
  const lines = child.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

/** The best QPS among efSearch settings reaching `recall`, and at which ef. */
function qpsAtRecall(search, recall) {
  const ok = (search ?? []).filter((s) => s.recall >= recall)
  if (ok.length === 0) return null
  return ok.reduce((best, s) => (s.qps > best.qps ? s : best))
}

function compare(a, h, versus) {
  const ratio = (x, y) => (Number.isFinite(x) && Number.isFinite(y) && y > 0 ? x / y : NaN)
  const atA = qpsAtRecall(a?.search, 0.95)
  const atH = qpsAtRecall(h?.search, 0.95)
  const side = (name) => versus?.sweep.map((s) => ({ ef: s.ef, ...s[name] }))
  const vA = qpsAtRecall(side('annvault'), 0.95)
  const vH = qpsAtRecall(side('hnswlib'), 0.95)
  return {
    ingestVsHnswlib: ratio(a?.ingest?.perSecond, h?.ingest?.perSecond),
    searchQpsAtRecall95: { annvault: atA, hnswlib: atH, ratio: ratio(atA?.qps, atH?.qps) },
    headToHeadQpsAtRecall95: versus ? { annvault: vA, hnswlib: vH, ratio: ratio(vA?.qps, vH?.qps) } : undefined,
    durableInsertsVsFdatasync: a?.singleInserts?.ratioToFdatasync,
    singleInsertsVsHnswlib: ratio(a?.singleInserts?.perSecond, h?.singleInserts?.perSecond),
    reopenVsRawRead: a?.reopen?.ratioToRawRead,
    reopenMs: a?.reopen?.ms,
    reopenRebuilt: a?.reopen?.rebuilt,
  }
}

function report(entry) {
  const { dataset, annvault: a, hnswlib: h, comparison: c } = entry
  const hv = (f) => (h && !h.unavailable ? f(h) : h?.unavailable ? 'not installed' : '')
  const rows = []
  rows.push([
    `bulk ingest, batches of 1,000, graph built + persisted`,
    a ? `${fmt.rate(a.ingest.perSecond)} (${a.ingest.seconds.toFixed(2)} s)` : '',
    hv((x) => `${fmt.rate(x.ingest.perSecond)} (${x.ingest.seconds.toFixed(2)} s; writeIndex once)`),
    fmt.ratio(c.ingestVsHnswlib),
  ])
  const efs = new Set([...(a?.search ?? []), ...(h?.search ?? [])].map((s) => s.ef))
  for (const ef of [...efs].sort((x, y) => x - y)) {
    const sa = a?.search?.find((s) => s.ef === ef)
    const sh = h?.search?.find((s) => s.ef === ef)
    rows.push([
      `search, efSearch ${ef}: recall@10, queries/s`,
      sa ? `${fmt.recall(sa.recall)}, ${fmt.rate(sa.qps)}` : '',
      sh ? `${fmt.recall(sh.recall)}, ${fmt.rate(sh.qps)}` : hv(() => ''),
      sa && sh ? fmt.ratio(sa.qps / sh.qps) : '',
    ])
  }
  const at = c.searchQpsAtRecall95
  rows.push([
    'best queries/s at recall@10 ≥ 0.95',
    at.annvault ? `${fmt.rate(at.annvault.qps)} (ef ${at.annvault.ef})` : 'none',
    at.hnswlib ? `${fmt.rate(at.hnswlib.qps)} (ef ${at.hnswlib.ef})` : hv(() => 'none'),
    fmt.ratio(at.ratio),
  ])
  for (const v of entry.versus?.sweep ?? []) {
    rows.push([
      `head to head (one process, alternating blocks), efSearch ${v.ef}`,
      `${fmt.recall(v.annvault.recall)}, ${fmt.rate(v.annvault.qps)}`,
      `${fmt.recall(v.hnswlib.recall)}, ${fmt.rate(v.hnswlib.qps)}`,
      fmt.ratio(v.ratio),
    ])
  }
  const vs = c.headToHeadQpsAtRecall95
  if (vs) {
    rows.push([
      'head to head: best queries/s at recall@10 ≥ 0.95',
      vs.annvault ? `${fmt.rate(vs.annvault.qps)} (ef ${vs.annvault.ef})` : 'none',
      vs.hnswlib ? `${fmt.rate(vs.hnswlib.qps)} (ef ${vs.hnswlib.ef})` : 'none',
      fmt.ratio(vs.ratio),
    ])
  }
  for (const key of ['pct1', 'quarter']) {
    const fa = a?.filtered?.[key]
    const fh = h?.filtered?.[key]
    rows.push([
      `filtered search, ${key === 'pct1' ? '1 %' : '25 %'} selective (ef ${fa?.ef ?? fh?.ef})`,
      fa ? `${fmt.recall(fa.recall)}, ${fmt.rate(fa.qps)}${fa.alwaysK ? '' : ' (< k hits!)'}` : '',
      fh ? `${fmt.recall(fh.recall)}, ${fmt.rate(fh.qps)}` : hv(() => ''),
      fa && fh ? fmt.ratio(fa.qps / fh.qps) : '',
    ])
  }
  if (a?.singleInserts) {
    const s = a.singleInserts
    rows.push([
      `reference: write 1,600 B + fdatasync`,
      `${fmt.rate(s.fdatasyncPerSecond)} (runs ${s.fdatasyncRuns.map((x) => Math.round(x)).join(', ')})`,
      '',
      '',
    ])
  }
  rows.push([
    'single inserts into the loaded collection, each awaited',
    a ? `${fmt.rate(a.singleInserts.perSecond)} (${a.singleInserts.durability}, ${fmt.ratio(a.singleInserts.ratioToFdatasync)} fdatasync; p50 ${fmt.us(a.singleInserts.p50Us)}, graph: ${a.singleInserts.algorithm})` : '',
    hv((x) => `${fmt.rate(x.singleInserts.perSecond)} (writeIndex after each; p50 ${fmt.us(x.singleInserts.p50Us)})`),
    fmt.ratio(c.singleInsertsVsHnswlib),
  ])
  rows.push([
    'reference: readFileSync of the files (warm)',
    a ? `${fmt.ms(a.rawRead.ms)} (${fmt.mib(a.rawRead.bytes)})` : '',
    hv((x) => `${fmt.ms(x.rawRead.ms)} (${fmt.mib(x.rawRead.bytes)})`),
    '',
  ])
  rows.push([
    'reopen + first search answered (median of 3)',
    a ? `${fmt.ms(a.reopen.ms)} (${fmt.ratio(a.reopen.ratioToRawRead)} raw read; ${a.reopen.rebuilt ? 'REBUILT the graph' : 'graph loaded, no rebuild'})` : '',
    hv((x) => `${fmt.ms(x.reopen.ms)} (${fmt.ratio(x.reopen.ratioToRawRead)} raw read)`),
    a && h?.reopen ? fmt.ratio(a.reopen.ms / h.reopen.ms) : '',
  ])
  rows.push([
    'peak RSS (dataset in JS included) / above the baseline',
    a ? `${fmt.mib(a.peakRssBytes)} / ${fmt.mib(a.peakRssBytes - a.baselineRssBytes)}` : '',
    hv((x) => `${fmt.mib(x.peakRssBytes)} / ${fmt.mib(x.peakRssBytes - x.baselineRssBytes)}`),
    '',
  ])
  rows.push([
    'bytes on disk',
    a ? `${fmt.mib(a.bytesOnDisk)} (vectors, payloads, graph)` : '',
    hv((x) => `${fmt.mib(x.bytesOnDisk)} (vectors, graph; no payloads)`),
    '',
  ])
  return [`## ${dataset.name}`, '', textTable(['measure', 'annvault', 'hnswlib-node', 'annvault ÷ hnswlib'], rows), ''].join('\n')
}

async function main() {
  const specs = options.n && options.dim ? [`clustered-${options.n}x${options.dim}`] : options.datasets.split(',').map((d) => DATASETS[d] ?? d)
  const engines = options.engines.split(',')
  const shared = [
    '--ef', options.ef, '--m', String(options.m), '--ef-construction', String(options.efConstruction),
    '--ef-search', String(options.efSearch),
  ]
  const results = {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', nproc: os.cpus().length, memoryBytes: os.totalmem(), node: process.version, platform: `${os.type()} ${os.release()}` },
    options,
    datasets: [],
  }
  const tables = []
  for (const spec of specs) {
    const dataset = loadDataset(spec)
    log(`dataset ${dataset.name}`)
    await groundTruth(dataset) // cached for the child processes
    const entry = { dataset: { spec, name: dataset.name, rows: dataset.rows, dim: dataset.dim } }
    const both = engines.includes('annvault') && engines.includes('hnswlib') && !options.noVersus
    const kept = both ? fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-versus-')) : ''
    try {
      const keep = (name) => (kept ? ['--keep', path.join(kept, name)] : [])
      if (engines.includes('annvault')) {
        entry.annvault = runChild('ann.js', [
          '--engine', 'annvault', '--dataset', spec, ...shared, '--inserts', String(options.inserts),
          '--durability', options.durability, '--algorithm', options.algorithm, '--quantization', options.quantization,
          ...keep('annvault'),
        ])
      }
      if (engines.includes('hnswlib')) {
        entry.hnswlib = runChild('ann.js', [
          '--engine', 'hnswlib', '--dataset', spec, ...shared, '--hnswlib-inserts', String(options.hnswlibInserts),
          ...keep('hnswlib.index'),
        ])
      }
      if (kept && !entry.hnswlib?.unavailable) {
        log(`search head to head (bench/versus.js)`)
        entry.versus = runChild('versus.js', [
          '--dataset', spec, '--annvault', path.join(kept, 'annvault'), '--hnswlib', path.join(kept, 'hnswlib.index'),
          '--ef', options.ef, '--rounds', String(options.rounds), '--m', String(options.m),
          '--ef-construction', String(options.efConstruction),
        ])
      }
    } finally {
      if (kept) fs.rmSync(kept, { recursive: true, force: true })
    }
    entry.comparison = compare(entry.annvault, entry.hnswlib?.unavailable ? undefined : entry.hnswlib, entry.versus)
    results.datasets.push(entry)
    const table = report(entry)
    tables.push(table)
    process.stderr.write(`\n${table}\n`)
  }
  if (!options.noRestart) {
    // The restart flow (issue 13) on the first dataset: ingest in one
    // process, open and query at once in the next; after a clean close, and
    // (annvault alone) after SIGKILL.
    results.restart = {}
    for (const stop of ['close', 'kill']) {
      log(`restart flow, stop: ${stop} (bench/restart.js)`)
      results.restart[stop] = runChild('restart.js', ['--dataset', specs[0], '--stop', stop, '--engines', engines.join(','), ...shared.slice(2)])
    }
  }
  if (!options.noStorage) {
    log('storage benchmark (bench/storage.js)')
    results.storage = runChild('storage.js', ['--json'])
  }
  if (options.json) process.stdout.write(`${JSON.stringify(results)}\n`)
  else process.stdout.write(`${tables.join('\n')}\n`)
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})

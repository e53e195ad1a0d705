// Vectors on disk against vectors in memory, on one collection (issue #19).
//
//   node bench/disk-vectors.js [--n 300000] [--dim 384] [--ef 64,128,256,512] [--dir DIR] [--keep] [--limit-mib M]
//
// 1. One process builds the collection (clustered set, fixed seed; batches of
//    5,000, `waitForIndex()`, `disconnect()`): a complete graph and one
//    checkpoint, in memory mode (the files are the same in both modes).
// 2. For each mode (`storage: { vectors: 'memory' | 'disk' }`), a fresh
//    process opens it and runs the queries, one per call: first with the
//    collection's files dropped from the page cache (cold: what a reopen
//    after a reboot, or on a machine whose memory went elsewhere, costs),
//    then a warm pass and a timed pass at each efSearch. Each process reads
//    only the queries and their exact top-10 (written by the parent), so its
//    resident set is the store's.
// Reported per mode: open time, queries/s and recall@10 cold and at each ef,
// and the resident set after the queries (anonymous memory, and file pages
// mapped in), against the raw f32 size of the vectors. Ratios disk / memory
// are from the same run.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { loadDataset, groundTruth, recallAt, row, K } = require('./lib/datasets')
const m = require('./lib/measure')

const USAGE = 'usage: node bench/disk-vectors.js [--n 300000] [--dim 384] [--ef 64,128,256,512] [--dir DIR] [--keep] [--limit-mib M] [--json]'
const CGROUP = '/sys/fs/cgroup/memory'

/** VmRSS, RssAnon and RssFile of this process, in bytes. */
function residentSet() {
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') }
}

/** Drops `dir`'s files from the page cache (GNU dd: a zero-length read with `nocache`). */
function dropCache(dir) {
  for (const { file } of m.filesIn(dir)) {
    spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'])
  }
}

async function build(options) {
  const dataset = loadDataset(`clustered-${options.n}x${options.dim}`)
  const { createVectorStore } = require('..')
  const { manager, store } = await createVectorStore({
    collectionName: 'disk',
    dimension: dataset.dim,
    persistencePath: options.dir,
    annAlgorithm: 'hnsw',
    durability: 'flush',
  })
  const start = m.now()
  const BATCH = 5000
  for (let from = 0; from < dataset.rows; from += BATCH) {
    const to = Math.min(dataset.rows, from + BATCH)
    const vectors = []
    const ids = []
    for (let i = from; i < to; i++) {
      vectors.push(row(dataset.data, dataset.dim, i))
      ids.push(i)
    }
    await store.insert(vectors, ids, ids.map((i) => ({ i })))
  }
  // Until the graph is complete and audited (the default timeout, 10 minutes, is too short at 1M on
  // two cores): a collection saved before its audit is audited again by the next open, which reads
  // every vector and would be measured here instead of the searches.
  const settled = await store.waitForIndex(4 * 3600 * 1000)
  if (!settled) throw new Error('the index did not settle in 4 hours')
  const index = (await store.stats()).index
  await manager.disconnect()
  return { buildS: (m.now() - start) / 1000, index }
}

async function query(options) {
  const { queries, truth, dim } = JSON.parse(fs.readFileSync(options.queries, 'utf8'))
  const rows = queries.map((q) => Float32Array.from(q))
  const { createVectorStore } = require('..')
  const before = residentSet()
  let start = m.now()
  const { manager, store } = await createVectorStore({
    collectionName: 'disk',
    dimension: dim,
    persistencePath: options.dir,
    annAlgorithm: 'hnsw',
    storage: { vectors: options.mode },
  })
  const openMs = m.now() - start
  const afterOpen = residentSet()
  const stats = await store.stats()
  const pass = async (ef) => {
    const results = []
    const t = m.now()
    for (const q of rows) results.push((await store.search(q, K, undefined, { efSearch: ef })).map((h) => h.id))
    const s = (m.now() - t) / 1000
    return { qps: rows.length / s, recall: recallAt(results, truth) }
  }
  const efs = options.ef.split(',').map(Number)
  start = m.now()
  const cold = await pass(efs[0])
  const afterCold = residentSet()
  const out = { mode: options.mode, openMs, cold, sweep: [], before, afterOpen, afterCold: null, vectorsInMemory: stats.vectorsInMemory, indexed: stats.index }
  for (const ef of efs) {
    await pass(ef)
    out.sweep.push({ ef, ...(await pass(ef)) })
  }
  out.afterCold = afterCold
  out.after = residentSet()
  await manager.disconnect()
  process.stdout.write(JSON.stringify(out))
}

async function main() {
  const options = m.parseArgs(process.argv.slice(2), { n: 300000, dim: 384, ef: '64,128,256,512', dir: '', keep: false, json: false, role: '', mode: '', queries: '', limitMib: 0 }, USAGE)
  if (options.role === 'build') return process.stdout.write(JSON.stringify(await build(options)))
  if (options.role === 'query') return query(options)

  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-disk-'))
  const spec = `clustered-${options.n}x${options.dim}`
  const dataset = loadDataset(spec)
  const truth = (await groundTruth(dataset)).none
  const queriesFile = path.join(dir, 'queries.json')
  const queries = []
  for (let q = 0; q < dataset.queries.length / dataset.dim; q++) queries.push(Array.from(row(dataset.queries, dataset.dim, q)))
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(queriesFile, JSON.stringify({ queries, truth, dim: dataset.dim }))
  const rawBytes = dataset.rows * dataset.dim * 4
  const child = (args, limitBytes = 0) => {
    let r
    if (limitBytes > 0) {
      // A memory cgroup of its own: the shell joins it, then becomes the child.
      const group = path.join(CGROUP, `annvault-bench-${process.pid}`)
      fs.mkdirSync(group, { recursive: true })
      fs.writeFileSync(path.join(group, 'memory.limit_in_bytes'), String(limitBytes))
      const command = `echo $$ > ${group}/cgroup.procs && exec "$0" "$@"`
      r = spawnSync('sh', ['-c', command, process.execPath, __filename, ...args], { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] })
      const failcnt = Number(fs.readFileSync(path.join(group, 'memory.failcnt'), 'utf8'))
      fs.rmdirSync(group)
      if (r.status !== 0) return { failed: r.signal ?? `exit ${r.status}`, failcnt }
      return { ...JSON.parse(r.stdout.toString()), failcnt }
    }
    r = spawnSync(process.execPath, [__filename, ...args], { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] })
    if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed (${r.status})`)
    return JSON.parse(r.stdout.toString())
  }
  const collection = path.join(dir, 'disk')
  if (!fs.existsSync(collection)) {
    m.log(`building ${spec} (graph complete, one checkpoint) in ${dir}`)
    const built = child(['--role', 'build', '--n', String(options.n), '--dim', String(options.dim), '--dir', dir])
    m.log(`  built in ${built.buildS.toFixed(1)} s: ${JSON.stringify(built.index)}`)
  }
  const results = {}
  for (const mode of ['memory', 'disk']) {
    dropCache(collection)
    m.log(`${mode}: open with the files out of the page cache, then ${queries.length} queries cold, then warm at ef ${options.ef}`)
    results[mode] = child(['--role', 'query', '--mode', mode, '--dir', dir, '--queries', queriesFile, '--ef', options.ef])
  }
  const limited = {}
  if (options.limitMib > 0) {
    if (!fs.existsSync(path.join(CGROUP, 'memory.limit_in_bytes'))) {
      m.log(`--limit-mib: no cgroup v1 memory controller at ${CGROUP}; skipped`)
    } else {
      for (const mode of ['memory', 'disk']) {
        dropCache(collection)
        m.log(`${mode}: the same, in a memory cgroup capped at ${options.limitMib} MiB`)
        limited[mode] = child(['--role', 'query', '--mode', mode, '--dir', dir, '--queries', queriesFile, '--ef', options.ef], options.limitMib * 1048576)
      }
    }
  }
  const best = (r) => r.sweep.filter((s) => s.recall >= 0.95).sort((a, b) => b.qps - a.qps)[0] ?? null
  const table = ['memory', 'disk'].map((mode) => {
    const r = results[mode]
    const b = best(r)
    return [
      mode,
      m.fmt.ms(r.openMs),
      `${m.fmt.rate(r.cold.qps)} (${m.fmt.recall(r.cold.recall)})`,
      ...r.sweep.map((s) => `${m.fmt.rate(s.qps)} (${m.fmt.recall(s.recall)})`),
      b ? `${m.fmt.rate(b.qps)} @ef ${b.ef}` : 'n/a',
      m.fmt.mib(r.afterOpen.rss - r.before.rss),
      m.fmt.mib(r.afterCold.rss - r.before.rss),
      m.fmt.mib(r.after.rss - r.before.rss),
      m.fmt.mib(r.after.anon - r.before.anon),
      m.fmt.mib(r.after.file - r.before.file),
      String(r.vectorsInMemory),
    ]
  })
  const [mem, disk] = [results.memory, results.disk]
  const ratios = {
    bestQps: best(disk) && best(mem) ? best(disk).qps / best(mem).qps : NaN,
    sweepQps: disk.sweep.map((s, i) => ({ ef: s.ef, ratio: s.qps / mem.sweep[i].qps })),
    coldQps: disk.cold.qps / mem.cold.qps,
    rss: (disk.after.rss - disk.before.rss) / (mem.after.rss - mem.before.rss),
    anon: (disk.after.anon - disk.before.anon) / (mem.after.anon - mem.before.anon),
    openMs: disk.openMs / mem.openMs,
    memoryRssOverRaw: (mem.after.rss - mem.before.rss) / rawBytes,
    diskRssOverRaw: (disk.after.rss - disk.before.rss) / rawBytes,
  }
  let text = [
    `${dataset.name}; raw f32 vectors ${m.fmt.mib(rawBytes)}; ${os.cpus().length} cores`,
    m.textTable(
      ['mode', 'open', 'cold q/s (recall)', ...options.ef.split(',').map((ef) => `ef ${ef} q/s (recall)`), 'best ≥ 0.95', 'RSS + open', 'RSS + cold pass', 'RSS + all passes', 'anon +', 'file +', 'vectors in RAM'],
      table,
    ),
    `disk / memory: best q/s ${m.fmt.ratio(ratios.bestQps)}; per ef ${ratios.sweepQps.map((s) => `${s.ef}: ${m.fmt.ratio(s.ratio)}`).join(', ')}; ` +
      `cold q/s ${m.fmt.ratio(ratios.coldQps)}; RSS ${m.fmt.ratio(ratios.rss)} (anon ${m.fmt.ratio(ratios.anon)}); open ${m.fmt.ratio(ratios.openMs)}`,
    `RSS over raw f32: memory ${m.fmt.ratio(ratios.memoryRssOverRaw)}, disk ${m.fmt.ratio(ratios.diskRssOverRaw)}`,
  ]
  for (const mode of Object.keys(limited)) {
    const r = limited[mode]
    text.push(
      r.failed
        ? `capped at ${options.limitMib} MiB, ${mode}: did not run (${r.failed}; limit hit ${r.failcnt} times)`
        : `capped at ${options.limitMib} MiB, ${mode}: open ${m.fmt.ms(r.openMs)}, cold ${m.fmt.rate(r.cold.qps)}, ` +
            r.sweep.map((s) => `ef ${s.ef} ${m.fmt.rate(s.qps)} (${m.fmt.recall(s.recall)})`).join(', ') +
            `; RSS + ${m.fmt.mib(r.after.rss - r.before.rss)} (anon ${m.fmt.mib(r.after.anon - r.before.anon)})`,
    )
  }
  text = text.join('\n')
  if (options.json) {
    process.stderr.write(`${text}\n`)
    process.stdout.write(JSON.stringify({ spec, rawBytes, results, ratios, limitMib: options.limitMib, limited }, null, 2))
  } else process.stdout.write(`${text}\n`)
  if (!options.keep && !options.dir) fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

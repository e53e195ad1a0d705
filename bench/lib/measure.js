// Timing, memory and disk helpers shared by the benchmarks. Every reference
// measured here (fdatasync rate, raw read) runs in the same process and on
// the same directory as the workload it is compared with.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { performance } = require('node:perf_hooks')
const v8 = require('node:v8')
const vm = require('node:vm')

const now = () => performance.now()
const log = (message) => process.stderr.write(`[bench] ${message}\n`)

// A full GC before each timed phase, so that one phase's garbage is not
// collected inside another's timing.
v8.setFlagsFromString('--expose-gc')
const collectGarbage = vm.runInNewContext('gc')

/** Announces a timed phase and starts it with a clean heap. */
function phase(message) {
  log(message)
  collectGarbage()
}

/** Samples the process's RSS every 20 ms; `peak()` is the highest seen. */
function rssSampler() {
  let peak = process.memoryUsage().rss
  const sample = () => {
    const rss = process.memoryUsage().rss
    if (rss > peak) peak = rss
    return rss
  }
  const timer = setInterval(sample, 20)
  timer.unref()
  return { sample, peak: () => (sample(), peak), stop: () => clearInterval(timer) }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function latencySummary(samplesMs) {
  const sorted = Float64Array.from(samplesMs).sort()
  return { p50Us: percentile(sorted, 50) * 1000, p99Us: percentile(sorted, 99) * 1000, maxUs: sorted[sorted.length - 1] * 1000 }
}

/** Files directly in `dir` (recursively, for nested collection folders) with their sizes. */
function filesIn(dir) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesIn(full))
    else if (entry.isFile()) out.push({ path: full, bytes: fs.statSync(full).size })
  }
  return out
}

const bytesOf = (files) => files.reduce((sum, f) => sum + f.bytes, 0)

/** Reference: append `recordBytes` then fdatasync, `iterations` times, in `dir`. */
function rawFdatasync(dir, iterations, recordBytes = 1600) {
  const file = path.join(dir, `fdatasync-reference-${process.pid}.log`)
  const record = Buffer.alloc(recordBytes, 0x5a)
  const fd = fs.openSync(file, 'a')
  try {
    const start = now()
    for (let i = 0; i < iterations; i++) {
      fs.writeSync(fd, record)
      fs.fdatasyncSync(fd)
    }
    const seconds = (now() - start) / 1000
    return { iterations, recordBytes, seconds, perSecond: iterations / seconds, perOpUs: (seconds * 1e6) / iterations }
  } finally {
    fs.closeSync(fd)
    fs.rmSync(file, { force: true })
  }
}

/** Reference: read `files` with readFileSync; the median of `repeats` warm reads, in ms. */
function rawRead(files, repeats = 3) {
  const once = () => {
    const start = now()
    let total = 0
    for (const f of files) total += fs.readFileSync(f.path).length
    return { ms: now() - start, bytes: total }
  }
  const first = once()
  const warm = []
  for (let r = 0; r < repeats; r++) warm.push(once().ms)
  const ms = median(warm)
  return { firstMs: first.ms, ms, bytes: first.bytes, miBps: first.bytes / 1048576 / (ms / 1000) }
}

/**
 * Drops `file` from the page cache, so that the next read of it comes from the disk:
 * `posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file (Node cannot call it: a one-line
 * python3 does, or GNU dd's `iflag=nocache` where python3 is missing). Only clean pages go, so
 * the file must have been fsynced. Returns the pages still cached after (`fincore`, when it
 * exists; -1 otherwise) and how it was done.
 */
function dropFromPageCache(file) {
  const { spawnSync } = require('node:child_process')
  const script = 'import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nos.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)\nos.close(fd)'
  let method = 'posix_fadvise(DONTNEED) via python3'
  let run = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' })
  if (run.status !== 0) {
    method = 'dd iflag=nocache'
    run = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`cannot drop ${file} from the page cache: ${run.stderr}`)
  }
  const fin = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' })
  const cachedBytes = fin.status === 0 ? Number(fin.stdout.trim()) : -1
  return { method, cachedBytes }
}

/** Formats rows (arrays of strings) as an aligned text table. */
function textTable(header, rows) {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => String(row[c] ?? '').length)))
  const line = (cells) => cells.map((cell, c) => String(cell ?? '').padEnd(widths[c])).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const fmt = {
  rate: (x) => (Number.isFinite(x) ? `${Math.round(x).toLocaleString('en-US')}/s` : 'n/a'),
  ms: (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a'),
  us: (x) => (Number.isFinite(x) ? `${x.toFixed(0)} µs` : 'n/a'),
  ratio: (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a'),
  mib: (bytes) => (Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MiB` : 'n/a'),
  recall: (x) => (Number.isFinite(x) ? x.toFixed(4) : 'n/a'),
}

/** Parses `--name value` / `--flag` arguments against `spec` ({ name: default }). */
function parseArgs(argv, spec, usage) {
  const options = { ...spec }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${usage}\n`)
      process.exit(0)
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}\n${usage}`)
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    if (!(name in spec)) throw new Error(`unknown option ${arg}\n${usage}`)
    if (typeof spec[name] === 'boolean') {
      options[name] = true
      continue
    }
    const value = argv[++i]
    if (value === undefined) throw new Error(`${arg} needs a value`)
    if (typeof spec[name] === 'number') {
      const n = Number(value)
      if (!Number.isFinite(n) || n < 0) throw new Error(`${arg} must be a non-negative number`)
      options[name] = n
    } else options[name] = value
  }
  return options
}

module.exports = {
  now,
  log,
  phase,
  collectGarbage,
  rssSampler,
  percentile,
  median,
  latencySummary,
  filesIn,
  bytesOf,
  rawFdatasync,
  rawRead,
  dropFromPageCache,
  textTable,
  fmt,
  parseArgs,
}

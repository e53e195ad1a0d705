// Key-value adapters against better-sqlite3 12 and raw fdatasync, in one run
// on one disk:
//
//   durable set, one awaited at a time   SQLiteAdapter (WAL, synchronous=FULL) and NativeAdapter (the native
//                                        engine: WAL + group commit, fsync) vs better-sqlite3 (WAL,
//                                        synchronous=FULL, one autocommit transaction per set) vs raw fdatasync
//   durable set, 64 in flight            the same, 64 calls issued before any is awaited
//   get of a present key                 one awaited at a time vs better-sqlite3's synchronous get, Keyv 5 over
//                                        @keyv/sqlite 4 (sqlite3: async, on the libuv pool) and lmdb-js 3 (synchronous
//                                        get: measured bare, and wrapped in an async function and awaited as the
//                                        others are, which is what the Promise costs)
//
// better-sqlite3 blocks the event loop for every fsync; the longest time one call held the JS thread is
// reported beside the rates. Keyv and lmdb are populated in bulk (one transaction), and only read: their set is
// not the durable set measured here (lmdb-js resolves a put when committed, fsyncs later; @keyv/sqlite keeps
// SQLite's default rollback journal).
//
//   node bench/kv-adapters.js [--package DIR] [--dir DIR] [--sets 1000] [--gets 20000] [--rounds 10] [--json]
//
// The durable-set phases run interleaved (--rounds): each round gives every engine and the raw fdatasync its
// share in turn, so a disk whose fsync latency swings during the run weighs on all of them alike.
//
// --package: where to load annvault from (a release build, see bench/README.md); default the repository.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const m = require('./lib/measure')

const usage = 'node bench/kv-adapters.js [--package DIR] [--dir DIR] [--sets 1000] [--gets 20000] [--rounds 10] [--json]'
const options = m.parseArgs(
  process.argv.slice(2),
  { package: path.join(__dirname, '..'), dir: '', sets: 1000, gets: 20000, rounds: 10, json: false },
  usage,
)

const { DefaultPersistenceManager, NativeAdapter, SQLiteAdapter } = require(path.join(path.resolve(options.package), 'dist/persistence/index.js'))
const Database = require('better-sqlite3')
const { default: Keyv } = require('keyv')
const { default: KeyvSqlite } = require('@keyv/sqlite')
const lmdb = require('lmdb')

const INFLIGHT = 64
const value = (i) => ({ id: i, name: `user ${i}`, email: `user${i}@example.com`, tags: ['a', 'b'], score: i / 7 })

/**
 * Runs `work(call)`, where `call(f)` invokes one store method: returns the
 * phase's seconds and the longest time one call held the JS thread before
 * returning its promise (better-sqlite3 holds it through the fsync; a
 * monitorEventLoopDelay histogram cannot see that when every await resolves
 * in a microtask, the timer never getting a turn).
 */
async function timed(work) {
  let maxSyncMs = 0
  const call = (f) => {
    const t0 = m.now()
    const promise = f()
    maxSyncMs = Math.max(maxSyncMs, m.now() - t0)
    return promise
  }
  const start = m.now()
  await work(call)
  return { seconds: (m.now() - start) / 1000, maxSyncMs }
}

function openBetterSqlite(file) {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`CREATE TABLE IF NOT EXISTS app_data (
    key TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER) WITHOUT ROWID`)
  const upsert = db.prepare(`INSERT INTO app_data (key, kind, value, metadata, created_at, updated_at, expires_at)
    VALUES (?, 'json', ?, ?, ?, ?, NULL) ON CONFLICT(key) DO UPDATE SET value = excluded.value,
    metadata = excluded.metadata, updated_at = excluded.updated_at`)
  const get = db.prepare('SELECT value, metadata, created_at, updated_at FROM app_data WHERE key = ?')
  return {
    db,
    // Async wrappers, as an app would call it beside its other async work; each call blocks until its fsync.
    async set(key, v) {
      const now = Date.now()
      upsert.run(key, JSON.stringify(v), '{}', now, now)
    },
    async get(key) {
      const row = get.get(key)
      return row ? { value: JSON.parse(row.value), metadata: JSON.parse(row.metadata) } : null
    },
  }
}

/** The get phase of `phases` alone, for the read-only references. */
async function getPhase(name, get, results) {
  const n = options.sets
  m.phase(`${name}: ${options.gets} gets of present keys, one awaited at a time`)
  results[name] = {
    get: await timed(async (call) => {
      for (let i = 0; i < options.gets; i++) {
        const entry = await call(() => get(`user:${(i * 7919) % n}`))
        if (!entry) throw new Error('missing key')
      }
    }),
  }
}

async function readOnlyReferences(dir, results) {
  const n = options.sets
  const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(dir, 'keyv.sqlite')}` }) })
  m.phase(`Keyv + @keyv/sqlite: ${n} keys written`)
  for (let i = 0; i < n; i++) await keyv.set(`user:${i}`, value(i))
  await getPhase('Keyv + @keyv/sqlite', (key) => keyv.get(key), results)
  await keyv.disconnect()

  const db = lmdb.open({ path: path.join(dir, 'lmdb') })
  m.phase(`lmdb-js: ${n} keys written`)
  await db.transaction(() => {
    for (let i = 0; i < n; i++) db.put(`user:${i}`, value(i))
  })
  await db.flushed
  await getPhase('lmdb-js (awaited)', async (key) => db.get(key), results)
  m.phase(`lmdb-js: ${options.gets} synchronous gets`)
  const start = m.now()
  for (let i = 0; i < options.gets; i++) {
    if (!db.get(`user:${(i * 7919) % n}`)) throw new Error('missing key')
  }
  results['lmdb-js (sync, bare)'] = { get: { seconds: (m.now() - start) / 1000, maxSyncMs: 0 } }
  await db.close()
}

/** One slice [from, to) of a write phase on `store`, timed; `burst` issues INFLIGHT calls before awaiting. */
async function writeSlice(store, prefix, from, to, burst) {
  return timed(async (call) => {
    if (!burst) {
      for (let i = from; i < to; i++) await call(() => store.set(`${prefix}:${i}`, value(i)))
      return
    }
    for (let i = from; i < to; i += INFLIGHT) {
      const batch = []
      for (let j = i; j < Math.min(to, i + INFLIGHT); j++) batch.push(call(() => store.set(`${prefix}:${j}`, value(j))))
      await Promise.all(batch)
    }
  })
}

/**
 * The write phases, interleaved: `--rounds` rounds, each giving every engine
 * (and the raw fdatasync reference) its slice of the sets in turn, the order
 * rotating per round. The disk's fsync latency here swings by 2-5x within
 * seconds, so engines measured one after the other compare disk moods, not
 * engines; interleaved, each sees the same mix.
 */
async function writePhases(engines, rawFile, results) {
  const n = options.sets
  const rounds = Math.max(1, Math.min(options.rounds, n))
  const raw = { fd: fs.openSync(rawFile, 'a'), record: Buffer.alloc(1600, 0x5a), seconds: 0 }
  const rawSlice = (from, to) => {
    const start = m.now()
    for (let i = from; i < to; i++) {
      fs.writeSync(raw.fd, raw.record)
      fs.fdatasyncSync(raw.fd)
    }
    raw.seconds += (m.now() - start) / 1000
  }
  try {
    for (const [kind, prefix, burst] of [['serial', 'user', false], ['inflight', 'burst', true]]) {
      m.phase(`${n} durable sets ${burst ? `${INFLIGHT} in flight` : 'one awaited at a time'}, ${rounds} interleaved rounds: ${engines.map((e) => e.name).join(', ')}, raw fdatasync`)
      for (const e of engines) results[e.name][kind] = { seconds: 0, maxSyncMs: 0 }
      const turns = [...engines, null]
      for (let r = 0; r < rounds; r++) {
        const from = Math.floor((r * n) / rounds)
        const to = Math.floor(((r + 1) * n) / rounds)
        for (let t = 0; t < turns.length; t++) {
          const e = turns[(t + r) % turns.length]
          if (e === null) {
            if (!burst) rawSlice(from, to)
            continue
          }
          const slice = await writeSlice(e.store, prefix, from, to, burst)
          results[e.name][kind].seconds += slice.seconds
          results[e.name][kind].maxSyncMs = Math.max(results[e.name][kind].maxSyncMs, slice.maxSyncMs)
        }
      }
    }
  } finally {
    fs.closeSync(raw.fd)
    fs.rmSync(rawFile, { force: true })
  }
  return { iterations: n, perSecond: n / raw.seconds }
}

async function getPhases(engines, results) {
  for (const e of engines) {
    const n = options.sets
    m.phase(`${e.name}: ${options.gets} gets of present keys, one awaited at a time`)
    results[e.name].get = await timed(async (call) => {
      for (let i = 0; i < options.gets; i++) {
        const entry = await call(() => e.store.get(`user:${(i * 7919) % n}`))
        if (!entry) throw new Error('missing key')
      }
    })
  }
}

async function main() {
  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-kv-bench-'))
  fs.mkdirSync(dir, { recursive: true })
  const results = {}
  try {
    const better = openBetterSqlite(path.join(dir, 'better.db'))
    const manager = new DefaultPersistenceManager(new SQLiteAdapter({ filename: path.join(dir, 'annvault.db') }))
    await manager.init()
    const native = new DefaultPersistenceManager(new NativeAdapter({ path: path.join(dir, 'native') }))
    await native.init()
    const engines = [
      { name: 'better-sqlite3', store: better },
      { name: 'SQLiteAdapter', store: manager },
      { name: 'NativeAdapter', store: native },
    ]
    for (const e of engines) results[e.name] = {}
    const interleaved = await writePhases(engines, path.join(dir, `fdatasync-reference-${process.pid}.log`), results)
    await getPhases(engines, results)
    better.db.close()
    await manager.close()
    await native.close()

    await readOnlyReferences(dir, results)

    const fdatasyncPerSecond = interleaved.perSecond

    const rate = (count, phase) => count / phase.seconds
    const rows = []
    const summary = { fdatasyncPerSecond, rounds: options.rounds, engines: {} }
    for (const name of Object.keys(results)) {
      const r = results[name]
      const e = {
        serialPerSecond: r.serial ? rate(options.sets, r.serial) : null,
        inflightPerSecond: r.inflight ? rate(options.sets, r.inflight) : null,
        getPerSecond: rate(options.gets, r.get),
        maxSyncMs: { serial: r.serial?.maxSyncMs ?? null, inflight: r.inflight?.maxSyncMs ?? null, get: r.get.maxSyncMs },
      }
      summary.engines[name] = e
    }
    const ref = summary.engines['better-sqlite3']
    const nativeE = summary.engines.NativeAdapter
    const keyvGet = summary.engines['Keyv + @keyv/sqlite'].getPerSecond
    const lmdbGet = summary.engines['lmdb-js (awaited)'].getPerSecond
    const lmdbBare = summary.engines['lmdb-js (sync, bare)'].getPerSecond
    summary.nativeRatios = {
      serialVsBetterSqlite: nativeE.serialPerSecond / ref.serialPerSecond,
      serialVsFdatasync: nativeE.serialPerSecond / fdatasyncPerSecond,
      inflightVsBetterSqlite: nativeE.inflightPerSecond / ref.inflightPerSecond,
      getVsKeyvSqlite: nativeE.getPerSecond / keyvGet,
      getVsLmdbAwaited: nativeE.getPerSecond / lmdbGet,
      getVsLmdbBare: nativeE.getPerSecond / lmdbBare,
    }
    const opt = (x, f) => (x === null ? '—' : f(x))
    for (const [name, e] of Object.entries(summary.engines)) {
      rows.push([
        name,
        opt(e.serialPerSecond, m.fmt.rate),
        opt(e.serialPerSecond, (x) => m.fmt.ratio(x / ref.serialPerSecond)),
        opt(e.serialPerSecond, (x) => m.fmt.ratio(x / fdatasyncPerSecond)),
        opt(e.inflightPerSecond, m.fmt.rate),
        opt(e.inflightPerSecond, (x) => m.fmt.ratio(x / ref.inflightPerSecond)),
        m.fmt.rate(e.getPerSecond),
        m.fmt.ratio(e.getPerSecond / ref.getPerSecond),
        m.fmt.ratio(nativeE.getPerSecond / e.getPerSecond),
        `${opt(e.maxSyncMs.serial, (x) => x.toFixed(2))} / ${e.maxSyncMs.get.toFixed(2)} ms`,
      ])
    }
    const table = m.textTable(
      ['engine', 'set serial', 'vs better', 'vs fdatasync', `set ${INFLIGHT} in flight`, 'vs better', 'get', 'vs better', 'NativeAdapter get vs this', 'longest JS-thread hold (set / get)'],
      rows,
    )
    const text = `raw fdatasync (interleaved with the sets): ${m.fmt.rate(fdatasyncPerSecond)}\n${table}\n`
    if (options.json) {
      process.stderr.write(text)
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    } else process.stdout.write(text)
  } finally {
    if (!options.dir) fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

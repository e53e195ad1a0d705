// The `annvault` command line, run as users run it (`node bin/annvault.js …`, a child process)
// against collections made by the store in temp directories: what each command prints, what it
// leaves on disk, and its exit code (0 ok, 1 not found, 2 could not run).

import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createVectorStore } from '../index'
import { closed, damage, diskContents, inChild, randomVectors, tempDirs, waitForLine, walRecordsEnd, cli, cliJson as json } from './fixtures'

const dirs = tempDirs()
afterAll(() => dirs.cleanup())


/**
 * A persistence path with three collections: 'docs' (dimension 3, Cosine, checkpointed by a clean
 * close, then 2 more points left in the WAL by a process that exited without closing), 'graph'
 * (dimension 8, Euclidean, an HNSW graph saved with its snapshot) and 'zipped' (gzip snapshots).
 */
async function makeStores(): Promise<string> {
  const path = dirs.next()
  const docs = await createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: path })
  await docs.store.insert(
    [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
    ['a', 2, '2'],
    [{ kind: 'note', n: 1 }, { kind: 'doc', n: 2 }, { kind: 'doc', n: 3 }],
  )
  await docs.manager.disconnect()
  inChild(path, `await store.insert([[1, 1, 0], [0.9, 0.1, 0]], ['d', 'e'], [{ kind: 'note', n: 4 }, { kind: 'doc', n: 5 }])`)

  const graph = await createVectorStore({
    collectionName: 'graph',
    dimension: 8,
    distance: 'Euclidean',
    annAlgorithm: 'hnsw',
    persistencePath: path,
  })
  await graph.store.insert(randomVectors(200, 8, 7), Array.from({ length: 200 }, (_, i) => i), Array.from({ length: 200 }, () => ({})))
  await graph.manager.disconnect()

  const zipped = await createVectorStore({ collectionName: 'zipped', dimension: 2, compression: 'gzip', persistencePath: path })
  await zipped.store.insert([[1, 2]], ['z'], [{ big: 'x'.repeat(2000) }])
  await zipped.manager.disconnect()
  return path
}

let path: string
beforeAll(async () => {
  path = await makeStores()
}, 120_000)

describe('inspect', () => {
  test('--json: every collection with its count, dimension, distance, files, WAL, checkpoint and graph; nothing written', () => {
    const before = diskContents(path)
    const report = json(cli('inspect', path, '--json', '--quiet'))
    expect(diskContents(path)).toEqual(before)
    const byName = Object.fromEntries(report.collections.map((c: { name: string }) => [c.name, c]))
    expect(Object.keys(byName)).toEqual(['docs', 'graph', 'zipped'])

    const docs = byName.docs
    expect([docs.count, docs.dimension, docs.distance]).toEqual([5, 3, 'Cosine'])
    // The 2 points the child wrote are one WAL record, replayed on open; the snapshot holds 3.
    expect(docs.wal.replayedRecords).toBe(1)
    expect(docs.wal.sequence).toBe(2)
    expect(docs.snapshot).toEqual({ generation: 1, compression: 'none', points: 3 })
    expect(docs.wal.files).toEqual(readdirSync(join(path, 'docs')).filter((f) => f.startsWith('wal-')))
    // The records' bytes; the files also hold the zeros reserved after them (README, "Reserved log space").
    expect(docs.wal.bytes).toBe(docs.wal.files.reduce((sum: number, f: string) => sum + walRecordsEnd(join(path, 'docs', f)), 0))
    expect(typeof docs.lastCheckpoint.ms).toBe('number')
    expect(docs.index.saved).toBeNull()
    for (const file of docs.files) expect(file.bytes).toBe(statSync(join(path, 'docs', file.name)).size)
    expect(docs.files.map((f: { name: string }) => f.name).sort()).toEqual(readdirSync(join(path, 'docs')).sort())
    expect(docs.bytesOnDisk).toBe(docs.files.reduce((sum: number, f: { bytes: number }) => sum + f.bytes, 0))

    const graph = byName.graph
    expect([graph.count, graph.dimension, graph.distance]).toEqual([200, 8, 'Euclidean'])
    expect(graph.index.saved.labels).toBe(200)
    expect(graph.index.saved.quantization).toBe('f32')
    expect(graph.index.saved.files.some((f: string) => f.endsWith('.usearch'))).toBe(true)

    expect(byName.zipped.snapshot.compression).toBe('gzip')
  })

  test('text: one block per collection', () => {
    const result = cli('inspect', path, '--quiet')
    expect(result.status).toBe(0)
    expect(result.stderr).toBe('')
    expect(result.stdout).toMatch(/^docs {2}\(/m)
    expect(result.stdout).toMatch(/points\s+5\n\s+dimension\s+3\n\s+distance\s+Cosine/)
    expect(result.stdout).toMatch(/graph\s+saved with snapshot \d+: 200 labels, f32 vectors/)
    expect(result.stdout).toContain('compression gzip')
    expect(result.stdout).toContain('MANIFEST')
  })

  test('a collection directory itself, and --collection', () => {
    const one = json(cli('inspect', join(path, 'zipped'), '--json', '--quiet'))
    expect(one.collections.map((c: { name: string }) => c.name)).toEqual(['zipped'])
    const picked = json(cli('inspect', path, '--collection', 'graph', '--json', '--quiet'))
    expect(picked.collections.map((c: { name: string; count: number }) => [c.name, c.count])).toEqual([['graph', 200]])
  })

  test('progress: plain lines on stderr off a terminal, a cli-progress bar with --progress bar, nothing with --quiet', () => {
    const lines = cli('inspect', path, '--json')
    expect(lines.status).toBe(0)
    expect(lines.stderr.trim().split('\n')).toEqual([
      'annvault inspect: [1/3] opening docs',
      'annvault inspect: [2/3] opening graph',
      'annvault inspect: [3/3] opening zipped',
    ])
    JSON.parse(lines.stdout) // stdout stays the result alone
    const bar = cli('inspect', path, '--json', '--progress', 'bar')
    expect(bar.status).toBe(0)
    expect(bar.stderr).toMatch(/annvault inspect [░█]+ \d\/3/)
    JSON.parse(bar.stdout)
    expect(cli('inspect', path, '--json', '-q').stderr).toBe('')
  })
})

describe('search and get', () => {
  test('search: best first, higher-is-closer scores, -k, --filter, --vector @file', () => {
    const hits = json(cli('search', path, '-c', 'docs', '--vector', '[1, 0, 0]', '--json'))
    expect(hits.map((h: { id: unknown }) => h.id)).toEqual(['a', 'e', 'd', 2, '2'])
    const scores = hits.map((h: { score: number }) => h.score)
    expect(scores[0]).toBeCloseTo(1, 5)
    expect([...scores].sort((x, y) => y - x)).toEqual(scores)

    const filtered = json(cli('search', path, '-c', 'docs', '--vector', '[1, 0, 0]', '-k', '2', '--filter', '{"kind":"doc"}', '--json'))
    expect(filtered.map((h: { id: unknown; payload: { kind: string } }) => [h.id, h.payload.kind])).toEqual([
      ['e', 'doc'],
      [2, 'doc'],
    ])

    const file = join(dirs.next(), 'query.json')
    writeFileSync(file, '[0, 0, 1]')
    const fromFile = json(cli('search', join(path, 'docs'), '--vector', `@${file}`, '-k', '1', '--json'))
    expect(fromFile.map((h: { id: unknown }) => h.id)).toEqual(['2'])

    const text = cli('search', path, '-c', 'docs', '--vector', '[0, 1, 0]', '-k', '1')
    expect(text.status).toBe(0)
    expect(text.stdout).toMatch(/^\s+1\s+1\.000000\s+2\s+\{"kind":"doc","n":2\}\n$/)
  })

  test('get: ids keep their type (2 and "2"); a missing id exits 1', () => {
    expect(json(cli('get', path, '-c', 'docs', 'a'))).toEqual({ id: 'a', vector: [1, 0, 0], payload: { kind: 'note', n: 1 } })
    expect(json(cli('get', path, '-c', 'docs', '2', '--no-vector'))).toEqual({ id: 2, payload: { kind: 'doc', n: 2 } })
    expect(json(cli('get', path, '-c', 'docs', '2', '--id-type', 'string', '--no-vector'))).toEqual({
      id: '2',
      payload: { kind: 'doc', n: 3 },
    })
    // Written by the process that exited without closing: found through the WAL.
    expect(json(cli('get', path, '-c', 'docs', 'e', '--no-vector')).payload).toEqual({ kind: 'doc', n: 5 })
    const missing = cli('get', path, '-c', 'docs', 'nope')
    expect(missing.status).toBe(1)
    expect(missing.stdout).toBe('')
    expect(missing.stderr).toContain('no point with id "nope"')
  })

  test('bad input exits 2 with one line naming the store error code, and no stack trace', () => {
    const cases: [string[], RegExp][] = [
      [['search', path, '-c', 'docs', '--vector', '[1, 0]'], /\[DIMENSION_MISMATCH 1001\]/],
      [['search', path, '-c', 'docs', '--vector', '[1, 0, 0]', '--filter', '{"n":{"between":[1,2]}}'], /\[INVALID_FILTER 1007\]/],
      [['search', path, '-c', 'docs', '--vector', 'not json'], /--vector is not valid JSON/],
      [['search', path, '-c', 'docs', '--vector', '[1, 0, 0]', '-k', '0'], /-k must be a positive integer/],
      [['search', path, '--vector', '[1, 0, 0]'], /holds 3 collections \(docs, graph, zipped\): name one with --collection/],
      [['search', path, '-c', 'docs'], /required option '--vector <json\|@file>' not specified/],
      [['inspect', join(path, 'nowhere')], /cannot read/],
      [['inspect', path, '--progress', 'loud'], /Allowed choices are auto, bar, lines, none/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ]
    for (const [args, message] of cases) {
      const result = cli(...args)
      expect({ args, status: result.status }).toEqual({ args, status: 2 })
      expect(result.stderr).toMatch(message)
      expect(result.stderr).not.toMatch(/\n\s+at /)
    }
  })

  test('an unknown collection exits 1; --help exits 0 for every command', () => {
    const unknown = cli('inspect', path, '-c', 'missing')
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain("no collection 'missing'")
    for (const command of ['inspect', 'compact', 'search', 'get']) {
      const help = cli(command, '--help')
      expect(help.status).toBe(0)
      expect(help.stdout).toContain(`Usage: annvault ${command}`)
    }
    expect(cli('--version').stdout.trim()).toBe(require('../package.json').version)
  })
})

describe('compact', () => {
  test('checkpoints, drops the WAL it covers, keeps the graph and the compression, reports bytes before and after', async () => {
    const copy = await makeStores()
    const before = diskContents(copy)
    const walBefore = readdirSync(join(copy, 'docs')).filter((f) => f.startsWith('wal-'))
    const result = cli('compact', copy, '--json', '--quiet')
    const report = json(result)
    expect(diskContents(copy)).not.toEqual(before)
    const docs = report.collections.find((c: { name: string }) => c.name === 'docs')
    expect(docs.count).toBe(5)
    expect(docs.removed).toEqual(expect.arrayContaining(walBefore))
    const sizeNow = readdirSync(join(copy, 'docs')).reduce((sum, f) => sum + statSync(join(copy, 'docs', f)).size, 0)
    expect(docs.bytesAfter).toBe(sizeNow)
    expect(typeof docs.bytesBefore).toBe('number')

    // Everything is in the new snapshot now: nothing left to replay.
    const inspected = json(cli('inspect', copy, '--json', '--quiet'))
    const byName = Object.fromEntries(inspected.collections.map((c: { name: string }) => [c.name, c]))
    expect(byName.docs.wal.replayedRecords).toBe(0)
    expect(byName.docs.count).toBe(5)
    expect(byName.graph.index.saved.labels).toBe(200)
    expect(byName.zipped.snapshot.compression).toBe('gzip')

    // The store opens it as before, and loads the saved graph.
    const graph = await createVectorStore({ collectionName: 'graph', dimension: 8, distance: 'Euclidean', annAlgorithm: 'hnsw', persistencePath: copy })
    try {
      const stats = await graph.store.stats()
      expect(stats.count).toBe(200)
      expect(stats.index.loadedFromDisk).toBe(true)
      expect(stats.index.warning).toBeNull()
    } finally {
      await graph.manager.disconnect()
    }
  })

  test('text output and progress lines', async () => {
    const copy = await makeStores()
    const result = cli('compact', copy, '-c', 'docs')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^docs: 5 points, [\d.]+ (B|KiB) -> [\d.]+ (B|KiB) \(removed snapshot-0+1\.avs, wal-0+2\.log\)\n$/)
    expect(result.stderr.trim().split('\n')).toEqual([
      'annvault compact: [1/3] opening docs',
      'annvault compact: [2/3] checkpointing docs',
      'annvault compact: [3/3] closing docs',
    ])
  })
})

describe('what the CLI refuses', () => {
  test('a collection another live process holds: exit 2 with IN_USE, nothing changed', async () => {
    const copy = await makeStores()
    const holder = spawn(process.execPath, [join(__dirname, 'children/holder.js'), copy, 'held'])
    const done = closed(holder)
    try {
      await waitForLine(holder, (line) => line === 'open')
      const before = diskContents(copy)
      for (const args of [
        ['compact', copy, '-c', 'held', '--quiet'],
        ['inspect', copy, '-c', 'held', '--quiet'],
        ['get', copy, '-c', 'held', 'x'],
      ]) {
        const result = cli(...args)
        expect({ args, status: result.status }).toEqual({ args, status: 2 })
        expect(result.stderr).toMatch(/another process has it open.*\[IN_USE 5001\]/)
      }
      expect(diskContents(copy)).toEqual(before)
      // The other collections are still reported; the command says it could not do all.
      const all = cli('inspect', copy, '--json', '--quiet')
      expect(all.status).toBe(2)
      const report = JSON.parse(all.stdout)
      const held = report.collections.find((c: { name: string }) => c.name === 'held')
      expect(held.error.kind).toBe('IN_USE')
      expect(report.collections.find((c: { name: string }) => c.name === 'docs').count).toBe(5)
    } finally {
      holder.kill('SIGKILL')
      await done
    }
    // The lock died with the holder.
    expect(cli('compact', copy, '-c', 'held', '--quiet').status).toBe(0)
  })

  test('a damaged snapshot: exit 2 naming the file and CORRUPT, and the files are left as they were', async () => {
    const copy = await makeStores()
    const file = damage(join(copy, 'docs'), 'snapshot-', (length) => length - 10)
    const before = diskContents(copy)
    for (const command of ['inspect', 'compact', 'get']) {
      const args = command === 'get' ? [command, copy, '-c', 'docs', 'a'] : [command, copy, '-c', 'docs', '--quiet']
      const result = cli(...args)
      expect({ command, status: result.status }).toEqual({ command, status: 2 })
      expect(result.stderr).toContain(file)
      expect(result.stderr).toContain('[CORRUPT 5006]')
      expect(result.stderr).not.toMatch(/\n\s+at /)
    }
    expect(diskContents(copy)).toEqual(before)
  })

  test('a damaged manifest is reported by the store, not guessed around', async () => {
    const copy = await makeStores()
    damage(join(copy, 'zipped'), 'MANIFEST', () => 30)
    const result = cli('inspect', copy, '--json', '--quiet')
    expect(result.status).toBe(2)
    const zipped = JSON.parse(result.stdout).collections.find((c: { name: string }) => c.name === 'zipped')
    expect(zipped.error.kind).toBe('CORRUPT')
    expect(zipped.error.message).toContain('MANIFEST')
    expect(result.stderr).toContain('[CORRUPT 5006]')
  })
})

describe('verify, export and import', () => {
  test('verify: a clean directory exits 0; a damaged graph file exits 1 naming it; a damaged snapshot exits 2 (cannot open); nothing written', async () => {
    const path = await makeStores()
    const report = json(cli('verify', path, '--json', '--quiet'))
    expect(report.ok).toBe(true)
    expect(report.collections.map((c: { name: string; ok: boolean; count: number }) => [c.name, c.ok, c.count])).toEqual([
      ['docs', true, 5],
      ['graph', true, 200],
      ['zipped', true, 1],
    ])
    // A damaged saved graph: the store opens (the graph is a cache), verify names the file: exit 1.
    const graphFile = damage(join(path, 'graph'), 'index-', (length) => length - 100)
    const before = diskContents(path)
    const bad = cli('verify', path, '--collection', 'graph', '--json', '--quiet')
    expect(bad.status).toBe(1)
    const result = JSON.parse(bad.stdout)
    expect(result.ok).toBe(false)
    expect(result.collections[0].files.find((f: { file: string }) => f.file.includes(graphFile)).ok).toBe(false)
    expect(diskContents(path)).toEqual(before)
    // A damaged snapshot: the collection cannot be opened at all: exit 2 with CORRUPT.
    damage(join(path, 'docs'), 'snapshot-', (length) => length - 5)
    const damaged = diskContents(path)
    const broken = cli('verify', path, '--collection', 'docs', '--quiet')
    expect(broken.status).toBe(2)
    expect(broken.stderr).toContain('CORRUPT')
    expect(diskContents(path)).toEqual(damaged)
  })

  test('export then import round-trips a collection through each format; an existing file needs --overwrite', async () => {
    const path = await makeStores()
    for (const [format, compression] of [
      ['annvault', 'none'],
      ['jsonl', 'gzip'],
      ['sqlite', 'brotli'],
    ]) {
      const file = join(dirs.next(), `docs.${format}`)
      const exported = json(cli('export', path, file, '-c', 'docs', '--format', format, '--compression', compression, '--json', '--quiet'))
      expect(exported).toMatchObject({ count: 5, format, compression })
      expect(cli('export', path, file, '-c', 'docs', '--quiet').status).toBe(2)
      const target = dirs.next()
      const made = await createVectorStore({ collectionName: 'copy', dimension: 3, persistencePath: target })
      await made.manager.disconnect()
      const imported = json(cli('import', file, target, '--json', '--quiet'))
      expect(imported).toMatchObject({ count: 5, format, compression })
      const copy = await createVectorStore({ collectionName: 'copy', dimension: 3, persistencePath: target })
      expect(await copy.store.count()).toBe(5)
      expect(await copy.store.get('2')).toEqual({ id: '2', vector: [0, 0, 1], payload: { kind: 'doc', n: 3 } })
      await copy.manager.disconnect()
    }
  })

  test('a truncated export file is refused on import and the collection keeps what it had', async () => {
    const path = await makeStores()
    const file = join(dirs.next(), 'docs.avb')
    json(cli('export', path, file, '-c', 'docs', '--json', '--quiet'))
    const bytes = readFileSync(file)
    writeFileSync(file, bytes.subarray(0, bytes.length - 10))
    const target = dirs.next()
    const made = await createVectorStore({ collectionName: 'copy', dimension: 3, persistencePath: target })
    await made.store.insert([[1, 2, 3]], ['kept'], [{}])
    await made.manager.disconnect()
    const result = cli('import', file, target, '--quiet')
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('CORRUPT')
    const copy = await createVectorStore({ collectionName: 'copy', dimension: 3, persistencePath: target })
    expect(await copy.store.count()).toBe(1)
    expect(await copy.store.get('kept')).not.toBeNull()
    await copy.manager.disconnect()
  })
})

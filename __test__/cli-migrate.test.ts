// `annvault migrate <dir> --to postgres://…`, run as users run it (a child process), into a real
// PostgreSQL + pgvector server started by this file: the copy is exact, an interrupted run
// (SIGKILL mid-copy) resumes where it stopped, and a target that holds other points is refused
// unless --replace.

import { spawn } from 'node:child_process'
import { createVectorStore, type VectorStore } from '../index'
import { cli, cliBin, cliJson as json, randomVectors, tempDirs } from './fixtures'
import { startPostgres, type Postgres } from './postgres'

let postgres: Postgres
const dirs = tempDirs()

beforeAll(() => {
  postgres = startPostgres()
}, 180_000)

afterAll(() => {
  postgres?.stop()
  dirs.cleanup()
})

const DIM = 8

async function local(count: number): Promise<string> {
  const path = dirs.next()
  const { manager, store } = await createVectorStore({ collectionName: 'docs', dimension: DIM, distance: 'Euclidean', persistencePath: path })
  const ids = Array.from({ length: count }, (_, i) => (i % 3 === 0 ? `doc-${i}` : i))
  await store.insert(
    randomVectors(count, DIM, 11),
    ids,
    ids.map((_, i) => (i % 4 === 0 ? {} : { n: i, tag: i % 2 === 0 ? 'even' : 'odd', nested: { list: [i, 'x', null] } })),
  )
  await manager.disconnect()
  return path
}

async function everything(store: VectorStore): Promise<unknown[]> {
  const [records] = await store.list(undefined, 100000)
  const full = await Promise.all(records.map((r) => store.get(r.id)))
  return full.map((r) => ({ ...r, vector: Array.from(r!.vector, Math.fround) }))
}

async function pgStore(name: string) {
  return createVectorStore({ type: 'pgvector', connectionString: postgres.connectionString, collectionName: name, dimension: DIM, distance: 'Euclidean' })
}

async function compare(path: string, target: string): Promise<number> {
  const source = await createVectorStore({ collectionName: 'docs', dimension: DIM, distance: 'Euclidean', persistencePath: path })
  const pg = await pgStore(target)
  try {
    const want = await everything(source.store)
    expect(await everything(pg.store)).toEqual(want)
    return want.length
  } finally {
    await source.manager.disconnect()
    await pg.manager.disconnect()
  }
}

test('migrate copies every point exactly (ids keep their type), and says so in --json', async () => {
  const path = await local(300)
  const result = json(cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy1', '--batch', '64', '--json', '--quiet'))
  expect(result).toMatchObject({ collection: 'docs', target: 'copy1', count: 300, resumedFrom: 0 })
  expect(await compare(path, 'copy1')).toBe(300)
  // Run again: the migration is complete and the source unchanged, so nothing is copied twice.
  const again = json(cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy1', '--json', '--quiet'))
  expect(again).toMatchObject({ count: 300, resumedFrom: 300 })
  expect(await compare(path, 'copy1')).toBe(300)
})

test('a run killed mid-copy resumes where it stopped on the next run, and the result is exact', async () => {
  const path = await local(4000)
  const child = spawn(process.execPath, [cliBin, 'migrate', path, '--to', postgres.connectionString, '--target', 'copy2', '--batch', '10', '--progress', 'lines'])
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk
      // Progress lines come after the batch they report is recorded: kill at the first past 10 %.
      if (/copy [1-9]\d% /.test(stderr)) {
        child.kill('SIGKILL')
        resolve()
      }
    })
    child.on('exit', (code) => reject(new Error(`migrate ended (${code}) before it was killed: ${stderr}`)))
  })
  await new Promise((resolve) => child.on('close', resolve))
  const partial = await pgStore('copy2')
  const copied = await partial.store.count()
  await partial.manager.disconnect()
  expect(copied).toBeGreaterThanOrEqual(400)
  expect(copied).toBeLessThan(4000)

  const result = json(cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy2', '--batch', '10', '--json', '--quiet'))
  expect(result.count).toBe(4000)
  // Resumed from what the progress table recorded: at most one batch behind what was copied.
  expect(result.resumedFrom).toBeGreaterThanOrEqual(copied - 10)
  expect(result.resumedFrom).toBeLessThanOrEqual(copied)
  expect(await compare(path, 'copy2')).toBe(4000)
}, 120_000)

test('a target holding other points, or a source changed since an interrupted run, is refused unless --replace', async () => {
  const path = await local(50)
  const other = await pgStore('copy3')
  await other.store.insert([Array(DIM).fill(1)], ['stranger'], [{}])
  await other.manager.disconnect()
  const refused = cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy3')
  expect(refused.status).toBe(2)
  expect(refused.stderr).toContain("target collection 'copy3': it holds 1 points this migration did not write; rerun with --replace")

  json(cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy3', '--replace', '--json', '--quiet'))
  expect(await compare(path, 'copy3')).toBe(50)

  // The source moves on: the finished migration's record no longer matches it.
  const source = await createVectorStore({ collectionName: 'docs', dimension: DIM, distance: 'Euclidean', persistencePath: path })
  await source.store.delete('doc-0')
  await source.manager.disconnect()
  const changed = cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy3')
  expect(changed.status).toBe(2)
  expect(changed.stderr).toContain('the source changed since')
  json(cli('migrate', path, '--to', postgres.connectionString, '--target', 'copy3', '--replace', '--json', '--quiet'))
  expect(await compare(path, 'copy3')).toBe(49)
})

test('bad arguments and an unreachable server exit 2 with one line', async () => {
  const path = await local(5)
  const batch = cli('migrate', path, '--to', postgres.connectionString, '--batch', '0')
  expect(batch.status).toBe(2)
  expect(batch.stderr).toContain('--batch must be an integer from 1 to 100000')
  const missing = cli('migrate', path)
  expect(missing.status).toBe(2)
  expect(missing.stderr).toContain("required option '--to <url>'")
  const down = cli('migrate', path, '--to', 'postgresql://postgres@%2Fnonexistent-socket-dir/postgres', '--quiet')
  expect(down.status).toBe(2)
  expect(down.stderr.trim().split('\n')).toHaveLength(1)
})

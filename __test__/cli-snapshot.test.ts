// `annvault snapshot create|list|restore|delete`, run as users run it (a child process) on a
// collection the store made in a temp directory, as the other CLI tests do.

import { join } from 'node:path'
import { createVectorStore } from '../index'
import { damage, tempDirs, cli, cliJson as json } from './fixtures'

const dirs = tempDirs()
afterAll(() => dirs.cleanup())


async function withStore<T>(path: string, body: (store: Awaited<ReturnType<typeof createVectorStore>>['store']) => Promise<T>): Promise<T> {
  const { manager, store } = await createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: path })
  try {
    return await body(store)
  } finally {
    await manager.disconnect()
  }
}

test('snapshot create, list, restore and delete on a collection directory', async () => {
  const path = dirs.next()
  await withStore(path, (store) => store.insert([[1, 0, 0], [0, 1, 0]], ['a', 'b'], [{ n: 1 }, { n: 2 }]))

  const created = json(cli('snapshot', 'create', path, 'before', '--metadata', '{"by":"cli"}', '--json'))
  expect(created).toMatchObject({ name: 'before', count: 2, metadata: { by: 'cli' }, checksum: expect.stringMatching(/^[0-9a-f]{64}$/) })
  const plain = cli('snapshot', 'create', join(path, 'docs'))
  expect(plain.status).toBe(0)
  expect(plain.stdout).toMatch(/^created \d{13}-[0-9a-f]{8}: 2 points, sequence \d+/)

  await withStore(path, async (store) => {
    await store.deleteCollection()
    await store.insert([[0, 0, 1]], ['c'], [{ n: 3 }])
  })

  const listed = json(cli('snapshot', 'list', path, '-c', 'docs', '--json'))
  expect(listed.map((s: { name: string }) => s.name)).toEqual(['before', expect.stringMatching(/^\d{13}-/)])
  const text = cli('snapshot', 'list', path)
  expect(text.status).toBe(0)
  expect(text.stdout).toContain(`${created.id} 'before': 2 points`)
  const inspected = json(cli('inspect', path, '--json', '--quiet'))
  expect(inspected.collections[0].snapshots.map((s: { id: string }) => s.id)).toEqual(listed.map((s: { id: string }) => s.id))

  const restored = json(cli('snapshot', 'restore', path, 'before', '--json', '--quiet'))
  expect(restored.id).toBe(created.id)
  expect(await withStore(path, async (store) => (await store.list(undefined, 10))[0].map((r) => r.id))).toEqual(['a', 'b'])

  const deleted = json(cli('snapshot', 'delete', path, created.id, '--json'))
  expect(deleted.name).toBe('before')
  expect(json(cli('snapshot', 'list', path, '--json')).map((s: { name: string }) => s.name)).toEqual([listed[1].name])
})

test('an unknown snapshot exits 1 with NOT_FOUND, an unsafe name 2 with INVALID_NAME, a damaged one 2 with CORRUPT', async () => {
  const path = dirs.next()
  await withStore(path, (store) => store.insert([[1, 0, 0]], ['a'], [{}]))
  for (const args of [['restore', '--quiet'], ['delete']]) {
    const missing = cli('snapshot', args[0], path, 'nope', ...args.slice(1))
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('[NOT_FOUND 1011]')
    expect(missing.stderr.split('\n').filter(Boolean)).toHaveLength(1)
  }
  const unsafe = cli('snapshot', 'create', path, '../x')
  expect(unsafe.status).toBe(2)
  expect(unsafe.stderr).toContain('[INVALID_NAME 1010]')
  const badMetadata = cli('snapshot', 'create', path, 'm', '--metadata', '{nope')
  expect(badMetadata.status).toBe(2)
  expect(badMetadata.stderr).toContain('--metadata is not JSON')
  expect(json(cli('snapshot', 'list', path, '--json'))).toEqual([])

  const info = json(cli('snapshot', 'create', path, 's', '--json'))
  // A later checkpoint, so the collection no longer names the file the snapshot links.
  await withStore(path, (store) => store.insert([[0, 1, 0]], ['b'], [{}]))
  const snapDir = join(path, 'docs', 'snapshots', info.id)
  const file = damage(snapDir, 'snapshot-', (length) => length - 2)
  const damaged = cli('snapshot', 'restore', path, 's', '--quiet')
  expect(damaged.status).toBe(2)
  expect(damaged.stderr).toContain('[CORRUPT 5006]')
  expect(damaged.stderr).toContain(file)
  expect(await withStore(path, (store) => store.count())).toBe(2)
})

test('snapshot --help lists its subcommands', () => {
  const help = cli('snapshot', '--help')
  expect(help.status).toBe(0)
  for (const command of ['create', 'list', 'restore', 'delete']) expect(help.stdout).toContain(command)
})

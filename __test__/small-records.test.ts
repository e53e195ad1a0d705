// The smallest valid records come back (issue 12): one-byte string ids with
// empty payloads were written and acknowledged, then refused as corrupt on the
// next open, from the snapshot and from the WAL alike.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

import { createPersistentInMemoryStore } from '../index'
import { tempDirs } from './fixtures'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const repo = join(__dirname, '..')

const SHAPES: Record<string, string[]> = {
  'one one-byte id': ['x'],
  'two one-byte ids': ['a', 'b'],
  '26 one-letter ids': Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i)),
}

function vectors(count: number, dimension: number): number[][] {
  return Array.from({ length: count }, (_, i) => Array.from({ length: dimension }, (_, d) => i + d + 1))
}

async function expectPoints(dir: string, dimension: number, ids: string[]): Promise<void> {
  const { manager, store } = await createPersistentInMemoryStore('c', dimension, dir)
  try {
    expect(await store.count()).toBe(ids.length)
    const expected = vectors(ids.length, dimension)
    for (const [i, id] of ids.entries()) {
      const point = await store.get(id)
      expect(point).not.toBeNull()
      expect(point!.payload).toEqual({})
      expect(point!.vector).toEqual(expected[i])
    }
  } finally {
    await manager.disconnect()
  }
}

describe.each([1, 4, 384])('dimension %d', (dimension) => {
  test.each(Object.entries(SHAPES))('%s with empty payloads reopen from the snapshot', async (_, ids) => {
    const dir = dirs.next()
    const { manager, store } = await createPersistentInMemoryStore('c', dimension, dir)
    await store.insert(vectors(ids.length, dimension), ids, ids.map(() => ({})))
    await manager.disconnect() // checkpoints: the points are in the snapshot
    await expectPoints(dir, dimension, ids)
  })

  test.each(Object.entries(SHAPES))('%s with empty payloads reopen from the WAL of a process that exited', async (_, ids) => {
    const dir = dirs.next()
    // A process that inserts, is acknowledged, and exits without disconnect():
    // the points are only in the WAL.
    const script = `
      const { createPersistentInMemoryStore } = require(${JSON.stringify(repo)})
      const [dir, dimension, ids] = [process.argv[1], Number(process.argv[2]), JSON.parse(process.argv[3])]
      const vectors = ids.map((_, i) => Array.from({ length: dimension }, (_, d) => i + d + 1))
      createPersistentInMemoryStore('c', dimension, dir)
        .then(({ store }) => store.insert(vectors, ids, ids.map(() => ({}))))
        .then(() => { process.stdout.write('acknowledged'); process.exit(0) })
        .catch((error) => { process.stderr.write(String(error.stack)); process.exit(1) })
    `
    const child = spawnSync(process.execPath, ['-e', script, dir, String(dimension), JSON.stringify(ids)], {
      encoding: 'utf8',
    })
    expect(child.stderr).toBe('')
    expect(child.stdout).toBe('acknowledged')
    await expectPoints(dir, dimension, ids)
  })
})

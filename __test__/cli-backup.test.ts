// `annvault backup now|list|verify|restore --config <yaml>`, run as users run it (a child process),
// on a StorageManager configuration in a temp directory: what each prints, its exit code, and the
// data a restore brings back.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { StorageManager } from '../index'
import { cli, cliJson as json, tempDirs } from './fixtures'

const dirs = tempDirs()
afterAll(() => dirs.cleanup())

function config(dir: string): string {
  const file = join(dir, 'storage.yaml')
  writeFileSync(
    file,
    `persistence:
  default_storage: "file"
  storages:
    file:     { type: "file",     base_path: "data/storage" }
    database: { type: "database", db_path: "data/app.db" }
    pack:     { type: "pack",     pack_path: "data/packs" }
  backup: { enabled: true, schedule: "daily", retention: 3, path: "data/backups" }
`,
  )
  return file
}

async function withManager<T>(file: string, body: (m: StorageManager) => Promise<T>): Promise<T> {
  // Without the schedule: the daily backup would come due at the first open.
  const manager = await StorageManager.fromConfig(file, { schedule: false })
  try {
    return await body(manager)
  } finally {
    await manager.close()
  }
}

test('backup now, list, verify and restore from the command line', async () => {
  const dir = dirs.next()
  const file = config(dir)
  await withManager(file, async (m) => {
    await m.store('file', 'user:1', { name: 'Ada' })
    await m.store('database', 'k', [1, 2, 3])
    await m.store('pack', 'bundles/b1', Buffer.alloc(100000, 7))
  })

  const taken = json(cli('backup', 'now', '--config', file, '--json'))
  expect(taken.id).toEqual(expect.any(String))
  expect(Object.keys(taken.storages).sort()).toEqual(['database', 'file', 'pack'])
  const text = cli('backup', 'list', '--config', file)
  expect(text.status).toBe(0)
  expect(text.stdout).toContain(`${taken.id} `)
  expect(json(cli('backup', 'list', '--config', file, '--json')).map((b: { id: string }) => b.id)).toEqual([taken.id])
  expect(json(cli('backup', 'verify', taken.id, '--config', file, '--json'))).toMatchObject({ id: taken.id, ok: true, problems: [] })

  // Change everything, then restore the file and database storages only.
  await withManager(file, async (m) => {
    await m.store('file', 'user:1', { name: 'changed' })
    await m.store('database', 'k', 'changed')
    await m.store('pack', 'bundles/b1', 'changed')
  })
  const restored = json(cli('backup', 'restore', taken.id, '--config', file, '--storages', 'file,database', '--json'))
  expect(restored.storages.sort()).toEqual(['database', 'file'])
  await withManager(file, async (m) => {
    expect(await m.retrieve('file', 'user:1')).toEqual({ name: 'Ada' })
    expect(await m.retrieve('database', 'k')).toEqual([1, 2, 3])
    expect(await m.retrieve('pack', 'bundles/b1')).toBe('changed')
  })
})

test('a damaged backup fails verify with exit 1 and is refused by restore with exit 2; bad input exits 2', async () => {
  const dir = dirs.next()
  const file = config(dir)
  await withManager(file, (m) => m.store('file', 'a', { n: 1 }))
  const taken = json(cli('backup', 'now', '--config', file, '--json'))
  // Flip a byte in the largest file of the backup.
  const files: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else if (!e.name.startsWith('MANIFEST') && !e.name.endsWith('.json')) files.push(join(d, e.name))
    }
  }
  walk(taken.path)
  const victim = files.sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]
  const bytes = readFileSync(victim)
  bytes[bytes.length >> 1] ^= 0x20
  writeFileSync(victim, bytes)

  const verify = cli('backup', 'verify', taken.id, '--config', file)
  expect(verify.status).toBe(1)
  expect(verify.stdout).toContain('problems')
  const restore = cli('backup', 'restore', taken.id, '--config', file)
  expect(restore.status).toBe(2)
  expect(restore.stderr.trim().split('\n')).toHaveLength(1)

  const unknown = cli('backup', 'verify', 'nope', '--config', file)
  expect(unknown.status).toBe(2)
  const missing = cli('backup', 'list', '--config', join(dir, 'no-such.yaml'))
  expect(missing.status).toBe(2)
  expect(missing.stderr.trim().split('\n')).toHaveLength(1)
  const noConfig = cli('backup', 'list')
  expect(noConfig.status).toBe(2)
  expect(noConfig.stderr).toContain("required option '--config <file>'")
})

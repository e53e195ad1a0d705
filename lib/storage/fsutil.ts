/**
 * File-system steps the storage manager shares: durable writes (temp file,
 * fsync, rename, directory fsync), streamed SHA-256, a copy that is
 * fsynced, a tree walk, and the directory swap a restore makes.
 *
 * Swap. A storage that lives in a directory (or one file) `P` is restored
 * by building the new contents at `P.restore-staging`, fsyncing it, then
 * `rename(P, P.restore-old)`, `rename(P.restore-staging, P)`, fsync of the
 * parent, and removal of `P.restore-old`. {@link recoverSwap}, run before a
 * storage opens, finishes or undoes a swap a crash interrupted: `P` missing
 * with `P.restore-old` present → the old one goes back (the restore did
 * not happen); both present → the old one is removed (it did); a staging
 * leftover is removed.
 */

import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, promises as fs } from 'node:fs'
import * as path from 'node:path'

export const STAGING_SUFFIX = '.restore-staging'
export const OLD_SUFFIX = '.restore-old'

export async function fsyncPath(file: string): Promise<void> {
  const handle = await fs.open(file, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes `bytes` to `file` atomically and durably: a reader sees the old file or the whole new one. */
export async function writeFileAtomic(file: string, bytes: string | Buffer): Promise<void> {
  const dir = path.dirname(file)
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await fs.open(temp, 'wx')
  try {
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(temp, file)
  } catch (error) {
    await fs.rm(temp, { force: true })
    throw error
  }
  await fsyncPath(dir)
}

/** SHA-256 (hex) and size of a file, read as a stream. */
export async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  return { sha256: hash.digest('hex'), bytes }
}

/** Copies a file and fsyncs the copy (not its directory). */
export async function copyFileDurable(from: string, to: string): Promise<void> {
  await fs.copyFile(from, to, 0)
  await fsyncPath(to)
}

/** Every regular file under `root`, as paths relative to it with `/` separators, sorted. */
export async function walkFiles(root: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (dir: string, rel: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true })
    for (const entry of entries) {
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) await visit(path.join(dir, entry.name), childRel)
      else if (entry.isFile()) out.push(childRel)
    }
  }
  await visit(root, '')
  return out.sort()
}

/** Every directory under `root` (itself included), deepest first. */
export async function walkDirs(root: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await visit(path.join(dir, entry.name))
    }
    out.push(dir)
  }
  await visit(root)
  return out
}

/** fsyncs every file and directory under `root`, directories after their contents. */
export async function fsyncTree(root: string): Promise<void> {
  for (const rel of await walkFiles(root)) await fsyncPath(path.join(root, ...rel.split('/')))
  for (const dir of await walkDirs(root)) await fsyncPath(dir)
}

/** Copies the tree `from` into `to` (created), every file fsynced, then every directory. */
export async function copyTreeDurable(from: string, to: string, skip?: (rel: string) => boolean): Promise<void> {
  await fs.mkdir(to, { recursive: true })
  for (const rel of await walkFiles(from)) {
    if (skip?.(rel)) continue
    const target = path.join(to, ...rel.split('/'))
    await fs.mkdir(path.dirname(target), { recursive: true })
    await copyFileDurable(path.join(from, ...rel.split('/')), target)
  }
  for (const dir of await walkDirs(to)) await fsyncPath(dir)
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

/**
 * Makes `staged` (complete and durable) the new `live`, as the module
 * comment describes. `live` may not exist yet.
 */
export async function swapIn(live: string, staged: string): Promise<void> {
  const old = live + OLD_SUFFIX
  await fs.rm(old, { recursive: true, force: true })
  const hadLive = await exists(live)
  if (hadLive) await fs.rename(live, old)
  await fs.rename(staged, live)
  await fsyncPath(path.dirname(live))
  if (hadLive) await fs.rm(old, { recursive: true, force: true })
}

/** Finishes or undoes a swap a crash interrupted (see the module comment). */
export async function recoverSwap(live: string): Promise<void> {
  const old = live + OLD_SUFFIX
  if (await exists(old)) {
    if (await exists(live)) await fs.rm(old, { recursive: true, force: true })
    else {
      await fs.rename(old, live)
      await fsyncPath(path.dirname(live))
    }
  }
  await fs.rm(live + STAGING_SUFFIX, { recursive: true, force: true })
}

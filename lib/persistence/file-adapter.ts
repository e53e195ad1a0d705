/**
 * `FileAdapter`: one JSON file per key under `basePath`, as the Xeno
 * engine's file storage keeps them, made safe.
 *
 * File names. A key's UTF-8 bytes are cut into chunks of 80 bytes; every
 * chunk but the last is a directory, the last is `<chunk>.json`. In a chunk,
 * the bytes of `a`–`z`, `0`–`9`, `_` and `-` stand for themselves and every
 * other byte (upper case letters, `.`, `/`, `\`, `:`, NUL, non-ASCII …) is
 * written `.xx` (two lower case hex digits). So a name is at most 245
 * characters, holds no separator, `.` or `..`, never escapes `basePath`, and
 * holds no upper case letter: two keys differing only in case (`A`, `a` →
 * `.41.json`, `a.json`) cannot collide on a case-insensitive file system.
 * `user:42` is `user.3a42.json`.
 *
 * Because a key's prefix encodes to a prefix of its path, `find('user:*')`
 * lists only the directory that holds `user:…` names and reads only the
 * files whose names start with the encoded prefix; without a literal prefix
 * it reads every file.
 *
 * File contents (format v1): one line of UTF-8 JSON and a newline,
 * `{"v":1,"key":…,"kind":"json"|"binary","value":…,"metadata":{…},
 * "createdAt":ms,"updatedAt":ms,"expiresAt":ms|null}` in that order: a
 * JSON value as its JSON, a binary value as a padded base64 string,
 * metadata a JSON object, times Unix milliseconds. Files written by v1 are
 * kept in `__test__/fixtures/file-adapter-v1/`, which every later version
 * must read back exactly. Names not of this encoding (`README`, `.61.json`
 * for `a.json`) are not entries and are skipped; names starting with `~`
 * are the adapter's own.
 *
 * Reads. A key without a file (ENOENT) is absent: `null`. Any other failed
 * file-system call rejects with 5002 naming the file (`details.file`, and
 * `details.key` for an entry's file, `details.errno`). A file that is not
 * UTF-8, does not parse, has a field of the wrong type, a `v` other than 1,
 * base64 that is not what v1 writes, or a `key` that is not the key its
 * name encodes, rejects with 5005 naming the file and the key: every read
 * that meets it (`get`, `has`, `find`, `keys`, `stats`, `maintain`, and a
 * `set` of that key, which keeps its `createdAt`) does, and changes
 * nothing; `delete` still removes it by its key.
 *
 * Durability: each file is written to a temp file (`~tmp-…`, a name the
 * encoding never produces) in its directory, fsynced, renamed over the old
 * one, and the directory fsynced. A batch of several keys (a `setMany`, a
 * `deleteMany`, a `maintain` sweeping several) and a `clear` are all or
 * nothing across a crash: the temp files are written and synced first, and
 * their directories, then an intent file `~batch.json` listing the renames
 * and removals is written durably, then they are applied and the intent
 * removed. `init()` replays an intent it finds (the batch happened) and
 * removes stray temp files (the batch did not). A write that fails once its
 * intent may be on disk leaves the adapter refusing every call (5002) until
 * a new adapter's `init()` has finished or dropped it. Writes are serialised
 * within one adapter; two processes must not share a `basePath`.
 */

import { randomBytes } from 'node:crypto'
import { promises as nodeFs } from 'node:fs'
import * as path from 'node:path'

import type { AdapterStats, EncodedValue, PersistenceAdapter, RawEntry, RawWrite } from './adapter'
import { PersistenceError, PersistenceErrorCode } from './errors'
import { compareKeys, parseGlob } from './glob'

/** Every file-system call the adapter makes goes through one of these (`fs.promises` by default). */
export type FileAdapterFileSystem = Pick<
  typeof nodeFs,
  'copyFile' | 'link' | 'mkdir' | 'open' | 'readdir' | 'readFile' | 'rename' | 'rm' | 'stat'
>

export interface FileAdapterOptions {
  /** The directory holding the files (created if missing). */
  basePath: string
  /**
   * Not for users: the file system the adapter calls (default `fs.promises`).
   * The fault-injection and crash tests pass a wrapper that fails or records
   * each call.
   */
  fileSystem?: FileAdapterFileSystem
}

/** Bytes of key per path component. */
const CHUNK_BYTES = 80
const SUFFIX = '.json'
const TEMP_PREFIX = '~tmp-'
const INTENT = '~batch.json'

function isPlain(byte: number): boolean {
  return (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x5f || byte === 0x2d
}

function encodeChunk(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) {
    out += isPlain(byte) ? String.fromCharCode(byte) : `.${byte.toString(16).padStart(2, '0')}`
  }
  return out
}

function decodeChunk(name: string): Buffer | null {
  const bytes: number[] = []
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === 0x2e) {
      const hex = name.slice(i + 1, i + 3)
      if (!/^[0-9a-f]{2}$/.test(hex)) return null
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (isPlain(c)) bytes.push(c)
    else return null
  }
  return Buffer.from(bytes)
}

/** The path components of `key`: directories, then the file name. */
function keyPath(key: string): string[] {
  const bytes = Buffer.from(key, 'utf8')
  const parts: string[] = []
  for (let start = 0; start < bytes.length; start += CHUNK_BYTES) {
    parts.push(encodeChunk(bytes.subarray(start, start + CHUNK_BYTES)))
  }
  parts[parts.length - 1] += SUFFIX
  return parts
}

interface StoredFile {
  v: 1
  key: string
  kind: 'json' | 'binary'
  value: unknown
  metadata: Record<string, unknown>
  createdAt: number
  updatedAt: number
  expiresAt: number | null
}

interface Intent {
  renames: Array<[string, string]>
  removals: string[]
}

export class FileAdapter implements PersistenceAdapter {
  readonly name = 'file'
  readonly basePath: string
  private state: 'new' | 'open' | 'closed' = 'new'
  /** Set when a batch failed half-applied: refuse everything until a new adapter replays it. */
  private broken: PersistenceError | null = null
  private queue: Promise<unknown> = Promise.resolve()
  private lastSync: number | null = null
  private tempCounter = 0
  private readonly fs: FileAdapterFileSystem

  constructor(options: FileAdapterOptions) {
    if (!options || typeof options.basePath !== 'string' || options.basePath.length === 0) {
      throw new PersistenceError('FileAdapter needs { basePath }', PersistenceErrorCode.INITIALIZATION, { adapter: 'file' })
    }
    this.basePath = path.resolve(options.basePath)
    this.fs = options.fileSystem ?? nodeFs
  }

  async init(): Promise<void> {
    if (this.state === 'closed') throw this.stateError('init')
    if (this.state === 'open') return
    await this.io('init', this.basePath, async () => {
      await this.fs.mkdir(this.basePath, { recursive: true })
      await this.recover()
    })
    this.state = 'open'
  }

  async get(keys: string[], now: number): Promise<(RawEntry | null)[]> {
    this.check('get')
    return Promise.all(keys.map((key) => this.readLive(key, now)))
  }

  set(writes: RawWrite[], now: number): Promise<void> {
    this.check('set')
    return this.exclusive('set', async () => {
      const files: Array<{ target: string; text: string }> = []
      for (const write of writes) {
        const previous = await this.readLive(write.key, now)
        files.push({
          target: this.pathOf(write.key),
          text: fileText(write, previous ? previous.createdAt : now, now),
        })
      }
      // A key written twice in one batch: the last write wins.
      const byTarget = new Map(files.map((f) => [f.target, f.text]))
      await this.apply([...byTarget].map(([target, text]) => ({ target, text })), [])
    })
  }

  delete(keys: string[], now: number): Promise<boolean[]> {
    this.check('delete')
    return this.exclusive('delete', async () => {
      const existed: boolean[] = []
      const removals = new Set<string>()
      for (const key of keys) {
        const file = this.pathOf(key)
        let entry: RawEntry | null
        try {
          entry = await this.readFile(key, file)
        } catch (error) {
          // A corrupt file can still be deleted by name (it counts as live).
          if (!(error instanceof PersistenceError && error.code === PersistenceErrorCode.DATABASE)) throw error
          existed.push(true)
          removals.add(file)
          continue
        }
        existed.push(entry !== null && (entry.expiresAt === null || entry.expiresAt > now))
        if (entry !== null) removals.add(file)
      }
      await this.apply([], [...removals])
      return existed
    })
  }

  async find(pattern: string, now: number): Promise<RawEntry[]> {
    this.check('find')
    const glob = parseGlob(pattern)
    const keys = (await this.listKeys(glob.prefix)).filter((key) => glob.matches(key))
    const entries = await Promise.all(keys.map((key) => this.readLive(key, now)))
    return entries.filter((e): e is RawEntry => e !== null)
  }

  async keys(pattern: string | undefined, now: number): Promise<string[]> {
    return (await this.find(pattern ?? '*', now)).map((e) => e.key)
  }

  clear(): Promise<void> {
    this.check('clear')
    return this.exclusive('clear', async () => {
      const names = (await this.fs.readdir(this.basePath)).filter((name) => name !== INTENT)
      // Always through the intent: removing a directory of files is not one
      // step, and a crash in it must not leave some of the entries.
      await this.apply([], names.map((name) => path.join(this.basePath, name)), true)
      this.lastSync = Date.now()
    })
  }

  async stats(now: number): Promise<AdapterStats> {
    this.check('stats')
    let totalEntries = 0
    let size = 0
    // Not in the write queue: a temp file listed here may be renamed, or a
    // directory removed, before it is read; what is gone is not counted.
    const gone = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT'
    const walk = async (dir: string): Promise<void> => {
      let dirents
      try {
        dirents = await this.fs.readdir(dir, { withFileTypes: true })
      } catch (error) {
        if (gone(error)) return
        throw error
      }
      for (const dirent of dirents) {
        const full = path.join(dir, dirent.name)
        if (dirent.isDirectory()) await walk(full)
        else {
          try {
            size += (await this.fs.stat(full)).size
          } catch (error) {
            if (!gone(error)) throw error
          }
        }
      }
    }
    await this.io('stats', this.basePath, () => walk(this.basePath))
    for (const key of await this.listKeys('')) if (await this.readLive(key, now)) totalEntries++
    return { totalEntries, size, lastSync: this.lastSync }
  }

  maintain(now: number): Promise<void> {
    this.check('maintain')
    return this.exclusive('maintain', async () => {
      const expired: string[] = []
      for (const key of await this.listKeys('')) {
        const file = this.pathOf(key)
        const entry = await this.readFile(key, file)
        if (entry && entry.expiresAt !== null && entry.expiresAt <= now) expired.push(file)
      }
      await this.apply([], expired)
    })
  }

  /**
   * Copies every entry's file into `dest` (created; it must not exist),
   * same relative paths, as of one point in the write order: it runs in
   * the write queue, so writes wait for it. A file is hard-linked where
   * the file system allows (an entry's file is never written in place,
   * only replaced by rename, so the link's bytes stay as they are) and
   * copied otherwise; the caller fsyncs the tree. A copy that fails
   * rejects with 5002 and removes `dest` again (as far as the failing file
   * system lets it); the adapter's own files are only read.
   */
  async backupTo(dest: string): Promise<number> {
    this.check('backupTo')
    return this.exclusive('backupTo', async () => {
      await this.fs.mkdir(dest, { recursive: false })
      try {
        return await this.copyTree(dest)
      } catch (error) {
        await this.fs.rm(dest, { recursive: true, force: true }).catch(() => undefined)
        throw error
      }
    })
  }

  /** Links or copies the entries' files into `dest`; their count. */
  private async copyTree(dest: string): Promise<number> {
    let count = 0
    const visit = async (dir: string, out: string): Promise<void> => {
      for (const entry of await this.fs.readdir(dir, { withFileTypes: true })) {
        if (entry.name.startsWith('~')) continue
        const from = path.join(dir, entry.name)
        const to = path.join(out, entry.name)
        if (entry.isDirectory()) {
          await this.fs.mkdir(to)
          await visit(from, to)
        } else if (entry.isFile() && entry.name.endsWith(SUFFIX)) {
          try {
            await this.fs.link(from, to)
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code
            if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw error
            await this.fs.copyFile(from, to)
          }
          count++
        }
      }
    }
    await visit(this.basePath, dest)
    return count
  }

  async close(): Promise<void> {
    // Not `check`: an adapter broken by a failed write still closes.
    if (this.state !== 'open') throw this.stateError('close')
    this.state = 'closed'
    await this.queue.catch(() => undefined)
  }

  // ------------------------------------------------------------ internals

  private check(operation: string): void {
    if (this.state !== 'open') throw this.stateError(operation)
    if (this.broken) throw this.broken
  }

  private stateError(operation: string): PersistenceError {
    const closed = this.state === 'closed'
    return new PersistenceError(
      closed ? `the file adapter is closed (${operation})` : `the file adapter is not initialized (${operation})`,
      PersistenceErrorCode.INITIALIZATION,
      { adapter: 'file', operation, state: closed ? 'closed' : 'uninitialized', basePath: this.basePath },
    )
  }

  private pathOf(key: string): string {
    return path.join(this.basePath, ...keyPath(key))
  }

  /** Runs mutations one at a time, in call order. */
  private exclusive<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.broken) throw this.broken
      return this.io(operation, this.basePath, work)
    })
    this.queue = run.catch(() => undefined)
    return run
  }

  private async io<T>(operation: string, file: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (error) {
      throw storageError(operation, file, error)
    }
  }

  private async readLive(key: string, now: number): Promise<RawEntry | null> {
    const entry = await this.readFile(key, this.pathOf(key))
    if (!entry || (entry.expiresAt !== null && entry.expiresAt <= now)) return null
    return entry
  }

  /** The entry in `file`, `null` when there is none; 5002 when it cannot be read, 5005 when it is not an entry of `key`. */
  private async readFile(key: string, file: string): Promise<RawEntry | null> {
    let bytes: Buffer
    try {
      bytes = await this.fs.readFile(file)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return null
      throw storageError('read', file, error, { key })
    }
    return parseFile(bytes, key, file)
  }

  /** Every stored key starting with `prefix`, in key order; reads only the directory the prefix leads to. */
  private async listKeys(prefix: string): Promise<string[]> {
    const bytes = Buffer.from(prefix, 'utf8')
    const fullChunks = Math.floor(bytes.length / CHUNK_BYTES)
    const dirs: string[] = []
    for (let i = 0; i < fullChunks; i++) dirs.push(encodeChunk(bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)))
    const partial = encodeChunk(bytes.subarray(fullChunks * CHUNK_BYTES))
    const keys: Buffer[] = []
    const walk = async (dir: string, keyBytes: Buffer, namePrefix: string): Promise<void> => {
      let dirents
      try {
        dirents = await this.fs.readdir(dir, { withFileTypes: true })
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT' || code === 'ENOTDIR') return
        throw error
      }
      for (const dirent of dirents) {
        const name = dirent.name
        if (name.startsWith('~') || !name.startsWith(namePrefix)) continue
        // Only the names the encoding writes: another spelling of a key's
        // bytes (`.61.json` for `a.json`) is not its file, and listing it
        // would list the key twice.
        if (dirent.isDirectory()) {
          const chunk = decodeChunk(name)
          if (chunk && chunk.length === CHUNK_BYTES && encodeChunk(chunk) === name) {
            await walk(path.join(dir, name), Buffer.concat([keyBytes, chunk]), '')
          }
        } else if (name.endsWith(SUFFIX)) {
          const stem = name.slice(0, -SUFFIX.length)
          const chunk = decodeChunk(stem)
          if (chunk && chunk.length > 0 && encodeChunk(chunk) === stem) keys.push(Buffer.concat([keyBytes, chunk]))
        }
      }
    }
    await this.io('list', this.basePath, () =>
      walk(path.join(this.basePath, ...dirs), bytes.subarray(0, fullChunks * CHUNK_BYTES), partial),
    )
    // Bytes that are not UTF-8 are no key's name either.
    const strings: string[] = []
    for (const k of keys) {
      const key = k.toString('utf8')
      if (Buffer.from(key, 'utf8').equals(k)) strings.push(key)
    }
    return strings.sort(compareKeys)
  }

  private tempName(dir: string): string {
    return path.join(dir, `${TEMP_PREFIX}${process.pid}-${++this.tempCounter}-${randomBytes(4).toString('hex')}`)
  }

  /**
   * Writes `files` and removes `removals` as one step: a single file goes
   * straight through temp + rename; several (or any set, with `viaIntent`)
   * go through the intent file.
   */
  private async apply(
    files: Array<{ target: string; text: string }>,
    removals: string[],
    viaIntent = false,
  ): Promise<void> {
    if (files.length === 0 && removals.length === 0) return
    const renames: Array<[string, string]> = []
    const temps: string[] = []
    const batched = viaIntent || files.length + removals.length > 1
    const intentFile = path.join(this.basePath, INTENT)
    let intentTemp = ''
    try {
      const tempDirs = new Set<string>()
      for (const { target, text } of files) {
        const dir = path.dirname(target)
        await this.makeDirs(dir)
        const temp = this.tempName(dir)
        temps.push(temp)
        await writeSynced(this.fs, temp, text)
        renames.push([temp, target])
        if (dir !== this.basePath) tempDirs.add(dir)
      }
      if (batched) {
        // A replay takes a missing temp file for a rename already done, so
        // the temp files must outlive a crash before the intent can: their
        // directories are fsynced now (the base directory is, with the intent).
        for (const dir of tempDirs) await syncDir(this.fs, dir)
        const intent: Intent = {
          renames: renames.map(([from, to]) => [path.relative(this.basePath, from), path.relative(this.basePath, to)]),
          removals: removals.map((file) => path.relative(this.basePath, file)),
        }
        intentTemp = this.tempName(this.basePath)
        temps.push(intentTemp)
        await writeSynced(this.fs, intentTemp, JSON.stringify(intent))
      }
    } catch (error) {
      // Nothing is committed; a temp file that cannot be removed now is removed by the next init.
      await Promise.allSettled(temps.map((temp) => this.fs.rm(temp, { force: true })))
      throw error
    }
    try {
      if (batched) {
        await this.fs.rename(intentTemp, intentFile)
        await syncDir(this.fs, this.basePath)
      }
      await applyIntent(this.fs, this.basePath, renames, removals)
      if (batched) {
        await this.fs.rm(intentFile)
        await syncDir(this.fs, this.basePath)
      }
    } catch (error) {
      // From the intent's rename on, the batch may be committed or half
      // applied; the next init finishes it (intent on disk) or drops its temp
      // files (no intent). Until then this adapter must not write: an intent
      // left on disk would be replayed over later writes.
      this.broken = new PersistenceError(
        `a write to ${this.basePath} failed half-way; open a new FileAdapter to recover: ${(error as Error).message}`,
        PersistenceErrorCode.STORAGE,
        { adapter: 'file', basePath: this.basePath },
        { cause: error },
      )
      throw this.broken
    }
    this.lastSync = Date.now()
  }

  /** mkdir -p, fsyncing the parent of every directory it creates. */
  private async makeDirs(dir: string): Promise<void> {
    const relative = path.relative(this.basePath, dir)
    if (relative === '') return
    let current = this.basePath
    for (const part of relative.split(path.sep)) {
      const next = path.join(current, part)
      try {
        await this.fs.mkdir(next)
        await syncDir(this.fs, current)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      current = next
    }
  }

  /** Replays a batch intent left by a crash; removes temp files of batches that never committed. */
  private async recover(): Promise<void> {
    const intentFile = path.join(this.basePath, INTENT)
    let intentText: string | null = null
    try {
      intentText = await this.fs.readFile(intentFile, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    if (intentText !== null) {
      let intent: Intent
      try {
        intent = JSON.parse(intentText) as Intent
        if (!Array.isArray(intent.renames) || !Array.isArray(intent.removals)) throw new Error('not an intent')
      } catch (error) {
        throw new PersistenceError(`${intentFile} is corrupt: ${(error as Error).message}`, PersistenceErrorCode.DATABASE, {
          adapter: 'file',
          file: intentFile,
        })
      }
      const inside = (p: string) => {
        const full = path.resolve(this.basePath, p)
        if (!full.startsWith(this.basePath + path.sep)) {
          throw new PersistenceError(`${intentFile} names a path outside ${this.basePath}`, PersistenceErrorCode.DATABASE, {
            adapter: 'file',
            file: intentFile,
          })
        }
        return full
      }
      const renames = intent.renames.map(([from, to]) => [inside(from), inside(to)] as [string, string])
      await applyIntent(this.fs, this.basePath, renames, intent.removals.map(inside), true)
      await this.fs.rm(intentFile)
      await syncDir(this.fs, this.basePath)
    }
    await removeTemps(this.fs, this.basePath)
  }
}

async function applyIntent(
  fs: FileAdapterFileSystem,
  base: string,
  renames: Array<[string, string]>,
  removals: string[],
  replaying = false,
): Promise<void> {
  const dirs = new Set<string>()
  for (const [from, to] of renames) {
    try {
      await fs.rename(from, to)
    } catch (error) {
      // A replay meets renames the crashed run had already done.
      if (!(replaying && (error as NodeJS.ErrnoException).code === 'ENOENT')) throw error
    }
    dirs.add(path.dirname(to))
  }
  for (const file of removals) {
    await fs.rm(file, { recursive: true, force: true }) // clear removes key directories
    dirs.add(path.dirname(file))
  }
  for (const dir of dirs) await syncDir(fs, dir)
  void base
}

async function removeTemps(fs: FileAdapterFileSystem, dir: string): Promise<void> {
  for (const dirent of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, dirent.name)
    if (dirent.name.startsWith(TEMP_PREFIX)) await fs.rm(full, { force: true })
    else if (dirent.isDirectory()) await removeTemps(fs, full)
  }
}

async function writeSynced(fs: FileAdapterFileSystem, file: string, text: string): Promise<void> {
  const handle = await fs.open(file, 'wx')
  try {
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function syncDir(fs: FileAdapterFileSystem, dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** A failed file-system call as a 5002 naming the file (and `extra`, e.g. the key); a `PersistenceError` passes through. */
function storageError(operation: string, file: string, error: unknown, extra: Record<string, unknown> = {}): PersistenceError {
  if (error instanceof PersistenceError) return error
  const e = error as NodeJS.ErrnoException
  return new PersistenceError(
    `file adapter ${operation} failed on ${e.path ?? file}: ${e.message}`,
    PersistenceErrorCode.STORAGE,
    { adapter: 'file', operation, file: e.path ?? file, ...extra, errno: e.code },
    { cause: error },
  )
}

function fileText(write: RawWrite, createdAt: number, now: number): string {
  const value =
    write.value.kind === 'json' ? write.value.text : JSON.stringify(Buffer.from(write.value.bytes).toString('base64'))
  return (
    `{"v":1,"key":${JSON.stringify(write.key)},"kind":"${write.value.kind}","value":${value},` +
    `"metadata":${write.metadata},"createdAt":${createdAt},"updatedAt":${now},"expiresAt":${write.expiresAt === null ? 'null' : write.expiresAt}}\n`
  )
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

function parseFile(bytes: Uint8Array, key: string, file: string): RawEntry {
  const corrupt = (reason: string) =>
    new PersistenceError(`${file} is corrupt (key ${JSON.stringify(key)}): ${reason}`, PersistenceErrorCode.DATABASE, {
      adapter: 'file',
      file,
      key,
    })
  let text: string
  try {
    // Fatal: a damaged byte must not turn into U+FFFD inside a value.
    text = UTF8.decode(bytes)
  } catch {
    throw corrupt('not UTF-8')
  }
  let stored: StoredFile
  try {
    stored = JSON.parse(text) as StoredFile
  } catch (error) {
    throw corrupt(`not JSON (${(error as Error).message})`)
  }
  if (stored === null || typeof stored !== 'object' || stored.v !== 1) throw corrupt('not a key-value entry file (v 1)')
  if (stored.key !== key) throw corrupt(`it holds key ${JSON.stringify(stored.key)}, its name says ${JSON.stringify(key)}`)
  if (stored.metadata === null || typeof stored.metadata !== 'object' || Array.isArray(stored.metadata)) {
    throw corrupt('metadata is not an object')
  }
  if (!Number.isFinite(stored.createdAt) || !Number.isFinite(stored.updatedAt)) throw corrupt('bad timestamps')
  if (stored.expiresAt !== null && !Number.isFinite(stored.expiresAt)) throw corrupt('bad expiresAt')
  let value: EncodedValue
  if (stored.kind === 'json') {
    if (stored.value === undefined) throw corrupt('no value')
    value = { kind: 'json', text: JSON.stringify(stored.value) }
  } else if (stored.kind === 'binary') {
    const bytes = typeof stored.value === 'string' ? Buffer.from(stored.value, 'base64') : null
    // Padded base64 as written: Node decodes any string, skipping what is not base64.
    if (bytes === null || bytes.toString('base64') !== stored.value) throw corrupt('binary value is not base64')
    value = { kind: 'binary', bytes }
  } else throw corrupt(`unknown kind ${JSON.stringify(stored.kind)}`)
  return {
    key,
    value,
    metadata: JSON.stringify(stored.metadata),
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    expiresAt: stored.expiresAt,
  }
}

// What the jest files share: temp directories, the stores a test opens (closed
// after it), child processes, seeded data and a digest of what is on disk.

import { spawnSync, type ChildProcessWithoutNullStreams, type SpawnSyncReturns } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { mulberry32 } from '../bench/lib/random'
import {
  createVectorStore,
  PersistenceError,
  VectorStoreError,
  type SearchFilters,
  type VectorStoreConfig,
  type VectorStoreHandle,
} from '../index'

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32, the benchmarks' one), so failures reproduce. */
export { mulberry32 as rng }

/** A fresh directory per call, all removed by `cleanup()`. */
export function tempDirs(): { next(): string; cleanup(): void } {
  const made: string[] = []
  return {
    next() {
      const dir = mkdtempSync(join(tmpdir(), 'annvault-test-'))
      made.push(dir)
      return dir
    },
    cleanup() {
      for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface StoreHarness {
  /** A fresh temp directory, removed after the test. */
  dir(): string
  /**
   * Opens a store through `createVectorStore` with the file's defaults, `config` over them, in a
   * fresh temp directory unless a `persistencePath` is given; it is disconnected after the test.
   */
  make(config?: Partial<VectorStoreConfig>): Promise<VectorStoreHandle>
  /** Has a store opened some other way disconnected after the test. */
  track<H extends VectorStoreHandle>(handle: H): H
  /** Disconnects every store opened so far (in the order they were opened). */
  closeAll(): Promise<void>
  /**
   * Runs `body` with a fresh temp directory as the working directory, for the defaults that are
   * relative paths; the stores opened meanwhile are disconnected before the old one comes back.
   */
  inTempCwd<T>(body: (dir: string) => Promise<T>): Promise<T>
}

/**
 * The stores and temp directories of one test file. Call it once at the top of the file: it
 * registers the `afterEach` that disconnects the test's stores, then removes its directories.
 */
export function storeHarness(defaults: Partial<VectorStoreConfig> = {}): StoreHarness {
  const dirs = tempDirs()
  const open: VectorStoreHandle[] = []
  const closeAll = async () => {
    for (const { manager } of open.splice(0)) await manager.disconnect()
  }
  afterEach(async () => {
    try {
      await closeAll()
    } finally {
      dirs.cleanup()
    }
  })
  const track = <H extends VectorStoreHandle>(handle: H): H => {
    open.push(handle)
    return handle
  }
  return {
    dir: () => dirs.next(),
    async make(config = {}) {
      const persistencePath = config.persistencePath ?? defaults.persistencePath ?? dirs.next()
      return track(await createVectorStore({ collectionName: 'docs', dimension: 3, ...defaults, ...config, persistencePath }))
    },
    track,
    closeAll,
    async inTempCwd(body) {
      const previous = process.cwd()
      const dir = dirs.next()
      process.chdir(dir)
      try {
        return await body(dir)
      } finally {
        // A store resolves its relative path when it writes: close it in the directory it opened in.
        try {
          await closeAll()
        } finally {
          process.chdir(previous)
        }
      }
    },
  }
}

/** `count` seeded vectors with components in [-1, 1). */
export function randomVectors(count: number, dimension: number, seed = 1): number[][] {
  const next = mulberry32(seed)
  return Array.from({ length: count }, () => Array.from({ length: dimension }, () => next() * 2 - 1))
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

/** Awaits `promise`, expects it to reject with an instance of `type`, and returns the error. */
export async function rejectionOf<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(type)
    return error as E
  }
  throw new Error(`expected a rejection with ${type.name}`)
}

/** Awaits `promise`, expects a `PersistenceError` (a `VectorStoreError` too), and returns it. */
export async function persistenceError(promise: Promise<unknown>): Promise<PersistenceError> {
  const error = await rejectionOf(promise, PersistenceError)
  expect(error).toBeInstanceOf(VectorStoreError)
  expect(error.name).toBe('PersistenceError')
  return error
}

/**
 * Every directory and file below `root`, by path relative to it: 'dir' for a directory, the
 * SHA-256 of the bytes for a file. Equal before and after a call: the call changed nothing on disk.
 */
export function diskContents(root: string): Record<string, string> {
  const contents: Record<string, string> = {}
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const name = prefix + entry.name
      if (entry.isDirectory()) {
        contents[`${name}/`] = 'dir'
        walk(join(dir, entry.name), `${name}/`)
      } else {
        contents[name] = createHash('sha256').update(readFileSync(join(dir, entry.name))).digest('hex')
      }
    }
  }
  walk(root, '')
  return contents
}

/**
 * Flips every bit of one byte of the file in `dir` whose name starts with `prefix`, the byte
 * `at(length)`; returns the file's name.
 */
export function damage(dir: string, prefix: string, at: (length: number) => number): string {
  const name = readdirSync(dir).find((f) => f.startsWith(prefix))
  if (!name) throw new Error(`no ${prefix}* file in ${dir}`)
  const bytes = readFileSync(join(dir, name))
  bytes[at(bytes.length)] ^= 0xff
  writeFileSync(join(dir, name), bytes)
  return name
}

/**
 * Rewrites the WAL file `file` (or the first `wal-*` file in a directory) as its records end, without
 * the zeros a durable store reserves after them (README, "Reserved log space"), so that a test can
 * damage the last record as a crash would; returns the file's new length.
 */
export function trimWal(file: string): number {
  if (statSync(file).isDirectory()) {
    const name = readdirSync(file).find((f) => f.startsWith('wal-'))
    if (!name) throw new Error(`no WAL file in ${file}`)
    file = join(file, name)
  }
  const end = walRecordsEnd(file)
  writeFileSync(file, readFileSync(file).subarray(0, end))
  return end
}

/** Where the records of the WAL file `file` end: its length without the zeros reserved after them. */
export function walRecordsEnd(file: string): number {
  const bytes = readFileSync(file)
  let end = 40 // the header
  while (end + 8 <= bytes.length) {
    const len = bytes.readUInt32LE(end)
    if (len === 0 || end + 8 + len > bytes.length) break
    end += 8 + len
  }
  if (!bytes.subarray(end).every((b) => b === 0)) throw new Error(`${file}: bytes after the last record are not reserved zeros`)
  return end
}

/** The repository root, which `require` resolves to the built package. */
const PACKAGE = resolve(__dirname, '..')

/**
 * Runs `body` in a child process with `store` open on collection 'docs' (dimension 3) in `path`;
 * the child exits without disconnecting, so nothing but the WAL (and any checkpoint `body` asked
 * for) holds the data, as after a crash.
 */
export function inChild(path: string, body: string): void {
  const script = `
    const { createVectorStore } = require(${JSON.stringify(PACKAGE)})
    createVectorStore({ collectionName: 'docs', dimension: 3, persistencePath: process.argv[1] }).then(async ({ store }) => {
      ${body}
      process.exit(0) // no disconnect, so no checkpoint
    })`
  const result = spawnSync(process.execPath, ['-e', script, path], { encoding: 'utf8' })
  expect(result.stderr).toBe('')
  expect(result.status).toBe(0)
}

/** Calls `onLine` with each whole line `stream` writes, however its chunks split them. */
export function onLines(stream: Readable, onLine: (line: string) => void): () => void {
  let carry = ''
  const onData = (chunk: Buffer) => {
    const lines = (carry + chunk.toString()).split('\n')
    carry = lines.pop() ?? ''
    for (const line of lines) onLine(line)
  }
  stream.on('data', onData)
  return () => stream.off('data', onData)
}

/** Resolves when `child` prints a line that `match`es; rejects if it exits first. */
export function waitForLine(child: ChildProcessWithoutNullStreams, match: (line: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let errors = ''
    const onErrors = (chunk: Buffer) => {
      errors += chunk.toString()
    }
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before the expected line: ${errors}`))
    const stop = onLines(child.stdout, (line) => {
      if (!match(line)) return
      stop()
      child.stderr.off('data', onErrors)
      child.off('exit', onExit)
      resolve()
    })
    child.stderr.on('data', onErrors)
    child.once('exit', onExit)
  })
}

/**
 * Resolves when `child` has exited and its output is read to the end. Call it right after the
 * spawn, before anything that can let the child exit (an await, a kill), so that the event cannot
 * pass unseen.
 */
export function closed(child: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => child.once('close', () => resolve()))
}

/** The package's `annvault` command. */
export const cliBin = join(resolve(__dirname, '..'), 'bin/annvault.js')

/** Runs `annvault …` as users run it: a child process, its output as text. */
export function cli(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [cliBin, ...args], { encoding: 'utf8', timeout: 120_000 })
}

/** The JSON a `--json` command printed, after checking it exited 0 with nothing on stderr. */
export function cliJson(result: SpawnSyncReturns<string>): any {
  expect(result.stderr).toBe('')
  expect(result.status).toBe(0)
  return JSON.parse(result.stdout)
}

/** The ids `filters` selects from `store`, from `list`, checked against what `search` returns for them. */
export async function selectedIds(store: VectorStoreHandle['store'], filters: SearchFilters): Promise<unknown[]> {
  const [records, total] = await store.list(filters)
  const hits = await store.search([1, 0], 10, filters)
  expect(hits.map((h) => h.id).sort()).toEqual(records.map((r) => r.id).sort())
  expect(total).toBe(records.length)
  return records.map((r) => r.id)
}

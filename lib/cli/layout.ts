// What the CLI reads from a collection directory without opening it: the
// file listing, and the few header fields it needs to open the collection as
// it was created (dimension and distance from MANIFEST, snapshot compression,
// the saved graph's quantization). These are hints only: the store verifies
// every checksum when the CLI then opens the collection, so a damaged file is
// reported by the core, with its code, never trusted from here. The byte
// layouts are the ones drawn in crates/core/src/storage/{manifest,snapshot}.rs
// and crates/core/src/ann.rs.

import { readdirSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { CliError } from './errors'

export interface FileEntry {
  name: string
  bytes: number
  /** What the file is, from its name. */
  kind: 'lock' | 'manifest' | 'snapshot' | 'wal' | 'graph' | 'graph-map' | 'temp' | 'recovered' | 'other'
  /** The generation in the name, for snapshot-, wal- and index- files. */
  generation: number | null
}

export interface ManifestHint {
  dimension: number
  distance: string
  snapshot: number
  snapshotSeq: number
  walStart: number
  checkpointedAtMs: number
}

export interface CollectionLocation {
  /** The persistence path: the directory holding the collection's directory. */
  persistencePath: string
  name: string
  /** The collection's directory. */
  path: string
}

const GENERATION = /^(snapshot|wal|index)-(\d+)\.(avs|log|usearch|map)$/

function kindOf(name: string, isDirectory: boolean): Pick<FileEntry, 'kind' | 'generation'> {
  if (isDirectory) return { kind: name.startsWith('recovered-') ? 'recovered' : 'other', generation: null }
  if (name === 'LOCK') return { kind: 'lock', generation: null }
  if (name === 'MANIFEST') return { kind: 'manifest', generation: null }
  if (name.endsWith('.tmp')) return { kind: 'temp', generation: null }
  const m = GENERATION.exec(name)
  if (m) {
    const generation = Number(m[2])
    if (m[1] === 'snapshot' && m[3] === 'avs') return { kind: 'snapshot', generation }
    if (m[1] === 'wal' && m[3] === 'log') return { kind: 'wal', generation }
    if (m[1] === 'index' && m[3] === 'usearch') return { kind: 'graph', generation }
    if (m[1] === 'index' && m[3] === 'map') return { kind: 'graph-map', generation }
  }
  return { kind: 'other', generation: null }
}

function directorySize(path: string): number {
  let total = 0
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name)
    total += entry.isDirectory() ? directorySize(full) : statSync(full).size
  }
  return total
}

/** The collection directory's entries, sorted by name (a `recovered-*` directory counts its contents). */
export function listFiles(path: string): FileEntry[] {
  return readdirSync(path, { withFileTypes: true })
    .map((entry) => {
      const full = join(path, entry.name)
      const bytes = entry.isDirectory() ? directorySize(full) : statSync(full).size
      return { name: entry.name, bytes, ...kindOf(entry.name, entry.isDirectory()) }
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Whether `path` holds a collection: a MANIFEST, or data files a missing MANIFEST would strand. */
export function isCollectionDir(path: string): boolean {
  let names: string[]
  try {
    names = readdirSync(path)
  } catch {
    return false
  }
  return names.some((n) => n === 'MANIFEST' || /^(snapshot-\d+\.avs|wal-\d+\.log)$/.test(n))
}

function checkDirectory(dir: string): string {
  const path = resolve(dir)
  let isDirectory: boolean
  try {
    isDirectory = statSync(path).isDirectory()
  } catch (error) {
    throw new CliError(`cannot read ${dir}: ${(error as Error).message}`, 2)
  }
  if (!isDirectory) throw new CliError(`${dir} is not a directory`, 2)
  return path
}

/**
 * The collections `dir` names: `dir` itself when it is a collection's directory, else its
 * subdirectories that hold one (a persistence path). `only` picks one by name (exit 1 when absent).
 */
export function findCollections(dir: string, only?: string): CollectionLocation[] {
  const path = checkDirectory(dir)
  if (isCollectionDir(path)) {
    const location = { persistencePath: dirname(path), name: basename(path), path }
    if (only !== undefined && only !== location.name) {
      throw new CliError(`${dir} is the collection '${location.name}', not '${only}'`, 1)
    }
    return [location]
  }
  const found = readdirSync(path, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isCollectionDir(join(path, e.name)))
    .map((e) => ({ persistencePath: path, name: e.name, path: join(path, e.name) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  if (only === undefined) return found
  const match = found.filter((c) => c.name === only)
  if (match.length === 0) {
    const names = found.map((c) => c.name).join(', ') || 'none'
    throw new CliError(`no collection '${only}' in ${dir} (collections: ${names})`, 1)
  }
  return match
}

/** The single collection a command that works on one collection means. */
export function oneCollection(dir: string, name?: string): CollectionLocation {
  const found = findCollections(dir, name)
  if (found.length === 1) return found[0]
  if (found.length === 0) throw new CliError(`no collection in ${dir}`, 1)
  throw new CliError(
    `${dir} holds ${found.length} collections (${found.map((c) => c.name).join(', ')}): name one with --collection`,
    2,
  )
}

/** MANIFEST's JSON, unverified (the store verifies it on open); null when unreadable here. */
export function readManifestHint(path: string): ManifestHint | null {
  try {
    const bytes = readFileSync(join(path, 'MANIFEST'))
    if (bytes.length < 20 || bytes.toString('latin1', 0, 8) !== 'AVMANIF\0') return null
    const json = JSON.parse(bytes.toString('utf8', 20)) as ManifestHint
    if (!Number.isInteger(json.dimension) || typeof json.distance !== 'string') return null
    return json
  } catch {
    return null
  }
}

function readHead(file: string, length: number): Buffer | null {
  let fd: number | undefined
  try {
    fd = openSync(file, 'r')
    const head = Buffer.alloc(length)
    return readSync(fd, head, 0, length, 0) === length ? head : null
  } catch {
    return null
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Whether the snapshot of `generation` is gzip-compressed (flags bit 0 at byte 12). */
export function snapshotCompression(path: string, generation: number): 'none' | 'gzip' | null {
  if (generation === 0) return null
  const head = readHead(join(path, `snapshot-${String(generation).padStart(20, '0')}.avs`), 16)
  if (head === null || head.toString('latin1', 0, 6) !== 'AVSNAP') return null
  return (head.readUInt32LE(12) & 1) === 1 ? 'gzip' : 'none'
}

export interface SavedGraphHint {
  generation: number
  quantization: 'i8' | 'f16' | 'f32' | null
  /** Graph labels the map lists (tombstones included). */
  labels: number | null
  files: string[]
}

const QUANTIZATION: Record<number, SavedGraphHint['quantization']> = { 1: 'i8', 2: 'f16', 3: 'f32' }

/** The graph saved with the snapshot of `generation`, as its index map describes it; null when none. */
export function savedGraph(path: string, files: FileEntry[], generation: number): SavedGraphHint | null {
  const map = files.find((f) => f.kind === 'graph-map' && f.generation === generation)
  if (!map || generation === 0) return null
  const hint: SavedGraphHint = {
    generation,
    quantization: null,
    labels: null,
    files: files.filter((f) => f.generation === generation && (f.kind === 'graph' || f.kind === 'graph-map')).map((f) => f.name),
  }
  try {
    const bytes = readFileSync(join(path, map.name))
    if (bytes.toString('latin1', 0, 4) !== 'AVIX' || bytes.readUInt32LE(4) !== 2) return hint
    hint.quantization = QUANTIZATION[bytes[14]] ?? null
    let at = 15
    const fileCount = bytes.readUInt32LE(at)
    at += 4
    for (let i = 0; i < fileCount; i++) at += 4 + bytes.readUInt32LE(at) + 8 + 4
    at += 16 // labels audited, labels fully audited
    hint.labels = Number(bytes.readBigUInt64LE(at))
  } catch {
    // A short or damaged map: the store rebuilds the graph, and says so in its stats.
  }
  return hint
}

export function totalBytes(files: FileEntry[]): number {
  return files.reduce((sum, f) => sum + f.bytes, 0)
}

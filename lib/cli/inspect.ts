// `annvault inspect <dir>`: what is in a persistence path (or one collection's
// directory): per collection its points, dimension, distance, files and sizes,
// WAL, last checkpoint, saved graph and what recovery found on open.
// Read-only (see open.ts). Exit 0, or 2 when a collection could not be opened
// (held by another process, damaged); the others are still reported.

import type { Command } from 'commander'
import type { SnapshotInfo, StoreStats } from '../../index'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { CliError, EXIT_COULD_NOT_RUN, EXIT_OK, storeFailure } from './errors'
import { formatBytes, formatTime, printJson, printLines } from './format'
import {
  type CollectionLocation,
  type FileEntry,
  type SavedGraphHint,
  findCollections,
  listFiles,
  readManifestHint,
  savedGraph,
  snapshotCompression,
  totalBytes,
} from './layout'
import { openCollection } from './open'
import { progressMode, startProgress } from './progress'

export interface CollectionReport {
  name: string
  path: string
  files: FileEntry[]
  bytesOnDisk: number
  /** Why the collection could not be opened; the fields below are then absent. */
  error?: { message: string; kind: string | null; code: number | null }
  count?: number
  dimension?: number
  distance?: string
  wal?: { files: string[]; bytes: number; sequence: number; replayedRecords: number }
  lastCheckpoint?: { ms: number; iso: string } | null
  snapshot?: { generation: number; compression: 'none' | 'gzip' | null; points: number } | null
  /** The graph saved with the snapshot (read from its index map); null when none is saved. */
  index?: { saved: SavedGraphHint | null }
  recovery?: Pick<StoreStats, 'tornBytes' | 'tornTail' | 'recoveredTo'> & { recoveredDirectories: string[] }
  /** Named snapshots, oldest first. */
  snapshots?: SnapshotInfo[]
}

async function inspectOne(location: CollectionLocation): Promise<CollectionReport> {
  const files = listFiles(location.path)
  const base = { name: location.name, path: location.path, files, bytesOnDisk: totalBytes(files) }
  let opened
  try {
    opened = await openCollection(location, 'read')
  } catch (error) {
    const failure = error instanceof CliError ? error : storeFailure(error, `collection '${location.name}'`)
    return {
      ...base,
      error: {
        message: failure.message,
        kind: failure.storeError?.kind ?? null,
        code: failure.storeError?.code ?? null,
      },
    }
  }
  const stats = await opened.store.stats()
  const snapshots = await opened.store.listSnapshots()
  const hint = readManifestHint(location.path)
  const generation = hint?.snapshot ?? 0
  // Opening may cut a torn tail: list again so sizes are what is on disk now.
  const after = listFiles(location.path)
  return {
    ...base,
    files: after,
    bytesOnDisk: totalBytes(after),
    count: stats.count,
    dimension: opened.dimension,
    distance: opened.distance,
    wal: {
      files: after.filter((f) => f.kind === 'wal').map((f) => f.name),
      bytes: stats.walBytes,
      sequence: stats.sequence,
      replayedRecords: stats.replayedRecords,
    },
    lastCheckpoint: stats.lastCheckpointMs ? { ms: stats.lastCheckpointMs, iso: formatTime(stats.lastCheckpointMs) } : null,
    snapshot:
      generation === 0
        ? null
        : { generation, compression: snapshotCompression(location.path, generation), points: stats.recoveredSnapshotPoints },
    index: { saved: savedGraph(location.path, after, generation) },
    recovery: {
      tornBytes: stats.tornBytes,
      tornTail: stats.tornTail,
      recoveredTo: stats.recoveredTo,
      recoveredDirectories: after.filter((f) => f.kind === 'recovered').map((f) => f.name),
    },
    snapshots,
  }
}

function describeGraph(report: CollectionReport): string {
  const saved = report.index?.saved
  if (!saved) return 'none saved (searched exactly, or built in the background on the next open)'
  const labels = saved.labels === null ? 'unreadable map' : `${saved.labels} labels`
  return `saved with snapshot ${saved.generation}: ${labels}, ${saved.quantization ?? '?'} vectors (${saved.files.join(', ')})`
}

function text(reports: CollectionReport[], dir: string): string[] {
  if (reports.length === 0) return [`no collections in ${dir}`]
  const lines: string[] = []
  for (const r of reports) {
    lines.push(`${r.name}  (${r.path})`)
    if (r.error) {
      lines.push(`  error         ${r.error.message}${r.error.kind ? ` [${r.error.kind} ${r.error.code}]` : ''}`)
    } else {
      lines.push(`  points        ${r.count}`)
      lines.push(`  dimension     ${r.dimension}`)
      lines.push(`  distance      ${r.distance}`)
      const wal = r.wal!
      lines.push(`  WAL           ${formatBytes(wal.bytes)} in ${wal.files.join(', ') || 'no file'}; sequence ${wal.sequence}; ${wal.replayedRecords} records replayed on open`)
      const snapshot = r.snapshot
      lines.push(
        `  checkpoint    ${r.lastCheckpoint ? r.lastCheckpoint.iso : 'never'}` +
          (snapshot ? ` (snapshot ${snapshot.generation}, ${snapshot.points} points, compression ${snapshot.compression})` : ''),
      )
      lines.push(`  graph         ${describeGraph(r)}`)
      const named = r.snapshots!
      lines.push(`  snapshots     ${named.length === 0 ? 'none' : named.map((s) => (s.name === s.id ? s.id : `${s.name} (${s.id})`)).join(', ')}`)
      const recovery = r.recovery!
      if (recovery.tornTail) {
        lines.push(`  torn tail     ${recovery.tornBytes} bytes cut from ${recovery.tornTail.file} at ${recovery.tornTail.offset} (${recovery.tornTail.kind}: ${recovery.tornTail.reason})`)
      }
      if (recovery.recoveredDirectories.length > 0) {
        lines.push(`  recovered     ${recovery.recoveredDirectories.join(', ')} (what recovery: 'truncate' moved aside)`)
      }
    }
    lines.push(`  files         ${formatBytes(r.bytesOnDisk)} in ${r.files.length} entries`)
    for (const f of r.files) lines.push(`    ${f.name.padEnd(36)} ${formatBytes(f.bytes).padStart(10)}`)
  }
  return lines
}

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('inspect')
      .description('show the collections in a persistence path (or one collection directory): points, dimension, distance, files, WAL, checkpoint, graph')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .option('-c, --collection <name>', 'only this collection')
      .option('--json', 'one JSON document on stdout'),
  ).action(async (dir: string, options: CommonOptions & { collection?: string }) => {
    const locations = findCollections(dir, options.collection)
    const progress = startProgress(progressMode(options), locations.length, 'inspect')
    const reports: CollectionReport[] = []
    try {
      for (const location of locations) {
        progress.step(`opening ${location.name}`)
        reports.push(await inspectOne(location))
      }
    } finally {
      progress.stop()
    }
    if (options.json) printJson({ path: dir, collections: reports })
    else printLines(text(reports, dir))
    const failed = reports.filter((r) => r.error)
    for (const r of failed) {
      const code = r.error!.kind ? ` [${r.error!.kind} ${r.error!.code}]` : ''
      process.stderr.write(`annvault inspect: ${r.error!.message}${code}\n`)
    }
    done(failed.length > 0 ? EXIT_COULD_NOT_RUN : EXIT_OK)
  })
}

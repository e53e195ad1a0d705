// `annvault compact <dir>`: checkpoints each collection (snapshot of the
// current state, WAL it covers removed, older snapshots and graphs dropped;
// leftover temp files are removed on open) and reports bytes before and
// after. Opens each collection as it was made (see open.ts): compression and
// saved graph kept. Refuses a collection another process holds (exit 2).

import type { Command } from 'commander'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { EXIT_OK, storeFailure } from './errors'
import { formatBytes, printJson, printLines } from './format'
import { findCollections, listFiles, totalBytes } from './layout'
import { openCollection } from './open'
import { progressMode, startProgress } from './progress'

export interface CompactReport {
  name: string
  path: string
  count: number
  bytesBefore: number
  bytesAfter: number
  removed: string[]
  added: string[]
}

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('compact')
      .description('checkpoint each collection and drop the files the checkpoint makes obsolete; prints bytes before and after')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .option('-c, --collection <name>', 'only this collection')
      .option('--json', 'one JSON document on stdout'),
  ).action(async (dir: string, options: CommonOptions & { collection?: string }) => {
    const locations = findCollections(dir, options.collection)
    const progress = startProgress(progressMode(options), locations.length * 3, 'compact')
    const reports: CompactReport[] = []
    try {
      for (const location of locations) {
        const before = listFiles(location.path)
        progress.step(`opening ${location.name}`)
        const opened = await openCollection(location, 'write')
        let count: number
        try {
          progress.step(`checkpointing ${location.name}`)
          count = await opened.store.count()
          await opened.store.checkpoint()
        } catch (error) {
          await opened.handle.manager.disconnect().catch(() => undefined)
          throw storeFailure(error, `collection '${location.name}'`)
        }
        progress.step(`closing ${location.name}`)
        try {
          await opened.handle.manager.disconnect()
        } catch (error) {
          throw storeFailure(error, `collection '${location.name}'`)
        }
        const after = listFiles(location.path)
        const names = (files: typeof before) => new Set(files.map((f) => f.name))
        const [was, is] = [names(before), names(after)]
        reports.push({
          name: location.name,
          path: location.path,
          count,
          bytesBefore: totalBytes(before),
          bytesAfter: totalBytes(after),
          removed: [...was].filter((n) => !is.has(n)),
          added: [...is].filter((n) => !was.has(n)),
        })
      }
    } finally {
      progress.stop()
    }
    if (options.json) printJson({ path: dir, collections: reports })
    else if (reports.length === 0) printLines([`no collections in ${dir}`])
    else {
      printLines(
        reports.map(
          (r) =>
            `${r.name}: ${r.count} points, ${formatBytes(r.bytesBefore)} -> ${formatBytes(r.bytesAfter)}` +
            (r.removed.length > 0 ? ` (removed ${r.removed.join(', ')})` : ''),
        ),
      )
    }
    done(EXIT_OK)
  })
}

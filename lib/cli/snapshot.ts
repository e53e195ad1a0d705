// `annvault snapshot create|list|restore|delete <dir> [name]`: the store's
// named snapshots (README, "Named snapshots and auto-save"). `list` is
// read-only (see open.ts); the others open the collection as it was made and
// close it with a checkpoint. Unknown snapshot: exit 1 ([NOT_FOUND 1011]).

import type { Command } from 'commander'
import type { SnapshotInfo } from '../../index'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { CliError, EXIT_COULD_NOT_RUN, EXIT_OK, EXIT_PROBLEM, storeFailure } from './errors'
import { formatBytes, formatTime, printJson, printLines } from './format'
import { oneCollection } from './layout'
import { openCollection, type OpenedCollection } from './open'
import { operationProgress, progressMode } from './progress'

type Options = CommonOptions & { collection?: string }

function describe(s: SnapshotInfo): string {
  const name = s.name === s.id ? '' : ` '${s.name}'`
  return `${s.id}${name}: ${s.count} points, sequence ${s.sequence}, ${formatBytes(s.bytes)}, ${formatTime(s.createdAt)}`
}

/** A store failure as the CLI reports it; an unknown snapshot is "not found" (exit 1), not "could not run". */
function failure(error: unknown, what: string): CliError {
  const wrapped = storeFailure(error, what)
  return wrapped.storeError?.kind === 'NOT_FOUND' ? new CliError(wrapped.message, EXIT_PROBLEM, wrapped.storeError) : wrapped
}

/** Runs `body` on the collection opened for writing, and closes it (with a checkpoint) either way. */
async function withWritable<T>(dir: string, options: Options, what: string, body: (opened: OpenedCollection) => Promise<T>): Promise<T> {
  const location = oneCollection(dir, options.collection)
  const opened = await openCollection(location, 'write')
  let result: T
  try {
    result = await body(opened)
  } catch (error) {
    await opened.handle.manager.disconnect().catch(() => undefined)
    throw failure(error, `${what} in '${location.name}'`)
  }
  try {
    await opened.handle.manager.disconnect()
  } catch (error) {
    throw storeFailure(error, `collection '${location.name}'`)
  }
  return result
}

function parseMetadata(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new CliError(`--metadata is not JSON: ${(error as Error).message}`, EXIT_COULD_NOT_RUN)
  }
}

export function register(program: Command, done: Done): void {
  const snapshot = program.command('snapshot').description('named snapshots of a collection: create, list, restore, delete')

  snapshot
    .command('create')
    .description('take a named snapshot of the collection as it is now')
    .argument('<dir>', 'a persistence path, or one collection directory')
    .argument('[name]', 'the snapshot name (default: its id)')
    .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
    .option('--metadata <json>', 'a JSON value kept with the snapshot')
    .option('--json', 'the snapshot as JSON on stdout')
    .action(async (dir: string, name: string | undefined, options: Options & { metadata?: string }) => {
      const metadata = parseMetadata(options.metadata)
      const info = await withWritable(dir, options, 'snapshot', (opened) =>
        opened.store.createSnapshot(name, metadata === undefined ? undefined : { metadata: metadata as never }),
      )
      if (options.json) printJson(info)
      else printLines([`created ${describe(info)}`])
      done(EXIT_OK)
    })

  snapshot
    .command('list')
    .description('list the named snapshots, oldest first (read-only)')
    .argument('<dir>', 'a persistence path, or one collection directory')
    .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
    .option('--json', 'a JSON array on stdout')
    .action(async (dir: string, options: Options) => {
      const location = oneCollection(dir, options.collection)
      let list: SnapshotInfo[]
      try {
        const opened = await openCollection(location, 'read')
        list = await opened.store.listSnapshots()
      } catch (error) {
        throw storeFailure(error, `snapshots of '${location.name}'`)
      }
      if (options.json) printJson(list)
      else printLines(list.length === 0 ? [`no snapshots in ${location.name}`] : list.map(describe))
      done(EXIT_OK)
    })

  withProgressOptions(
    snapshot
      .command('restore')
      .description('check a snapshot against its SHA-256, then make it the collection (atomically)')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .argument('<name>', 'the snapshot id or name')
      .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
      .option('--json', 'the restored snapshot as JSON on stdout'),
  ).action(async (dir: string, name: string, options: Options) => {
    const progress = operationProgress(progressMode(options), 'restore')
    let info: SnapshotInfo
    try {
      info = await withWritable(dir, options, `restore '${name}'`, (opened) =>
        opened.store.restoreSnapshot(name, { onProgress: (event) => progress.onProgress(event) }),
      )
    } finally {
      progress.stop()
    }
    if (options.json) printJson(info)
    else printLines([`restored ${describe(info)}`])
    done(EXIT_OK)
  })

  snapshot
    .command('delete')
    .description('delete a named snapshot')
    .argument('<dir>', 'a persistence path, or one collection directory')
    .argument('<name>', 'the snapshot id or name')
    .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
    .option('--json', 'the deleted snapshot as JSON on stdout')
    .action(async (dir: string, name: string, options: Options) => {
      const info = await withWritable(dir, options, `delete '${name}'`, (opened) => opened.store.deleteSnapshot(name))
      if (options.json) printJson(info)
      else printLines([`deleted ${describe(info)}`])
      done(EXIT_OK)
    })
}

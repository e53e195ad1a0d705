// `annvault export <dir> <file>` and `annvault import <file> <dir>`: the
// store's export and import (formats annvault, json, jsonl, msgpack, sqlite, parquet;
// compression none, gzip, brotli; see README "Export, import and verify"),
// with progress. An import is validated whole before anything is applied.

import { type Command, Option } from 'commander'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { CliError, EXIT_COULD_NOT_RUN, EXIT_OK, storeFailure } from './errors'
import { printJson, printLines } from './format'
import { oneCollection } from './layout'
import { openCollection } from './open'
import { operationProgress, progressMode } from './progress'

const FORMATS = ['annvault', 'json', 'jsonl', 'msgpack', 'sqlite', 'parquet']
const COMPRESSIONS = ['none', 'gzip', 'brotli']

function parseFilter(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new CliError(`--filter is not JSON: ${(error as Error).message}`, EXIT_COULD_NOT_RUN)
  }
}

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('export')
      .description('write one collection to a file (atomically; an existing file only with --overwrite)')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .argument('<file>', 'the file to write')
      .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
      .addOption(new Option('--format <format>', 'file format').choices(FORMATS).default('annvault'))
      .addOption(new Option('--compression <compression>', 'compression').choices(COMPRESSIONS).default('none'))
      .option('--filter <json>', 'only the points matching this filter')
      .option('--overwrite', 'replace an existing file')
      .option('--json', 'the result as JSON on stdout'),
  ).action(
    async (
      dir: string,
      file: string,
      options: CommonOptions & { collection?: string; format: string; compression: string; filter?: string; overwrite?: boolean },
    ) => {
      const filter = parseFilter(options.filter)
      const location = oneCollection(dir, options.collection)
      const progress = operationProgress(progressMode(options), 'export')
      let result
      try {
        const opened = await openCollection(location, 'read')
        result = await opened.store.export(file, {
          format: options.format as 'annvault',
          compression: options.compression as 'none',
          filter: filter as never,
          overwrite: options.overwrite === true,
          onProgress: (event) => progress.onProgress(event),
        })
      } catch (error) {
        throw storeFailure(error, `export '${location.name}'`)
      } finally {
        progress.stop()
      }
      if (options.json) printJson(result)
      else printLines([`${location.name}: ${result.count} points -> ${result.path} (${result.format}, ${result.compression}, ${result.bytes} bytes)`])
      done(EXIT_OK)
    },
  )
  withProgressOptions(
    program
      .command('import')
      .description('read an export file into a collection (validated whole first; nothing changes on a bad file)')
      .argument('<file>', 'the export file (format and compression are detected)')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
      .addOption(new Option('--mode <mode>', 'merge (upsert) or replace (clear first)').choices(['merge', 'replace']).default('merge'))
      .option('--json', 'the result as JSON on stdout'),
  ).action(async (file: string, dir: string, options: CommonOptions & { collection?: string; mode: string }) => {
    const location = oneCollection(dir, options.collection)
    const progress = operationProgress(progressMode(options), 'import')
    let result
    const opened = await openCollection(location, 'write')
    try {
      result = await opened.store.import(file, { mode: options.mode as 'merge', onProgress: (event) => progress.onProgress(event) })
      await opened.handle.manager.disconnect()
    } catch (error) {
      await opened.handle.manager.disconnect().catch(() => undefined)
      throw storeFailure(error, `import into '${location.name}'`)
    } finally {
      progress.stop()
    }
    if (options.json) printJson(result)
    else printLines([`${location.name}: imported ${result.count} points (${result.format}, ${result.compression})`])
    done(EXIT_OK)
  })
}

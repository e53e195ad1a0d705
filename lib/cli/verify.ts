// `annvault verify <dir>`: reads every file of each collection (manifest,
// snapshot, WAL, saved graph) and checks checksums, sequence continuity and
// that they agree (store.verify()). Exit 0 clean, 1 problems found, 2 could
// not run. Read-only (see open.ts): the collection is opened without its
// graph and never closed, so verify writes nothing of its own.

import type { Command } from 'commander'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { EXIT_OK, EXIT_PROBLEM, storeFailure } from './errors'
import { formatBytes, printJson, printLines } from './format'
import { findCollections } from './layout'
import { openCollection } from './open'
import { operationProgress, progressMode } from './progress'

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('verify')
      .description('check every checksum of each collection; exit code 0 clean, 1 problems found, 2 could not run')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .option('-c, --collection <name>', 'only this collection')
      .option('--json', 'one JSON document on stdout'),
  ).action(async (dir: string, options: CommonOptions & { collection?: string }) => {
    const reports = []
    for (const location of findCollections(dir, options.collection)) {
      const progress = operationProgress(progressMode(options), `verify ${location.name}`)
      try {
        const opened = await openCollection(location, 'read')
        const result = await opened.store.verify({ onProgress: (event) => progress.onProgress(event) })
        reports.push({ name: location.name, path: location.path, ...result })
      } catch (error) {
        throw storeFailure(error, `verify '${location.name}'`)
      } finally {
        progress.stop()
      }
    }
    const ok = reports.every((r) => r.ok)
    if (options.json) printJson({ path: dir, ok, collections: reports })
    else if (reports.length === 0) printLines([`no collections in ${dir}`])
    else {
      const lines: string[] = []
      for (const r of reports) {
        lines.push(`${r.name}: ${r.ok ? 'ok' : 'PROBLEMS'}, ${r.count} points, ${r.files.length} files`)
        for (const f of r.files) lines.push(`  ${f.ok ? 'ok ' : 'BAD'} ${f.file} (${formatBytes(f.bytes)})${f.error ? `: ${f.error}` : ''}`)
        for (const p of r.problems) lines.push(`  problem: ${p}`)
      }
      printLines(lines)
    }
    done(ok ? EXIT_OK : EXIT_PROBLEM)
  })
}

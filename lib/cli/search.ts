// `annvault search <dir> --vector <json|@file> [-k N] [--filter <json>]`: a
// quick look at the nearest points. Read-only and exact (see open.ts).

import { type Command, Option } from 'commander'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { EXIT_OK, storeFailure } from './errors'
import { printJson, printLines } from './format'
import { oneCollection } from './layout'
import { openCollection } from './open'
import { progressMode, startProgress } from './progress'
import { parseFilter, parseLimit, parseVector } from './args'

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('search')
      .description('the nearest points to a vector (exact search), best first; scores are higher-is-closer')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
      .addOption(new Option('--vector <json|@file>', 'the query: a JSON array of numbers, or @file holding one').makeOptionMandatory())
      .option('-k, --limit <k>', 'how many results', '10')
      .option('--filter <json>', 'a filter in annvault\'s filter language, e.g. \'{"kind":"doc"}\'')
      .option('--json', 'one JSON array on stdout'),
  ).action(
    async (dir: string, options: CommonOptions & { collection?: string; vector: string; limit: string; filter?: string }) => {
      const vector = parseVector(options.vector)
      const limit = parseLimit(options.limit)
      const filter = parseFilter(options.filter)
      const location = oneCollection(dir, options.collection)
      const progress = startProgress(progressMode(options, false), 2, 'search')
      let hits
      try {
        progress.step(`opening ${location.name}`)
        const opened = await openCollection(location, 'read')
        progress.step('searching')
        hits = await opened.store.search(vector, limit, filter as never)
      } catch (error) {
        throw storeFailure(error, `search in '${location.name}'`)
      } finally {
        progress.stop()
      }
      if (options.json) printJson(hits)
      else if (hits.length === 0) printLines(['no matching points'])
      else printLines(hits.map((h, i) => `${String(i + 1).padStart(3)}  ${h.score.toFixed(6)}  ${JSON.stringify(h.id)}  ${JSON.stringify(h.payload)}`))
      done(EXIT_OK)
    },
  )
}

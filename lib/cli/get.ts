// `annvault get <dir> <id>`: one point as JSON (id, payload, vector). Exit 1
// when there is no such id. Read-only (see open.ts).

import { type Command, Option } from 'commander'
import { type Done, type CommonOptions, withProgressOptions } from './command'
import { EXIT_OK, EXIT_PROBLEM, storeFailure } from './errors'
import { printJson } from './format'
import { oneCollection } from './layout'
import { openCollection } from './open'
import { progressMode, startProgress } from './progress'
import { candidateIds } from './args'

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('get')
      .description('one point by id, as JSON; exit code 1 when it does not exist')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .argument('<id>', 'the point id')
      .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
      .addOption(
        new Option('--id-type <type>', 'ids keep their type: auto tries an integer as a number, then as a string')
          .choices(['auto', 'string', 'number'])
          .default('auto'),
      )
      .option('--no-vector', 'leave the vector out'),
  ).action(async (dir: string, idText: string, options: CommonOptions & { collection?: string; idType: string; vector: boolean }) => {
    const ids = candidateIds(idText, options.idType)
    const location = oneCollection(dir, options.collection)
    const progress = startProgress(progressMode(options, false), 2, 'get')
    let point = null
    try {
      progress.step(`opening ${location.name}`)
      const opened = await openCollection(location, 'read')
      progress.step('reading')
      for (const id of ids) {
        point = await opened.store.get(id)
        if (point) break
      }
    } catch (error) {
      throw storeFailure(error, `get from '${location.name}'`)
    } finally {
      progress.stop()
    }
    if (!point) {
      process.stderr.write(`annvault get: no point with id ${ids.map((id) => JSON.stringify(id)).join(' or ')} in '${location.name}'\n`)
      done(EXIT_PROBLEM)
      return
    }
    printJson(options.vector ? point : { id: point.id, payload: point.payload })
    done(EXIT_OK)
  })
}

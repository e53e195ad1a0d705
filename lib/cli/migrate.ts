// `annvault migrate <dir> --to postgres://…`: copies one local collection into
// the pgvector backend (same collection name unless --target), with progress,
// and resumes where an interrupted run stopped.
//
// How: the collection is exported to a temporary `jsonl` file (a point in its
// write order, taken without holding up anything), which is read line by line
// and upserted into PostgreSQL in batches, each its own transaction. After
// each batch the run records how many points are in, in the table
// `annvault_migrations` (one row per target collection: source path, the
// source's WAL sequence, points done, total), so the record lives with the
// data it describes. A rerun with the same source at the same sequence skips
// the points recorded (at most one batch is written twice, and an upsert makes
// that harmless). A source that changed since, or a target that already holds
// points this command did not put there, is refused unless --replace (which
// empties the target first): a migration never merges two states silently.

import { createReadStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { createVectorStore } from '../../index'
import { type CommonOptions, type Done, withProgressOptions } from './command'
import { CliError, EXIT_COULD_NOT_RUN, EXIT_OK, storeFailure } from './errors'
import { printJson, printLines } from './format'
import { oneCollection } from './layout'
import { openCollection } from './open'
import { operationProgress, progressMode } from './progress'

interface MigrateOptions extends CommonOptions {
  to: string
  collection?: string
  target?: string
  batch: string
  replace?: boolean
}

export interface MigrateResult {
  source: string
  collection: string
  target: string
  sequence: number
  count: number
  /** Points already in from an interrupted run, skipped this time. */
  resumedFrom: number
}

const PROGRESS_TABLE = `CREATE TABLE IF NOT EXISTS annvault_migrations (
  target text PRIMARY KEY, source text NOT NULL, sequence bigint NOT NULL,
  done bigint NOT NULL, total bigint NOT NULL, finished_at timestamptz)`

function batchSize(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > 100000) {
    throw new CliError(`--batch must be an integer from 1 to 100000, got ${JSON.stringify(text)}`, EXIT_COULD_NOT_RUN)
  }
  return n
}

/** A query on the progress table; a failure is a could-not-run error naming PostgreSQL. */
async function query(pool: any, sql: string, params: unknown[] = []): Promise<any[]> {
  try {
    return (await pool.query(sql, params)).rows
  } catch (error) {
    throw new CliError(`PostgreSQL: ${(error as Error).message}`, EXIT_COULD_NOT_RUN)
  }
}

async function* points(file: string): AsyncGenerator<{ id: string | number; vector: number[]; payload: Record<string, unknown> }> {
  // A line is one point (`id`, `values`, `metadata`: jsonl version 2): memory
  // stays at one batch whatever the collection's size.
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })
  let first = true
  for await (const line of lines) {
    if (first) {
      first = false // the header
      continue
    }
    if (line.length === 0) continue
    const record = JSON.parse(line)
    yield { id: record.id, vector: record.values, payload: record.metadata }
  }
}

export function register(program: Command, done: Done): void {
  withProgressOptions(
    program
      .command('migrate')
      .description('copy a collection into PostgreSQL + pgvector (resumable; see README "Migration")')
      .argument('<dir>', 'a persistence path, or one collection directory')
      .requiredOption('--to <url>', 'the PostgreSQL connection string, e.g. postgresql://user@host/db')
      .option('-c, --collection <name>', 'the collection (needed when <dir> holds several)')
      .option('--target <name>', 'the collection name in PostgreSQL (default: the same name)')
      .option('--batch <n>', 'points per transaction', '1000')
      .option('--replace', 'empty the target collection first (needed when it holds other points)')
      .option('--json', 'the result as JSON on stdout'),
  ).action(async (dir: string, options: MigrateOptions) => {
    const batch = batchSize(options.batch)
    const location = oneCollection(dir, options.collection)
    const targetName = options.target ?? location.name
    const source = `${resolve(location.path)}`
    const opened = await openCollection(location, 'read')
    const progress = operationProgress(progressMode(options), 'migrate')
    const scratch = mkdtempSync(join(tmpdir(), 'annvault-migrate-'))
    let pool: any = null
    try {
      let pg
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        pg = require('pg')
      } catch {
        throw new CliError("migrate needs the 'pg' package: npm install pg", EXIT_COULD_NOT_RUN)
      }
      pool = new pg.Pool({ connectionString: options.to, max: 4 })
      pool.on('error', () => {
        // An idle client failed; the next query reports it.
      })
      const file = join(scratch, 'points.jsonl')
      const { sequence } = await opened.store.stats()
      const exported = await opened.store.export(file, {
        format: 'jsonl',
        onProgress: (event) => progress.onProgress({ ...event, phase: `export ${event.phase}` }),
      })
      const target = await createVectorStore({
        type: 'pgvector',
        pool,
        collectionName: targetName,
        dimension: opened.dimension,
        distance: opened.distance as 'Cosine',
      })
      await query(pool, PROGRESS_TABLE)
      const row = (await query(pool, 'SELECT source, sequence, done, total FROM annvault_migrations WHERE target = $1', [targetName]))[0]
      const sameRun = row !== undefined && row.source === source && Number(row.sequence) === sequence && Number(row.total) === exported.count
      let skip = sameRun ? Number(row.done) : 0
      if (!sameRun) {
        const present = await target.store.count()
        if (present > 0 && !options.replace) {
          const why =
            row !== undefined && row.source === source
              ? `the source changed since the last migration into it (sequence ${row.sequence}, now ${sequence})`
              : `it holds ${present} points this migration did not write`
          throw new CliError(`target collection '${targetName}': ${why}; rerun with --replace to empty it first`, EXIT_COULD_NOT_RUN)
        }
        if (present > 0) await target.store.deleteCollection()
        await query(
          pool,
          `INSERT INTO annvault_migrations (target, source, sequence, done, total) VALUES ($1, $2, $3, 0, $4)
           ON CONFLICT (target) DO UPDATE SET source = $2, sequence = $3, done = 0, total = $4, finished_at = NULL`,
          [targetName, source, sequence, exported.count],
        )
        skip = 0
      }
      const resumedFrom = skip
      let index = 0
      let pending: { id: string | number; vector: number[]; payload: Record<string, unknown> }[] = []
      const flush = async () => {
        if (pending.length === 0) return
        await target.store.insert(
          pending.map((p) => p.vector),
          pending.map((p) => p.id),
          pending.map((p) => p.payload),
        )
        await query(pool, 'UPDATE annvault_migrations SET done = $2 WHERE target = $1', [targetName, index])
        pending = []
        const total = exported.count
        progress.onProgress({
          phase: 'copy',
          percentage: total === 0 ? 100 : (index / total) * 100,
          message: `${index} of ${total} points`,
        })
      }
      for await (const point of points(file)) {
        index += 1
        if (index <= skip) continue
        pending.push(point)
        if (pending.length === batch) await flush()
      }
      await flush()
      await query(pool, 'UPDATE annvault_migrations SET done = $2, finished_at = now() WHERE target = $1', [targetName, index])
      await target.manager.disconnect()
      const result: MigrateResult = {
        source,
        collection: location.name,
        target: targetName,
        sequence,
        count: index,
        resumedFrom,
      }
      progress.stop()
      if (options.json) printJson(result)
      else {
        const resumed = resumedFrom > 0 ? ` (resumed after ${resumedFrom})` : ''
        printLines([`${location.name}: ${index} points -> PostgreSQL collection '${targetName}'${resumed}`])
      }
      done(EXIT_OK)
    } catch (error) {
      progress.stop()
      throw storeFailure(error, `migrate '${location.name}'`)
    } finally {
      rmSync(scratch, { recursive: true, force: true })
      await pool?.end().catch(() => undefined)
    }
  })
}

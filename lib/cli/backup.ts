// `annvault backup now|list|verify|restore --config <storage.yaml>`: the
// StorageManager's hot backups (see README "Storage manager (YAML)") from the
// command line. The configuration names the storages and the backup
// directory; the manager is opened without its schedule (a command runs
// what it is asked, not a backup that came due), and closed after.

import type { Command } from 'commander'
import { StorageManager } from '../storage'
import { type Done } from './command'
import { CliError, EXIT_COULD_NOT_RUN, EXIT_OK, EXIT_PROBLEM } from './errors'
import { printJson, printLines } from './format'
import { PersistenceError } from '../persistence/errors'

interface BackupOptions {
  config: string
  json?: boolean
}

/** A manager's failure as one line and exit 2; a bug is rethrown. */
function failure(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error
  if (error instanceof PersistenceError) {
    return new CliError(`${what}: ${error.message} [${error.code}]`, EXIT_COULD_NOT_RUN)
  }
  throw error
}

async function withManager<T>(options: BackupOptions, what: string, body: (manager: StorageManager) => Promise<T>): Promise<T> {
  let manager: StorageManager
  try {
    manager = await StorageManager.fromConfig(options.config, { schedule: false })
  } catch (error) {
    throw failure(error, `configuration ${options.config}`)
  }
  try {
    return await body(manager)
  } catch (error) {
    throw failure(error, what)
  } finally {
    await manager.close().catch(() => undefined)
  }
}

function sizeOf(bytes: number): string {
  return bytes < 1 << 20 ? `${bytes} bytes` : `${(bytes / (1 << 20)).toFixed(1)} MiB`
}

export function register(program: Command, done: Done): void {
  const backup = program
    .command('backup')
    .description("hot backups of a StorageManager configuration's storages (see README \"Storage manager (YAML)\")")

  backup
    .command('now')
    .description('take a consistent backup of every storage now (writes may go on meanwhile)')
    .requiredOption('--config <file>', 'the storage configuration (YAML or JSON)')
    .option('--json', 'the result as JSON on stdout')
    .action(async (options: BackupOptions) => {
      const info = await withManager(options, 'backup', (m) => m.backupNow())
      if (options.json) printJson(info)
      else printLines([`backup ${info.id}: ${Object.keys(info.storages).length} storages, ${info.files} files, ${sizeOf(info.bytes)} -> ${info.path}`])
      done(EXIT_OK)
    })

  backup
    .command('list')
    .description('the complete backups, oldest first')
    .requiredOption('--config <file>', 'the storage configuration (YAML or JSON)')
    .option('--json', 'the result as JSON on stdout')
    .action(async (options: BackupOptions) => {
      const list = await withManager(options, 'list backups', (m) => m.listBackups())
      if (options.json) printJson(list)
      else if (list.length === 0) printLines(['no backups'])
      else printLines(list.map((b) => `${b.id} ${b.createdAt.toISOString()}: ${Object.keys(b.storages).join(', ')}; ${b.files} files, ${sizeOf(b.bytes)}`))
      done(EXIT_OK)
    })

  backup
    .command('verify')
    .description('check every file of a backup against its size and SHA-256 (exit 0 clean, 1 problems, 2 could not run)')
    .argument('<id>', 'the backup id (see backup list)')
    .requiredOption('--config <file>', 'the storage configuration (YAML or JSON)')
    .option('--json', 'the result as JSON on stdout')
    .action(async (id: string, options: BackupOptions) => {
      const result = await withManager(options, `verify backup ${id}`, (m) => m.verifyBackup(id))
      if (options.json) printJson(result)
      else
        printLines([
          `backup ${result.id}: ${result.ok ? 'ok' : `${result.problems.length} problems`} (${result.files} files, ${sizeOf(result.bytes)})`,
          ...result.problems.map((p) => `  ${p.path}: ${p.problem}`),
        ])
      done(result.ok ? EXIT_OK : EXIT_PROBLEM)
    })

  backup
    .command('restore')
    .description('restore storages from a backup (each atomically; a backup that fails its checksums is refused)')
    .argument('<id>', 'the backup id (see backup list)')
    .requiredOption('--config <file>', 'the storage configuration (YAML or JSON)')
    .option('--storages <names>', 'only these storages, comma-separated (default: every one the backup holds)')
    .option('--json', 'the result as JSON on stdout')
    .action(async (id: string, options: BackupOptions & { storages?: string }) => {
      const storages = options.storages?.split(',').map((s) => s.trim()).filter(Boolean)
      const result = await withManager(options, `restore backup ${id}`, (m) => m.restoreBackup(id, storages ? { storages } : {}))
      if (options.json) printJson(result)
      else printLines([`restored ${result.storages.join(', ')} from backup ${result.id}`])
      done(EXIT_OK)
    })
}

// A real PostgreSQL 18 + pgvector server for the pgvector backend's tests,
// started and stopped by the test file that needs it: binaries from
// scripts/install-postgres.sh (run by it here when missing), a fresh data
// directory, a Unix socket only (no TCP port to collide on). initdb refuses to
// run as root, so as root the server runs as `nobody`.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export interface Postgres {
  /** `postgresql://postgres@<socket dir>/postgres` */
  connectionString: string
  /** The socket directory, for `pg`'s `host`. */
  socketDir: string
  stop(): void
}

const NOBODY = 65534

function run(bin: string, args: string[], asUser: number | undefined): void {
  const result = spawnSync(bin, args, { uid: asUser, gid: asUser, encoding: 'utf8', cwd: os.tmpdir() })
  if (result.status !== 0) {
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`)
  }
}

export function startPostgres(): Postgres {
  const binDir = execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'install-postgres.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  const asUser = process.getuid?.() === 0 ? NOBODY : undefined
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-pg-'))
  if (asUser !== undefined) fs.chownSync(dir, asUser, asUser)
  const data = path.join(dir, 'data')
  run(path.join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], asUser)
  run(
    path.join(binDir, 'pg_ctl'),
    ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', `-k ${dir} -c listen_addresses=''`, 'start'],
    asUser,
  )
  let stopped = false
  return {
    connectionString: `postgresql://postgres@${encodeURIComponent(dir)}/postgres`,
    socketDir: dir,
    stop() {
      if (stopped) return
      stopped = true
      try {
        run(path.join(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], asUser)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

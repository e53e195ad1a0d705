'use strict'
// A real PostgreSQL 18 + pgvector server for the pgvector backend's tests and
// benchmark, started and stopped by whoever needs it: binaries from
// scripts/install-postgres.sh (run here when missing), a fresh data directory,
// a Unix socket only (no TCP port to collide on). initdb refuses to run as
// root, so as root the server runs as `nobody`.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const NOBODY = 65534

function run(bin, args, asUser) {
  const result = spawnSync(bin, args, { uid: asUser, gid: asUser, encoding: 'utf8', cwd: os.tmpdir() })
  if (result.status !== 0) {
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`)
  }
}

/**
 * Starts a server; `settings` are extra `-c name=value` server settings.
 * @returns {{ connectionString: string, socketDir: string, stop(): void }}
 */
function startPostgres(settings = {}) {
  const binDir = execFileSync('bash', [path.join(__dirname, 'install-postgres.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  const asUser = process.getuid && process.getuid() === 0 ? NOBODY : undefined
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annvault-pg-'))
  if (asUser !== undefined) fs.chownSync(dir, asUser, asUser)
  const data = path.join(dir, 'data')
  run(path.join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], asUser)
  const options = [`-k ${dir}`, "-c listen_addresses=''", ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)]
  run(path.join(binDir, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', options.join(' '), 'start'], asUser)
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

module.exports = { startPostgres }

// The real PostgreSQL + pgvector server of the pgvector tests: see scripts/postgres-server.js.
export interface Postgres {
  /** `postgresql://postgres@<socket dir>/postgres` */
  connectionString: string
  /** The socket directory, for `pg`'s `host`. */
  socketDir: string
  stop(): void
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const startPostgres: (settings?: Record<string, string | number>) => Postgres = require('../scripts/postgres-server.js').startPostgres

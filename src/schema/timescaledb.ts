import { sql, type Kysely } from 'kysely'

/**
 * What to do about TimescaleDB when creating `telemetry`:
 * - `'auto'` (default): make it a hypertable when the extension is available
 *   and can be created; otherwise keep a plain table and log why;
 * - `'require'`: the same, but fail the migration when it cannot;
 * - `'off'`: always a plain table.
 *
 * @example
 * ```ts
 * import { migrateToLatest, type TimescaleMode } from 'plantops-db'
 * const mode: TimescaleMode = process.env.NODE_ENV === 'production' ? 'require' : 'auto'
 * await migrateToLatest(db, { timescaledb: mode })
 * ```
 */
export type TimescaleMode = 'auto' | 'require' | 'off'

/**
 * Whether TimescaleDB is `installed` in this database, merely `available` to
 * `CREATE EXTENSION`, or `unavailable` on this server.
 *
 * @example
 * ```ts
 * const { telemetry } = await migrateToLatest(db)
 * if (telemetry.timescaledb === 'available') console.log('TimescaleDB could be enabled')
 * ```
 */
export type TimescaleExtensionState = 'installed' | 'available' | 'unavailable'

/** The state of the TimescaleDB extension in the connected database. */
export async function timescaleExtensionState(db: Kysely<any>): Promise<TimescaleExtensionState> {
  const { rows } = await sql<{ installed: boolean }>`
    SELECT installed_version IS NOT NULL AS installed
    FROM pg_available_extensions WHERE name = 'timescaledb'`.execute(db)
  if (rows.length === 0) return 'unavailable'
  return rows[0]!.installed ? 'installed' : 'available'
}

/** Whether `table` (in the current schema) is a TimescaleDB hypertable. */
export async function isHypertable(db: Kysely<any>, table: string): Promise<boolean> {
  if ((await timescaleExtensionState(db)) !== 'installed') return false
  const { rows } = await sql<{ found: number }>`
    SELECT 1 AS found FROM timescaledb_information.hypertables
    WHERE hypertable_schema = current_schema() AND hypertable_name = ${table}`.execute(db)
  return rows.length > 0
}

/**
 * Why `CREATE EXTENSION timescaledb` would end the connection, or undefined
 * when it would not. A PostgreSQL server loads TimescaleDB only through
 * `shared_preload_libraries`; without it the statement fails with `FATAL:
 * extension "timescaledb" must be preloaded`, which no savepoint can catch.
 * PGlite (PostgreSQL built to WebAssembly, one process, no postmaster) loads
 * it when the extension is created, and reports no preload list.
 */
export async function timescalePreloadProblem(db: Kysely<any>): Promise<string | undefined> {
  const { rows } = await sql<{ preloaded: boolean; embedded: boolean }>`
    SELECT current_setting('shared_preload_libraries') ~ '(^|[\s,])timescaledb([\s,]|$)' AS preloaded,
      version() ~ 'emcc|Emscripten|wasm' AS embedded`.execute(db)
  const { preloaded, embedded } = rows[0]!
  if (preloaded || embedded) return undefined
  return (
    'the timescaledb extension is installed on this server but not in shared_preload_libraries, so CREATE ' +
    'EXTENSION would end the connection (FATAL: extension "timescaledb" must be preloaded); add timescaledb to ' +
    'shared_preload_libraries in postgresql.conf and restart PostgreSQL'
  )
}

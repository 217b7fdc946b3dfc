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

import { sql, type Kysely } from 'kysely'
import { TimescaleUnavailableError } from '../src/errors/errors.js'
import type { MigrationContext } from './context.js'

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

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * Creates the extension (if needed) and converts `telemetry`. Runs inside a
 * savepoint because any failed statement would otherwise abort the whole
 * migration transaction; a failure rolls back to it, leaving a plain table.
 */
async function tryConvert(db: Kysely<any>): Promise<string | undefined> {
  await sql`SAVEPOINT plantops_timescaledb`.execute(db)
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS timescaledb`.execute(db)
    // Only the indexes of the specification, on both backends alike.
    await sql`SELECT create_hypertable('telemetry', 'time',
      if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)`.execute(db)
    await sql`RELEASE SAVEPOINT plantops_timescaledb`.execute(db)
    return undefined
  } catch (error) {
    await sql`ROLLBACK TO SAVEPOINT plantops_timescaledb`.execute(db)
    await sql`RELEASE SAVEPOINT plantops_timescaledb`.execute(db)
    return reasonOf(error)
  }
}

/**
 * Makes `telemetry` a hypertable on `time` as `context.timescaledb` asks;
 * never aborts the migration in `'auto'` mode.
 */
export async function makeTelemetryHypertable(db: Kysely<any>, context: MigrationContext): Promise<void> {
  const { logger, timescaledb: mode } = context
  if (mode === 'off') {
    logger.info({ table: 'telemetry' }, 'TimescaleDB disabled (timescaledb: "off"): telemetry is a plain table')
    return
  }
  if (await isHypertable(db, 'telemetry')) return
  const state = await timescaleExtensionState(db)
  const failure =
    state === 'unavailable' ? 'the timescaledb extension is not available on this server' : await tryConvert(db)
  if (failure === undefined) {
    logger.info({ table: 'telemetry' }, 'telemetry is a TimescaleDB hypertable on "time"')
    return
  }
  if (mode === 'require') throw new TimescaleUnavailableError("timescaledb: 'require'", failure)
  logger.warn({ table: 'telemetry', reason: failure }, `telemetry stays a plain table: ${failure}`)
}

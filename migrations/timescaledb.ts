import { sql, type Kysely } from 'kysely'
import { TimescaleUnavailableError } from '../src/errors/errors.js'
import { isHypertable, timescaleExtensionState, timescalePreloadProblem } from '../src/schema/timescaledb.js'
import type { MigrationContext } from './context.js'

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
    state === 'unavailable'
      ? 'the timescaledb extension is not available on this server'
      : ((state === 'available' ? await timescalePreloadProblem(db) : undefined) ?? (await tryConvert(db)))
  if (failure === undefined) {
    logger.info({ table: 'telemetry' }, 'telemetry is a TimescaleDB hypertable on "time"')
    return
  }
  if (mode === 'require') throw new TimescaleUnavailableError("timescaledb: 'require'", failure)
  logger.warn({ table: 'telemetry', reason: failure }, `telemetry stays a plain table: ${failure}`)
}

import { sql, type Kysely } from 'kysely'
import {
  ROLLUP_CONFLICT_TARGET,
  ROLLUP_METRIC_COLUMNS,
  ROLLUP_TABLE,
  lockForRefill,
  refillDeviceRollups,
  rollupAggregateColumnsDdl,
  rollupMerge,
} from '../src/schema/rollups.js'
import { isHypertable } from '../src/schema/timescaledb.js'
import type { Migration } from '../src/schema/migration.js'
import type { MigrationContext } from './context.js'
import { createDeleteTrigger, dropDeleteTrigger } from './delete-trigger.js'

const table = sql.id(ROLLUP_TABLE)

/**
 * Before a plant goes, its rollup rows become the plantless rows of their
 * device and hour, merged with any already there: what `ON DELETE SET NULL`
 * does to its raw rows. A plain `SET NULL` on the rollup would collide with
 * those rows' unique key.
 */
const mergeRollupsOfDeletedPlant = {
  table: 'plants',
  trigger: 'plantops_plant_rollups_merged',
  fn: 'plantops_merge_plant_rollups',
} as const

function mergeBody() {
  const columns = sql.join(['readings', ...ROLLUP_METRIC_COLUMNS].map((column) => sql.id(column)))
  return sql`
    INSERT INTO ${table} (hour, device_id, plant_id, ${columns})
    SELECT hour, device_id, NULL, ${columns} FROM ${table} WHERE plant_id = OLD.id
    ON CONFLICT ${ROLLUP_CONFLICT_TARGET} DO UPDATE SET ${rollupMerge()};
    DELETE FROM ${table} WHERE plant_id = OLD.id;`
}

/**
 * The hourly rollup the writer keeps (see `TelemetryHourlyTable`). Half of
 * each page is left free: every batch updates its hours, and an update
 * that fits in its page writes no index (HOT). A
 * hypertable on `hour` when `telemetry` is one, so the compression and
 * retention helpers cover it. Filled from the raw rows already there, so an
 * adopted database's charts read the same from the rollup as from the rows.
 */
export function createTelemetryRollups(context: MigrationContext): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE IF NOT EXISTS ${table} (
          hour TIMESTAMPTZ NOT NULL,
          device_id TEXT REFERENCES devices(id) ON DELETE CASCADE,
          plant_id TEXT REFERENCES plants(id),
          readings INTEGER NOT NULL,
          ${rollupAggregateColumnsDdl()}
        ) WITH (fillfactor = 50)`.execute(db)
      if (await isHypertable(db, 'telemetry'))
        await sql`SELECT create_hypertable(${ROLLUP_TABLE}::regclass, 'hour', if_not_exists => TRUE,
          chunk_time_interval => INTERVAL '30 days', create_default_indexes => FALSE)`.execute(db)
      await sql`CREATE UNIQUE INDEX IF NOT EXISTS idx_telemetry_hourly_key ON ${table} ${ROLLUP_CONFLICT_TARGET}`.execute(
        db,
      )
      await sql`CREATE INDEX IF NOT EXISTS idx_telemetry_hourly_plant ON ${table} (plant_id, hour)`.execute(db)
      await createDeleteTrigger(db, { ...mergeRollupsOfDeletedPlant, body: mergeBody() })
      await lockForRefill(db, [ROLLUP_TABLE])
      const filled = await refillDeviceRollups(db, {})
      if (filled > 0)
        context.logger.info({ table: ROLLUP_TABLE, rows: filled }, `filled ${filled} hourly rollup rows from telemetry`)
    },
    async down(db: Kysely<unknown>) {
      await dropDeleteTrigger(db, mergeRollupsOfDeletedPlant)
      await sql`DROP TABLE IF EXISTS ${table}`.execute(db)
    },
  }
}

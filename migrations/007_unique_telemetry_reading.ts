import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

/**
 * One reading per device per instant, so a packet delivered twice can never
 * make a second row. On a hypertable a unique index must contain the
 * partitioning column, which this one does. Fails, naming the duplicated key,
 * if the table already holds duplicates.
 */
export const uniqueTelemetryReading: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`CREATE UNIQUE INDEX IF NOT EXISTS idx_telemetry_device_time_unique
      ON telemetry (device_id, time)`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP INDEX IF EXISTS idx_telemetry_device_time_unique`.execute(db)
  },
}

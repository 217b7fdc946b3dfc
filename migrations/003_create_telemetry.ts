import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'
import type { MigrationContext } from './context.js'
import { makeTelemetryHypertable } from './timescaledb.js'

export function createTelemetry(context: MigrationContext): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE IF NOT EXISTS telemetry (
          time TIMESTAMPTZ NOT NULL,
          device_id TEXT REFERENCES devices(id) ON DELETE CASCADE,
          plant_id TEXT REFERENCES plants(id) ON DELETE SET NULL,
          soil_moisture FLOAT,
          temperature FLOAT,
          humidity FLOAT,
          light_level FLOAT
        )`.execute(db)
      await sql`CREATE INDEX IF NOT EXISTS idx_telemetry_device ON telemetry (device_id, time DESC)`.execute(db)
      await sql`CREATE INDEX IF NOT EXISTS idx_telemetry_plant ON telemetry (plant_id, time DESC)`.execute(db)
      await makeTelemetryHypertable(db, context)
    },
    async down(db: Kysely<unknown>) {
      await sql`DROP TABLE IF EXISTS telemetry`.execute(db)
    },
  }
}

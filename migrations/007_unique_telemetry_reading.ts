import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'
import { createTelemetryRejects } from './008_create_telemetry_rejects.js'
import type { MigrationContext } from './context.js'

const METRICS_AT_007 = sql`soil_moisture, temperature, humidity, light_level`

/** The `(device_id, time)` keys held more than once: the only rows the passes below look at. */
const DUPLICATE_KEYS = 'plantops_007_duplicate_keys'

/** Finds the duplicate keys in one scan of telemetry; returns how many there are. */
async function findDuplicateKeys(db: Kysely<any>): Promise<number> {
  await sql`DROP TABLE IF EXISTS ${sql.id(DUPLICATE_KEYS)}`.execute(db)
  await sql`CREATE TEMP TABLE ${sql.id(DUPLICATE_KEYS)} AS
    SELECT device_id, time FROM telemetry WHERE device_id IS NOT NULL
    GROUP BY device_id, time HAVING count(*) > 1`.execute(db)
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.id(DUPLICATE_KEYS)}`.execute(db)
  return rows[0]?.n ?? 0
}

/** Deletes extra copies identical in every column, keeping one; returns how many went. */
async function collapseIdenticalCopies(db: Kysely<any>): Promise<number> {
  const { rows } = await sql`
    DELETE FROM telemetry t USING (
      SELECT tel.tableoid AS toid, tel.ctid AS tid, row_number() OVER (
        PARTITION BY tel.device_id, tel.time, tel.plant_id, ${METRICS_AT_007} ORDER BY tel.ctid) AS copy
      FROM telemetry tel JOIN ${sql.id(DUPLICATE_KEYS)} k ON k.device_id = tel.device_id AND k.time = tel.time
    ) extra
    WHERE t.tableoid = extra.toid AND t.ctid = extra.tid AND extra.copy > 1
    RETURNING 1`.execute(db)
  return rows.length
}

/**
 * Keeps, for each duplicate key still held more than once, the copy with
 * the most metrics, and moves the others to `telemetry_rejects` with their
 * values, as the reading packets the writer would have taken.
 */
async function rejectDifferingCopies(db: Kysely<any>): Promise<number> {
  await createTelemetryRejects.up(db)
  // Rows counted from RETURNING: TimescaleDB's DML can report 0 affected rows for a CTE's INSERT.
  const { rows: moved } = await sql`
    WITH extra AS (
      SELECT toid, tid FROM (
        SELECT tel.tableoid AS toid, tel.ctid AS tid, row_number() OVER (
          PARTITION BY tel.device_id, tel.time ORDER BY num_nonnulls(${METRICS_AT_007}) DESC, tel.ctid) AS copy
        FROM telemetry tel JOIN ${sql.id(DUPLICATE_KEYS)} k ON k.device_id = tel.device_id AND k.time = tel.time
      ) ranked WHERE copy > 1
    ), moved AS (
      DELETE FROM telemetry t USING extra WHERE t.tableoid = extra.toid AND t.ctid = extra.tid
      RETURNING t.*
    )
    INSERT INTO telemetry_rejects (device_id, source, payload, reason, detail)
    SELECT device_id, 'migration 007_unique_telemetry_reading',
      convert_to(json_strip_nulls(json_build_object(
        'deviceId', device_id, 'time', to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'soil_moisture', soil_moisture, 'temperature', temperature, 'humidity', humidity, 'light_level', light_level
      ))::text, 'UTF8'),
      'duplicate_reading',
      'another reading of this device at this instant with different values was kept in telemetry'
    FROM moved
    RETURNING id`.execute(db)
  return moved.length
}

/**
 * Resolves duplicate readings written before the unique index: one scan
 * finds their keys; only those rows are then ranked, never the whole table.
 */
async function resolveDuplicates(db: Kysely<any>): Promise<{ collapsed: number; rejected: number }> {
  if ((await findDuplicateKeys(db)) === 0) {
    await sql`DROP TABLE ${sql.id(DUPLICATE_KEYS)}`.execute(db)
    return { collapsed: 0, rejected: 0 }
  }
  const collapsed = await collapseIdenticalCopies(db)
  const rejected = await rejectDifferingCopies(db)
  await sql`DROP TABLE ${sql.id(DUPLICATE_KEYS)}`.execute(db)
  return { collapsed, rejected }
}

/**
 * One reading per device per instant, so a packet delivered twice can never
 * make a second row. On a hypertable a unique index must contain the
 * partitioning column, which this one does. A database written before this
 * index (the earlier service did not deduplicate) may hold duplicates: extra
 * identical copies are deleted, and copies that differ are moved to
 * `telemetry_rejects`, never deleted; the run's report counts both.
 */
export function uniqueTelemetryReading(context: MigrationContext): Migration {
  return {
    async up(db: Kysely<any>) {
      const { collapsed, rejected } = await resolveDuplicates(db)
      if (collapsed + rejected > 0) {
        context.logger.warn(
          { table: 'telemetry', collapsed, rejected },
          `telemetry held duplicate (device_id, time) readings: deleted ${collapsed} identical extra ` +
            `cop${collapsed === 1 ? 'y' : 'ies'}, moved ${rejected} differing one(s) to telemetry_rejects ` +
            "(reason 'duplicate_reading')",
        )
        context.onDuplicateReadings?.({ collapsed, rejected })
      }
      await sql`CREATE UNIQUE INDEX IF NOT EXISTS idx_telemetry_device_time_unique
        ON telemetry (device_id, time)`.execute(db)
    },
    async down(db: Kysely<unknown>) {
      await sql`DROP INDEX IF EXISTS idx_telemetry_device_time_unique`.execute(db)
    },
  }
}

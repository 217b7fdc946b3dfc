import { sql, type Kysely } from 'kysely'
import { rollupAggregateColumnsDdl } from '../src/schema/rollups.js'
import { isHypertable } from '../src/schema/timescaledb.js'

/** A plant rollup's table: its name, its time column, and its chunk interval on TimescaleDB. */
export interface PlantRollupTable {
  readonly table: string
  readonly time: 'hour' | 'start'
  readonly chunkInterval: string
}

/**
 * Creates a plant rollup keyed by plant and time: its rows go with their
 * plant (`ON DELETE CASCADE`: a deleted plant's raw rows become plantless,
 * and a plant rollup has no row for "no plant"); half of each page is left
 * free for the HOT updates every batch makes; a hypertable on its time
 * column when `telemetry` is one.
 */
export async function createPlantRollupTable(db: Kysely<unknown>, t: PlantRollupTable): Promise<void> {
  const time = sql.id(t.time)
  await sql`
    CREATE TABLE IF NOT EXISTS ${sql.id(t.table)} (
      plant_id TEXT NOT NULL REFERENCES plants(id) ON DELETE CASCADE,
      ${time} TIMESTAMPTZ NOT NULL,
      readings INTEGER NOT NULL,
      ${rollupAggregateColumnsDdl()},
      PRIMARY KEY (plant_id, ${time})
    ) WITH (fillfactor = 50)`.execute(db)
  if (await isHypertable(db, 'telemetry'))
    await sql`SELECT create_hypertable(${t.table}::regclass, ${t.time}, if_not_exists => TRUE,
      chunk_time_interval => ${t.chunkInterval}::interval, create_default_indexes => FALSE)`.execute(db)
}

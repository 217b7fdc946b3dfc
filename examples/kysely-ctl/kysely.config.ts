/**
 * How a host runs plantops-db's migrations with kysely-ctl, next to its own:
 * one provider with both sets, recorded in one table. plantops-db's names
 * (`001_…` … `009_…`) sort before the host's (`host/…`), so new releases of
 * either slot in order.
 *
 *   npm run example:kysely-ctl                 # DATABASE_URL, or an embedded database in .plantops-data/
 *   npx kysely migrate:list -c examples/kysely-ctl/kysely.config.ts
 */
import { sql, type Kysely } from 'kysely'
import { defineConfig } from 'kysely-ctl'
import { createDatabase, migrations, MIGRATION_LOCK_TABLE, MIGRATION_TABLE, type Migration } from 'plantops-db'

/** The host's own migration: a table of its own, referencing plantops-db's plants. */
const createWateringLog: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`CREATE TABLE IF NOT EXISTS watering_log (
      id SERIAL PRIMARY KEY,
      plant_id TEXT REFERENCES plants(id) ON DELETE CASCADE,
      watered_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
      millilitres INTEGER NOT NULL)`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE IF EXISTS watering_log`.execute(db)
  },
}

const database = process.env.DATABASE_URL
  ? createDatabase({ connectionString: process.env.DATABASE_URL, min: 0, max: 2 })
  : createDatabase({ dataDir: process.env.PLANTOPS_DATA_DIR ?? '.plantops-data' })

export default defineConfig({
  kysely: database,
  migrations: {
    provider: { getMigrations: async () => ({ ...migrations, 'host/001_create_watering_log': createWateringLog }) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  },
})

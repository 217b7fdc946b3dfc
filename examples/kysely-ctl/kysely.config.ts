/**
 * How a host runs its own migrations beside plantops-db's, from kysely-ctl and
 * at startup alike: `createHostMigrator` records the host's in a table of their
 * own (`host_migrations`), after bringing plantops-db's (in
 * `plantops_migrations`) up to date. Neither migrator sees the other's records,
 * so neither calls them unknown.
 *
 *   npm run example:kysely-ctl                 # DATABASE_URL, or an embedded database in .plantops-data/
 *   npx kysely migrate:list -c examples/kysely-ctl/kysely.config.ts
 */
import { sql, type Kysely } from 'kysely'
import { defineConfig } from 'kysely-ctl'
import { createDatabase, createHostMigrator, type Migration } from 'plantops-db'

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

export const hostMigrations = { '001_create_watering_log': createWateringLog }

const database = process.env.DATABASE_URL
  ? createDatabase({ connectionString: process.env.DATABASE_URL, min: 0, max: 2 })
  : createDatabase({ dataDir: process.env.PLANTOPS_DATA_DIR ?? '.plantops-data' })

export default defineConfig({
  kysely: database,
  migrations: {
    // kysely-ctl types the factory with Kysely's own Migrator class, which plantops-db cannot name for
    // both kysely 0.28 (root export) and 0.29 (kysely/migration); the object is that class.
    migrator: (db: Kysely<any>) => createHostMigrator(db, hostMigrations) as Promise<never>,
  },
})

/**
 * kysely-ctl configuration: `npx kysely migrate:latest` / `migrate:rollback`
 * run plantops-db's own migrations, recorded in the same `plantops_migrations`
 * table as `migrateToLatest`, against the database in DATABASE_URL.
 */
import { defineConfig } from 'kysely-ctl'
import { createDatabase, createMigrator } from '../src/index.js'

const connectionString = process.env.DATABASE_URL
if (!connectionString) {
  throw new Error(
    'Set DATABASE_URL to the PostgreSQL database kysely-ctl should migrate, e.g. postgres://user@localhost/plants',
  )
}

export default defineConfig({
  kysely: createDatabase({ connectionString, min: 0, max: 2 }),
  migrations: { migrator: (db) => createMigrator(db) },
})

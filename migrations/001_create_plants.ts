import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

export const createPlants: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE IF NOT EXISTS plants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        species TEXT,
        thresholds JSONB,
        created_at TIMESTAMPTZ DEFAULT NOW()
      )`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE IF EXISTS plants`.execute(db)
  },
}

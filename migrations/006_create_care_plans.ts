import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

export const createCarePlans: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE IF NOT EXISTS care_plans (
        id SERIAL PRIMARY KEY,
        plant_id TEXT REFERENCES plants(id) ON DELETE CASCADE UNIQUE,
        plan_data JSONB NOT NULL,
        generated_at TIMESTAMPTZ DEFAULT NOW()
      )`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE IF EXISTS care_plans`.execute(db)
  },
}

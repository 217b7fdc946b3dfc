import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

export const createAlerts: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE IF NOT EXISTS alerts (
        id SERIAL PRIMARY KEY,
        plant_id TEXT REFERENCES plants(id) ON DELETE CASCADE,
        device_id TEXT REFERENCES devices(id) ON DELETE CASCADE,
        metric TEXT NOT NULL,
        value FLOAT NOT NULL,
        threshold FLOAT NOT NULL,
        direction TEXT NOT NULL,
        sent_at TIMESTAMPTZ DEFAULT NOW()
      )`.execute(db)
    await sql`CREATE INDEX IF NOT EXISTS idx_alerts_plant ON alerts (plant_id, sent_at DESC)`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE IF EXISTS alerts`.execute(db)
  },
}

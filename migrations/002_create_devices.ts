import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

export const createDevices: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE IF NOT EXISTS devices (
        id TEXT PRIMARY KEY,
        mac_address TEXT UNIQUE,
        mqtt_username TEXT UNIQUE,
        mqtt_password_hash TEXT NOT NULL,
        plant_id TEXT REFERENCES plants(id) ON DELETE SET NULL,
        status TEXT DEFAULT 'provisioning',
        firmware_version TEXT,
        sensor_types JSONB,
        last_seen_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ DEFAULT NOW()
      )`.execute(db)
    await sql`CREATE INDEX IF NOT EXISTS idx_devices_plant_id ON devices (plant_id)`.execute(db)
    await sql`CREATE INDEX IF NOT EXISTS idx_devices_status ON devices (status)`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE IF EXISTS devices`.execute(db)
  },
}

import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

/**
 * The dead-letter table: every packet the writer refuses, with its raw bytes
 * and the reason, so nothing is ever dropped silently. `device_id` has no
 * foreign key on purpose: unknown devices are among the reasons.
 */
export const createTelemetryRejects: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE IF NOT EXISTS telemetry_rejects (
        id BIGSERIAL PRIMARY KEY,
        received_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        device_id TEXT,
        source TEXT,
        payload BYTEA NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT,
        replayed_at TIMESTAMPTZ
      )`.execute(db)
    await sql`CREATE INDEX IF NOT EXISTS idx_telemetry_rejects_pending
      ON telemetry_rejects (id) WHERE replayed_at IS NULL`.execute(db)
    await sql`CREATE INDEX IF NOT EXISTS idx_telemetry_rejects_reason
      ON telemetry_rejects (reason, received_at DESC)`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE IF EXISTS telemetry_rejects`.execute(db)
  },
}

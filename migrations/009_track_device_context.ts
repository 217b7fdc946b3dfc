import { sql, type Kysely } from 'kysely'
import type { Migration } from '../src/schema/migration.js'

/**
 * A counter bumped, in the changing transaction, whenever what the writer
 * caches about a device could change: its plant, whether it is
 * decommissioned, a plant's thresholds, a deletion. Writers in any process
 * read it once per batch and drop their cache when it moved. A row, not a
 * sequence: a sequence moves before the change commits, and a writer could
 * cache the old state under the new number. The function keeps the
 * search_path it was made with, so it finds the counter beside the tables
 * (in plantops-db's own schema, when it has one) whoever changes them.
 */
export const trackDeviceContext: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE IF NOT EXISTS plantops_context_epoch (
        id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        epoch BIGINT NOT NULL DEFAULT 0
      )`.execute(db)
    await sql`INSERT INTO plantops_context_epoch (id, epoch) VALUES (TRUE, 0) ON CONFLICT (id) DO NOTHING`.execute(db)
    await sql`
      CREATE OR REPLACE FUNCTION plantops_bump_context_epoch() RETURNS trigger LANGUAGE plpgsql
      SET search_path FROM CURRENT AS $$
      BEGIN
        UPDATE plantops_context_epoch SET epoch = epoch + 1 WHERE id;
        RETURN NULL;
      END
      $$`.execute(db)
    await sql`DROP TRIGGER IF EXISTS plantops_device_context_changed ON devices`.execute(db)
    await sql`
      CREATE TRIGGER plantops_device_context_changed
      AFTER UPDATE OF plant_id, status ON devices FOR EACH ROW
      WHEN (OLD.plant_id IS DISTINCT FROM NEW.plant_id
        OR (OLD.status = 'decommissioned') IS DISTINCT FROM (NEW.status = 'decommissioned'))
      EXECUTE FUNCTION plantops_bump_context_epoch()`.execute(db)
    await sql`DROP TRIGGER IF EXISTS plantops_device_deleted ON devices`.execute(db)
    await sql`
      CREATE TRIGGER plantops_device_deleted AFTER DELETE ON devices
      FOR EACH STATEMENT EXECUTE FUNCTION plantops_bump_context_epoch()`.execute(db)
    await sql`DROP TRIGGER IF EXISTS plantops_plant_context_changed ON plants`.execute(db)
    await sql`
      CREATE TRIGGER plantops_plant_context_changed AFTER UPDATE OF thresholds OR DELETE ON plants
      FOR EACH STATEMENT EXECUTE FUNCTION plantops_bump_context_epoch()`.execute(db)
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TRIGGER IF EXISTS plantops_plant_context_changed ON plants`.execute(db)
    await sql`DROP TRIGGER IF EXISTS plantops_device_deleted ON devices`.execute(db)
    await sql`DROP TRIGGER IF EXISTS plantops_device_context_changed ON devices`.execute(db)
    await sql`DROP FUNCTION IF EXISTS plantops_bump_context_epoch()`.execute(db)
    await sql`DROP TABLE IF EXISTS plantops_context_epoch`.execute(db)
  },
}

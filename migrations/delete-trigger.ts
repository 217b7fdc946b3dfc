import { sql, type Kysely, type RawBuilder } from 'kysely'

/** A `BEFORE DELETE … FOR EACH ROW` trigger and the plpgsql function it runs. */
export interface DeleteTrigger {
  /** The table whose row deletions fire it. */
  readonly table: string
  readonly trigger: string
  readonly fn: string
  /** Statements run before each row goes, with the row as `OLD`. */
  readonly body: RawBuilder<unknown>
}

/**
 * (Re)creates the function and its trigger. The function keeps the
 * migration's `search_path`, so it finds plantops-db's tables in whichever
 * schema they were created, whoever deletes the row.
 */
export async function createDeleteTrigger(db: Kysely<unknown>, t: DeleteTrigger): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION ${sql.id(t.fn)}() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
      ${t.body}
      RETURN OLD;
    END
    $$`.execute(db)
  await sql`DROP TRIGGER IF EXISTS ${sql.id(t.trigger)} ON ${sql.id(t.table)}`.execute(db)
  await sql`
    CREATE TRIGGER ${sql.id(t.trigger)} BEFORE DELETE ON ${sql.id(t.table)}
    FOR EACH ROW EXECUTE FUNCTION ${sql.id(t.fn)}()`.execute(db)
}

/** Drops the trigger and its function. */
export async function dropDeleteTrigger(db: Kysely<unknown>, t: Omit<DeleteTrigger, 'body'>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS ${sql.id(t.trigger)} ON ${sql.id(t.table)}`.execute(db)
  await sql`DROP FUNCTION IF EXISTS ${sql.id(t.fn)}()`.execute(db)
}

import { sql, type Kysely } from 'kysely'
import { MigrationError } from '../errors/errors.js'
import type { Bookkeeping } from './bookkeeping.js'
import { columnsOfTables } from './catalog.js'

/**
 * The earlier Python service's six migrations, which plantops-db ships
 * unchanged, and the table each one made.
 */
const OLD_SERVICE_MIGRATIONS: Readonly<Record<string, string>> = Object.freeze({
  '001_create_plants': 'plants',
  '002_create_devices': 'devices',
  '003_create_telemetry': 'telemetry',
  '004_create_alerts': 'alerts',
  '005_create_settings': 'settings',
  '006_create_care_plans': 'care_plans',
})

/** Kysely's own migration table, created ahead of the Migrator (which then finds it). */
function createMigrationTable(table: string) {
  return sql`CREATE TABLE IF NOT EXISTS ${sql.table(table)} (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    timestamp VARCHAR(255) NOT NULL)`
}

function oldServiceRecords(table: string) {
  return sql<{ version: string; appliedAt: string }>`
    SELECT version, to_char(coalesce(applied_at, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "appliedAt"
    FROM ${sql.table(table)} WHERE version = ANY(${Object.keys(OLD_SERVICE_MIGRATIONS)}::text[])
    ORDER BY version`
}

/** The earlier service's migrations its `schema_migrations` records, read only: what the next run adopts. */
export async function oldServiceMigrations(
  db: Kysely<any>,
  from: string,
): Promise<{ name: string; appliedAt: string }[]> {
  const { rows } = await oldServiceRecords(from).execute(db)
  return rows.map((row) => ({ name: row.version, appliedAt: row.appliedAt }))
}

function recordAsApplied(table: string, names: readonly string[], timestamps: readonly string[]) {
  return sql<{ name: string }>`
    INSERT INTO ${sql.table(table)} (name, timestamp)
    SELECT * FROM unnest(${names}::text[], ${timestamps}::text[])
    ON CONFLICT (name) DO NOTHING RETURNING name`
}

/**
 * Records, in plantops-db's own migration table, the earlier service's
 * migrations that its `schema_migrations` says it applied, so they are not
 * run again; that table's rows are left as they are. Serialised by an
 * advisory lock, so app instances starting together adopt once.
 *
 * @returns the migrations this call recorded (none when another instance did).
 * @throws {MigrationError} when a recorded migration's table is missing.
 */
export async function adoptOldService(db: Kysely<any>, bookkeeping: Bookkeeping): Promise<string[]> {
  const from = bookkeeping.adoptFrom
  if (from === undefined) return []
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(hashtext('plantops-db: adopt schema_migrations'))`.execute(trx)
    const { rows } = await oldServiceRecords(from).execute(trx)
    if (rows.length === 0) return []
    const names = rows.map((row) => row.version)
    const tables = names.map((name) => OLD_SERVICE_MIGRATIONS[name] as string)
    const existing = await columnsOfTables(trx, tables)
    const missing = tables.filter((table) => !existing.has(table))
    if (missing.length > 0) {
      throw new MigrationError(
        `"${from}" records the earlier service's migrations ${names.join(', ')}, but table(s) ${missing.join(', ')} ` +
          'do not exist, so plantops-db will not adopt it. Restore those tables, or pass ' +
          "{ migrationTable: '<an unused name>' } to start plantops-db's own records from nothing.",
      )
    }
    await createMigrationTable(bookkeeping.table).execute(trx)
    const recorded = await recordAsApplied(
      bookkeeping.table,
      names,
      rows.map((row) => row.appliedAt),
    ).execute(trx)
    return recorded.rows.map((row) => row.name).sort()
  })
}

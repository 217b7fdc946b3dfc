import { sql, type Kysely } from 'kysely'
import { MigrationError } from '../errors/errors.js'
import { columnsOf } from './catalog.js'
import { MIGRATION_TABLE, type ResolvedMigratorOptions } from './options.js'

/**
 * Where a run records its migrations, and whether it first takes over the
 * earlier Python service's records.
 */
export interface Bookkeeping {
  readonly table: string
  readonly lockTable: string
  /** The earlier service's `schema_migrations`, when this run should adopt its records. */
  readonly adoptFrom: string | undefined
}

/** The table both the earlier Python service and plantops-db 0.1.0 recorded into. */
export const OLD_MIGRATION_TABLE = 'schema_migrations'

const hasColumns = (columns: readonly string[], wanted: readonly string[]) =>
  wanted.every((column) => columns.includes(column))
/** Kysely's migration table: `name`, `timestamp`. */
const isKyselyShaped = (columns: readonly string[]) => hasColumns(columns, ['name', 'timestamp'])
/** The earlier Python service's runner: `version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ`. */
const isOldServiceShaped = (columns: readonly string[]) => hasColumns(columns, ['version', 'applied_at'])

function unusableTable(table: string, columns: readonly string[], chosen: boolean): MigrationError {
  const found = `it has columns (${columns.join(', ')}), where plantops-db records (name, timestamp)`
  const owner = isOldServiceShaped(columns)
    ? "it is the earlier plant-monitoring service's table, which the default migration table adopts"
    : 'it belongs to another migration tool or to the host'
  const fix = chosen
    ? `Leave out migrationTable to use "${MIGRATION_TABLE}", or pass { migrationTable: '<an unused name>' }.`
    : `Pass { migrationTable: '<an unused name>' } to keep plantops-db's records apart.`
  return new MigrationError(`plantops-db cannot record its migrations in table "${table}": ${found}; ${owner}. ${fix}`)
}

async function recordsOurs(db: Kysely<any>, table: string): Promise<boolean> {
  const { rows } = await sql<{ found: number }>`
    SELECT 1 AS found FROM ${sql.table(table)} WHERE name = '001_create_plants'`.execute(db)
  return rows.length > 0
}

/**
 * Finds where this database's plantops-db migrations are recorded:
 * - the chosen (or default) table, when it has Kysely's shape;
 * - by default, a `schema_migrations` of Kysely's shape that plantops-db 0.1.0
 *   wrote, kept where it is;
 * - by default, the earlier Python service's `schema_migrations`, to adopt.
 * A chosen or default table of any other shape is a `MigrationError`.
 */
export async function findBookkeeping(db: Kysely<any>, options: ResolvedMigratorOptions): Promise<Bookkeeping> {
  const table = options.migrationTable ?? MIGRATION_TABLE
  const ours = { table, lockTable: `${table}_lock`, adoptFrom: undefined }
  const columns = await columnsOf(db, table)
  if (columns.length > 0) {
    if (isKyselyShaped(columns)) return ours
    throw unusableTable(table, columns, options.migrationTable !== undefined)
  }
  if (options.migrationTable !== undefined) return ours
  const old = await columnsOf(db, OLD_MIGRATION_TABLE)
  if (isKyselyShaped(old) && (await recordsOurs(db, OLD_MIGRATION_TABLE))) {
    return { table: OLD_MIGRATION_TABLE, lockTable: `${OLD_MIGRATION_TABLE}_lock`, adoptFrom: undefined }
  }
  if (isOldServiceShaped(old)) return { ...ours, adoptFrom: OLD_MIGRATION_TABLE }
  return ours
}

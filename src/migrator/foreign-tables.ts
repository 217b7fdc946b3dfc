import type { Kysely } from 'kysely'
import { MigrationError } from '../errors/errors.js'
import { TABLE_COLUMNS } from '../schema/table-columns.js'
import { columnsOfTables } from './catalog.js'

/** A table of one of plantops-db's names that lacks plantops-db's columns, and what it has instead. */
interface ForeignTable {
  readonly table: string
  readonly missing: readonly string[]
  readonly has: readonly string[]
}

async function foreignTables(db: Kysely<any>): Promise<ForeignTable[]> {
  const found: ForeignTable[] = []
  const existing = await columnsOfTables(db, Object.keys(TABLE_COLUMNS))
  for (const [table, columns] of Object.entries(TABLE_COLUMNS)) {
    const has = existing.get(table)
    if (!has) continue
    const missing = Object.keys(columns).filter((column) => !has.includes(column))
    if (missing.length > 0) found.push({ table, missing, has })
  }
  return found
}

/**
 * Refuses, before anything is applied, to migrate beside a host's table that
 * bears one of plantops-db's names but not its columns: `CREATE TABLE IF NOT
 * EXISTS` would pass over it, and the first read would fail.
 *
 * @throws {MigrationError} naming each such table, what it lacks, and the `schema` option.
 */
export async function refuseForeignTables(db: Kysely<any>): Promise<void> {
  const found = await foreignTables(db)
  if (found.length === 0) return
  const described = found.map(
    ({ table, missing, has }) => `"${table}" lacks ${missing.join(', ')} (it has ${has.join(', ')})`,
  )
  throw new MigrationError(
    `this database already holds tables with plantops-db's names that are not plantops-db's: ${described.join('; ')}. ` +
      "Nothing was applied. Keep plantops-db's tables apart with createDatabase({ …, schema: 'plantops' }).",
  )
}

import { sql, type Kysely } from 'kysely'
import { oldServiceMigrations } from './adoption.js'
import { findBookkeeping } from './bookkeeping.js'
import { columnsOf } from './catalog.js'
import { knownMigrationNames } from './migrations.js'
import { resolveMigratorOptions, type MigratorOptions } from './options.js'

/**
 * Where a database stands against this release's migrations, from
 * {@link migrationStatus}.
 *
 * @example
 * ```ts
 * const status: MigrationStatus = await migrationStatus(db)
 * if (status.pending.length > 0) console.log('to apply:', status.pending.join(', '))
 * ```
 */
export interface MigrationStatus {
  /** The table the migrations are recorded in (or will be, by the next run). */
  readonly migrationTable: string
  /** Migrations recorded as applied, oldest name first, with when (ISO 8601). */
  readonly applied: readonly { readonly name: string; readonly appliedAt: string }[]
  /** This release's migrations not applied yet, in the order the next run applies them. */
  readonly pending: readonly string[]
  /** Recorded migrations this release does not ship: a newer release's, or another migrator's. */
  readonly unknown: readonly string[]
  /** The earlier Python service's migrations in its `schema_migrations`, which the next run adopts without running. */
  readonly adoptable: readonly string[]
}

async function recorded(db: Kysely<any>, table: string): Promise<{ name: string; appliedAt: string }[]> {
  if ((await columnsOf(db, table)).length === 0) return []
  const { rows } = await sql<{ name: string; appliedAt: string }>`
    SELECT name, to_char("timestamp"::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "appliedAt"
    FROM ${sql.table(table)} ORDER BY name`.execute(db)
  return rows
}

/**
 * Lists applied, pending and unknown migrations without changing anything:
 * no schema, table or lock is created, and nothing is adopted.
 *
 * @example
 * ```ts
 * import { migrationStatus } from 'plantops-db'
 * const { applied, pending, unknown } = await migrationStatus(db)
 * console.log(`${applied.length} applied, ${pending.length} pending, ${unknown.length} unknown`)
 * ```
 */
export async function migrationStatus(db: Kysely<any>, options: MigratorOptions = {}): Promise<MigrationStatus> {
  const bookkeeping = await findBookkeeping(db, resolveMigratorOptions({ logger: false, ...options }))
  const applied = await recorded(db, bookkeeping.table)
  const adoptable =
    bookkeeping.adoptFrom === undefined
      ? []
      : (await oldServiceMigrations(db, bookkeeping.adoptFrom)).map((m) => m.name)
  const done = new Set([...applied.map((m) => m.name), ...adoptable])
  const known = knownMigrationNames()
  return Object.freeze({
    migrationTable: bookkeeping.table,
    applied: Object.freeze(applied),
    pending: Object.freeze(known.filter((name) => !done.has(name))),
    unknown: Object.freeze(applied.map((m) => m.name).filter((name) => !known.includes(name))),
    adoptable: Object.freeze(adoptable),
  })
}

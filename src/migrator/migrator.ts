import { sql, type Kysely } from 'kysely'
import { isHypertable, timescaleExtensionState, type TimescaleExtensionState } from '../schema/timescaledb.js'
import { MigrationError, TimescaleUnavailableError, UnknownMigrationsError } from '../errors/errors.js'
import { migrationApi, type MigrationResultSet, type MigratorLike } from './kysely-migration.js'
import type { DuplicateReadings } from '../schema/migration.js'
import { rawAccessOf } from '../connection/raw-access.js'
import { isTransientDatabaseError } from '../errors/sqlstate.js'
import { adoptOldService } from './adoption.js'
import { findBookkeeping, type Bookkeeping } from './bookkeeping.js'
import { columnsOfTables } from './catalog.js'
import { refuseForeignTables } from './foreign-tables.js'
import { knownMigrationNames, migrationProvider } from './migrations.js'
import { resolveMigratorOptions, type MigratorOptions, type ResolvedMigratorOptions } from './options.js'

/**
 * What a migration run did.
 *
 * @example
 * ```ts
 * import { migrateToLatest, type MigrationReport } from 'plantops-db'
 * const report: MigrationReport = await migrateToLatest(db)
 * console.log(report.applied, report.telemetry.hypertable)
 * ```
 */
export interface MigrationReport {
  /** Migrations this run applied (or reverted, for `migrateDown` / `migrateTo`), in order. */
  readonly applied: readonly string[]
  /** This release's migrations that were already applied before this run. */
  readonly alreadyApplied: readonly string[]
  /** Migrations recorded in the database that this release does not ship. */
  readonly unknown: readonly string[]
  /** The table this run recorded into (`plantops_migrations`, or 0.1.0's `schema_migrations`). */
  readonly migrationTable: string
  /**
   * The earlier Python service's migrations this run found in its
   * `schema_migrations` and recorded as applied (that table is left as it is).
   */
  readonly adopted: readonly string[]
  /** Duplicate readings migration 007 resolved in this run, before making readings unique. */
  readonly duplicateReadings: DuplicateReadings
  /** Whether `telemetry` is a hypertable, and the state of the extension. */
  readonly telemetry: { readonly hypertable: boolean; readonly timescaledb: TimescaleExtensionState }
}

/**
 * Creates the schema `createDatabase({ schema })` gave `db`, before anything
 * looks for tables in it. Serialised: concurrent `CREATE SCHEMA IF NOT EXISTS`
 * can still collide in PostgreSQL's catalog.
 */
async function ensureOwnSchema(db: Kysely<any>): Promise<void> {
  const schema = rawAccessOf(db)?.schema
  if (schema === undefined) return
  await db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(hashtext('plantops-db: create schema'))`.execute(trx)
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(trx)
  })
}

/** Names recorded in the migration table; none when it does not exist yet. */
async function recordedMigrationNames(db: Kysely<any>, table: string): Promise<string[]> {
  if (!(await columnsOfTables(db, [table])).has(table)) return []
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.table(table)}`.execute(db)
  return rows.map((row) => row.name)
}

async function findUnknownMigrations(db: Kysely<any>, table: string): Promise<string[]> {
  const known = new Set(knownMigrationNames())
  return (await recordedMigrationNames(db, table)).filter((name) => !known.has(name)).sort()
}

/** plantops-db names its migrations `NNN_snake_case`; anything else was recorded by another migrator. */
const looksLikeOurs = (name: string) => /^\d{3}_[a-z0-9_]+$/.test(name)

function unknownMessage(table: string, newer: readonly string[], foreign: readonly string[]): string {
  const parts: string[] = []
  if (newer.length > 0) {
    parts.push(`${newer.join(', ')}: applied by a newer release of plantops-db`)
  }
  if (foreign.length > 0) {
    parts.push(
      `${foreign.join(', ')}: not plantops-db migrations; another migrator records into "${table}". ` +
        'Give the host\'s migrations a table of their own (see "Host migrations beside ours" in the README)',
    )
  }
  return `"${table}" records migrations this release does not know (${parts.join('; ')})`
}

/** Applies the `unknownMigrations` policy, naming what this release does not know and whose it is. */
async function checkUnknownMigrations(
  db: Kysely<any>,
  options: ResolvedMigratorOptions,
  table: string,
): Promise<string[]> {
  const unknown = await findUnknownMigrations(db, table)
  if (unknown.length === 0) return unknown
  const newer = unknown.filter(looksLikeOurs)
  const foreign = unknown.filter((name) => !looksLikeOurs(name))
  const message = unknownMessage(table, newer, foreign)
  if (options.unknownMigrations === 'error') throw new UnknownMigrationsError(unknown, message)
  options.logger.warn({ unknown }, `${message}. Continuing with the migrations this release knows.`)
  return unknown
}

/**
 * A Kysely `Migrator` over plantops-db's migrations and tables, for a
 * kysely-ctl config or for operators who want Kysely's own API. Asynchronous
 * because it loads the migrator from wherever the installed kysely keeps it.
 *
 * @example
 * ```ts
 * // kysely.config.ts
 * import { defineConfig } from 'kysely-ctl'
 * import { createDatabase, createMigrator } from 'plantops-db'
 * export default defineConfig({
 *   kysely: createDatabase({ connectionString: process.env.DATABASE_URL }),
 *   migrations: { migrator: (db) => createMigrator(db) },
 * })
 * ```
 */
export async function createMigrator(db: Kysely<any>, options: MigratorOptions = {}): Promise<MigratorLike> {
  const resolved = resolveMigratorOptions(options)
  await ensureOwnSchema(db)
  const bookkeeping = await findBookkeeping(db, resolved)
  await adoptOldService(db, bookkeeping)
  return migratorFor(db, resolved, bookkeeping, await findUnknownMigrations(db, bookkeeping.table))
}

async function migratorFor(
  db: Kysely<any>,
  options: ResolvedMigratorOptions,
  bookkeeping: Bookkeeping,
  unknown: readonly string[],
  onDuplicateReadings?: (duplicates: DuplicateReadings) => void,
): Promise<MigratorLike> {
  const { Migrator } = await migrationApi()
  const schema = rawAccessOf(db)?.schema
  return new Migrator({
    db,
    provider: migrationProvider(options, unknown, onDuplicateReadings),
    migrationTableName: bookkeeping.table,
    migrationLockTableName: bookkeeping.lockTable,
    // Kysely finds its table in any schema and then reads it by the search_path: name ours.
    ...(schema !== undefined && { migrationTableSchema: schema }),
    // Placeholders of a newer release may sort between ours; order is still by name.
    allowUnorderedMigrations: unknown.length > 0,
  })
}

/** Turns Kysely's result set into a thrown `MigrationError`, naming the failed migration. */
function throwIfFailed(resultSet: MigrationResultSet): void {
  const { error, results = [] } = resultSet
  if (error === undefined) return
  if (error instanceof TimescaleUnavailableError || error instanceof MigrationError) throw error
  const failed = results.find((result) => result.status === 'Error')?.migrationName
  const reason = error instanceof Error ? error.message : String(error)
  if (reason.startsWith('corrupted migrations')) {
    throw new MigrationError(
      `the recorded migrations changed while migrating (another release is migrating this database): ${reason}`,
      failed,
      { cause: error },
    )
  }
  if (isTransientDatabaseError(error)) {
    throw new MigrationError(
      `the connection to the database was lost while migrating${failed ? ` (in ${failed})` : ''}: ${reason}. ` +
        'PostgreSQL rolled the run back, so nothing from it was applied; run it again.',
      failed,
      { cause: error },
    )
  }
  const nothingApplied = 'nothing from this run was applied'
  throw new MigrationError(
    failed ? `migration ${failed} failed (${nothingApplied}): ${reason}` : `migration failed: ${reason}`,
    failed,
    { cause: error },
  )
}

interface RunFacts {
  readonly bookkeeping: Bookkeeping
  readonly unknown: readonly string[]
  readonly adopted: readonly string[]
  readonly duplicateReadings: DuplicateReadings
}

async function reportOf(db: Kysely<any>, resultSet: MigrationResultSet, facts: RunFacts): Promise<MigrationReport> {
  const applied = (resultSet.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
  const recorded = new Set(await recordedMigrationNames(db, facts.bookkeeping.table))
  const justApplied = new Set(applied)
  const alreadyApplied = knownMigrationNames().filter((name) => recorded.has(name) && !justApplied.has(name))
  return Object.freeze({
    applied: Object.freeze(applied),
    alreadyApplied: Object.freeze(alreadyApplied),
    unknown: Object.freeze([...facts.unknown]),
    migrationTable: facts.bookkeeping.table,
    adopted: Object.freeze([...facts.adopted]),
    duplicateReadings: Object.freeze({ ...facts.duplicateReadings }),
    telemetry: Object.freeze({
      hypertable: await isHypertable(db, 'telemetry'),
      timescaledb: await timescaleExtensionState(db),
    }),
  })
}

async function run(
  db: Kysely<any>,
  options: MigratorOptions,
  direction: 'up' | 'down',
  step: (migrator: MigratorLike, none: object) => Promise<MigrationResultSet>,
): Promise<MigrationReport> {
  const resolved = resolveMigratorOptions(options)
  await ensureOwnSchema(db)
  const bookkeeping = await findBookkeeping(db, resolved)
  const adopted = await adoptOldService(db, bookkeeping)
  if (adopted.length > 0) {
    resolved.logger.info(
      { adopted, from: bookkeeping.adoptFrom },
      `adopted the earlier service's migrations ${adopted.join(', ')} from "${bookkeeping.adoptFrom}" ` +
        `(left as it is); plantops-db records its own in "${bookkeeping.table}"`,
    )
  }
  const unknown = await checkUnknownMigrations(db, resolved, bookkeeping.table)
  if (direction === 'up') await refuseForeignTables(db)
  let duplicateReadings: DuplicateReadings = { collapsed: 0, rejected: 0 }
  const migrator = await migratorFor(db, resolved, bookkeeping, unknown, (found) => {
    duplicateReadings = found
  })
  const resultSet = await step(migrator, (await migrationApi()).NO_MIGRATIONS)
  throwIfFailed(resultSet)
  const report = await reportOf(db, resultSet, { bookkeeping, unknown, adopted, duplicateReadings })
  const verb = direction === 'up' ? 'applied' : 'reverted'
  for (const name of report.applied) resolved.logger.info({ migration: name }, `${verb} migration ${name}`)
  if (report.applied.length === 0) resolved.logger.info({}, 'database schema is up to date')
  if (resolved.timescaledb === 'require' && direction === 'up' && !report.telemetry.hypertable) {
    throw new TimescaleUnavailableError("timescaledb: 'require'", 'the existing telemetry table is a plain table')
  }
  return report
}

/**
 * Brings the database to this release's schema: applies every pending
 * migration in name order, in one transaction, under a lock, so many app
 * instances can call it at startup together. Idempotent.
 *
 * @throws {MigrationError} a migration failed; nothing of this run was applied.
 * @throws {UnknownMigrationsError} with `unknownMigrations: 'error'`, when a newer release has migrated the database.
 * @throws {TimescaleUnavailableError} with `timescaledb: 'require'`, when telemetry is not a hypertable.
 *
 * @example
 * ```ts
 * import { createDatabase, migrateToLatest } from 'plantops-db'
 * const db = createDatabase()
 * const report = await migrateToLatest(db, { logger: false })
 * console.log(`applied ${report.applied.length}, hypertable: ${report.telemetry.hypertable}`)
 * ```
 */
export function migrateToLatest(db: Kysely<any>, options: MigratorOptions = {}): Promise<MigrationReport> {
  return run(db, options, 'up', (migrator) => migrator.migrateToLatest())
}

/**
 * Migrates up or down to `target` (a migration name), or to an empty schema
 * with `'none'`. For operators; apps call {@link migrateToLatest}.
 *
 * @example
 * ```ts
 * import { migrateTo } from 'plantops-db'
 * await migrateTo(db, '003_create_telemetry') // apply or revert until 003 is the last applied
 * await migrateTo(db, 'none') // revert everything
 * ```
 */
export function migrateTo(db: Kysely<any>, target: string, options: MigratorOptions = {}): Promise<MigrationReport> {
  const known = knownMigrationNames()
  if (target !== 'none' && !known.includes(target)) {
    return Promise.reject(new MigrationError(`unknown migration "${target}"; known: ${known.join(', ')}, or 'none'`))
  }
  const direction = target === 'none' ? 'down' : 'up'
  return run(db, options, direction, (migrator, none) => migrator.migrateTo(target === 'none' ? none : target))
}

/**
 * Reverts the most recently applied migration.
 *
 * @example
 * ```ts
 * import { migrateDown } from 'plantops-db'
 * const report = await migrateDown(db)
 * console.log('reverted', report.applied)
 * ```
 */
export function migrateDown(db: Kysely<any>, options: MigratorOptions = {}): Promise<MigrationReport> {
  return run(db, options, 'down', (migrator) => migrator.migrateDown())
}

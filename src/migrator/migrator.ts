import { sql, type Kysely } from 'kysely'
import { isHypertable, timescaleExtensionState, type TimescaleExtensionState } from '../schema/timescaledb.js'
import { MigrationError, TimescaleUnavailableError, UnknownMigrationsError } from '../errors/errors.js'
import { migrationApi, type MigrationResultSet, type MigratorLike } from './kysely-migration.js'
import { knownMigrationNames, migrationProvider } from './migrations.js'
import {
  MIGRATION_LOCK_TABLE,
  MIGRATION_TABLE,
  resolveMigratorOptions,
  type MigratorOptions,
  type ResolvedMigratorOptions,
} from './options.js'

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
  /** Whether `telemetry` is a hypertable, and the state of the extension. */
  readonly telemetry: { readonly hypertable: boolean; readonly timescaledb: TimescaleExtensionState }
}

/** Names recorded in `schema_migrations`; none when the table does not exist yet. */
async function recordedMigrationNames(db: Kysely<any>): Promise<string[]> {
  const { rows: found } = await sql<{ table: string | null }>`
    SELECT to_regclass(${MIGRATION_TABLE})::text AS table`.execute(db)
  if (!found[0]?.table) return []
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)}`.execute(db)
  return rows.map((row) => row.name)
}

async function findUnknownMigrations(db: Kysely<any>): Promise<string[]> {
  const known = new Set(knownMigrationNames())
  return (await recordedMigrationNames(db)).filter((name) => !known.has(name)).sort()
}

/** Applies the `unknownMigrations` policy, naming what this release does not know. */
async function checkUnknownMigrations(db: Kysely<any>, options: ResolvedMigratorOptions): Promise<string[]> {
  const unknown = await findUnknownMigrations(db)
  if (unknown.length === 0) return unknown
  if (options.unknownMigrations === 'error') throw new UnknownMigrationsError(unknown)
  options.logger.warn(
    { unknown },
    `the database records migrations this release does not know (${unknown.join(', ')}); ` +
      'a newer release of plantops-db has migrated it. Continuing with the migrations this release knows.',
  )
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
export function createMigrator(db: Kysely<any>, options: MigratorOptions = {}): Promise<MigratorLike> {
  return migratorFor(db, resolveMigratorOptions(options), [])
}

async function migratorFor(
  db: Kysely<any>,
  options: ResolvedMigratorOptions,
  unknown: readonly string[],
): Promise<MigratorLike> {
  const { Migrator } = await migrationApi()
  return new Migrator({
    db,
    provider: migrationProvider(options, unknown),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
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
  const nothingApplied = 'nothing from this run was applied'
  throw new MigrationError(
    failed ? `migration ${failed} failed (${nothingApplied}): ${reason}` : `migration failed: ${reason}`,
    failed,
    { cause: error },
  )
}

async function reportOf(
  db: Kysely<any>,
  resultSet: MigrationResultSet,
  unknown: readonly string[],
): Promise<MigrationReport> {
  const applied = (resultSet.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
  const recorded = new Set(await recordedMigrationNames(db))
  const justApplied = new Set(applied)
  const alreadyApplied = knownMigrationNames().filter((name) => recorded.has(name) && !justApplied.has(name))
  return Object.freeze({
    applied: Object.freeze(applied),
    alreadyApplied: Object.freeze(alreadyApplied),
    unknown: Object.freeze([...unknown]),
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
  const unknown = await checkUnknownMigrations(db, resolved)
  const resultSet = await step(await migratorFor(db, resolved, unknown), (await migrationApi()).NO_MIGRATIONS)
  throwIfFailed(resultSet)
  const report = await reportOf(db, resultSet, unknown)
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

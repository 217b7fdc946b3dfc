import type { TimescaleMode } from '../schema/timescaledb.js'
import { z } from 'zod'
import { loggerOption, resolveLogger, type Logger } from '../util/logger.js'
import { validate } from '../util/validate.js'
import { sqlIdentifier } from '../schema/fields.js'

/**
 * The table where plantops-db records its applied migrations, by default
 * (Kysely's format, so kysely-ctl can read it). Not `schema_migrations`: that
 * name belongs to the earlier Python service, dbmate, golang-migrate and Rails.
 * A database migrated by plantops-db 0.1.0 keeps its `schema_migrations`.
 *
 * @example
 * ```ts
 * import { sql } from 'kysely'
 * import { MIGRATION_TABLE } from 'plantops-db'
 * const applied = await sql`SELECT name FROM ${sql.table(MIGRATION_TABLE)}`.execute(db)
 * ```
 */
export const MIGRATION_TABLE = 'plantops_migrations'
/**
 * The lock table beside {@link MIGRATION_TABLE}.
 *
 * @example
 * ```ts
 * import { Migrator } from 'kysely/migration' // 'kysely' up to 0.28
 * import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, migrations } from 'plantops-db'
 * new Migrator({
 *   db,
 *   provider: { getMigrations: async () => migrations },
 *   migrationTableName: MIGRATION_TABLE,
 *   migrationLockTableName: MIGRATION_LOCK_TABLE,
 * })
 * ```
 */
export const MIGRATION_LOCK_TABLE = 'plantops_migrations_lock'

/**
 * Options of `migrateToLatest`, `migrateTo`, `migrateDown` and `createMigrator`.
 *
 * @example
 * ```ts
 * import { migrateToLatest, type MigratorOptions } from 'plantops-db'
 * const options: MigratorOptions = { timescaledb: 'require', unknownMigrations: 'error', logger: false }
 * await migrateToLatest(db, options)
 * ```
 */
export interface MigratorOptions {
  /** TimescaleDB for `telemetry`: `'auto'` (default), `'require'` or `'off'`. */
  readonly timescaledb?: TimescaleMode
  /**
   * What to do when the database records migrations this release does not
   * ship (a newer release ran): `'warn'` (default) and carry on, or `'error'`.
   */
  readonly unknownMigrations?: 'warn' | 'error'
  /** Where progress goes: a pino-compatible logger, or `false` for silence. Default: the console. */
  readonly logger?: Logger | false
  /**
   * The table that records plantops-db's applied migrations (its lock table
   * is this name with `_lock` added). Default {@link MIGRATION_TABLE}.
   */
  readonly migrationTable?: string
}

/** {@link MigratorOptions} with every default filled in. */
export interface ResolvedMigratorOptions {
  readonly timescaledb: TimescaleMode
  readonly unknownMigrations: 'warn' | 'error'
  readonly logger: Logger
  /** The table asked for, or `undefined` for the default (which may find an older table to use). */
  readonly migrationTable: string | undefined
}

const optionsSchema = z.strictObject({
  timescaledb: z.enum(['auto', 'require', 'off']).default('auto'),
  unknownMigrations: z.enum(['warn', 'error']).default('warn'),
  logger: loggerOption,
  // 58, so the lock table's `_lock` still fits PostgreSQL's 63.
  migrationTable: sqlIdentifier(58).optional(),
})

/** Validates {@link MigratorOptions} (unknown keys refused) and fills in the defaults. */
export function resolveMigratorOptions(options: MigratorOptions = {}): ResolvedMigratorOptions {
  const parsed = validate(optionsSchema, options, 'migrator options')
  return Object.freeze({ ...parsed, migrationTable: parsed.migrationTable, logger: resolveLogger(parsed.logger) })
}

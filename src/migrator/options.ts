import type { TimescaleMode } from '../schema/timescaledb.js'
import { z } from 'zod'
import { loggerOption, resolveLogger, type Logger } from '../util/logger.js'
import { validate } from '../util/validate.js'

/**
 * The table where applied migrations are recorded (Kysely's format, so kysely-ctl shares it).
 *
 * @example
 * ```ts
 * import { sql } from 'kysely'
 * import { MIGRATION_TABLE } from 'plantops-db'
 * const applied = await sql`SELECT name FROM ${sql.table(MIGRATION_TABLE)}`.execute(db)
 * ```
 */
export const MIGRATION_TABLE = 'schema_migrations'
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
export const MIGRATION_LOCK_TABLE = 'schema_migrations_lock'

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
}

/** {@link MigratorOptions} with every default filled in. */
export interface ResolvedMigratorOptions {
  readonly timescaledb: TimescaleMode
  readonly unknownMigrations: 'warn' | 'error'
  readonly logger: Logger
}

const optionsSchema = z.strictObject({
  timescaledb: z.enum(['auto', 'require', 'off']).default('auto'),
  unknownMigrations: z.enum(['warn', 'error']).default('warn'),
  logger: loggerOption,
})

/** Validates {@link MigratorOptions} (unknown keys refused) and fills in the defaults. */
export function resolveMigratorOptions(options: MigratorOptions = {}): ResolvedMigratorOptions {
  const parsed = validate(optionsSchema, options, 'migrator options')
  return Object.freeze({ ...parsed, logger: resolveLogger(parsed.logger) })
}

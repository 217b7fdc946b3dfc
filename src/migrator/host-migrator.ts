import type { Kysely } from 'kysely'
import { z } from 'zod'
import type { Migration } from '../schema/migration.js'
import { validate } from '../util/validate.js'
import { sqlIdentifier } from '../schema/fields.js'
import { migrationApi, type MigratorLike } from './kysely-migration.js'
import { migrateToLatest } from './migrator.js'
import { MIGRATION_TABLE, type MigratorOptions } from './options.js'

/**
 * Options of {@link createHostMigrator}.
 *
 * @example
 * ```ts
 * const options: HostMigratorOptions = { migrationTable: 'app_migrations', plantops: { logger: false } }
 * ```
 */
export interface HostMigratorOptions {
  /** The table that records the host's migrations (its lock table adds `_lock`). Default `'host_migrations'`. */
  readonly migrationTable?: string
  /** Options for bringing plantops-db's own migrations up to date first. */
  readonly plantops?: MigratorOptions
  /**
   * The `db` plantops-db's migrations run on, when it is not the host's: with
   * `createDatabase({ schema })`, pass that one here and the host's own `db`
   * (whose tables stay where the host keeps them) as the first argument.
   */
  readonly plantopsDb?: Kysely<any>
}

const optionsSchema = z.strictObject({
  migrationTable: sqlIdentifier(58)
    .refine((name) => name !== MIGRATION_TABLE && name !== 'schema_migrations', {
      message: `must not be plantops-db's own migration table ("${MIGRATION_TABLE}") or "schema_migrations"`,
    })
    .default('host_migrations'),
  plantops: z.custom<MigratorOptions>((value) => typeof value === 'object' && value !== null).optional(),
  plantopsDb: z
    .custom<Kysely<any>>((value) => typeof (value as { transaction?: unknown } | null)?.transaction === 'function', {
      message: 'must be a Kysely instance',
    })
    .optional(),
})

/**
 * A Kysely `Migrator` for the host's own migrations, kept in a table of their
 * own, so neither migrator ever finds the other's records. It first brings
 * plantops-db's migrations up to date (idempotent and locked), so host
 * migrations may reference plantops-db's tables. Use it at startup and from a
 * kysely-ctl config alike.
 *
 * @example
 * ```ts
 * // kysely.config.ts
 * import { defineConfig } from 'kysely-ctl'
 * import { createDatabase, createHostMigrator } from 'plantops-db'
 * import { hostMigrations } from './migrations/index.js'
 * export default defineConfig({
 *   kysely: createDatabase({ connectionString: process.env.DATABASE_URL }),
 *   migrations: { migrator: (db) => createHostMigrator(db, hostMigrations) },
 * })
 *
 * // at startup
 * const result = await (await createHostMigrator(db, hostMigrations)).migrateToLatest()
 * if (result.error) throw result.error
 * ```
 */
export async function createHostMigrator(
  db: Kysely<any>,
  migrations: Readonly<Record<string, Migration>>,
  options: HostMigratorOptions = {},
): Promise<MigratorLike> {
  const { migrationTable, plantops, plantopsDb } = validate(optionsSchema, options, 'host migrator options')
  await migrateToLatest(plantopsDb ?? db, plantops ?? {})
  const { Migrator } = await migrationApi()
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    migrationTableName: migrationTable,
    migrationLockTableName: `${migrationTable}_lock`,
  })
}

import type { Migration } from '../schema/migration.js'
import type { MigrationProvider } from './kysely-migration.js'
import { buildMigrations } from '../../migrations/index.js'
import type { DuplicateReadings } from '../schema/migration.js'
import { MigrationError } from '../errors/errors.js'
import type { Logger } from '../util/logger.js'
import { resolveMigratorOptions, type ResolvedMigratorOptions } from './options.js'

/**
 * Every migration of this release, by name, with the default context
 * (TimescaleDB `'auto'`, progress on the console). For a Kysely `Migrator`
 * of your own or a kysely-ctl config; `migrateToLatest` is the simpler way.
 *
 * @example
 * ```ts
 * import { Migrator } from 'kysely/migration' // 'kysely' up to 0.28
 * import { migrations, MIGRATION_TABLE, MIGRATION_LOCK_TABLE } from 'plantops-db'
 * const migrator = new Migrator({
 *   db,
 *   provider: { getMigrations: async () => migrations },
 *   migrationTableName: MIGRATION_TABLE,
 *   migrationLockTableName: MIGRATION_LOCK_TABLE,
 * })
 * ```
 */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze(buildMigrations(resolveMigratorOptions()))

/** Logs each migration as it starts; Kysely reports only after the whole run. */
function logged(name: string, migration: Migration, logger: Logger): Migration {
  return {
    async up(db) {
      logger.info({ migration: name }, `applying migration ${name}`)
      await migration.up(db)
    },
    async down(db) {
      logger.info({ migration: name }, `reverting migration ${name}`)
      if (!migration.down) throw new MigrationError(`migration ${name} cannot be reverted`, name)
      await migration.down(db)
    },
  }
}

/**
 * Stands in for a migration a newer release recorded, so the run can go on
 * past it; neither direction can actually be carried out by this release.
 */
function placeholderFor(name: string): Migration {
  const refuse = async (): Promise<void> => {
    throw new MigrationError(
      `migration ${name} was applied by a newer release of plantops-db; this release cannot apply or revert it`,
      name,
    )
  }
  return { up: refuse, down: refuse }
}

/** The provider the migrator runs: this release's migrations plus placeholders. */
export function migrationProvider(
  options: ResolvedMigratorOptions,
  unknown: readonly string[],
  onDuplicateReadings?: (duplicates: DuplicateReadings) => void,
): MigrationProvider {
  const known = buildMigrations({
    timescaledb: options.timescaledb,
    logger: options.logger,
    ...(onDuplicateReadings && { onDuplicateReadings }),
  })
  const all: Record<string, Migration> = {}
  for (const [name, migration] of Object.entries(known)) all[name] = logged(name, migration, options.logger)
  for (const name of unknown) all[name] = placeholderFor(name)
  return { getMigrations: async () => all }
}

/** Names of this release's migrations, in the order they apply. */
export function knownMigrationNames(): string[] {
  return Object.keys(migrations).sort()
}

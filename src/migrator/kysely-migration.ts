import * as kysely from 'kysely'
import type { Migration } from '../schema/migration.js'

/**
 * Kysely's `MigrationProvider`, by shape: where a migrator gets its migrations.
 *
 * @example
 * ```ts
 * import { migrations, type MigrationProvider } from 'plantops-db'
 * const provider: MigrationProvider = { getMigrations: async () => ({ ...migrations, ...myOwnMigrations }) }
 * ```
 */
export interface MigrationProvider {
  getMigrations(): Promise<Record<string, Migration>>
}

/**
 * Kysely's `MigrationResultSet`, by shape: what a migrator run did. It never
 * throws; `error` says what went wrong.
 *
 * @example
 * ```ts
 * import { createMigrator, type MigrationResultSet } from 'plantops-db'
 * const result: MigrationResultSet = await (await createMigrator(db)).migrateToLatest()
 * if (result.error) console.error(result.error)
 * ```
 */
export interface MigrationResultSet {
  readonly error?: unknown
  readonly results?: readonly {
    migrationName: string
    direction: 'Up' | 'Down'
    status: 'Success' | 'Error' | 'NotExecuted'
  }[]
}

/**
 * The part of Kysely's `Migrator` that `createMigrator` promises: enough for
 * kysely-ctl and for operators.
 *
 * @example
 * ```ts
 * import { createMigrator, type MigratorLike } from 'plantops-db'
 * const migrator: MigratorLike = await createMigrator(db)
 * await migrator.migrateDown()
 * ```
 */
export interface MigratorLike {
  migrateToLatest(): Promise<MigrationResultSet>
  migrateTo(target: string | object): Promise<MigrationResultSet>
  migrateDown(): Promise<MigrationResultSet>
}

interface MigrationApi {
  Migrator: new (props: object) => MigratorLike
  NO_MIGRATIONS: object
}

let api: Promise<MigrationApi> | undefined

/**
 * Kysely's migrator, wherever the installed version keeps it: the package
 * root up to 0.28, `kysely/migration` from 0.29 on.
 */
export function migrationApi(): Promise<MigrationApi> {
  api ??= (async () => {
    const root = kysely as unknown as Partial<MigrationApi>
    if (typeof root.Migrator === 'function' && root.NO_MIGRATIONS) return root as MigrationApi
    const subpath = 'kysely/migration' // a variable, so 0.28's types (which lack it) still compile
    return (await import(/* @vite-ignore */ subpath)) as MigrationApi
  })()
  return api
}

import * as kysely from 'kysely'
import type { Kysely } from 'kysely'

/**
 * One migration: `up` applies it, `down` reverts it. The same shape as
 * Kysely's own `Migration`, declared here because kysely 0.28 exports it from
 * `kysely` and 0.29 only from `kysely/migration`.
 *
 * @example
 * ```ts
 * import { sql } from 'kysely'
 * import type { Migration } from 'plantops-db'
 * const addNotes: Migration = {
 *   up: async (db) => void (await sql`ALTER TABLE plants ADD COLUMN notes TEXT`.execute(db)),
 *   down: async (db) => void (await sql`ALTER TABLE plants DROP COLUMN notes`.execute(db)),
 * }
 * ```
 */
export interface Migration {
  up(db: Kysely<any>): Promise<void>
  down?(db: Kysely<any>): Promise<void>
}

/** Kysely's `MigrationProvider`, by shape. */
export interface MigrationProvider {
  getMigrations(): Promise<Record<string, Migration>>
}

/** Kysely's `MigrationResultSet`, by shape. */
export interface MigrationResultSet {
  readonly error?: unknown
  readonly results?: readonly { migrationName: string; direction: 'Up' | 'Down'; status: 'Success' | 'Error' | 'NotExecuted' }[]
}

/** The part of Kysely's `Migrator` plantops-db uses. */
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

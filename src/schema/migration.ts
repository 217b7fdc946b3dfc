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

/**
 * Duplicate `(device_id, time)` readings migration 007 found before it could
 * make them unique, and what it did with them.
 *
 * @example
 * ```ts
 * const { duplicateReadings } = await migrateToLatest(db)
 * if (duplicateReadings.rejected > 0) console.warn('see telemetry_rejects, reason duplicate_reading')
 * ```
 */
export interface DuplicateReadings {
  /** Extra copies identical in every column, deleted (one copy stays). */
  readonly collapsed: number
  /** Copies that differed from the one kept, moved to `telemetry_rejects` as `duplicate_reading`. */
  readonly rejected: number
}

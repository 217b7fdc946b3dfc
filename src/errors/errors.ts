/**
 * The base class of every error plantops-db throws on purpose. `code` is a
 * stable string to branch on; `cause` keeps the underlying error, if any.
 *
 * @example
 * ```ts
 * import { PlantopsError } from 'plantops-db'
 * try { await repos.plants.get('nope') } catch (err) {
 *   if (err instanceof PlantopsError) console.log(err.code) // 'NOT_FOUND'
 * }
 * ```
 */
export class PlantopsError extends Error {
  /** A stable, machine-readable code, for example `'VALIDATION'`. */
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/**
 * The library cannot start as configured: a missing optional package, a
 * contradictory option. The message says what to do.
 *
 * @example
 * ```ts
 * import { ConfigurationError, createDatabase } from 'plantops-db'
 * try { createDatabase() } catch (err) { if (err instanceof ConfigurationError) console.error(err.message) }
 * ```
 */
export class ConfigurationError extends PlantopsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIGURATION', message, options)
  }
}

/**
 * A migration failed; nothing of the failed run was applied (PostgreSQL runs
 * the whole run in one transaction). `migration` names the one that failed.
 *
 * @example
 * ```ts
 * import { MigrationError, migrateToLatest } from 'plantops-db'
 * try { await migrateToLatest(db) } catch (err) {
 *   if (err instanceof MigrationError) console.error(err.migration, err.cause)
 * }
 * ```
 */
export class MigrationError extends PlantopsError {
  /** The migration that failed, when one did. */
  readonly migration: string | undefined

  constructor(message: string, migration?: string, options?: { cause?: unknown }) {
    super('MIGRATION', message, options)
    this.migration = migration
  }
}

/**
 * The database records migrations this version of plantops-db does not know,
 * so a newer release has already migrated it, and the migrator was told to
 * refuse (`unknownMigrations: 'error'`).
 *
 * @example
 * ```ts
 * import { UnknownMigrationsError, migrateToLatest } from 'plantops-db'
 * try { await migrateToLatest(db, { unknownMigrations: 'error' }) } catch (err) {
 *   if (err instanceof UnknownMigrationsError) console.error(err.unknown)
 * }
 * ```
 */
export class UnknownMigrationsError extends PlantopsError {
  /** The recorded migration names this version does not ship. */
  readonly unknown: readonly string[]

  constructor(unknown: readonly string[]) {
    super(
      'UNKNOWN_MIGRATIONS',
      `The database records migrations this version of plantops-db does not know: ${unknown.join(', ')}. ` +
        'A newer release has migrated it; upgrade plantops-db, or pass { unknownMigrations: "warn" } to run anyway.',
    )
    this.unknown = Object.freeze([...unknown])
  }
}

/**
 * `timescaledb: 'require'` was asked for, but `telemetry` could not be made a
 * hypertable. The message gives PostgreSQL's reason.
 *
 * @example
 * ```ts
 * import { TimescaleUnavailableError, migrateToLatest } from 'plantops-db'
 * await migrateToLatest(db, { timescaledb: 'require' }).catch((err) => {
 *   if (err instanceof TimescaleUnavailableError) process.exit(1)
 * })
 * ```
 */
export class TimescaleUnavailableError extends PlantopsError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('TIMESCALEDB_UNAVAILABLE', `telemetry must be a TimescaleDB hypertable (timescaledb: 'require'), but ${reason}`, options)
  }
}

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
 * plantops-db could not open a connection to PostgreSQL: refused, unknown
 * database, bad credentials, too many connections. The message names the host,
 * port, database and user (never the password) and where the URL came from;
 * `cause` is the driver's error. `transient` says whether trying again later
 * can help (a refused or timed-out connection) or the configuration is wrong.
 *
 * @example
 * ```ts
 * import { DatabaseConnectionError } from 'plantops-db'
 * await migrateToLatest(db).catch((err) => {
 *   if (err instanceof DatabaseConnectionError && !err.transient) process.exit(78) // EX_CONFIG
 *   throw err
 * })
 * ```
 */
export class DatabaseConnectionError extends PlantopsError {
  /** `host:port/database`, as connected to. */
  readonly target: string
  /** Whether the same connection may succeed later (refused, timed out) rather than being misconfigured. */
  readonly transient: boolean

  constructor(message: string, target: string, transient: boolean, options?: { cause?: unknown }) {
    super('CONNECTION', message, options)
    this.target = target
    this.transient = transient
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

  constructor(unknown: readonly string[], whose?: string) {
    super(
      'UNKNOWN_MIGRATIONS',
      `${whose ?? `The database records migrations this version of plantops-db does not know: ${unknown.join(', ')}`}. ` +
        "Upgrade plantops-db for a newer release's, move another migrator's to a table of its own, " +
        'or pass { unknownMigrations: "warn" } to run anyway.',
    )
    this.unknown = Object.freeze([...unknown])
  }
}

/**
 * Telemetry is not a TimescaleDB hypertable, but what was asked needs one:
 * `timescaledb: 'require'` in the migrator, or a compression or retention
 * policy. The message says what was asked and why it cannot be done.
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
  constructor(what: string, reason: string, options?: { cause?: unknown }) {
    super('TIMESCALEDB_UNAVAILABLE', `${what} needs telemetry to be a TimescaleDB hypertable, but ${reason}`, options)
  }
}

/**
 * One problem found in an input: where (`path`, as in zod) and what.
 *
 * @example
 * ```ts
 * import type { ValidationIssue } from 'plantops-db'
 * const issue: ValidationIssue = { path: ['thresholds', 'humidity', 'min'], message: 'must be a finite number' }
 * ```
 */
export interface ValidationIssue {
  readonly path: readonly (string | number)[]
  readonly message: string
}

function describeIssues(what: string, issues: readonly ValidationIssue[]): string {
  const listed = issues.map((issue) =>
    issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
  )
  return `invalid ${what}: ${listed.join('; ')}`
}

/**
 * An input was refused before any SQL ran (or the database refused a value
 * as malformed). `issues` lists each problem with its field path.
 *
 * @example
 * ```ts
 * import { ValidationError } from 'plantops-db'
 * try { await repos.plants.create({ name: '' }) } catch (err) {
 *   if (err instanceof ValidationError) console.log(err.issues) // [{ path: ['name'], message: … }]
 * }
 * ```
 */
export class ValidationError extends PlantopsError {
  readonly issues: readonly ValidationIssue[]

  constructor(what: string, issues: readonly ValidationIssue[], options?: { cause?: unknown }) {
    super('VALIDATION', describeIssues(what, issues), options)
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue, path: [...issue.path] })))
  }
}

/**
 * The row asked for does not exist.
 *
 * @example
 * ```ts
 * import { NotFoundError } from 'plantops-db'
 * await repos.plants.get('plant_missing').catch((err) => {
 *   if (err instanceof NotFoundError) console.log(err.entity, err.key) // 'plant', 'plant_missing'
 * })
 * ```
 */
export class NotFoundError extends PlantopsError {
  constructor(
    readonly entity: string,
    readonly key: string,
  ) {
    super('NOT_FOUND', `${entity} "${key}" does not exist`)
  }
}

/**
 * A value that must be unique is already taken: a plant or device id, a MAC
 * address, an MQTT username, a plant's care plan.
 *
 * @example
 * ```ts
 * import { ConflictError } from 'plantops-db'
 * await repos.devices.provision({ macAddress: 'AA:BB:CC:00:11:22', sensorTypes: [] }).catch((err) => {
 *   if (err instanceof ConflictError) console.log(err.field) // 'macAddress'
 * })
 * ```
 */
export class ConflictError extends PlantopsError {
  constructor(
    readonly entity: string,
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('CONFLICT', message, options)
  }
}

/**
 * The input names a plant or device that does not exist (named so it does not
 * shadow JavaScript's global `ReferenceError`).
 *
 * @example
 * ```ts
 * import { MissingReferenceError } from 'plantops-db'
 * await repos.devices.assignPlant('dev_1', 'plant_gone').catch((err) => {
 *   if (err instanceof MissingReferenceError) console.log(err.entity) // 'plant'
 * })
 * ```
 */
export class MissingReferenceError extends PlantopsError {
  constructor(
    readonly entity: string,
    readonly key: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      'MISSING_REFERENCE',
      key === undefined ? `the referenced ${entity} does not exist` : `${entity} "${key}" does not exist`,
      options,
    )
  }
}

/**
 * The row exists but its state forbids the operation, for example assigning
 * a decommissioned device.
 *
 * @example
 * ```ts
 * import { InvalidStateError } from 'plantops-db'
 * await repos.devices.assignPlant('dev_retired', 'plant_1').catch((err) => {
 *   if (err instanceof InvalidStateError) console.log(err.message)
 * })
 * ```
 */
export class InvalidStateError extends PlantopsError {
  constructor(message: string) {
    super('INVALID_STATE', message)
  }
}

/**
 * Another process owns the spool directory (its `LOCK` file names a process
 * that still runs). Two processes appending to one spool would interleave and
 * drain each other's records, so the second refuses to start.
 *
 * @example
 * ```ts
 * import { SpoolLockedError } from 'plantops-db'
 * try { await createMqttIngestor({ url, writer, spool: { dir: './spool' } }) } catch (err) {
 *   if (err instanceof SpoolLockedError) console.error(`spool in use by pid ${err.pid}`)
 * }
 * ```
 */
export class SpoolLockedError extends PlantopsError {
  /** The directory asked for. */
  readonly dir: string
  /** The process that owns it. */
  readonly pid: number

  constructor(dir: string, pid: number) {
    super(
      'SPOOL_LOCKED',
      `the spool directory ${dir} is in use by process ${pid} (its LOCK file); ` +
        'one process owns a spool: give each ingestor its own directory, or stop the other process',
    )
    this.dir = dir
    this.pid = pid
  }
}

/**
 * The spool could not make a message durable: a write or fsync to its
 * directory failed (a full or read-only filesystem, an I/O error). The
 * message is not acknowledged; the spool stops accepting and tries again on
 * a new segment file later, never by fsyncing the failed one again.
 *
 * @example
 * ```ts
 * import { SpoolWriteError } from 'plantops-db'
 * if (ingestor.stats().spool?.accepting === false) console.error(ingestor.stats().spool?.reason)
 * ```
 */
export class SpoolWriteError extends PlantopsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SPOOL_WRITE', message, options)
  }
}

import {
  ConflictError,
  DatabaseConnectionError,
  MissingReferenceError,
  PlantopsError,
  ValidationError,
  type ValidationIssue,
} from './errors.js'

/** What a named constraint protects, so its violation can be told in the caller's words. */
export interface ConstraintMeaning {
  readonly entity: string
  readonly field: string
}

/** The fields of node-postgres' and PGlite's database errors that classification reads. */
interface DatabaseErrorFields {
  code?: unknown
  constraint?: unknown
  detail?: unknown
  message?: unknown
}

/**
 * The SQLSTATE of a database error, if it has one.
 *
 * @example
 * ```ts
 * import { sqlStateOf } from 'plantops-db'
 * try { await db.insertInto('plants').values(row).execute() } catch (err) {
 *   if (sqlStateOf(err) === '23505') console.log('already there')
 * }
 * ```
 */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as DatabaseErrorFields | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/** SQLSTATEs of a statement naming a table, column or function the database lacks. */
const MISSING_SCHEMA_SQLSTATES = new Set([
  '42P01', // undefined_table
  '42703', // undefined_column
  '42883', // undefined_function
  '3F000', // invalid_schema_name
])

/** Whether the database lacks something a statement names: usually, migrations were not run. */
export function isMissingSchemaError(error: unknown): boolean {
  const state = sqlStateOf(error)
  return state !== undefined && MISSING_SCHEMA_SQLSTATES.has(state)
}

/**
 * SQLSTATE classes no single row can cause: access rules and names the
 * database lacks (42), authorization (28), catalog and schema names (3D, 3F),
 * unsupported features (0A). Setting rows aside cannot help with these.
 */
const STATEMENT_LEVEL_CLASSES = new Set(['42', '28', '3D', '3F', '0A'])

/** Whether an error concerns the statement as a whole, never one of its rows. */
export function isStatementLevelError(error: unknown): boolean {
  const state = sqlStateOf(error)
  return state !== undefined && STATEMENT_LEVEL_CLASSES.has(state.slice(0, 2))
}

/** SQLSTATEs after which the same statement can succeed later, unchanged. */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '57014', // query_canceled (statement timeout while the server is overloaded)
])

/** Socket-level failures reported by Node, not by the server. */
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
])

/** node-postgres (and kysely 0.29, which discards a connection that failed) report some losses only in words. */
const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'connection has been discarded',
  'connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection closed',
]

/**
 * Whether an error means "the database is briefly unavailable; try again":
 * connection exceptions (class 08), serialization failures, deadlocks, too
 * many connections, shutdowns, and socket errors.
 *
 * @example
 * ```ts
 * import { isTransientDatabaseError } from 'plantops-db'
 * const retry = (err: unknown) => isTransientDatabaseError(err)
 * ```
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (error instanceof DatabaseConnectionError) return error.transient
  if (error instanceof PlantopsError) return false
  const state = sqlStateOf(error)
  if (state !== undefined) return state.startsWith('08') || TRANSIENT_SQLSTATES.has(state)
  const code = (error as DatabaseErrorFields | null)?.code
  if (typeof code === 'string' && TRANSIENT_NODE_CODES.has(code)) return true
  const message = (error as DatabaseErrorFields | null)?.message
  return typeof message === 'string' && TRANSIENT_MESSAGES.some((text) => message.includes(text))
}

/** `Key (plant_id)=(p1) is not present…` → `p1`. */
function keyValueOf(detail: unknown): string | undefined {
  if (typeof detail !== 'string') return undefined
  return /\)=\((.*)\) (?:is not present|already exists)/s.exec(detail)?.[1]
}

function issue(message: string): ValidationIssue[] {
  return [{ path: [], message }]
}

/**
 * Translates a database error caused by the input into plantops-db's typed
 * errors, using `meaningOf` to name the field a constraint protects:
 * 23505 → `ConflictError`, 23503 → `MissingReferenceError`, data exceptions
 * (class 22), not-null and check violations and oversized values →
 * `ValidationError`. Anything else is returned unchanged.
 */
export function translateDatabaseError(
  error: unknown,
  what: string,
  meaningOf: (constraint: string) => ConstraintMeaning | undefined,
): unknown {
  const state = sqlStateOf(error)
  if (state === undefined) return error
  const fields = error as DatabaseErrorFields
  const constraint = typeof fields.constraint === 'string' ? meaningOf(fields.constraint) : undefined
  const value = keyValueOf(fields.detail)
  if (state === '23505') {
    const meaning = constraint ?? { entity: what, field: 'unknown' }
    const taken = value === undefined ? '' : ` "${value}"`
    return new ConflictError(
      meaning.entity,
      meaning.field,
      `${meaning.entity} ${meaning.field}${taken} is already taken`,
      {
        cause: error,
      },
    )
  }
  if (state === '23503') {
    return new MissingReferenceError(constraint?.entity ?? 'row', value, { cause: error })
  }
  if (state.startsWith('22') || state === '23502' || state === '23514' || state === '54000') {
    const message = typeof fields.message === 'string' ? fields.message : 'value refused by the database'
    return new ValidationError(what, issue(message), { cause: error })
  }
  return error
}

import pg from 'pg'
import type { PostgresPool } from 'kysely'
import type { Logger } from '../util/logger.js'
import { DatabaseConnectionError } from '../errors/errors.js'
import { isTransientDatabaseError, sqlStateOf } from '../errors/sqlstate.js'
import { searchPathFor } from './schema-scope.js'

const INT8_OID = 20

/**
 * `BIGINT` (for example `count(*)`) as a number when it fits, so both
 * backends agree with PGlite; a value past 2^53 stays a string rather than
 * silently losing precision.
 */
function parseInt8(text: string): number | string {
  const value = Number(text)
  return Number.isSafeInteger(value) ? value : text
}

/** Type parsers for pools this library creates; `pg.types` is never touched. */
const poolTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return parseInt8
    return pg.types.getTypeParser(oid, format)
  },
} as pg.CustomTypesConfig

/** Settings of a pool created by `createDatabase`. */
export interface OwnedPoolSettings {
  readonly connectionString: string
  readonly applicationName: string
  readonly min: number
  readonly max: number
  readonly statementTimeoutMs: number
  readonly connectionTimeoutMs: number
  readonly logger: Logger
  /** plantops-db's own schema, first on every connection's search_path. */
  readonly schema: string | undefined
  /** Where the connection string came from, for error messages, e.g. `DATABASE_URL` or `the connectionString option`. */
  readonly source: string
}

/** `user@host:port/database` of a connection string, never its password. */
function describeTarget(connectionString: string): { target: string; user: string } {
  try {
    const url = new URL(connectionString)
    const host = url.hostname || url.searchParams.get('host') || 'localhost'
    const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || '(the user name)'
    return {
      target: `${host}:${url.port || '5432'}/${database}`,
      user: decodeURIComponent(url.username) || '(default)',
    }
  } catch {
    return { target: '(an unparsable connection string)', user: '(unknown)' }
  }
}

const WHAT_WENT_WRONG: Readonly<Record<string, string>> = {
  '3D000': 'the database does not exist',
  '28P01': 'the password was refused',
  '28000': 'the server refused this user',
  '53300': 'the server has no free connections',
  '57P03': 'the server is starting or shutting down',
}

/** Turns a failure to connect into an error that says where to, and why, without the password. */
function connectFailure(error: unknown, settings: OwnedPoolSettings): DatabaseConnectionError {
  const { target, user } = describeTarget(settings.connectionString)
  const state = sqlStateOf(error)
  const why = (state && WHAT_WENT_WRONG[state]) ?? (error instanceof Error ? error.message : String(error))
  const detail = error instanceof Error && why !== error.message ? ` (${error.message})` : ''
  return new DatabaseConnectionError(
    `cannot connect to PostgreSQL at ${target} as ${user}: ${why}${detail}. The URL came from ${settings.source}.`,
    target,
    isTransientDatabaseError(error),
    { cause: error },
  )
}

/**
 * A pg Pool owned by the library. An idle client's error (a restarted server,
 * a terminated backend) is logged; without a listener node-postgres would
 * crash the host process.
 */
export function createOwnedPgPool(settings: OwnedPoolSettings): PostgresPool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    application_name: settings.applicationName,
    min: settings.min,
    max: settings.max,
    statement_timeout: settings.statementTimeoutMs,
    connectionTimeoutMillis: settings.connectionTimeoutMs,
    types: poolTypes,
    // Set at connect time: no extra round trip per query.
    ...(settings.schema !== undefined && { options: `-c search_path=${searchPathFor(settings.schema)}` }),
  })
  pool.on('connect', listenForLoss)
  pool.on('error', (error) => {
    // After destroy() the pool closes its clients without waiting for the
    // sockets; a server dropping one in that moment is not worth a warning.
    if (pool.ending) return
    settings.logger.warn({ err: error }, 'idle PostgreSQL connection failed; the pool will replace it')
  })
  const connect = async () => {
    try {
      return await pool.connect()
    } catch (error) {
      throw connectFailure(error, settings)
    }
  }
  return lend(pool, connect, () => pool.end())
}

/**
 * What Kysely is given of a pg pool: how to check a client out and how to
 * end. `Client` and `options` pass through: kysely 0.29 uses them to cancel
 * a query on a control connection (0.28 does not read them).
 */
function lend(pool: object, connect: PostgresPool['connect'], end: () => Promise<void>): PostgresPool {
  const { Client, options } = pool as { Client?: unknown; options?: object }
  return { connect, end, options: options ?? {}, ...(Client !== undefined && { Client }) } as PostgresPool
}

const listening = new WeakSet<object>()

/**
 * Gives a client an `error` listener of its own, once: a server ending the
 * connection while the client is checked out (a terminated backend, a FATAL)
 * emits `error` on the client, and with no listener Node ends the process.
 * The query in flight rejects with the same error, so that is where it is
 * reported; an idle client's error still reaches the pool's `error` event.
 */
export function listenForLoss(client: object): void {
  if (listening.has(client) || typeof (client as { on?: unknown }).on !== 'function') return
  listening.add(client)
  ;(client as pg.Client).on('error', () => {})
}

/** Lends a host's pool to Kysely without ever ending it. */
export function borrowedPool(pool: PostgresPool): PostgresPool {
  const connect = async () => {
    const client = await pool.connect()
    listenForLoss(client)
    return client
  }
  return lend(pool, connect, async () => {})
}

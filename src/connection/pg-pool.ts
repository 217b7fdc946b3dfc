import pg from 'pg'
import type { PostgresPool } from 'kysely'
import type { Logger } from '../util/logger.js'

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
}

/**
 * A pg Pool owned by the library. An idle client's error (a restarted server,
 * a terminated backend) is logged; without a listener node-postgres would
 * crash the host process.
 */
export function createOwnedPgPool(settings: OwnedPoolSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    application_name: settings.applicationName,
    min: settings.min,
    max: settings.max,
    statement_timeout: settings.statementTimeoutMs,
    connectionTimeoutMillis: settings.connectionTimeoutMs,
    types: poolTypes,
    // Set at connect time: no extra round trip per query. No spaces: libpq splits options on them.
    ...(settings.schema !== undefined && { options: `-c search_path=${settings.schema},public` }),
  })
  pool.on('connect', listenForLoss)
  pool.on('error', (error) => {
    // After destroy() the pool closes its clients without waiting for the
    // sockets; a server dropping one in that moment is not worth a warning.
    if (pool.ending) return
    settings.logger.warn({ err: error }, 'idle PostgreSQL connection failed; the pool will replace it')
  })
  return pool
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

/**
 * Lends a host's pool to Kysely without ever ending it. `Client` and
 * `options` pass through: kysely 0.29 uses them to cancel queries on a control
 * connection (0.28 does not read them).
 */
export function borrowedPool(pool: PostgresPool): PostgresPool {
  const { Client, options } = pool as { Client?: unknown; options?: object }
  const lent = {
    async connect() {
      const client = await pool.connect()
      listenForLoss(client)
      return client
    },
    end: async () => {},
    options: options ?? {},
    ...(Client !== undefined && { Client }),
  }
  return lent as PostgresPool
}

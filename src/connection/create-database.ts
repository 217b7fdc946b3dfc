import { Kysely, PostgresDialect, type KyselyPlugin, type LogConfig, type PostgresPool } from 'kysely'
import { ConfigurationError } from '../errors/errors.js'
import { z } from 'zod'
import { loggerOption, resolveLogger, type Logger } from '../util/logger.js'
import { validate } from '../util/validate.js'
import type { Database } from '../schema/database.js'
import { startEmbeddedPglite } from './embedded.js'
import { borrowedPool, createOwnedPgPool } from './pg-pool.js'
import { pgliteAsPool, type PGliteLike } from './pglite-pool.js'
import { registerRawAccess, type RawAccess } from './raw-access.js'
import { schemaName, schemaScopedPool } from './schema-scope.js'

/**
 * How `createDatabase` connects. Give at most one of `connectionString`,
 * `pool`, `pglite`, `dataDir` and `embedded`; with none of them,
 * `DATABASE_URL` is used when set, and otherwise an in-memory embedded PGlite
 * with one log line saying so (a `ConfigurationError` when `NODE_ENV` is
 * `production`).
 *
 * @example
 * ```ts
 * import { createDatabase, type CreateDatabaseOptions } from 'plantops-db'
 * const options: CreateDatabaseOptions = { connectionString: 'postgres://app@db/plants', max: 20 }
 * const db = createDatabase(options)
 * ```
 */
export interface CreateDatabaseOptions {
  /** A PostgreSQL URL; the library creates (and on `destroy()` ends) a pg Pool. */
  readonly connectionString?: string
  /** A pool the host owns (a `pg.Pool`); used as is and never ended. */
  readonly pool?: PostgresPool
  /** A PGlite instance the host owns; used as is and never closed. */
  readonly pglite?: PGliteLike
  /** Start an embedded PGlite stored in this directory (created if missing). */
  readonly dataDir?: string
  /**
   * Start an embedded PGlite in memory, on purpose: never consults
   * `DATABASE_URL`, logs nothing, and works with `NODE_ENV=production`.
   */
  readonly embedded?: true
  /**
   * A PostgreSQL schema of plantops-db's own, for its tables and its migration
   * records, apart from the host's (created by the migrator if needed). Every
   * part of plantops-db follows from the `db` this returns. Default: none, so
   * tables live where the connection's search_path puts them (`public`), as
   * the earlier service left them.
   */
  readonly schema?: string
  /** Environment to read `DATABASE_URL` from. Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** `application_name` shown in `pg_stat_activity`. Default `'plantops-db'`. */
  readonly applicationName?: string
  /** Connections the owned pool keeps open. Default 2. */
  readonly min?: number
  /** Connections the owned pool may open. Default 10. */
  readonly max?: number
  /** Server-side `statement_timeout`, in milliseconds. Default 60 000. */
  readonly statementTimeoutMs?: number
  /** How long to wait for a new connection, in milliseconds. Default 10 000. */
  readonly connectionTimeoutMs?: number
  /** Where pool warnings go: a pino-compatible logger, or `false` for silence. Default: the console. */
  readonly logger?: Logger | false
  /** Kysely's query log option, passed through. */
  readonly log?: LogConfig
  /** Kysely plugins, passed through. */
  readonly plugins?: KyselyPlugin[]
}

const objectWith = (method: string) => (value: unknown) =>
  typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function'
const milliseconds = z.number().int().min(0).max(2_147_483_647)

const optionsSchema = z.strictObject({
  connectionString: z.string().min(1).optional(),
  pool: z.custom<PostgresPool>(objectWith('connect'), { message: 'must be a pg Pool' }).optional(),
  pglite: z.custom<PGliteLike>(objectWith('query'), { message: 'must be a PGlite instance' }).optional(),
  dataDir: z.string().min(1).optional(),
  embedded: z.literal(true).optional(),
  schema: schemaName.optional(),
  env: z.record(z.string(), z.string().optional()).optional(),
  applicationName: z.string().max(63).optional(),
  min: z.number().int().min(0).max(10_000).optional(),
  max: z.number().int().min(1).max(10_000).optional(),
  statementTimeoutMs: milliseconds.optional(),
  connectionTimeoutMs: milliseconds.optional(),
  logger: loggerOption,
  log: z
    .custom<LogConfig>((value) => typeof value === 'function' || Array.isArray(value), {
      message: 'must be a function or a list of levels',
    })
    .optional(),
  plugins: z
    .array(z.custom<KyselyPlugin>(objectWith('transformQuery'), { message: 'must be a Kysely plugin' }))
    .optional(),
})

/**
 * With nothing configured, a throwaway in-memory database: refused in
 * production, where a misspelt variable would lose every row at exit, and said
 * out loud elsewhere.
 */
function fallBackToMemory(env: Readonly<Record<string, string | undefined>>, logger: Logger): void {
  if (env.NODE_ENV === 'production') {
    throw new ConfigurationError(
      'createDatabase found no database: DATABASE_URL is not set and no connectionString, pool, pglite or dataDir ' +
        'was given. NODE_ENV is production, so it will not fall back to an in-memory database that loses everything ' +
        'at exit. Set DATABASE_URL, or pass { embedded: true } to use one on purpose.',
    )
  }
  logger.info(
    { database: 'embedded PGlite, in memory' },
    'no DATABASE_URL or connection given: using an in-memory embedded PGlite, whose data is lost at exit',
  )
}

function chosenSources(options: CreateDatabaseOptions): string[] {
  const sources = ['connectionString', 'pool', 'pglite', 'dataDir', 'embedded'] as const
  return sources.filter((key) => options[key] !== undefined)
}

type ResolvedPool = { pool: PostgresPool | (() => Promise<PostgresPool>); access: RawAccess }

function resolvePool(options: CreateDatabaseOptions): ResolvedPool {
  const chosen = chosenSources(options)
  if (chosen.length > 1) {
    throw new ConfigurationError(`createDatabase takes one connection source, but got ${chosen.join(' and ')}.`)
  }
  const { schema } = options
  const scoped = (pool: PostgresPool) => (schema === undefined ? pool : schemaScopedPool(pool, schema))
  if (options.pool) {
    const pool = scoped(borrowedPool(options.pool))
    return { pool, access: { kind: 'pg', pool, schema } }
  }
  if (options.pglite) return { pool: scoped(pgliteAsPool(options.pglite, false)), access: { kind: 'pglite', schema } }
  const env = options.env ?? process.env
  const connectionString = options.connectionString ?? (chosen.length === 0 ? env.DATABASE_URL : undefined)
  if (connectionString) {
    const pool = createOwnedPgPool({
      connectionString,
      applicationName: options.applicationName ?? 'plantops-db',
      min: options.min ?? 2,
      max: options.max ?? 10,
      statementTimeoutMs: options.statementTimeoutMs ?? 60_000,
      connectionTimeoutMs: options.connectionTimeoutMs ?? 10_000,
      logger: resolveLogger(options.logger),
      schema,
      source: options.connectionString !== undefined ? 'the connectionString option' : 'DATABASE_URL',
    })
    return { pool, access: { kind: 'pg', pool, schema } }
  }
  if (chosen.length === 0) fallBackToMemory(env, resolveLogger(options.logger))
  // Kysely calls this on first use, so an app that never queries never loads PGlite.
  return {
    pool: async () => scoped(pgliteAsPool(await startEmbeddedPglite(options.dataDir), true)),
    access: { kind: 'pglite', schema },
  }
}

/**
 * Creates the typed Kysely instance every other part of plantops-db works on.
 *
 * - `{ connectionString }`, or `DATABASE_URL` in the environment: a pg Pool
 *   (min 2, max 10, 60 s statement timeout, `application_name`), with its own
 *   type parsers (`BIGINT` as a number when it fits); `pg.types` is not changed.
 * - `{ pool }`: the host's pg Pool, never ended by plantops-db.
 * - `{ pglite }`: the host's PGlite instance, never closed by plantops-db.
 * - `{ embedded: true }` or `{ dataDir }`: an embedded PGlite from the optional
 *   peer `@electric-sql/pglite`, in memory (or stored in `dataDir`).
 * - nothing: `DATABASE_URL`; without it an in-memory PGlite and one log line,
 *   or, when `NODE_ENV` is `production`, a `ConfigurationError` naming
 *   `DATABASE_URL`, so a misspelt variable cannot lose data silently.
 *
 * `db.destroy()` releases only what this function created. With `schema`,
 * plantops-db's tables live in that PostgreSQL schema: a pool it owns sets
 * the search_path at connect time; a host's pool or PGlite gets it set on each
 * checkout and set back on release.
 *
 * @example
 * ```ts
 * import { createDatabase, migrateToLatest } from 'plantops-db'
 *
 * const db = createDatabase() // DATABASE_URL, or embedded PGlite
 * await migrateToLatest(db)
 * await db.insertInto('plants').values({ id: 'plant_1', name: 'Fern' }).execute()
 * await db.destroy()
 * ```
 */
export function createDatabase(options: CreateDatabaseOptions = {}): Kysely<Database> {
  const { pool, access } = resolvePool(validate(optionsSchema, options, 'createDatabase options'))
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    ...(options.log ? { log: options.log } : {}),
    ...(options.plugins ? { plugins: options.plugins } : {}),
  })
  registerRawAccess(db, access)
  return db
}

import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely'

/**
 * The part of a PGlite instance plantops-db uses. Any PGlite build that has
 * these methods works: `@electric-sql/pglite`, or a build with extensions
 * such as TimescaleDB.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite'
 * import { createDatabase, type PGliteLike } from 'plantops-db'
 * const pglite: PGliteLike = new PGlite()
 * const db = createDatabase({ pglite })
 * ```
 */
export interface PGliteLike {
  /** Runs one statement with parameters. */
  query<T>(
    sql: string,
    params?: unknown[],
  ): Promise<{ rows: T[]; affectedRows?: number; command?: string; rowCount?: number }>
  /** Runs one or more statements without parameters. */
  exec(sql: string): Promise<unknown>
  /** Shuts the database down. */
  close(): Promise<void>
  /** Whether `close()` has run. */
  readonly closed?: boolean
}

type Command = PostgresQueryResult<unknown>['command']
const COUNTED_COMMANDS = new Set<string>(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

/**
 * Older PGlite builds do not report the command tag. Kysely needs it only to
 * know whether a row count is meaningful, so the statement's verb suffices.
 */
function commandOf(sql: string, reported: string | undefined): Command {
  const candidate = (reported ?? /^\s*(\w+)/.exec(sql)?.[1] ?? '').toUpperCase()
  return (COUNTED_COMMANDS.has(candidate) ? candidate : 'SELECT') as Command
}

/**
 * Hands out PGlite's single connection one holder at a time, in order, so a
 * transaction on it is never interleaved with another caller's statements.
 */
class ExclusiveLock {
  #tail: Promise<void> = Promise.resolve()

  acquire(): Promise<() => void> {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const acquired = this.#tail.then(() => release)
    this.#tail = this.#tail.then(() => released)
    return acquired
  }
}

/**
 * Presents one PGlite instance as the pool Kysely's `PostgresDialect` expects.
 * `owned` decides whether `end()` closes the instance.
 */
export function pgliteAsPool(pglite: PGliteLike, owned: boolean): PostgresPool {
  const lock = new ExclusiveLock()
  // `options` is what kysely 0.29 reads to cancel a query (0.28 ignores it); PGlite has no separate
  // control connection, so cancellation falls back to a query on the pool.
  const pool = {
    options: {},
    async connect(): Promise<PostgresPoolClient> {
      const release = await lock.acquire()
      let released = false
      const client = {
        async query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
          const result = await pglite.query<R>(sql, [...parameters])
          return {
            command: commandOf(sql, result.command),
            rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length,
            rows: result.rows,
          }
        },
        release() {
          if (released) return
          released = true
          release()
        },
      }
      return client as PostgresPoolClient
    },
    async end() {
      if (owned && !pglite.closed) await pglite.close()
    },
  }
  return pool
}

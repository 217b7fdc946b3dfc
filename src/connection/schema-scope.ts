import type { PostgresPool, PostgresPoolClient } from 'kysely'
import { sqlIdentifier } from '../schema/fields.js'

/**
 * A PostgreSQL schema name plantops-db may own: a lower-case identifier, so
 * it needs no quoting anywhere and reads the same in `psql`.
 */
export const schemaName = sqlIdentifier(63).refine((name) => !name.startsWith('pg_') && name !== 'information_schema', {
  message: 'is reserved by PostgreSQL',
})

/**
 * The search_path of a plantops-db connection with a schema of its own: that
 * schema first, so every table name plantops-db uses resolves there and new
 * tables are made there; then `public`, where extensions such as TimescaleDB
 * keep their functions. Written without a space, so it also fits a libpq
 * `options` string, which splits on spaces.
 */
export function searchPathFor(schema: string): string {
  return `${schema},public`
}

/**
 * Lends each client of `pool` with the search_path set to `schema`, and sets
 * it back to what it was before handing the client back: the pool belongs to
 * the host, whose own queries must not find plantops-db's tables first. One
 * round trip on checkout and one on release.
 */
export function schemaScopedPool(pool: PostgresPool, schema: string): PostgresPool {
  const path = searchPathFor(schema)
  const scoped = Object.create(pool) as PostgresPool & { connect(): Promise<PostgresPoolClient> }
  scoped.connect = async () => {
    const client = await pool.connect()
    let previous: string
    try {
      const { rows } = await client.query<{ previous: string }>(
        "SELECT current_setting('search_path') AS previous, set_config('search_path', $1, false)",
        [path],
      )
      previous = rows[0]!.previous
    } catch (error) {
      ;(client.release as (error?: unknown) => void)(error)
      throw error
    }
    // pg-pool assigns `release` on every checkout; this one restores the path first.
    const release = client.release.bind(client) as (error?: unknown) => void
    client.release = (discard?: unknown) => {
      client.release = release
      // A client released with an error (kysely 0.29 discards one that failed) is destroyed, not reused.
      if (discard) return release(discard)
      client.query("SELECT set_config('search_path', $1, false)", [previous]).then(
        () => release(),
        (error: unknown) => release(error),
      )
    }
    return client
  }
  return scoped
}

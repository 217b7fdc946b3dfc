import { finished } from 'node:stream/promises'
import { CompiledQuery, type Kysely, type PostgresPool, type RawBuilder } from 'kysely'
import { from as copyFrom } from 'pg-copy-streams'
import { rawAccessOf } from '../connection/raw-access.js'
import { isTransientDatabaseError } from '../errors/sqlstate.js'
import type { ArrayEncoding } from '../repositories/rollup-statements.js'
import type { Database } from '../schema/database.js'

/** One transaction's connection, as the writer's statements see it. */
export interface Session {
  query<R = Record<string, unknown>>(
    text: string,
    values?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number }>
  /** Runs a statement built with Kysely's `sql` (the repositories' `*-statements.ts`). */
  execute<R>(query: RawBuilder<R>): Promise<{ rows: R[]; rowCount: number }>
  /** How the driver can take array parameters (`binary` on node-postgres). */
  readonly arrays: ArrayEncoding
  /** COPY `data`, encoded in `format`, into `table (columns)`; only where the driver can. */
  copy?(table: string, columns: readonly string[], data: Buffer, format: 'text' | 'binary'): CopyUnderWay
}

/**
 * A COPY that has started: `sent` settles once its data has gone to the
 * server, `stored` once the server has stored it all (or refused it). Work
 * done between the two overlaps the server's.
 */
export interface CopyUnderWay {
  readonly sent: Promise<void>
  readonly stored: Promise<void>
}

/** Runs work in one transaction, on the best connection the backend offers. */
export interface Store {
  readonly canCopy: boolean
  transaction<T>(work: (session: Session) => Promise<T>): Promise<T>
}

interface PgClient {
  query<R>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>
  query<T>(stream: T): T
  release(error?: Error | boolean): void
  on(event: 'error', listener: (error: Error) => void): unknown
  off(event: 'error', listener: (error: Error) => void): unknown
}

/** A pg pool's own clients: COPY streams straight into PostgreSQL. */
function pgStore(pool: PostgresPool, db: Kysely<Database>): Store {
  return {
    canCopy: true,
    async transaction(work) {
      const client = (await pool.connect()) as unknown as PgClient
      const query = async <R>(text: string, values?: readonly unknown[]) => {
        const { rows, rowCount } = await client.query<R>(text, values as unknown[])
        return { rows, rowCount: rowCount ?? rows.length }
      }
      let broken: Error | undefined
      // The pool listens only to idle clients: without this, a connection lost
      // mid-transaction would be an unhandled 'error' event and crash the host.
      const onError = (error: Error) => (broken = error)
      client.on('error', onError)
      try {
        await client.query('BEGIN')
        const result = await work({
          query,
          arrays: 'binary',
          execute(statement) {
            const { sql, parameters } = statement.compile(db)
            return query(sql, parameters as unknown[])
          },
          copy(table, columns, data, format) {
            const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT ${format})`))
            const stored = finished(stream)
            // pg-copy-streams calls a write back once the data is on the socket; a refused
            // COPY may never call it, so `sent` also settles with `stored`.
            const written = new Promise<void>((resolve, reject) =>
              stream.write(data, (error) => (error ? reject(error) : resolve())),
            )
            stream.end()
            return { sent: Promise.race([written, stored]), stored }
          },
        })
        await client.query('COMMIT')
        return result
      } catch (error) {
        // A connection that failed mid-transaction is not given back to the pool.
        if (isTransientDatabaseError(error)) broken = error as Error
        else await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError))
        throw error
      } finally {
        client.off('error', onError)
        client.release(broken ?? false)
      }
    },
  }
}

/** Any Kysely instance (PGlite, or one plantops-db did not create): plain SQL in a Kysely transaction. */
function kyselyStore(db: Kysely<Database>): Store {
  return {
    canCopy: false,
    transaction(work) {
      return db.transaction().execute((trx) => {
        const run = async <R>(query: CompiledQuery) => {
          const result = await trx.executeQuery<R>(query)
          return { rows: result.rows, rowCount: Number(result.numAffectedRows ?? result.rows.length) }
        }
        return work({
          arrays: 'text',
          query: (text, values = []) => run(CompiledQuery.raw(text, [...values])),
          execute: (statement) => run(statement.compile(trx)),
        })
      })
    },
  }
}

/** COPY where `createDatabase` gave the database a pg pool; SQL everywhere else. */
export function storeFor(db: Kysely<Database>): Store {
  const access = rawAccessOf(db)
  return access?.kind === 'pg' ? pgStore(access.pool, db) : kyselyStore(db)
}

import pg from 'pg'
import type { Backend, TestDatabase } from './backends.js'

/** Holds the database so no write can commit, until the returned function releases it. */
export async function stall(backend: Backend, t: Pick<TestDatabase, 'db' | 'url'>): Promise<() => Promise<void>> {
  if (backend.name === 'postgres') {
    const client = new pg.Client({ connectionString: t.url })
    await client.connect()
    await client.query('BEGIN')
    await client.query(`LOCK TABLE ${backend.schema ? `${backend.schema}.` : ''}telemetry IN ACCESS EXCLUSIVE MODE`)
    return async () => {
      await client.query('ROLLBACK')
      await client.end()
    }
  }
  // PGlite has one connection: holding it is holding the database.
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let acquired!: () => void
  const ready = new Promise<void>((resolve) => (acquired = resolve))
  const done = t.db.connection().execute(async () => {
    acquired()
    await held
  })
  await ready
  return async () => {
    release()
    await done
  }
}

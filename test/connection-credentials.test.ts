import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DatabaseConnectionError, createDatabase } from '../src/index.js'
import { privatePostgresEnabled, startPrivatePostgres } from './support/private-postgres.js'

const PASSWORD = 'right-horse-battery'

;(privatePostgresEnabled ? describe : describe.skip)('createDatabase against a server that checks passwords', () => {
  let server: Awaited<ReturnType<typeof startPrivatePostgres>>
  beforeAll(async () => {
    server = await startPrivatePostgres(PASSWORD)
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
  })

  it('names host, database and user when the password is refused, never the password, and will not retry', async () => {
    const db = createDatabase({
      env: { DATABASE_URL: `postgres://postgres:not-the-password@127.0.0.1:${server.port}/postgres` },
      logger: false,
    })
    try {
      const error = await sql`SELECT 1`.execute(db).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DatabaseConnectionError)
      expect(error).toMatchObject({ transient: false, target: `127.0.0.1:${server.port}/postgres` })
      expect((error as Error).message).toBe(
        `cannot connect to PostgreSQL at 127.0.0.1:${server.port}/postgres as postgres: the password was refused ` +
          '(password authentication failed for user "postgres"). The URL came from DATABASE_URL.',
      )
      expect((error as Error).message).not.toContain('not-the-password')
    } finally {
      await db.destroy()
    }
  })

  it('connects with the right password', async () => {
    const db = createDatabase({
      connectionString: `postgres://postgres:${PASSWORD}@127.0.0.1:${server.port}/postgres`,
      logger: false,
    })
    try {
      expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(db)).rows).toEqual([{ one: 1 }])
    } finally {
      await db.destroy()
    }
  })
})

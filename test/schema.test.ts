import { sql, type Kysely } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  ValidationError,
  createDatabase,
  createHostMigrator,
  createRepositories,
  createTelemetryWriter,
  migrateToLatest,
  type Database,
} from '../src/index.js'
import { createServerDatabase, describeServer } from './support/backends.js'
import { ALL_MIGRATIONS } from './support/specification.js'

const OUR_TABLES = [
  'alerts',
  'care_plans',
  'devices',
  'plantops_context_epoch',
  'plantops_migrations',
  'plantops_migrations_lock',
  'plants',
  'settings',
  'telemetry',
  'telemetry_hourly',
  'telemetry_plant_5min',
  'telemetry_plant_hourly',
  'telemetry_rejects',
]

async function tablesInSchema(db: Kysely<any>, schema: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = ${schema} AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(db)
  return rows.map((row) => row.name)
}

/** Migrates, then uses every floor: repositories, settings, the writer (COPY on a pg pool). */
async function exercise(db: Kysely<Database>): Promise<void> {
  const report = await migrateToLatest(db, { logger: false })
  expect(report.applied).toEqual(ALL_MIGRATIONS)
  const repos = createRepositories(db, { passwordIterations: 1_000 })
  const plant = await repos.plants.create({ name: 'Fern', thresholds: { soil_moisture: { min: 20, max: 80 } } })
  const { device } = await repos.devices.provision({
    macAddress: '02:00:00:00:00:01',
    sensorTypes: [],
    plantId: plant.id,
  })
  await repos.settings.write('alerts.cooldown_seconds', 60)
  expect(await repos.settings.read('alerts.cooldown_seconds')).toBe(60)
  const writer = createTelemetryWriter(db, { logger: false })
  const receipt = await writer.write({ deviceId: device.id, soil_moisture: 10 })
  expect((await receipt.durable).status).toBe('written')
  await writer.close()
  expect(await repos.alerts.countSince(plant.id, new Date(0))).toBe(1)
}

describe("schema: plantops-db's tables apart from the host's", () => {
  it('refuses a schema name that would need quoting, before any SQL', () => {
    expect(() => createDatabase({ embedded: true, schema: 'Plant Ops' })).toThrow(ValidationError)
    expect(() => createDatabase({ embedded: true, schema: 'pg_temp' })).toThrow(/reserved/)
  })

  it('embedded PGlite: creates the schema and keeps everything in it', async () => {
    const db = createDatabase({ embedded: true, schema: 'plantops' })
    try {
      await exercise(db)
      expect(await tablesInSchema(db, 'plantops')).toEqual(OUR_TABLES)
      expect(await tablesInSchema(db, 'public')).toEqual([])
    } finally {
      await db.destroy()
    }
  })

  it("a host's PGlite: beside its own settings table, whose search_path it gets back", async () => {
    const { PGlite } = await import('@electric-sql/pglite')
    const host = new PGlite()
    try {
      await host.exec(
        "CREATE TABLE settings (id SERIAL PRIMARY KEY, owner TEXT); INSERT INTO settings (owner) VALUES ('host')",
      )
      const before = (await host.query('SHOW search_path')).rows
      const db = createDatabase({ pglite: host, schema: 'plantops' })
      await exercise(db)
      await db.destroy()
      expect((await host.query('SHOW search_path')).rows).toEqual(before)
      expect((await host.query('SELECT owner FROM settings')).rows).toEqual([{ owner: 'host' }])
      expect(await tablesInSchema(createDatabase({ pglite: host }), 'plantops')).toEqual(OUR_TABLES)
    } finally {
      await host.close()
    }
  })

  it("another install's records in public.plantops_migrations are not taken for ours before our schema has any", async () => {
    const { PGlite } = await import('@electric-sql/pglite')
    const host = new PGlite()
    try {
      // public comes after plantops on the search_path: a lookup by search_path would find this table first.
      await host.exec(
        'CREATE TABLE plantops_migrations (name TEXT PRIMARY KEY, timestamp TEXT NOT NULL); ' +
          "INSERT INTO plantops_migrations VALUES ('999_from_another_install', '2026-01-01T00:00:00.000Z')",
      )
      const db = createDatabase({ pglite: host, schema: 'plantops' })
      const report = await migrateToLatest(db, { logger: false })
      expect(report.unknown).toEqual([])
      expect(report.applied).toEqual(ALL_MIGRATIONS)
      await db.destroy()
      expect((await host.query('SELECT name FROM public.plantops_migrations')).rows).toEqual([
        { name: '999_from_another_install' },
      ])
    } finally {
      await host.close()
    }
  })
})

it("host migrations on the host's db, plantops-db's in its schema: each in its own place", async () => {
  const { PGlite } = await import('@electric-sql/pglite')
  const host = new PGlite()
  const hostDb = createDatabase({ pglite: host })
  const ours = createDatabase({ pglite: host, schema: 'plantops' })
  try {
    const createWateringLog = {
      up: async (db: Kysely<any>) => {
        await sql`CREATE TABLE watering_log (id SERIAL PRIMARY KEY,
          plant_id TEXT REFERENCES plantops.plants(id), millilitres INTEGER NOT NULL)`.execute(db)
      },
    }
    const migrator = await createHostMigrator(
      hostDb,
      { '001_create_watering_log': createWateringLog },
      { plantopsDb: ours, plantops: { logger: false } },
    )
    const result = await migrator.migrateToLatest()
    expect(result.error).toBeUndefined()
    expect(await tablesInSchema(hostDb, 'public')).toEqual(['host_migrations', 'host_migrations_lock', 'watering_log'])
    expect(await tablesInSchema(hostDb, 'plantops')).toEqual(OUR_TABLES)
  } finally {
    await hostDb.destroy()
    await ours.destroy()
    await host.close()
  }
})

describeServer("schema: plantops-db's tables apart from the host's", () => {
  it('a pool plantops-db owns: every connection starts in the schema', async () => {
    const server = await createServerDatabase()
    const db = createDatabase({ connectionString: server.url, schema: 'plantops', logger: false })
    try {
      await sql`CREATE TABLE public.settings (id SERIAL PRIMARY KEY, owner TEXT)`.execute(db)
      await exercise(db)
      expect(await tablesInSchema(db, 'plantops')).toEqual(OUR_TABLES)
      expect(await tablesInSchema(db, 'public')).toEqual(['settings'])
    } finally {
      await db.destroy()
      await server.drop()
    }
  })

  it("a host's pool: its clients come back with their own search_path", async () => {
    const server = await createServerDatabase()
    const hostPool = new pg.Pool({ connectionString: server.url, max: 1 })
    try {
      await hostPool.query('CREATE TABLE settings (id SERIAL PRIMARY KEY, owner TEXT)')
      await hostPool.query('SET search_path TO public, pg_temp') // a host's own session setting
      const db = createDatabase({ pool: hostPool, schema: 'plantops', logger: false })
      await exercise(db)
      await db.destroy()
      const client = await hostPool.connect()
      try {
        expect((await client.query('SHOW search_path')).rows).toEqual([{ search_path: 'public, pg_temp' }])
        expect((await client.query('SELECT count(*)::int AS n FROM settings')).rows).toEqual([{ n: 0 }])
      } finally {
        client.release()
      }
    } finally {
      await hostPool.end()
      await server.drop()
    }
  })
})

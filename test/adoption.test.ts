import { sql, type Kysely } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { buildMigrations } from '../migrations/index.js'
import {
  MigrationError,
  UnknownMigrationsError,
  createRepositories,
  createTelemetryWriter,
  migrateToLatest,
} from '../src/index.js'
import { describeEachBackend, type TestDatabase } from './support/backends.js'
import { recordingLogger } from './support/recording-logger.js'
import { ALL_MIGRATIONS } from './support/specification.js'
import { expectRollupsMatchRaw } from './support/rollups.js'

const OLD_SIX = ALL_MIGRATIONS.slice(0, 6)
const silent = { debug() {}, info() {}, warn() {}, error() {} }
const at = (iso: string) => new Date(iso)

/**
 * A database as the earlier Python service left it: its runner's
 * `schema_migrations (version, applied_at)`, the six tables made by the same
 * SQL, rows in them, and duplicate readings (it did not deduplicate).
 */
async function oldServiceDatabase(db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT NOW())`.execute(db)
  const seed = buildMigrations({ timescaledb: 'auto', logger: silent })
  await db.transaction().execute(async (trx) => {
    for (const name of OLD_SIX) {
      await seed[name]!.up(trx)
      await sql`INSERT INTO schema_migrations (version, applied_at) VALUES (${name}, '2025-03-01T10:00:00Z')`.execute(
        trx,
      )
    }
  })
  await sql`INSERT INTO plants (id, name, thresholds) VALUES ('fern', 'Fern', '{"soil_moisture":{"min":20}}')`.execute(
    db,
  )
  await sql`INSERT INTO devices (id, mqtt_password_hash, plant_id, status) VALUES ('esp-1', 'x', 'fern', 'online')`.execute(
    db,
  )
  const row = (time: string, soil: number, temperature: number | null) =>
    sql`INSERT INTO telemetry (time, device_id, plant_id, soil_moisture, temperature)
      VALUES (${at(time)}, 'esp-1', 'fern', ${soil}, ${temperature})`.execute(db)
  await row('2025-03-01T10:00:00Z', 40, 21) // once
  for (let copy = 0; copy < 3; copy++) await row('2025-03-01T10:01:00Z', 41, 21) // three identical copies
  await row('2025-03-01T10:02:00Z', 42, null) // two copies that differ: the fuller one stays
  await row('2025-03-01T10:02:00Z', 43, 22)
}

describeEachBackend("adopting the earlier service's database", (backend) => {
  let t: TestDatabase
  beforeEach(async () => {
    t = await backend.open()
  })
  afterEach(async () => {
    await t.close()
  })

  it('records its six migrations as applied, keeps every row, and resolves duplicates without losing one', async () => {
    await oldServiceDatabase(t.db)
    const oldRecords = (await sql`SELECT * FROM schema_migrations ORDER BY version`.execute(t.db)).rows

    const logger = recordingLogger()
    const report = await migrateToLatest(t.db, { logger })
    expect(report.adopted).toEqual(OLD_SIX)
    expect(report.applied).toEqual(ALL_MIGRATIONS.slice(6))
    expect(report.migrationTable).toBe('plantops_migrations')
    expect(report.duplicateReadings).toEqual({ collapsed: 2, rejected: 1 })
    expect(logger.entries.filter((e) => e.level === 'warn')).toHaveLength(1)

    expect((await sql`SELECT * FROM schema_migrations ORDER BY version`.execute(t.db)).rows).toEqual(oldRecords)
    const recorded = await sql<{ name: string; timestamp: string }>`
      SELECT name, timestamp FROM plantops_migrations ORDER BY name`.execute(t.db)
    expect(recorded.rows.map((r) => r.name)).toEqual(ALL_MIGRATIONS)
    expect(recorded.rows[0]!.timestamp).toBe('2025-03-01T10:00:00.000Z')

    const kept = await sql<{ time: Date; soil_moisture: number; temperature: number | null }>`
      SELECT time, soil_moisture, temperature FROM telemetry ORDER BY time`.execute(t.db)
    expect(kept.rows).toEqual([
      { time: at('2025-03-01T10:00:00Z'), soil_moisture: 40, temperature: 21 },
      { time: at('2025-03-01T10:01:00Z'), soil_moisture: 41, temperature: 21 },
      { time: at('2025-03-01T10:02:00Z'), soil_moisture: 43, temperature: 22 },
    ])
    // Migration 010 fills the hourly rollup from the rows it found, after 007 resolved their duplicates.
    expect(await expectRollupsMatchRaw(t.db, ['esp-1'])).toBe(3)
    const [hour] = await createRepositories(t.db).telemetry.buckets({
      deviceId: 'esp-1',
      from: at('2025-03-01T10:00:00Z'),
      to: at('2025-03-01T11:00:00Z'),
      bucket: '1 hour',
    })
    expect([hour?.readings, hour?.soil_moisture.min, hour?.soil_moisture.max, hour?.temperature.count]).toEqual([
      3, 40, 43, 3,
    ])
    const letters = await sql<{ device_id: string; reason: string; payload: Buffer; detail: string }>`
      SELECT device_id, reason, payload, detail FROM telemetry_rejects`.execute(t.db)
    expect(letters.rows).toHaveLength(1)
    expect(letters.rows[0]!.reason).toBe('duplicate_reading')
    expect(letters.rows[0]!.detail).toContain('different values')
    expect(JSON.parse(Buffer.from(letters.rows[0]!.payload).toString('utf8'))).toEqual({
      deviceId: 'esp-1',
      time: '2025-03-01T10:02:00.000000Z',
      soil_moisture: 42,
    })

    const again = await migrateToLatest(t.db, { logger: false })
    expect(again).toMatchObject({ applied: [], adopted: [], alreadyApplied: ALL_MIGRATIONS })
  })

  it('then serves the writer and the repositories on the old rows', async () => {
    await oldServiceDatabase(t.db)
    await migrateToLatest(t.db, { logger: false })
    const repos = createRepositories(t.db)
    expect((await repos.plants.get('fern')).name).toBe('Fern')
    expect(await repos.devices.get('esp-1')).toMatchObject({ id: 'esp-1', plant_id: 'fern' })

    const writer = createTelemetryWriter(t.db, { logger: false })
    const receipt = await writer.write({ deviceId: 'esp-1', soil_moisture: 10, time: new Date() })
    expect((await receipt.durable).status).toBe('written')
    await writer.close()
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM telemetry`.execute(t.db)
    expect(rows[0]!.n).toBe(4)
    const alerts = await sql<{ n: number }>`SELECT count(*)::int AS n FROM alerts WHERE device_id = 'esp-1'`.execute(
      t.db,
    )
    expect(alerts.rows[0]!.n).toBe(1) // 10 is under the old plant's minimum of 20
  })

  it("leaves another tool's schema_migrations (dbmate's shape) alone, and refuses to record into it", async () => {
    await sql`CREATE TABLE schema_migrations (version VARCHAR(128) PRIMARY KEY)`.execute(t.db)
    await sql`INSERT INTO schema_migrations (version) VALUES ('20240101000000')`.execute(t.db)

    const error = await migrateToLatest(t.db, { logger: false, migrationTable: 'schema_migrations' }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(MigrationError)
    expect((error as Error).message).toBe(
      'plantops-db cannot record its migrations in table "schema_migrations": it has columns (version), where ' +
        'plantops-db records (name, timestamp); it belongs to another migration tool or to the host. Leave out ' +
        'migrationTable to use "plantops_migrations", or pass { migrationTable: \'<an unused name>\' }.',
    )

    const report = await migrateToLatest(t.db, { logger: false })
    expect(report.applied).toEqual(ALL_MIGRATIONS)
    expect((await sql`SELECT version FROM schema_migrations`.execute(t.db)).rows).toEqual([
      { version: '20240101000000' },
    ])
  })

  it("refuses a host's table of one of our names but another shape, before applying anything", async () => {
    await sql`CREATE TABLE settings (id SERIAL PRIMARY KEY, owner TEXT NOT NULL, theme TEXT)`.execute(t.db)
    const error = await migrateToLatest(t.db, { logger: false }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationError)
    expect((error as Error).message).toBe(
      'this database already holds tables with plantops-db\'s names that are not plantops-db\'s: "settings" lacks ' +
        "key, value, updated_at (it has id, owner, theme). Nothing was applied. Keep plantops-db's tables apart " +
        "with createDatabase({ …, schema: 'plantops' }).",
    )
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('plants', 'plantops_migrations')`.execute(t.db)
    expect(rows).toEqual([{ n: 0 }])
  })

  it('keeps using the schema_migrations plantops-db 0.1.0 recorded into', async () => {
    await migrateToLatest(t.db, { logger: false, migrationTable: 'schema_migrations' })
    const report = await migrateToLatest(t.db, { logger: false })
    expect(report).toMatchObject({ migrationTable: 'schema_migrations', applied: [], alreadyApplied: ALL_MIGRATIONS })
    const { rows } = await sql`SELECT to_regclass('plantops_migrations') AS found`.execute(t.db)
    expect(rows).toEqual([{ found: null }])
  })

  it('tells a newer release apart from another migrator in the same table', async () => {
    await migrateToLatest(t.db, { logger: false })
    await sql`INSERT INTO plantops_migrations (name, timestamp) VALUES
      ('010_from_the_future', '2030-01-01T00:00:00Z'), ('host/001_create_watering_log', '2030-01-01T00:00:00Z')`.execute(
      t.db,
    )
    const error = await migrateToLatest(t.db, { logger: false, unknownMigrations: 'error' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UnknownMigrationsError)
    const message = (error as Error).message
    expect(message).toContain('010_from_the_future: applied by a newer release of plantops-db')
    expect(message).toContain('host/001_create_watering_log: not plantops-db migrations; another migrator records')
    expect(message).not.toMatch(/host\/001_create_watering_log[^:]*: applied by a newer release/)
  })
})

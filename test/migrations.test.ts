import { sql } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import {
  MigrationError,
  TimescaleUnavailableError,
  UnknownMigrationsError,
  ValidationError,
  migrateDown,
  migrateTo,
  migrateToLatest,
} from '../src/index.js'
import { timescalePreloadProblem } from '../src/schema/timescaledb.js'
import { describeEachBackend, type TestDatabase } from './support/backends.js'
import { describeTable, tablesIn, triggersOn } from './support/catalog.js'
import { recordingLogger } from './support/recording-logger.js'
import { ALL_MIGRATIONS, specification } from './support/specification.js'

const TABLES = Object.keys(specification).sort()

async function recorded(t: TestDatabase): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`SELECT name FROM plantops_migrations ORDER BY name`.execute(t.db)
  return rows.map((r) => r.name)
}

describeEachBackend('migrateToLatest', (backend) => {
  let t: TestDatabase
  beforeEach(async () => {
    t = await backend.open()
  })
  afterEach(async () => {
    await t.close()
  })

  it('creates exactly the specified schema, and records each migration once', async () => {
    const logger = recordingLogger()
    const report = await migrateToLatest(t.db, { logger })

    expect(report.applied).toEqual(ALL_MIGRATIONS)
    expect(report.alreadyApplied).toEqual([])
    expect(report.unknown).toEqual([])
    expect(await recorded(t)).toEqual(ALL_MIGRATIONS)
    expect(await tablesIn(t.db)).toEqual([...TABLES, 'plantops_migrations', 'plantops_migrations_lock'].sort())
    for (const table of TABLES) {
      expect({ table, ...(await describeTable(t.db, table)) }).toEqual({ table, ...specification[table] })
    }
    for (const name of ALL_MIGRATIONS) {
      expect(logger.entries).toContainEqual({
        level: 'info',
        fields: { migration: name },
        message: `applying migration ${name}`,
      })
      expect(logger.entries).toContainEqual({
        level: 'info',
        fields: { migration: name },
        message: `applied migration ${name}`,
      })
    }
  })

  it(
    backend.name === 'timescaledb'
      ? 'makes telemetry a hypertable on time'
      : 'keeps telemetry a plain table and says why',
    async () => {
      const logger = recordingLogger()
      const report = await migrateToLatest(t.db, { logger })
      if (backend.name === 'timescaledb') {
        expect(report.telemetry).toEqual({ hypertable: true, timescaledb: 'installed' })
        const { rows } = await sql<{ column_name: string; num_dimensions: number }>`
          SELECT d.column_name, h.num_dimensions FROM timescaledb_information.hypertables h
          JOIN timescaledb_information.dimensions d USING (hypertable_schema, hypertable_name)
          WHERE h.hypertable_name = 'telemetry'`.execute(t.db)
        expect(rows).toEqual([{ column_name: 'time', num_dimensions: 1 }])
      } else {
        expect(report.telemetry).toEqual({ hypertable: false, timescaledb: 'unavailable' })
        expect(logger.entries).toContainEqual({
          level: 'warn',
          fields: { table: 'telemetry', reason: 'the timescaledb extension is not available on this server' },
          message: 'telemetry stays a plain table: the timescaledb extension is not available on this server',
        })
      }
    },
  )

  it(
    backend.name === 'postgres'
      ? 'knows CREATE EXTENSION timescaledb would end the connection here (not preloaded), and would not try'
      : 'knows PGlite loads TimescaleDB without a preload list',
    async () => {
      const problem = await timescalePreloadProblem(t.db)
      if (backend.name === 'postgres') {
        expect(problem).toMatch(
          /^the timescaledb extension is installed on this server but not in shared_preload_libraries/,
        )
      } else {
        expect(problem).toBeUndefined()
      }
    },
  )

  it('validates its options before any SQL: a misspelt key or mode is a ValidationError', async () => {
    await expect(migrateToLatest(t.db, { timescaledb: 'yes' } as never)).rejects.toThrow(
      /^invalid migrator options: timescaledb: Invalid option: expected one of "auto"\|"require"\|"off"$/,
    )
    await expect(migrateToLatest(t.db, { loger: false } as never)).rejects.toThrow(ValidationError)
    expect(await tablesIn(t.db)).toEqual([])
  })

  it('applies nothing on a second run', async () => {
    await migrateToLatest(t.db, { logger: false })
    const second = await migrateToLatest(t.db, { logger: false })
    expect(second.applied).toEqual([])
    expect(second.alreadyApplied).toEqual(ALL_MIGRATIONS)
    expect(await recorded(t)).toEqual(ALL_MIGRATIONS)
  })

  it('lets concurrent callers in one process apply each migration once', async () => {
    const reports = await Promise.all(Array.from({ length: 5 }, () => migrateToLatest(t.db, { logger: false })))
    expect(reports.flatMap((r) => r.applied).sort()).toEqual(ALL_MIGRATIONS)
    expect(await recorded(t)).toEqual(ALL_MIGRATIONS)
  })

  it('adopts tables that already exist', async () => {
    await sql`CREATE TABLE plants (id TEXT PRIMARY KEY, name TEXT NOT NULL, species TEXT, thresholds JSONB,
      created_at TIMESTAMPTZ DEFAULT NOW())`.execute(t.db)
    await sql`INSERT INTO plants (id, name) VALUES ('p1', 'Fern')`.execute(t.db)
    const report = await migrateToLatest(t.db, { logger: false })
    expect(report.applied).toEqual(ALL_MIGRATIONS)
    const { rows } = await sql<{ id: string; name: string }>`SELECT id, name FROM plants`.execute(t.db)
    expect(rows).toEqual([{ id: 'p1', name: 'Fern' }])
    expect(await describeTable(t.db, 'plants')).toEqual(specification.plants)
  })

  it('warns about migrations of a newer release, names them, and carries on', async () => {
    await migrateToLatest(t.db, { logger: false })
    await sql`INSERT INTO plantops_migrations (name, timestamp) VALUES ('999_from_the_future', '2030-01-01T00:00:00Z')`.execute(
      t.db,
    )
    const logger = recordingLogger()
    const report = await migrateToLatest(t.db, { logger })
    expect(report.unknown).toEqual(['999_from_the_future'])
    expect(report.applied).toEqual([])
    expect(report.alreadyApplied).toEqual(ALL_MIGRATIONS)
    const warnings = logger.entries.filter((e) => e.level === 'warn')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.message).toContain('999_from_the_future')
    expect(warnings[0]!.fields).toEqual({ unknown: ['999_from_the_future'] })
  })

  it('refuses migrations of a newer release when told to, with a typed error naming them', async () => {
    await migrateToLatest(t.db, { logger: false })
    await sql`INSERT INTO plantops_migrations (name, timestamp) VALUES ('999_from_the_future', '2030-01-01T00:00:00Z')`.execute(
      t.db,
    )
    const error = await migrateToLatest(t.db, { logger: false, unknownMigrations: 'error' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UnknownMigrationsError)
    expect((error as UnknownMigrationsError).unknown).toEqual(['999_from_the_future'])
    expect((error as Error).message).toContain('999_from_the_future')
    expect((error as Error).message).not.toContain('corrupted')
  })

  it('reverts one step, then everything, and migrates up again', async () => {
    await migrateToLatest(t.db, { logger: false })
    const devicesOptions = async () =>
      (
        await sql<{ options: string[] | null }>`
          SELECT reloptions AS options FROM pg_class WHERE oid = 'devices'::regclass`.execute(t.db)
      ).rows[0]!.options
    expect(await devicesOptions()).toEqual(['fillfactor=50'])
    const fiveMinutes = await migrateDown(t.db, { logger: false })
    expect(fiveMinutes.applied).toEqual(['013_create_plant_five_minute_rollups'])
    expect(await tablesIn(t.db)).not.toContain('telemetry_plant_5min')
    expect(await triggersOn(t.db, 'devices')).toEqual([
      'plantops_device_context_changed',
      'plantops_device_deleted',
      'plantops_device_plant_rollups',
    ])
    const plantRollups = await migrateDown(t.db, { logger: false })
    expect(plantRollups.applied).toEqual(['012_create_plant_rollups'])
    expect(await tablesIn(t.db)).not.toContain('telemetry_plant_hourly')
    expect(await triggersOn(t.db, 'devices')).toEqual(['plantops_device_context_changed', 'plantops_device_deleted'])
    expect(await tablesIn(t.db)).toContain('telemetry_hourly')
    const down = await migrateDown(t.db, { logger: false })
    expect(down.applied).toEqual(['011_room_for_device_updates'])
    expect(await devicesOptions()).toBeNull()

    const none = await migrateTo(t.db, 'none', { logger: false })
    expect(none.applied).toEqual([...ALL_MIGRATIONS.slice(0, 10)].reverse())
    expect(await tablesIn(t.db)).not.toContain('telemetry_hourly')
    expect(await tablesIn(t.db)).toEqual(['plantops_migrations', 'plantops_migrations_lock'])

    const to3 = await migrateTo(t.db, '003_create_telemetry', { logger: false })
    expect(to3.applied).toEqual(ALL_MIGRATIONS.slice(0, 3))
    expect(await recorded(t)).toEqual(ALL_MIGRATIONS.slice(0, 3))

    await expect(migrateTo(t.db, '042_nope', { logger: false })).rejects.toThrow(MigrationError)
  })

  it('enforces each ON DELETE rule on real rows', async () => {
    await migrateToLatest(t.db, { logger: false })
    await sql`INSERT INTO plants (id, name) VALUES ('p1', 'Fern'), ('p2', 'Cactus')`.execute(t.db)
    await sql`INSERT INTO devices (id, mqtt_password_hash, plant_id) VALUES ('d1', 'h', 'p1'), ('d2', 'h', 'p2')`.execute(
      t.db,
    )
    await sql`INSERT INTO telemetry (time, device_id, plant_id, soil_moisture)
      VALUES (now(), 'd1', 'p1', 40), (now(), 'd2', 'p2', 41)`.execute(t.db)
    await sql`INSERT INTO alerts (plant_id, device_id, metric, value, threshold, direction)
      VALUES ('p1', 'd1', 'soil_moisture', 10, 20, 'below'), ('p2', 'd2', 'soil_moisture', 10, 20, 'below')`.execute(
      t.db,
    )
    await sql`INSERT INTO care_plans (plant_id, plan_data) VALUES ('p1', '{}'), ('p2', '{}')`.execute(t.db)

    // Deleting a plant: devices and telemetry keep their rows with plant_id NULL; alerts and plans go.
    await sql`DELETE FROM plants WHERE id = 'p1'`.execute(t.db)
    const devices = await sql<{
      id: string
      plant_id: string | null
    }>`SELECT id, plant_id FROM devices ORDER BY id`.execute(t.db)
    expect(devices.rows).toEqual([
      { id: 'd1', plant_id: null },
      { id: 'd2', plant_id: 'p2' },
    ])
    const telemetry = await sql<{ device_id: string; plant_id: string | null }>`
      SELECT device_id, plant_id FROM telemetry ORDER BY device_id`.execute(t.db)
    expect(telemetry.rows).toEqual([
      { device_id: 'd1', plant_id: null },
      { device_id: 'd2', plant_id: 'p2' },
    ])
    const alerts = await sql<{ plant_id: string }>`SELECT plant_id FROM alerts ORDER BY plant_id`.execute(t.db)
    expect(alerts.rows).toEqual([{ plant_id: 'p2' }])
    const plans = await sql<{ plant_id: string }>`SELECT plant_id FROM care_plans`.execute(t.db)
    expect(plans.rows).toEqual([{ plant_id: 'p2' }])

    // Deleting a device: its telemetry and alerts go with it.
    await sql`DELETE FROM devices WHERE id = 'd2'`.execute(t.db)
    const left = await sql<{ n: number }>`SELECT (SELECT count(*) FROM telemetry WHERE device_id = 'd2')
      + (SELECT count(*) FROM alerts WHERE device_id = 'd2') AS n`.execute(t.db)
    expect(Number(left.rows[0]!.n)).toBe(0)
    const remaining = await sql<{ n: number }>`SELECT count(*) AS n FROM telemetry`.execute(t.db)
    expect(Number(remaining.rows[0]!.n)).toBe(1)
  })

  if (backend.name === 'timescaledb') {
    it('with timescaledb "off", keeps a plain table even where the extension exists', async () => {
      const report = await migrateToLatest(t.db, { logger: false, timescaledb: 'off' })
      expect(report.telemetry.hypertable).toBe(false)
      expect(await describeTable(t.db, 'telemetry')).toEqual(specification.telemetry)
    })

    it('rolls back to a plain table, not a broken run, when the conversion fails', async () => {
      // A unique index without "time" makes create_hypertable fail inside the migration transaction.
      await sql`CREATE TABLE plants (id TEXT PRIMARY KEY, name TEXT NOT NULL, species TEXT, thresholds JSONB,
        created_at TIMESTAMPTZ DEFAULT NOW())`.execute(t.db)
      await sql`CREATE TABLE devices (id TEXT PRIMARY KEY, mac_address TEXT UNIQUE, mqtt_username TEXT UNIQUE,
        mqtt_password_hash TEXT NOT NULL, plant_id TEXT, status TEXT DEFAULT 'provisioning', firmware_version TEXT,
        sensor_types JSONB, last_seen_at TIMESTAMPTZ, created_at TIMESTAMPTZ DEFAULT NOW())`.execute(t.db)
      await sql`CREATE TABLE telemetry (time TIMESTAMPTZ NOT NULL, device_id TEXT, plant_id TEXT,
        soil_moisture FLOAT, temperature FLOAT, humidity FLOAT, light_level FLOAT)`.execute(t.db)
      await sql`CREATE UNIQUE INDEX telemetry_blocks_hypertable ON telemetry (device_id)`.execute(t.db)
      const logger = recordingLogger()
      const report = await migrateToLatest(t.db, { logger })
      expect(report.applied).toEqual(ALL_MIGRATIONS)
      expect(report.telemetry).toEqual({ hypertable: false, timescaledb: 'available' })
      const warning = logger.entries.find((e) => e.level === 'warn')
      expect(warning?.message).toMatch(/^telemetry stays a plain table: .*time/)
    })
  } else {
    it('with timescaledb "require", fails loudly and leaves nothing half-applied', async () => {
      const error = await migrateToLatest(t.db, { logger: false, timescaledb: 'require' }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TimescaleUnavailableError)
      expect((error as Error).message).toContain('the timescaledb extension is not available on this server')
      expect(await tablesIn(t.db)).toEqual(['plantops_migrations', 'plantops_migrations_lock'])
      const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM plantops_migrations`.execute(t.db)
      expect(Number(rows[0]!.n)).toBe(0)
    })
  }
})

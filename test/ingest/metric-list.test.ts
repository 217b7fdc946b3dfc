import { sql } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { METRICS } from '../../src/index.js'
import { telemetryColumns } from '../../src/schema/metric-values.js'
import { insertNewRows, insertRows, type Row } from '../../src/ingest/statements.js'
import { storeFor } from '../../src/ingest/store.js'
import { describeEachBackend, type TestDatabase } from '../support/backends.js'

// Adding a metric is one line in METRICS (plus its range) and a migration: every column list the
// writer uses is built from the list. This suite builds them from a five-metric list and writes
// through both paths (COPY on PostgreSQL, unnest on PGlite) into a table that has five.
const FIVE = [...METRICS, 'co2_ppm'] as const

const rows: Row[] = [
  { timeMs: Date.parse('2026-11-22T10:00:00Z'), deviceId: 'dev_1', plantId: null, values: [41.5, 21, 55, 12_000, 415] },
  {
    timeMs: Date.parse('2026-11-22T10:01:00Z'),
    deviceId: 'dev_1',
    plantId: 'plant_1',
    values: [null, null, null, null, 980.5],
  },
  { timeMs: Date.parse('2026-11-22T10:00:00Z'), deviceId: 'dev_2', plantId: null, values: [1, null, 2, null, null] },
]

it('builds the column list from the metric list, in table order', () => {
  expect(telemetryColumns(FIVE)).toEqual([
    'time',
    'device_id',
    'plant_id',
    'soil_moisture',
    'temperature',
    'humidity',
    'light_level',
    'co2_ppm',
  ])
  expect(telemetryColumns()).toEqual(['time', 'device_id', 'plant_id', ...METRICS])
})

describeEachBackend('a fifth metric', (backend) => {
  let t: TestDatabase
  beforeEach(async () => {
    t = await backend.open()
    const metricColumns = FIVE.map((metric) => `${metric} DOUBLE PRECISION`).join(', ')
    await sql
      .raw(`CREATE TABLE telemetry (time TIMESTAMPTZ NOT NULL, device_id TEXT, plant_id TEXT, ${metricColumns})`)
      .execute(t.db)
    await sql`CREATE UNIQUE INDEX ON telemetry (device_id, time)`.execute(t.db)
  })
  afterEach(async () => {
    await t.close()
  })

  const stored = async () => {
    const { rows: found } = await sql<
      Record<string, unknown>
    >`SELECT * FROM telemetry ORDER BY device_id, time`.execute(t.db)
    return found.map((r) => ({
      timeMs: (r.time as Date).getTime(),
      deviceId: r.device_id,
      plantId: r.plant_id,
      values: FIVE.map((m) => r[m]),
    }))
  }
  const sorted = (list: readonly Row[]) =>
    [...list].sort((a, b) => a.deviceId.localeCompare(b.deviceId) || a.timeMs - b.timeMs)

  it('writes five-metric rows through the fast path, every value in its column', async () => {
    await storeFor(t.db).transaction((session) => insertRows(session, rows, FIVE))
    expect(await stored()).toEqual(sorted(rows))
  })

  it('writes only new five-metric rows through the careful path and reports which', async () => {
    await storeFor(t.db).transaction((session) => insertRows(session, rows.slice(0, 1), FIVE))
    const written = await storeFor(t.db).transaction((session) => insertNewRows(session, rows, FIVE))
    expect([...written].sort()).toEqual([`dev_1|${rows[1]!.timeMs}`, `dev_2|${rows[2]!.timeMs}`])
    expect(await stored()).toEqual(sorted(rows))
  })
})

import { sql } from 'kysely'
import { afterEach, expect, it } from 'vitest'
import { createTelemetryWriter, migrateToLatest, type WriterStats } from '../../src/index.js'
import { WRITER_INSTRUMENTS } from '../../src/ingest/metrics.js'
import { describeEachBackend } from '../support/backends.js'
import { inMemoryMeter, pointValue, type Point } from '../support/metrics.js'
import { randomMac, useMigratedDatabase } from '../support/migrated.js'

const BASE = Math.floor(Date.now() / 60_000) * 60_000
const minutesAgo = (n: number) => new Date(BASE - n * 60_000)

/** Every observed writer instrument holds exactly the `stats()` field it names. */
function expectAgreesWithStats(points: Map<string, Point[]>, stats: WriterStats): void {
  expect(pointValue(points, 'plantops.writer.received')).toBe(stats.received)
  expect(pointValue(points, 'plantops.writer.rows.written')).toBe(stats.written)
  expect(pointValue(points, 'plantops.writer.rows.duplicate')).toBe(stats.duplicates)
  expect(pointValue(points, 'plantops.writer.status_updates')).toBe(stats.statusUpdates)
  expect(pointValue(points, 'plantops.writer.alerts')).toBe(stats.alerts)
  expect(pointValue(points, 'plantops.writer.devices.provisioned')).toBe(stats.devicesProvisioned)
  expect(pointValue(points, 'plantops.writer.retries')).toBe(stats.retries)
  expect(pointValue(points, 'plantops.writer.batches')).toBe(stats.batches)
  expect(pointValue(points, 'plantops.writer.buffered.rows')).toBe(stats.bufferedRows)
  expect(pointValue(points, 'plantops.writer.buffered.bytes')).toBe(stats.bufferedBytes)
  expect(pointValue(points, 'plantops.writer.batches.in_flight')).toBe(stats.inFlightBatches)
  const rejected = Object.fromEntries(
    (points.get('plantops.writer.rejected') ?? []).map((p) => [p.attributes['plantops.reject.reason'], p.value]),
  )
  expect(rejected).toEqual(stats.rejected)
}

describeEachBackend('writer metrics through OpenTelemetry', (backend) => {
  const m = useMigratedDatabase(backend)
  const meters: { close(): Promise<void> }[] = []
  afterEach(async () => {
    for (const meter of meters.splice(0)) await meter.close()
  })

  it('exports every stats() field, equal to stats() and to the rows in the tables, and each commit as db.client.operation.duration', async () => {
    const metrics = inMemoryMeter()
    meters.push(metrics)
    const plant = await m.repos.plants.create({ name: 'Fern', thresholds: { soil_moisture: { min: 20, max: 80 } } })
    const { device } = await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [], plantId: plant.id })
    const writer = createTelemetryWriter(m.t.db, { logger: false, meter: metrics.meter, batchSize: 7 })

    const empty = await metrics.collect()
    expectAgreesWithStats(empty, writer.stats())
    expect(pointValue(empty, 'plantops.writer.received')).toBe(0)

    for (let i = 0; i < 40; i += 1) await writer.write({ deviceId: device.id, time: minutesAgo(i), soil_moisture: 50 })
    for (let i = 0; i < 5; i += 1) await writer.write({ deviceId: device.id, time: minutesAgo(i), soil_moisture: 50 })
    await writer.write({ deviceId: device.id, time: minutesAgo(100), soil_moisture: 10 }) // below 20: an alert
    await writer.write({ deviceId: 'dev_nobody_knows', time: minutesAgo(1), humidity: 40 })
    await writer.write({ deviceId: device.id, time: minutesAgo(2), humidity: 400 })
    await writer.writeRaw('not a packet')
    await writer.writeStatus(device.id, 'offline')
    await writer.flush()

    const stats = writer.stats()
    const points = await metrics.collect()
    expectAgreesWithStats(points, stats)
    expect(stats).toMatchObject({ received: 50, written: 41, duplicates: 5, statusUpdates: 1, alerts: 1 })
    expect(stats.rejected).toEqual({ unknown_device: 1, implausible: 1, schema: 1 })

    const { rows: stored } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`.execute(m.t.db)
    expect(stored[0]!.n).toBe(pointValue(points, 'plantops.writer.rows.written'))

    const duration = points.get('db.client.operation.duration')!
    expect(duration).toHaveLength(1)
    expect(duration[0]!.attributes).toEqual({
      'db.system.name': 'postgresql',
      'db.collection.name': 'telemetry',
      'db.operation.name': 'BATCH INSERT',
    })
    const histogram = duration[0]!.value as { count: number; sum: number }
    expect(histogram.count).toBe(stats.batches)
    expect(histogram.sum).toBeGreaterThan(0)
    await writer.close()
  })

  it('names every instrument it registers after a stats() field, with a unit and a description', () => {
    expect(WRITER_INSTRUMENTS.map((i) => i.name)).toEqual([
      'plantops.writer.received',
      'plantops.writer.rows.written',
      'plantops.writer.rows.duplicate',
      'plantops.writer.rejected',
      'plantops.writer.status_updates',
      'plantops.writer.alerts',
      'plantops.writer.devices.provisioned',
      'plantops.writer.retries',
      'plantops.writer.batches',
      'plantops.writer.buffered.rows',
      'plantops.writer.buffered.bytes',
      'plantops.writer.batches.in_flight',
    ])
    for (const i of WRITER_INSTRUMENTS) expect(i.unit.length * i.description.length).toBeGreaterThan(0)
  })
})

describeEachBackend('writer metrics while the database refuses', (backend) => {
  it('counts each failed commit as a retry and as a duration with its SQLSTATE, then the commit', async () => {
    const t = await backend.open()
    const metrics = inMemoryMeter()
    try {
      // Not migrated yet: every attempt fails with 42P01 (undefined table) until the tables exist.
      const writer = createTelemetryWriter(t.db, {
        logger: false,
        meter: metrics.meter,
        initialRetryDelayMs: 20,
        maxRetryDelayMs: 50,
      })
      await writer.writeStatus('dev_1', 'online')
      const flushed = writer.flush()
      while (writer.stats().retries < 2) await new Promise((r) => setTimeout(r, 10))
      await migrateToLatest(t.db, { logger: false })
      await flushed
      const stats = writer.stats()
      const points = await metrics.collect()
      expectAgreesWithStats(points, stats)
      const failed = points.get('db.client.operation.duration')!.filter((p) => p.attributes['error.type'] !== undefined)
      expect(failed.map((p) => p.attributes['error.type'])).toEqual(['42P01'])
      expect((failed[0]!.value as { count: number }).count).toBe(stats.retries)
      expect(stats.rejected).toEqual({ unknown_device: 1 })
      await writer.close()
    } finally {
      await metrics.close()
      await t.close()
    }
  })
})

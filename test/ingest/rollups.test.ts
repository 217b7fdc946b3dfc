import fc from 'fast-check'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import {
  BUCKET_WIDTHS,
  createRepositories,
  createTelemetryWriter,
  METRICS,
  type SensorPacket,
  type TelemetryWriter,
} from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { randomMac, unique, useMigratedDatabase } from '../support/migrated.js'
import { expectRollupsMatchRaw, expectSameBuckets, rollupHours } from '../support/rollups.js'

const HOUR = 3_600_000
/** Whole hours, a day back: every reading of a stream lies within the writer's 30-day window. */
const BASE = Math.floor(Date.now() / HOUR) * HOUR - 24 * HOUR

const metricValue = (metric: (typeof METRICS)[number]) =>
  fc.option(
    metric === 'light_level'
      ? fc.double({ min: 0, max: 200_000, noNaN: true })
      : fc.double({ min: 0, max: 100, noNaN: true }),
    { nil: null, freq: 3 },
  )
const values = fc
  .tuple(...METRICS.map(metricValue))
  .map(
    (row) => Object.fromEntries(METRICS.map((metric, i) => [metric, row[i] ?? null])) as Record<string, number | null>,
  )
  .filter((row) => Object.values(row).some((v) => v !== null))
/** Minutes after BASE, over twelve hours: arrival order is random, so late and backlog readings are the rule. */
const minute = fc.integer({ min: 0, max: 719 })

type Op =
  | { kind: 'reading'; device: number; minute: number; values: Record<string, number | null> }
  | { kind: 'backlog'; device: number; minutes: number[]; values: Record<string, number | null> }
  | { kind: 'implausible'; device: number; minute: number }
  | { kind: 'unknown'; minute: number }
  | { kind: 'redeliver'; index: number }
  | { kind: 'restart' }
  | { kind: 'move'; device: number; plant: number | null }

const device = fc.integer({ min: 0, max: 2 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('reading' as const), device, minute, values }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('backlog' as const),
      device,
      minutes: fc.uniqueArray(minute, { minLength: 2, maxLength: 15 }),
      values,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('implausible' as const), device, minute }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unknown' as const), minute }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('redeliver' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('move' as const),
      device,
      plant: fc.option(fc.integer({ min: 0, max: 1 })),
    }),
  },
)

describeEachBackend('hourly rollups', (backend) => {
  const m = useMigratedDatabase(backend)

  async function fleet() {
    const plants = [await m.repos.plants.create({ name: 'A' }), await m.repos.plants.create({ name: 'B' })]
    const devices = []
    for (const plantId of [plants[0]!.id, plants[0]!.id, undefined])
      devices.push(
        (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [], ...(plantId && { plantId }) }))
          .device,
      )
    return { plants, devices }
  }

  const open = () => createTelemetryWriter(m.t.db, { logger: false, batchSize: 8, maxBatchAgeMs: 5 })

  /** Plays a stream through writers; returns how many packets were dead-lettered. */
  async function play(ops: readonly Op[], ids: string[], plantIds: string[]): Promise<void> {
    let writer: TelemetryWriter = open()
    const sent: SensorPacket[] = []
    const send = (packet: SensorPacket) => {
      sent.push(packet)
      return writer.write(packet)
    }
    for (const o of ops) {
      if (o.kind === 'reading') await send({ deviceId: ids[o.device]!, time: BASE + o.minute * 60_000, ...o.values })
      else if (o.kind === 'backlog')
        await send({
          deviceId: ids[o.device]!,
          readings: o.minutes.map((mm) => ({ time: BASE + mm * 60_000, ...o.values })),
        })
      else if (o.kind === 'implausible')
        await send({ deviceId: ids[o.device]!, time: BASE + o.minute * 60_000, soil_moisture: 150 })
      else if (o.kind === 'unknown')
        await send({ deviceId: unique('ghost'), time: BASE + o.minute * 60_000, humidity: 50 })
      else if (o.kind === 'redeliver' && sent.length > 0) await writer.write(sent[o.index % sent.length]!)
      else if (o.kind === 'restart') {
        await writer.close()
        writer = open()
      } else if (o.kind === 'move') {
        await writer.flush()
        if (o.plant === null) await m.repos.devices.unassignPlant(ids[o.device]!)
        else await m.repos.devices.assignPlant(ids[o.device]!, plantIds[o.plant]!)
      }
    }
    await writer.close()
  }

  it('equals an aggregation of the raw rows after streams with redeliveries, late readings, backlogs, dead letters and restarts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const { plants, devices } = await fleet()
        const ids = devices.map((d) => d.id)
        await play(
          ops,
          ids,
          plants.map((p) => p.id),
        )
        const stored = await expectRollupsMatchRaw(m.t.db, ids)
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM telemetry WHERE device_id = ANY (${ids}::text[])`.execute(m.t.db)
        expect(stored).toBe(rows[0]!.n)
      }),
      { numRuns: 25 },
    )
  })

  it('answers buckets from the rollup exactly as from raw rows, for random ranges and widths', async () => {
    const { plants, devices } = await fleet()
    const ids = devices.map((d) => d.id)
    const ops: Op[] = []
    for (let i = 0; i < 600; i += 1)
      ops.push({
        kind: 'reading',
        device: i % 3,
        minute: (i * 7) % 720,
        values: {
          soil_moisture: (i * 13) % 100,
          temperature: 10 + (i % 17) / 3,
          humidity: null,
          light_level: i * 11.5,
        },
      })
    await play(
      ops,
      ids,
      plants.map((p) => p.id),
    )
    const scopes = [...ids.map((deviceId) => ({ deviceId })), ...plants.map((p) => ({ plantId: p.id }))]
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...scopes),
        fc.integer({ min: -3, max: 13 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom(...BUCKET_WIDTHS),
        fc.option(fc.integer({ min: 1, max: 59 }), { freq: 3 }),
        fc.option(fc.integer({ min: 1, max: 59 }), { freq: 3 }),
        async (scope, startHour, hours, bucket, raggedFrom, raggedTo) => {
          // Ragged ends (a chart of "the last 30 days" from now) take the raw rows of their partial hours.
          const from = new Date(BASE + startHour * HOUR + (raggedFrom ?? 0) * 60_000)
          const to = new Date(BASE + (startHour + hours) * HOUR + (raggedTo ?? 0) * 60_000)
          const auto = await m.repos.telemetry.buckets({ ...scope, from, to, bucket })
          const raw = await m.repos.telemetry.buckets({ ...scope, from, to, bucket, source: 'raw' })
          expectSameBuckets(auto, raw)
        },
      ),
      { numRuns: 60 },
    )
  })

  it("reads a ragged range alike inside a caller's transaction, leaving its settings alone", async () => {
    const { plants, devices } = await fleet()
    const writer = open()
    for (let i = 0; i < 180; i += 1)
      await writer.write({ deviceId: devices[i % 2]!.id, time: BASE + i * 60_000, humidity: i / 2 })
    await writer.close()
    // Minutes 7–10 from raw rows, 10–60 from five-minute rows, then an hour, then five minutes.
    const range = {
      plantId: plants[0]!.id,
      from: new Date(BASE + 7 * 60_000),
      to: new Date(BASE + 2 * HOUR + 5 * 60_000),
    }
    const outside = await m.repos.telemetry.buckets({ ...range, bucket: '1 hour' })
    expect(outside.map((b) => [b.readings, b.humidity.min, b.humidity.max])).toEqual([
      [53, 3.5, 29.5],
      [60, 30, 59.5],
      [5, 60, 62],
    ])
    await m.t.db.transaction().execute(async (trx) => {
      await sql`SET LOCAL max_parallel_workers_per_gather = 3`.execute(trx)
      const inside = await createRepositories(trx).telemetry.buckets({ ...range, bucket: '1 hour' })
      expect(inside).toEqual(outside)
      const { rows } = await sql<{ workers: string }>`
        SELECT current_setting('max_parallel_workers_per_gather') AS workers`.execute(trx)
      expect(rows[0]!.workers).toBe('3')
    })
  })

  it('reads whole hours from the rollup: a row written around the writer shows after rebuildRollups', async () => {
    const { devices } = await fleet()
    const id = devices[2]!.id
    const writer = open()
    await writer.write({ deviceId: id, time: BASE + 10 * 60_000, humidity: 40 })
    await writer.close()
    await sql`INSERT INTO telemetry (time, device_id, humidity) VALUES (${new Date(BASE + 20 * 60_000)}, ${id}, 60)`.execute(
      m.t.db,
    )
    const range = { deviceId: id, from: new Date(BASE), to: new Date(BASE + HOUR), bucket: '1 hour' as const }
    const before = await m.repos.telemetry.buckets(range)
    expect(before.map((b) => [b.readings, b.humidity.avg])).toEqual([[1, 40]])
    expect(
      (await m.repos.telemetry.buckets({ ...range, source: 'raw' })).map((b) => [b.readings, b.humidity.avg]),
    ).toEqual([[2, 50]])
    const rebuilt = await m.repos.telemetry.rebuildRollups({
      from: new Date(BASE + 5 * 60_000),
      to: new Date(BASE + 50 * 60_000),
    })
    expect(rebuilt.from).toEqual(new Date(BASE))
    expect(rebuilt.to).toEqual(new Date(BASE + HOUR))
    expect(rebuilt.rows).toBeGreaterThanOrEqual(1)
    expect((await m.repos.telemetry.buckets(range)).map((b) => [b.readings, b.humidity.avg])).toEqual([[2, 50]])
    await expectRollupsMatchRaw(m.t.db, [id])
  })

  it('with maintainRollups: false the writer leaves the rollup to rebuildRollups', async () => {
    const { devices } = await fleet()
    const id = devices[1]!.id
    const importer = createTelemetryWriter(m.t.db, { logger: false, maintainRollups: false })
    for (let i = 0; i < 30; i += 1) await importer.write({ deviceId: id, time: BASE + i * 5 * 60_000, temperature: i })
    await importer.close()
    expect((await rollupHours(m.t.db, [id])).length).toBe(0)
    await m.repos.telemetry.rebuildRollups({ from: new Date(BASE), to: new Date(BASE + 3 * HOUR) })
    expect(await expectRollupsMatchRaw(m.t.db, [id])).toBe(30)
  })

  it('telemetry.insert adds to the rollup, and a refused insert adds nothing', async () => {
    const { devices } = await fleet()
    const id = devices[0]!.id
    await m.repos.telemetry.insert([
      { deviceId: id, time: new Date(BASE + 60_000), soil_moisture: 30, temperature: 20 },
      { deviceId: id, time: new Date(BASE + 2 * 60_000), soil_moisture: 50 },
    ])
    await expect(
      m.repos.telemetry.insert([
        { deviceId: id, time: new Date(BASE + 3 * 60_000), soil_moisture: 70 },
        { deviceId: id, time: new Date(BASE + 60_000), soil_moisture: 90 }, // already stored
      ]),
    ).rejects.toThrow()
    expect(await expectRollupsMatchRaw(m.t.db, [id])).toBe(2)
    const { rows } = await sql<{ readings: number; soil_moisture_sum: number; temperature_count: number }>`
      SELECT readings, soil_moisture_sum, temperature_count FROM telemetry_hourly WHERE device_id = ${id}`.execute(
      m.t.db,
    )
    expect(rows).toEqual([{ readings: 2, soil_moisture_sum: 80, temperature_count: 1 }])
  })

  it('follows the raw rows when a device or a plant is deleted', async () => {
    const { plants, devices } = await fleet()
    const ids = devices.map((d) => d.id)
    const writer = open()
    for (let i = 0; i < 90; i += 1) await writer.write({ deviceId: ids[i % 3]!, time: BASE + i * 60_000, humidity: i })
    await writer.flush()
    await m.repos.devices.unassignPlant(ids[1]!) // its later readings are plantless; its earlier ones stay plant A's
    for (let i = 90; i < 150; i += 1)
      await writer.write({ deviceId: ids[1]!, time: BASE + i * 60_000, humidity: i % 100 })
    await writer.close()
    await expectRollupsMatchRaw(m.t.db, ids)

    const plantHour = async () =>
      (
        await sql<{ readings: number; humidity_min: number; humidity_max: number }>`
          SELECT readings, humidity_min, humidity_max FROM telemetry_plant_hourly
          WHERE plant_id = ${plants[0]!.id} AND hour = ${new Date(BASE)}`.execute(m.t.db)
      ).rows
    const plantFiveMinutes = async () =>
      (
        await sql<{ readings: number; humidity_min: number; humidity_max: number }>`
          SELECT readings, humidity_min, humidity_max FROM telemetry_plant_5min
          WHERE plant_id = ${plants[0]!.id} AND start = ${new Date(BASE)}`.execute(m.t.db)
      ).rows
    // Devices 0 and 1 (plant A) took turns over the first 90 minutes: humidity 0, 1, 3, 4, … 88.
    expect(await plantHour()).toEqual([{ readings: 40, humidity_min: 0, humidity_max: 58 }])
    expect(await plantFiveMinutes()).toEqual([{ readings: 4, humidity_min: 0, humidity_max: 4 }])

    await m.repos.devices.delete(ids[0]!) // its hours of plant A are recomputed from device 1's alone
    const { rows: gone } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM telemetry_hourly WHERE device_id = ${ids[0]!}`.execute(m.t.db)
    expect(gone[0]!.n).toBe(0)
    expect(await plantHour()).toEqual([{ readings: 20, humidity_min: 1, humidity_max: 58 }])
    expect(await plantFiveMinutes()).toEqual([{ readings: 2, humidity_min: 1, humidity_max: 4 }])
    expect(await expectRollupsMatchRaw(m.t.db, ids)).toBe(120)

    await m.repos.plants.delete(plants[0]!.id) // raw rows: plant_id SET NULL, merging into the plantless hours
    const { rows: plantless } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM telemetry_hourly WHERE device_id = ${ids[1]!} AND plant_id IS NULL`.execute(m.t.db)
    expect(plantless[0]!.n).toBeGreaterThan(0)
    expect(await plantHour()).toEqual([])
    expect(await plantFiveMinutes()).toEqual([])
    expect(await expectRollupsMatchRaw(m.t.db, ids)).toBe(120)
  })

  it('ages raw rows and rollups separately', async () => {
    const { plants, devices } = await fleet()
    const [id, plantId] = [devices[0]!.id, plants[0]!.id]
    const old = Math.floor((Date.now() - 400 * 86_400_000) / HOUR) * HOUR
    await sql`INSERT INTO telemetry (time, device_id, plant_id, humidity)
      SELECT ${new Date(old)}::timestamptz + n * interval '1 minute', ${id}, ${plantId}, n
      FROM generate_series(0, 119) n`.execute(m.t.db)
    await m.repos.telemetry.rebuildRollups({ from: new Date(old), to: new Date(old + 2 * HOUR) })
    const span = { from: new Date(old), to: new Date(old + 2 * HOUR), bucket: '1 hour' as const }
    const [device, plant] = [
      { ...span, deviceId: id },
      { ...span, plantId },
    ]
    const charted = await m.repos.telemetry.buckets(device)
    expect(charted.map((b) => b.readings)).toEqual([60, 60])
    expect(await m.repos.telemetry.buckets(plant)).toEqual(charted)
    const fiveMinutes = { ...plant, bucket: '5 minutes' as const }
    const dayChart = await m.repos.telemetry.buckets(fiveMinutes)
    expect(dayChart.map((b) => b.readings)).toEqual(new Array(24).fill(5))

    await m.repos.telemetry.deleteOlderThan('300 days')
    expect(await m.repos.telemetry.buckets({ ...device, source: 'raw' })).toEqual([])
    expect(await m.repos.telemetry.buckets(device)).toEqual(charted)
    expect(await m.repos.telemetry.buckets(plant)).toEqual(charted)
    expect(await m.repos.telemetry.buckets(fiveMinutes)).toEqual(dayChart)

    const result = await m.repos.telemetry.deleteOlderThan('300 days', { of: 'rollups' })
    expect(result.method).toBe(backend.name === 'timescaledb' ? 'drop_chunks' : 'delete')
    // Two device hours, two plant hours, and the plant's 24 five minutes.
    if (result.method === 'delete') expect(result.rowsDeleted).toBe(28)
    expect(await m.repos.telemetry.buckets(device)).toEqual([])
    expect(await m.repos.telemetry.buckets(plant)).toEqual([])
    expect(await m.repos.telemetry.buckets(fiveMinutes)).toEqual([])
  })

  if (backend.name === 'timescaledb') {
    it('makes every rollup a hypertable that the compression and retention helpers cover', async () => {
      const { rows } = await sql<{ name: string }>`
        SELECT hypertable_name AS name FROM timescaledb_information.hypertables ORDER BY 1`.execute(m.t.db)
      expect(rows.map((r) => r.name)).toEqual([
        'telemetry',
        'telemetry_hourly',
        'telemetry_plant_5min',
        'telemetry_plant_hourly',
      ])
      const raw = await m.repos.telemetry.addRetentionPolicy('90 days')
      const rollups = await m.repos.telemetry.addRetentionPolicy('1825 days', { of: 'rollups' })
      const compressed = await m.repos.telemetry.addCompressionPolicy('30 days', { of: 'rollups' })
      expect(new Set([raw, rollups, compressed]).size).toBe(3)
      const { rows: jobs } = await sql<{ name: string; proc: string; age: string; returned: boolean }>`
        SELECT hypertable_name AS name, proc_name AS proc,
          coalesce(config->>'drop_after', config->>'compress_after') AS age,
          job_id = ANY (${[raw, rollups, compressed]}::int[]) AS returned
        FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL ORDER BY job_id`.execute(m.t.db)
      // Each helper covers the three rollups and returns the device rollup's job.
      expect(jobs).toEqual([
        { name: 'telemetry', proc: 'policy_retention', age: '90 days', returned: true },
        { name: 'telemetry_hourly', proc: 'policy_retention', age: '1825 days', returned: true },
        { name: 'telemetry_plant_hourly', proc: 'policy_retention', age: '1825 days', returned: false },
        { name: 'telemetry_plant_5min', proc: 'policy_retention', age: '1825 days', returned: false },
        { name: 'telemetry_hourly', proc: 'policy_compression', age: '30 days', returned: true },
        { name: 'telemetry_plant_hourly', proc: 'policy_compression', age: '30 days', returned: false },
        { name: 'telemetry_plant_5min', proc: 'policy_compression', age: '30 days', returned: false },
      ])
    })
  }
})

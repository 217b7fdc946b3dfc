import { sql } from 'kysely'
import { expect, it } from 'vitest'
import {
  ConflictError,
  InvalidStateError,
  METRICS,
  MissingReferenceError,
  TimescaleUnavailableError,
  ValidationError,
  createRepositories,
  migrateToLatest,
  type TelemetryBucket,
} from '../../src/index.js'
import { latestQuery, selectBuckets } from '../../src/repositories/telemetry-statements.js'
import { meaningOfConstraint } from '../../src/repositories/shared/database-errors.js'
import { describeEachBackend } from '../support/backends.js'
import { TEST_PASSWORD_ITERATIONS, randomMac, rejectionOf, useMigratedDatabase } from '../support/migrated.js'

/** Three hours of readings every 10 minutes, with values exact in binary so sums are too. */
function knownSeries(start: Date) {
  return Array.from({ length: 18 }, (_, i) => ({
    time: new Date(start.getTime() + i * 10 * 60_000),
    soil_moisture: 30 + (i % 8) * 0.25,
    temperature: i % 2 === 0 ? 20 + i * 0.5 : null,
    humidity: 50,
    light_level: null,
  }))
}

/** What the buckets must be, computed here in JavaScript rather than by any database. */
function expectedBuckets(series: ReturnType<typeof knownSeries>, widthMs: number): TelemetryBucket[] {
  const groups = new Map<number, typeof series>()
  for (const reading of series) {
    const start = Math.floor(reading.time.getTime() / widthMs) * widthMs
    groups.set(start, [...(groups.get(start) ?? []), reading])
  }
  return [...groups.entries()].map(([start, readings]) => {
    const aggregate = (metric: (typeof METRICS)[number]) => {
      const values = readings.map((r) => r[metric]).filter((v): v is number => v !== null)
      return values.length === 0
        ? { avg: null, min: null, max: null, count: 0 }
        : {
            avg: values.reduce((a, b) => a + b, 0) / values.length,
            min: Math.min(...values),
            max: Math.max(...values),
            count: values.length,
          }
    }
    return {
      bucket: new Date(start),
      readings: readings.length,
      ...Object.fromEntries(METRICS.map((m) => [m, aggregate(m)])),
    } as TelemetryBucket
  })
}

describeEachBackend('telemetry repository', (backend) => {
  const m = useMigratedDatabase(backend)
  const newDevice = async (plantId?: string) =>
    (
      await m.repos.devices.provision({
        macAddress: randomMac(),
        sensorTypes: ['soil_moisture'],
        ...(plantId && { plantId }),
      })
    ).device

  it('names the fields of a duplicate reading and of a missing device, on chunks of a hypertable too', async () => {
    const device = await newDevice()
    const reading = { deviceId: device.id, time: '2026-03-02T10:00:00Z', humidity: 50 }
    await m.repos.telemetry.insert(reading)
    const conflict = await rejectionOf(m.repos.telemetry.insert(reading))
    expect(conflict).toBeInstanceOf(ConflictError)
    expect(conflict).toMatchObject({ entity: 'reading', field: 'deviceId and time' })
    expect(conflict.message).toBe(`reading deviceId and time "${device.id}, 2026-03-02 10:00:00+00" is already taken`)
    const orphan = await sql`INSERT INTO telemetry (time, device_id, humidity)
      VALUES ('2026-03-02T10:00:00Z', 'dev_nowhere', 1)`
      .execute(m.t.db)
      .catch((error: unknown) => error)
    const constraint = (orphan as { constraint: string }).constraint
    if (backend.name === 'timescaledb') expect(constraint).toMatch(/^\d+_\d+_telemetry_device_id_fkey$/)
    expect(meaningOfConstraint(constraint)).toEqual({ entity: 'device', field: 'deviceId' })
    expect(meaningOfConstraint('_hyper_3_17_chunk_idx_telemetry_device_time_unique')).toEqual({
      entity: 'reading',
      field: 'deviceId and time',
    })
  })

  it('inserts readings with the device’s plant, exactly as given', async () => {
    const plant = await m.repos.plants.create({ name: 'Pothos' })
    const device = await newDevice(plant.id)
    const rows = await m.repos.telemetry.insert([
      { deviceId: device.id, time: '2026-03-01T10:00:00.123Z', soil_moisture: 41.5, temperature: -0.5 },
      {
        deviceId: device.id,
        time: new Date('2026-03-01T10:01:00Z'),
        humidity: 100,
        light_level: 0,
        soil_moisture: null,
      },
    ])
    expect(rows).toEqual([
      {
        time: new Date('2026-03-01T10:00:00.123Z'),
        device_id: device.id,
        plant_id: plant.id,
        soil_moisture: 41.5,
        temperature: -0.5,
        humidity: null,
        light_level: null,
      },
      {
        time: new Date('2026-03-01T10:01:00Z'),
        device_id: device.id,
        plant_id: plant.id,
        soil_moisture: null,
        temperature: null,
        humidity: 100,
        light_level: 0,
      },
    ])
  })

  it('refuses impossible readings, unknown and decommissioned devices with typed errors', async () => {
    const device = await newDevice()
    const now = new Date()
    const invalid = async (reading: object) =>
      (await rejectionOf(m.repos.telemetry.insert(reading as never))) as ValidationError
    expect((await invalid({ deviceId: device.id, time: now })).issues).toEqual([
      { path: [], message: 'a reading needs at least one of soil_moisture, temperature, humidity, light_level' },
    ])
    expect((await invalid({ deviceId: device.id, time: now, humidity: Number.NaN })).issues[0]).toEqual({
      path: ['humidity'],
      message: 'humidity must be a finite number',
    })
    expect((await invalid({ deviceId: device.id, time: now, soil_moisture: 140 })).issues[0]).toEqual({
      path: ['soil_moisture'],
      message: 'soil_moisture must be between 0 and 100 % (a physically plausible reading)',
    })
    expect((await invalid({ deviceId: device.id, time: 'yesterday', humidity: 1 })).issues[0]!.path).toEqual(['time'])
    expect(await rejectionOf(m.repos.telemetry.insert({ deviceId: 'dev_absent', time: now, humidity: 1 }))).toEqual(
      new MissingReferenceError('device', 'dev_absent'),
    )
    await m.repos.devices.setStatus(device.id, 'decommissioned')
    expect(await rejectionOf(m.repos.telemetry.insert({ deviceId: device.id, time: now, humidity: 1 }))).toBeInstanceOf(
      InvalidStateError,
    )
  })

  it('pages through a plant’s readings newest first, each exactly once, even with equal times', async () => {
    const plant = await m.repos.plants.create({ name: 'Palm' })
    const [a, b] = [await newDevice(plant.id), await newDevice(plant.id)]
    const base = Date.parse('2026-04-01T00:00:00Z')
    const readings = Array.from({ length: 7 }, (_, i) => new Date(base + i * 60_000)).flatMap((time, i) => [
      { deviceId: a.id, time, soil_moisture: i },
      { deviceId: b.id, time, soil_moisture: i + 0.5 },
    ])
    await m.repos.telemetry.insert(readings)
    const seen: string[] = []
    let page = await m.repos.telemetry.range({ plantId: plant.id, limit: 3 })
    for (;;) {
      seen.push(...page.items.map((r) => `${r.time.toISOString()} ${r.device_id}`))
      if (!page.nextCursor) break
      page = await m.repos.telemetry.range({ plantId: plant.id, limit: 3, cursor: page.nextCursor })
    }
    const expected = readings
      .map((r) => `${r.time.toISOString()} ${r.deviceId}`)
      .sort()
      .reverse()
    expect(seen).toEqual(expected)

    const window = await m.repos.telemetry.range({
      deviceId: a.id,
      from: new Date(base + 2 * 60_000),
      to: new Date(base + 4 * 60_000),
    })
    expect(window.items.map((r) => r.soil_moisture)).toEqual([3, 2])
    expect(window.nextCursor).toBeNull()
    expect(await rejectionOf(m.repos.telemetry.range({ plantId: plant.id, deviceId: a.id }))).toBeInstanceOf(
      ValidationError,
    )
  })

  it('returns the newest reading per device and per plant', async () => {
    const plant = await m.repos.plants.create({ name: 'Orchid' })
    const [a, b, silent] = [await newDevice(plant.id), await newDevice(), await newDevice()]
    await m.repos.telemetry.insert([
      { deviceId: a.id, time: '2026-05-01T00:00:00Z', humidity: 1 },
      { deviceId: a.id, time: '2026-05-01T00:05:00Z', humidity: 2 },
      { deviceId: b.id, time: '2026-05-01T00:03:00Z', humidity: 3 },
    ])
    const latest = await m.repos.telemetry.latest({ deviceIds: [a.id, b.id, silent.id, a.id] })
    expect(latest.map((r) => [r.device_id, r.humidity]).sort()).toEqual(
      [
        [a.id, 2],
        [b.id, 3],
      ].sort(),
    )
    expect((await m.repos.telemetry.latest({ plantIds: [plant.id] })).map((r) => r.humidity)).toEqual([2])
    expect(await m.repos.telemetry.latest({ plantIds: [] })).toEqual([])
  })

  it('finds the latest readings through the (device_id, time DESC) index, never a scan', async () => {
    const devices = Array.from({ length: 300 }, (_, i) => `dev_plan_${i}`)
    await sql`INSERT INTO devices (id, mqtt_password_hash) SELECT unnest(${devices}::text[]), 'x'`.execute(m.t.db)
    await sql`INSERT INTO telemetry (time, device_id, humidity)
      SELECT timestamptz '2026-06-01' + (n * interval '1 minute'), ${sql.lit('dev_plan_')} || (n % 300), 50
      FROM generate_series(1, 30000) AS n`.execute(m.t.db)
    await sql`ANALYZE telemetry`.execute(m.t.db)
    const plan = await sql<{
      'QUERY PLAN': string
    }>`EXPLAIN ${latestQuery('device_id', devices.slice(0, 200))}`.execute(m.t.db)
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n')
    expect(text).toContain('idx_telemetry_device')
    expect(text).not.toMatch(/Seq Scan/)
    const planByPlant = await sql<{ 'QUERY PLAN': string }>`EXPLAIN ${latestQuery('plant_id', ['p1', 'p2'])}`.execute(
      m.t.db,
    )
    expect(planByPlant.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('idx_telemetry_plant')
  })

  it('aggregates buckets to the numbers computed independently', async () => {
    const device = await newDevice()
    const series = knownSeries(new Date('2026-07-01T00:00:00Z'))
    await m.repos.telemetry.insert(series.map((r) => ({ deviceId: device.id, ...r })))
    const from = new Date('2026-07-01T00:00:00Z')
    const to = new Date('2026-07-01T03:00:00Z')
    expect(await m.repos.telemetry.buckets({ deviceId: device.id, from, to, bucket: '1 hour' })).toEqual(
      expectedBuckets(series, 3_600_000),
    )
    expect(await m.repos.telemetry.buckets({ deviceId: device.id, from, to, bucket: '15 minutes' })).toEqual(
      expectedBuckets(series, 900_000),
    )
    if (backend.name === 'timescaledb') {
      const scope = { column: 'device_id' as const, id: device.id }
      const timeBucket = await selectBuckets(
        m.t.db,
        scope,
        { from, to, width: '1 hour' },
        { rollups: [], useTimeBucket: true },
      )
      const dateBin = await selectBuckets(
        m.t.db,
        scope,
        { from, to, width: '1 hour' },
        { rollups: [], useTimeBucket: false },
      )
      // What the README promises: starts, counts, min and max identical; averages to rounding.
      const exactly = (buckets: TelemetryBucket[]) =>
        buckets.map((b) => ({
          ...b,
          ...Object.fromEntries(METRICS.map((metric) => [metric, { ...b[metric], avg: undefined }])),
        }))
      expect(exactly(timeBucket)).toEqual(exactly(dateBin))
      for (const [i, bucket] of timeBucket.entries()) {
        for (const metric of METRICS) {
          const [a, b] = [bucket[metric].avg, dateBin[i]![metric].avg]
          if (a === null || b === null) expect(a).toBe(b)
          else expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-12 * Math.max(Math.abs(a), Math.abs(b)))
        }
      }
    }
    const inverted = await rejectionOf(
      m.repos.telemetry.buckets({ deviceId: device.id, from: to, to: from, bucket: '1 hour' }),
    )
    expect(inverted).toBeInstanceOf(ValidationError)
    expect(
      await rejectionOf(m.repos.telemetry.buckets({ deviceId: device.id, from, to, bucket: '1 month' as never })),
    ).toBeInstanceOf(ValidationError)
  })

  it('deletes telemetry older than an age, by chunks on a hypertable and in batches otherwise', async () => {
    const t = await backend.open()
    try {
      await migrateToLatest(t.db, { logger: false })
      const repos = createRepositories(t.db, { passwordIterations: TEST_PASSWORD_ITERATIONS })
      const { device } = await repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })
      const day = 86_400_000
      const old = Array.from({ length: 5 }, (_, i) => ({
        deviceId: device.id,
        time: new Date(Date.now() - (90 + i) * day),
        humidity: i,
      }))
      const recent = [{ deviceId: device.id, time: new Date(Date.now() - 3_600_000), humidity: 9 }]
      await repos.telemetry.insert([...old, ...recent])
      const result = await repos.telemetry.deleteOlderThan('30 days')
      if (backend.name === 'timescaledb') {
        expect(result.method).toBe('drop_chunks')
        expect(result.method === 'drop_chunks' && result.chunksDropped).toBeGreaterThanOrEqual(1)
      } else {
        expect(result).toEqual({ method: 'delete', rowsDeleted: 5 })
      }
      const left = await repos.telemetry.range({ deviceId: device.id })
      expect(left.items.map((r) => r.humidity)).toEqual([9])
      expect(await rejectionOf(repos.telemetry.deleteOlderThan('30 fortnights'))).toBeInstanceOf(ValidationError)
    } finally {
      await t.close()
    }
  })

  it(
    backend.name === 'timescaledb'
      ? 'adds compression and retention policies once'
      : 'refuses TimescaleDB policies on a plain table',
    async () => {
      if (backend.name !== 'timescaledb') {
        const error = await rejectionOf(m.repos.telemetry.addRetentionPolicy('90 days'))
        expect(error).toEqual(new TimescaleUnavailableError('a retention policy', 'telemetry is a plain table'))
        expect(await rejectionOf(m.repos.telemetry.addCompressionPolicy('7 days'))).toBeInstanceOf(
          TimescaleUnavailableError,
        )
        return
      }
      const compression = await m.repos.telemetry.addCompressionPolicy('7 days')
      const retention = await m.repos.telemetry.addRetentionPolicy('365 days')
      expect(await m.repos.telemetry.addCompressionPolicy('7 days')).toBe(compression)
      expect(await m.repos.telemetry.addRetentionPolicy('365 days')).toBe(retention)
      const { rows } = await sql<{ job_id: number; proc_name: string }>`
      SELECT job_id, proc_name FROM timescaledb_information.jobs WHERE hypertable_name = 'telemetry' ORDER BY job_id`.execute(
        m.t.db,
      )
      expect(rows).toEqual([
        { job_id: compression, proc_name: 'policy_compression' },
        { job_id: retention, proc_name: 'policy_retention' },
      ])
    },
  )

  if (backend.name === 'timescaledb') {
    it('replaces a policy asked for at another age, rather than keeping the old one', async () => {
      const policies = async () => {
        const { rows } = await sql<{ job_id: number; proc_name: string; age: string }>`
          SELECT job_id, proc_name, coalesce(config->>'drop_after', config->>'compress_after') AS age
          FROM timescaledb_information.jobs WHERE hypertable_name = 'telemetry' ORDER BY proc_name`.execute(m.t.db)
        return rows
      }
      const compression = await m.repos.telemetry.addCompressionPolicy('7 days')
      const retention = await m.repos.telemetry.addRetentionPolicy('365 days')
      const shorter = await m.repos.telemetry.addRetentionPolicy('30 days')
      const later = await m.repos.telemetry.addCompressionPolicy('14 days')
      expect(shorter).not.toBe(retention)
      expect(later).not.toBe(compression)
      expect(await policies()).toEqual([
        { job_id: later, proc_name: 'policy_compression', age: '14 days' },
        { job_id: shorter, proc_name: 'policy_retention', age: '30 days' },
      ])
      expect(await m.repos.telemetry.addRetentionPolicy('720 hours')).toBe(shorter) // the same age, said otherwise
    })
  }
})

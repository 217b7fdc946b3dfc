import { sql } from 'kysely'
import { expect, it } from 'vitest'
import {
  ValidationError,
  WriterAbortedError,
  WriterClosedError,
  createTelemetryWriter,
  migrateToLatest,
  type TelemetryWriterOptions,
  type WriteOutcome,
  type WriteReceipt,
} from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { randomMac, rejectionOf, useMigratedDatabase } from '../support/migrated.js'
import { eventually } from '../support/eventually.js'
import { recordingLogger } from '../support/recording-logger.js'
import { stall } from '../support/stall.js'

const quiet: TelemetryWriterOptions = { logger: false }
/** One clock base per run, so a time computed twice is the same time, even across a minute boundary. */
const BASE = Math.floor(Date.now() / 60_000) * 60_000
const minutesAgo = (n: number) => new Date(BASE - n * 60_000)

describeEachBackend('telemetry writer', (backend) => {
  const m = useMigratedDatabase(backend)

  async function fleet(thresholds = { soil_moisture: { min: 20, max: 80 } }) {
    const plant = await m.repos.plants.create({ name: 'Fern', thresholds })
    const a = (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [], plantId: plant.id })).device
    const b = (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device
    return { plant, a, b }
  }

  async function rowsOf(deviceId: string) {
    const { rows } = await sql<{
      time: Date
      plant_id: string | null
      soil_moisture: number | null
      humidity: number | null
    }>`
      SELECT time, plant_id, soil_moisture, humidity FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`.execute(
      m.t.db,
    )
    return rows
  }

  it('writes a known stream exactly: rows, plants, last seen, alerts with a cooldown', async () => {
    const { plant, a, b } = await fleet()
    const writer = createTelemetryWriter(m.t.db, { ...quiet, batchSize: 7 })
    const receipts = []
    for (let i = 0; i < 20; i += 1) {
      // Device a flaps below its plant's minimum every other reading; b has no plant.
      receipts.push(
        await writer.write({
          deviceId: a.id,
          time: minutesAgo(40 - i),
          soil_moisture: i % 2 === 0 ? 10 : 50,
          humidity: i,
        }),
      )
      receipts.push(await writer.write({ deviceId: b.id, time: minutesAgo(40 - i).getTime() / 1000, humidity: 50 + i }))
    }
    receipts.push(
      await writer.write({
        deviceId: a.id,
        readings: [
          { time: minutesAgo(5).toISOString(), soil_moisture: 95 },
          { time: minutesAgo(4), soil_moisture: 50 },
        ],
      }),
    )
    const outcomes = await Promise.all(receipts.map((r) => r.durable))
    expect(outcomes.every((o) => o.status === 'written')).toBe(true)
    expect(outcomes.at(-1)).toEqual({ status: 'written', written: 2, duplicates: 0, rejected: 0, reasons: [] })

    const rowsA = await rowsOf(a.id)
    expect(rowsA).toHaveLength(22)
    expect(rowsA.every((r) => r.plant_id === plant.id)).toBe(true)
    expect(rowsA.slice(0, 4).map((r) => [r.soil_moisture, r.humidity])).toEqual([
      [10, 0],
      [50, 1],
      [10, 2],
      [50, 3],
    ])
    const rowsB = await rowsOf(b.id)
    expect(rowsB.map((r) => r.humidity)).toEqual(Array.from({ length: 20 }, (_, i) => 50 + i))
    expect(rowsB.every((r) => r.plant_id === null)).toBe(true)

    expect(await m.repos.devices.get(a.id)).toMatchObject({ status: 'online', last_seen_at: minutesAgo(4) })
    expect(await m.repos.devices.get(b.id)).toMatchObject({ status: 'online', last_seen_at: minutesAgo(21) })
    // Ten readings below min across several batches: one alert; one above max: one more.
    const alerts = await m.repos.alerts.listForPlant(plant.id)
    expect(alerts.items.map((x) => [x.metric, x.direction, x.value, x.threshold]).sort()).toEqual([
      ['soil_moisture', 'above', 95, 80],
      ['soil_moisture', 'below', 10, 20],
    ])
    expect(writer.stats()).toMatchObject({ received: 41, written: 42, duplicates: 0, alerts: 2, bufferedRows: 0 })
    expect(writer.stats().batches).toBeGreaterThanOrEqual(6)
    await writer.close()
  })

  it('never stores a reading twice: in one batch, across batches, across a restart', async () => {
    const { a } = await fleet()
    const packet = (i: number) => ({ deviceId: a.id, time: minutesAgo(100 - i), humidity: i })
    const first = createTelemetryWriter(m.t.db, { ...quiet, batchSize: 5 })
    const inOneBatch = await Promise.all([0, 1, 2, 0, 1].map(async (i) => (await first.write(packet(i))).durable))
    expect(inOneBatch.map((o) => o.status)).toEqual(['written', 'written', 'written', 'duplicate', 'duplicate'])
    const acrossBatches = await Promise.all([2, 3, 4, 5, 6].map(async (i) => (await first.write(packet(i))).durable))
    expect(acrossBatches.map((o) => o.status)).toEqual(['duplicate', 'written', 'written', 'written', 'written'])
    await first.close()

    const restarted = createTelemetryWriter(m.t.db, quiet)
    const again = await Promise.all([0, 3, 6, 7].map(async (i) => (await restarted.write(packet(i))).durable))
    expect(again.map((o) => o.status)).toEqual(['duplicate', 'duplicate', 'duplicate', 'written'])
    expect(restarted.stats()).toMatchObject({ written: 1, duplicates: 3 })
    await restarted.close()
    expect((await rowsOf(a.id)).map((r) => r.humidity)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
  })

  it('dead-letters every kind of bad packet with its payload and reason, and replays them after a fix', async () => {
    const { a } = await fleet()
    const retired = (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device
    await m.repos.devices.setStatus(retired.id, 'decommissioned')
    const writer = createTelemetryWriter(m.t.db, quiet)
    const unknownTime = minutesAgo(3)
    const bad: [string, unknown][] = [
      ['schema', { time: minutesAgo(1), humidity: 1 }],
      ['non_finite', { deviceId: a.id, humidity: Number.NaN }],
      ['implausible', { deviceId: a.id, soil_moisture: 150 }],
      ['time_skew', { deviceId: a.id, time: new Date(Date.now() + 86_400_000), humidity: 1 }],
      ['unknown_device', { deviceId: 'dev_not_yet', time: unknownTime, humidity: 33 }],
      ['decommissioned_device', { deviceId: retired.id, humidity: 1 }],
    ]
    const outcomes: WriteOutcome[] = []
    for (const [, packet] of bad) outcomes.push(await (await writer.writeRaw(packet, { source: 'test' })).durable)
    const raw = Buffer.from([0xff, 0x00, 0x7b])
    outcomes.push(
      await (await writer.deadLetter({ payload: raw, reason: 'decode_failed', detail: 'not JSON', source: 'mqtt:x' }))
        .durable,
    )
    expect(outcomes.map((o) => [o.status, o.reasons[0]])).toEqual([
      ...bad.map(([reason]) => ['rejected', reason]),
      ['rejected', 'decode_failed'],
    ])
    expect(writer.stats().rejected).toEqual({
      schema: 1,
      non_finite: 1,
      implausible: 1,
      time_skew: 1,
      unknown_device: 1,
      decommissioned_device: 1,
      decode_failed: 1,
    })

    const letters = await m.t.db
      .selectFrom('telemetry_rejects')
      .selectAll()
      .where('replayed_at', 'is', null)
      .orderBy('id')
      .execute()
    const mine = letters.slice(-7)
    expect(mine.map((l) => l.reason)).toEqual([...bad.map(([reason]) => reason), 'decode_failed'])
    expect(JSON.parse(Buffer.from(mine[1]!.payload).toString())).toEqual({ deviceId: a.id, humidity: 'NaN' })
    expect(JSON.parse(Buffer.from(mine[4]!.payload).toString())).toEqual({
      deviceId: 'dev_not_yet',
      time: unknownTime.toISOString(),
      humidity: 33,
    })
    expect(Buffer.from(mine[6]!.payload)).toEqual(raw)
    expect(mine[6]).toMatchObject({ source: 'mqtt:x', detail: 'not JSON' })
    expect(mine[2]!.detail).toBe(
      'soil_moisture: soil_moisture must be between 0 and 100 % (a physically plausible reading)',
    )

    // The fix: the unknown device is provisioned under that id; replay recovers its reading.
    await sql`INSERT INTO devices (id, mqtt_password_hash) VALUES ('dev_not_yet', 'x')`.execute(m.t.db)
    const report = await writer.replayRejects({ reason: 'unknown_device' })
    expect(report).toMatchObject({ written: 1, rejectedAgain: 0 })
    expect((await rowsOf('dev_not_yet')).map((r) => [r.time, r.humidity])).toEqual([[unknownTime, 33]])
    const replayed = await m.t.db
      .selectFrom('telemetry_rejects')
      .select('replayed_at')
      .where('id', '=', mine[4]!.id)
      .executeTakeFirstOrThrow()
    expect(replayed.replayed_at).toBeInstanceOf(Date)
    await writer.close()
  })

  it('registers an unknown device only for packets that ask for it, once, and never revives a retired one', async () => {
    const retired = (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device
    await m.repos.devices.setStatus(retired.id, 'decommissioned')
    const newcomer = `dev_new_${Math.random().toString(36).slice(2, 10)}`
    const stranger = `dev_stranger_${Math.random().toString(36).slice(2, 10)}`
    const writer = createTelemetryWriter(m.t.db, { ...quiet, batchSize: 3 })
    const vouched = { source: 'test', provisionIfUnknown: true }
    const receipts = [
      // Two packets of the newcomer in one batch, one in the next: one device row, three readings.
      await writer.write({ deviceId: newcomer, time: minutesAgo(3), humidity: 50 }, vouched),
      await writer.write({ deviceId: newcomer, readings: [{ time: minutesAgo(2), humidity: 51 }] }, vouched),
      await writer.write({ deviceId: stranger, time: minutesAgo(2), humidity: 1 }, { source: 'test' }),
      await writer.write({ deviceId: newcomer, time: minutesAgo(1), humidity: 52 }, vouched),
      await writer.write({ deviceId: retired.id, time: minutesAgo(1), humidity: 1 }, vouched),
    ]
    const outcomes = await Promise.all(receipts.map((r) => r.durable))
    expect(outcomes.map((o) => [o.status, o.reasons[0]])).toEqual([
      ['written', undefined],
      ['written', undefined],
      ['rejected', 'unknown_device'],
      ['written', undefined],
      ['rejected', 'decommissioned_device'],
    ])
    expect(writer.stats()).toMatchObject({
      devicesProvisioned: 1,
      written: 3,
      rejected: { unknown_device: 1, decommissioned_device: 1 },
    })
    expect((await rowsOf(newcomer)).map((r) => [r.humidity, r.plant_id])).toEqual([
      [50, null],
      [51, null],
      [52, null],
    ])
    const registered = await m.t.db.selectFrom('devices').selectAll().where('id', 'in', [newcomer, stranger]).execute()
    expect(registered).toEqual([
      expect.objectContaining({
        id: newcomer,
        plant_id: null,
        mqtt_username: null,
        mqtt_password_hash: '*',
        status: 'online',
        last_seen_at: minutesAgo(1),
      }),
    ])
    expect(await m.repos.devices.verifyCredentials(newcomer, '*')).toBeNull()
    expect((await m.repos.devices.get(retired.id)).status).toBe('decommissioned')
    expect(await rowsOf(retired.id)).toEqual([])
    await writer.close()
  })

  it('on a database without its tables, says to migrate, keeps the packet, and writes it once migrated', async () => {
    const bare = await backend.open()
    try {
      const logger = recordingLogger()
      const writer = createTelemetryWriter(bare.db, { logger, initialRetryDelayMs: 10, maxRetryDelayMs: 50 })
      const receipt = await writer.write(
        { deviceId: 'dev_early', time: minutesAgo(1), humidity: 30 },
        { provisionIfUnknown: true },
      )
      await eventually(
        () => logger.entries.some((e) => e.level === 'error' && e.message.includes('run migrateToLatest(db)')),
        'the log says to migrate',
      )
      expect(writer.stats()).toMatchObject({ written: 0, bufferedRows: 1, rejected: {} })
      await migrateToLatest(bare.db, { logger: false })
      expect(await receipt.durable).toMatchObject({ status: 'written' })
      const { rows } = await sql<{
        n: number
      }>`SELECT count(*)::int AS n FROM telemetry WHERE device_id = 'dev_early'`.execute(bare.db)
      expect(rows[0]!.n).toBe(1)
      await writer.close()
    } finally {
      await bare.close()
    }
  })

  it('stores any dead letter, even with words PostgreSQL text cannot hold', async () => {
    const writer = createTelemetryWriter(m.t.db, quiet)
    const outcome = await (
      await writer.deadLetter({
        payload: Buffer.from([0]),
        reason: 'decode_failed',
        detail: 'Unexpected token \u0000 in JSON',
        source: 'src\u0000x',
        deviceId: 'a\u0000b',
      })
    ).durable
    expect(outcome.status).toBe('rejected')
    const letter = await m.t.db
      .selectFrom('telemetry_rejects')
      .select(['detail', 'source', 'device_id', 'payload'])
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow()
    expect(letter).toEqual({
      detail: 'Unexpected token \\u0000 in JSON',
      source: 'src\\u0000x',
      device_id: 'a\\u0000b',
      payload: expect.anything(),
    })
    expect(Buffer.from(letter.payload)).toEqual(Buffer.from([0]))
    await writer.close()
  })

  it('isolates rows the database refuses, writing the rest of the batch', async () => {
    const { a } = await fleet()
    // NOT VALID: only new rows are checked, whatever other tests of this file stored before.
    await sql`ALTER TABLE telemetry ADD CONSTRAINT test_refuses_42 CHECK (humidity IS DISTINCT FROM 42) NOT VALID`.execute(
      m.t.db,
    )
    try {
      const writer = createTelemetryWriter(m.t.db, { ...quiet, batchSize: 1_000 })
      const humidities = [40, 41, 42, 43, 44, 42, 45]
      const receipts = []
      for (const [i, humidity] of humidities.entries())
        receipts.push(await writer.write({ deviceId: a.id, time: minutesAgo(200 - i), humidity }))
      const outcomes = await Promise.all(receipts.map((r) => r.durable))
      expect(outcomes.map((o) => o.status)).toEqual([
        'written',
        'written',
        'rejected',
        'written',
        'written',
        'rejected',
        'written',
      ])
      expect((await rowsOf(a.id)).map((r) => r.humidity)).toEqual([40, 41, 43, 44, 45])
      const refused = await m.t.db
        .selectFrom('telemetry_rejects')
        .select(['reason', 'detail', 'payload'])
        .where('reason', '=', 'database_refused')
        .execute()
      expect(refused).toHaveLength(2)
      expect(refused[0]!.detail).toContain('test_refuses_42')
      expect(JSON.parse(Buffer.from(refused[0]!.payload).toString())).toMatchObject({ deviceId: a.id, humidity: 42 })
      await writer.close()
    } finally {
      await sql`ALTER TABLE telemetry DROP CONSTRAINT test_refuses_42`.execute(m.t.db)
    }
  })

  it("retries a batch whole, dead-lettering nothing, when the refusal is no row's fault (a missing column)", async () => {
    const { a } = await fleet()
    const logger = recordingLogger()
    const writer = createTelemetryWriter(m.t.db, { logger, initialRetryDelayMs: 10, maxRetryDelayMs: 50 })
    const lettersBefore = await m.t.db
      .selectFrom('telemetry_rejects')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    await sql`ALTER TABLE telemetry RENAME COLUMN humidity TO humidity_renamed`.execute(m.t.db)
    let receipts: WriteReceipt[]
    try {
      receipts = [
        await writer.write({ deviceId: a.id, time: minutesAgo(300), humidity: 61 }),
        await writer.write({ deviceId: a.id, time: minutesAgo(299), humidity: 62 }),
      ]
      await eventually(() => writer.stats().retries >= 2, 'the batch is retried')
    } finally {
      await sql`ALTER TABLE telemetry RENAME COLUMN humidity_renamed TO humidity`.execute(m.t.db)
    }
    expect((await Promise.all(receipts.map((r) => r.durable))).map((o) => o.status)).toEqual(['written', 'written'])
    expect((await rowsOf(a.id)).map((r) => r.humidity)).toEqual([61, 62])
    const lettersAfter = await m.t.db
      .selectFrom('telemetry_rejects')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    expect(Number(lettersAfter.n)).toBe(Number(lettersBefore.n))
    expect(writer.stats().rejected).toEqual({})
    expect(logger.entries.filter((e) => e.level === 'error').map((e) => e.message)).toContain(
      'telemetry batch failed: the database lacks plantops-db tables or columns; run migrateToLatest(db). Retrying, nothing dropped',
    )
    await writer.close()
  })

  it('lowers random_page_cost inside its own transactions only, and never raises it', async () => {
    const { a } = await fleet()
    // A row trigger records the setting each row was written under.
    await sql`CREATE TABLE test_planner_costs (id serial PRIMARY KEY, cost float8)`.execute(m.t.db)
    await sql`CREATE FUNCTION test_record_cost() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO test_planner_costs (cost) VALUES (current_setting('random_page_cost')::float8); RETURN NULL; END $$`.execute(
      m.t.db,
    )
    await sql`CREATE TRIGGER test_record_cost AFTER INSERT ON telemetry FOR EACH ROW EXECUTE FUNCTION test_record_cost()`.execute(
      m.t.db,
    )
    const serverCost = async () =>
      Number(
        (await sql<{ cost: string }>`SELECT current_setting('random_page_cost') AS cost`.execute(m.t.db)).rows[0]!.cost,
      )
    try {
      const before = await serverCost()
      for (const [i, randomPageCost] of [undefined, null, 1_000, 0.5].entries()) {
        const writer = createTelemetryWriter(m.t.db, {
          ...quiet,
          concurrency: 1,
          ...(randomPageCost !== undefined && { randomPageCost }),
        })
        expect(
          await (await writer.write({ deviceId: a.id, time: minutesAgo(400 - i), humidity: 50 })).durable,
        ).toMatchObject({ status: 'written' })
        await writer.close()
      }
      const { rows } = await sql<{ cost: number }>`SELECT cost FROM test_planner_costs ORDER BY id`.execute(m.t.db)
      expect(rows.map((r) => r.cost)).toEqual([Math.min(before, 1.1), before, before, Math.min(before, 0.5)])
      expect(await serverCost()).toBe(before)
    } finally {
      await sql`DROP TRIGGER test_record_cost ON telemetry`.execute(m.t.db)
      await sql`DROP FUNCTION test_record_cost()`.execute(m.t.db)
      await sql`DROP TABLE test_planner_costs`.execute(m.t.db)
    }
    expect(() => createTelemetryWriter(m.t.db, { randomPageCost: 0 })).toThrow(/randomPageCost/)
  })

  it('follows plant reassignment and decommissioning between batches', async () => {
    const { plant, a } = await fleet({ soil_moisture: { min: 0, max: 100 } })
    const other = await m.repos.plants.create({ name: 'Other' })
    const writer = createTelemetryWriter(m.t.db, quiet)
    await (await writer.write({ deviceId: a.id, time: minutesAgo(30), humidity: 1 })).durable
    await m.repos.devices.assignPlant(a.id, other.id)
    await (await writer.write({ deviceId: a.id, time: minutesAgo(29), humidity: 2 })).durable
    await m.repos.devices.setStatus(a.id, 'decommissioned')
    const refused = await (await writer.write({ deviceId: a.id, time: minutesAgo(28), humidity: 3 })).durable
    expect(refused.reasons).toEqual(['decommissioned_device'])
    expect((await rowsOf(a.id)).map((r) => r.plant_id)).toEqual([plant.id, other.id])
    await writer.close()
  })

  it('holds at most its bound while the database is stalled, makes callers wait, and drops nothing', async () => {
    const { a } = await fleet()
    const writer = createTelemetryWriter(m.t.db, { ...quiet, batchSize: 20, maxBufferedRows: 100, maxBatchAgeMs: 10 })
    const release = await stall(backend, m.t)
    let accepted = 0
    let maxHeld = 0
    const producer = (async () => {
      for (let i = 0; i < 300; i += 1) {
        await writer.write({ deviceId: a.id, time: minutesAgo(1000 - i), humidity: i % 100 })
        accepted += 1
        maxHeld = Math.max(maxHeld, writer.stats().bufferedRows)
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(accepted).toBe(100)
    expect(writer.stats().bufferedRows).toBe(100)
    await release()
    await producer
    await writer.close()
    expect(maxHeld).toBeLessThanOrEqual(100)
    expect(await rowsOf(a.id)).toHaveLength(300)
  })

  it('refuses a receivedAt that is not a valid Date with a ValidationError, accepting nothing', async () => {
    const { a } = await fleet()
    const writer = createTelemetryWriter(m.t.db, quiet)
    const invalid = new Date(Number.NaN)
    await expect(writer.write({ deviceId: a.id, humidity: 1 }, { receivedAt: invalid })).rejects.toThrow(
      ValidationError,
    )
    await expect(
      writer.write({ deviceId: a.id, time: minutesAgo(500), humidity: 1 }, { receivedAt: invalid }),
    ).rejects.toThrow(/receivedAt: must be a valid Date/)
    await expect(writer.deadLetter({ payload: 'x', reason: 'decode_failed', receivedAt: invalid })).rejects.toThrow(
      ValidationError,
    )
    expect(writer.stats()).toMatchObject({ received: 0, bufferedRows: 0 })
    await writer.close()
    expect(await rowsOf(a.id)).toEqual([])
  })

  it('loses nothing when closed with packets in flight, and refuses packets after close', async () => {
    const { a } = await fleet()
    const writer = createTelemetryWriter(m.t.db, { ...quiet, batchSize: 64 })
    for (let i = 0; i < 500; i += 1)
      await writer.write({ deviceId: a.id, time: minutesAgo(2000 - i), humidity: i % 100 })
    await writer.close()
    expect(await rowsOf(a.id)).toHaveLength(500)
    expect(await rejectionOf(writer.write({ deviceId: a.id, humidity: 1 }))).toBeInstanceOf(WriterClosedError)
  })

  it('gives up only when told to, and then says which packets are not durable', async () => {
    const { a } = await fleet()
    const writer = createTelemetryWriter(m.t.db, quiet)
    const release = await stall(backend, m.t)
    try {
      const receipt = await writer.write({ deviceId: a.id, time: minutesAgo(3000), humidity: 5 })
      await writer.close({ timeoutMs: 300 })
      const error = await rejectionOf(receipt.durable)
      expect(error).toBeInstanceOf(WriterAbortedError)
      expect(error.message).toBe('the telemetry writer closed with 1 rows not yet durable; they were not written')
    } finally {
      await release()
    }
  })
})

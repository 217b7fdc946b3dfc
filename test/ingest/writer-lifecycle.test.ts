import { sql } from 'kysely'
import { expect, it } from 'vitest'
import {
  WriterClosedError,
  createDatabase,
  createTelemetryWriter,
  migrateToLatest,
  type BatchInfo,
  type WriteOutcome,
} from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { eventually } from '../support/eventually.js'
import { randomMac, rejectionOf, useMigratedDatabase } from '../support/migrated.js'

const BASE = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000

describeEachBackend('telemetry writer: close and statuses', (backend) => {
  const m = useMigratedDatabase(backend)
  const provision = async () => (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device

  async function count(deviceId: string): Promise<number> {
    const { rows } = await sql<{
      n: number
    }>`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${deviceId}`.execute(m.t.db)
    return rows[0]!.n
  }

  it('close() waits for write() calls still waiting for room: every write resolves, every receipt settles, every row is stored', async () => {
    const device = await provision()
    const writer = createTelemetryWriter(m.t.db, { logger: false, maxBufferedRows: 10, batchSize: 1_000 })
    let resolvedWrites = 0
    const writes = Array.from({ length: 40 }, (_, i) =>
      writer.write({ deviceId: device.id, time: BASE + i * 1_000, humidity: i }).then((receipt) => {
        resolvedWrites += 1
        return receipt
      }),
    )
    await writer.close()
    // close() returned: nothing may still be pending.
    expect(resolvedWrites).toBe(40)
    const outcomes: WriteOutcome[] = await Promise.all((await Promise.all(writes)).map((r) => r.durable))
    expect(outcomes.map((o) => o.status)).toEqual(Array(40).fill('written'))
    expect(await count(device.id)).toBe(40)
    expect(writer.stats()).toMatchObject({ written: 40, bufferedRows: 0, inFlightBatches: 0 })
    expect(await rejectionOf(writer.write({ deviceId: device.id, humidity: 1 }))).toBeInstanceOf(WriterClosedError)
  })

  it('reports each committed batch to onBatch (and to onFlush, its deprecated name), in agreement with stats()', async () => {
    const device = await provision()
    const seen: BatchInfo[] = []
    const writer = createTelemetryWriter(m.t.db, { logger: false, onBatch: (info) => seen.push(info) })
    await writer.write({ deviceId: device.id, time: BASE, humidity: 1 })
    await writer.write({ deviceId: device.id, time: BASE, humidity: 1 })
    await writer.write({ deviceId: 'dev_nobody', time: BASE, humidity: 1 })
    await writer.close()
    // Two lanes on PostgreSQL: the unknown device's packet may be a batch of its own.
    const total = (key: 'rows' | 'written' | 'duplicates' | 'rejected' | 'alerts') =>
      seen.reduce((sum, info) => sum + info[key], 0)
    expect([total('rows'), total('written'), total('duplicates'), total('rejected'), total('alerts')]).toEqual([
      3, 1, 1, 1, 0,
    ])
    expect(seen.map((info) => info.attempt)).toEqual(seen.map(() => 1))
    const last = seen.at(-1)!.durationMs
    expect(writer.stats()).toMatchObject({ batches: seen.length, written: 1, duplicates: 1, lastBatchMs: last })
    expect(writer.stats().lastFlushMs).toBe(last)

    const old: BatchInfo[] = []
    const legacy = createTelemetryWriter(m.t.db, { logger: false, onFlush: (info) => old.push(info) })
    await legacy.write({ deviceId: device.id, time: BASE + 1_000, humidity: 2 })
    await legacy.close()
    expect(old.map((info) => info.written)).toEqual([1])
    expect(() => createTelemetryWriter(m.t.db, { onBatch: () => {}, onFlush: () => {} })).toThrow(
      'invalid telemetry writer options: onFlush: give onBatch only: onFlush is its deprecated name',
    )
  })

  it('applies statuses in lane order with the readings: a reading before a last will does not undo it, one after it does', async () => {
    const [a, b] = [await provision(), await provision()]
    const writer = createTelemetryWriter(m.t.db, { logger: false, batchSize: 1_000, maxBatchAgeMs: 10_000 })
    const receipts = [
      await writer.write({ deviceId: a.id, time: BASE, humidity: 1 }),
      await writer.writeStatus(a.id, 'offline', { source: 'test' }),
      await writer.writeStatus(b.id, 'offline'),
      await writer.write({ deviceId: b.id, time: BASE + 1_000, humidity: 2 }),
    ]
    await writer.flush()
    expect((await Promise.all(receipts.map((r) => r.durable))).map((o) => o.status)).toEqual([
      'written',
      'written',
      'written',
      'written',
    ])
    expect((await m.repos.devices.get(a.id)).status).toBe('offline')
    expect((await m.repos.devices.get(b.id)).status).toBe('online')
    // A later batch with an older (backlog) reading of a: statuses follow arrival order, so it marks a online again.
    await writer.writeStatus(a.id, 'online')
    await writer.writeStatus(a.id, 'offline')
    await writer.close()
    expect((await m.repos.devices.get(a.id)).status).toBe('offline')
    expect(writer.stats().statusUpdates).toBe(4)
  })

  it('dead-letters statuses of unknown and retired devices and invalid ones, and never touches a retired device', async () => {
    const retired = await provision()
    await m.repos.devices.setStatus(retired.id, 'decommissioned')
    const writer = createTelemetryWriter(m.t.db, { logger: false })
    const nobody = `dev_nobody_${Date.now()}`
    const receipts = [
      await writer.writeStatus(nobody, 'offline', { source: 'status-test' }),
      await writer.writeStatus(retired.id, 'online', { source: 'status-test' }),
      await writer.writeStatus('not an id!', 'online', { source: 'status-test' }),
      await writer.writeStatus(retired.id, 'sleeping' as 'online', { source: 'status-test' }),
    ]
    const outcomes = await Promise.all(receipts.map((r) => r.durable))
    await writer.close()
    expect(outcomes.map((o) => o.reasons[0])).toEqual(['unknown_device', 'decommissioned_device', 'schema', 'schema'])
    const letters = await m.t.db
      .selectFrom('telemetry_rejects')
      .select(['reason', 'device_id'])
      .where('source', '=', 'status-test')
      .orderBy('reason')
      .orderBy('device_id')
      .execute()
    expect(letters).toEqual([
      { reason: 'decommissioned_device', device_id: retired.id },
      { reason: 'schema', device_id: retired.id },
      { reason: 'schema', device_id: 'not an id!' },
      { reason: 'unknown_device', device_id: nobody },
    ])
    expect((await m.repos.devices.get(retired.id)).status).toBe('decommissioned')
    expect(writer.stats().statusUpdates).toBe(0)
  })

  it('keeps a status through an unmigrated database until the tables exist; writeStatus never throws', async () => {
    if (backend.name !== 'pglite') return
    const db = createDatabase({ embedded: true })
    try {
      const writer = createTelemetryWriter(db, { logger: false, initialRetryDelayMs: 10, maxRetryDelayMs: 50 })
      const receipt = await writer.writeStatus('dev_later', 'offline', { source: 'unmigrated' })
      await eventually(() => writer.stats().retries >= 2, 'the writer retries the status against the missing tables')
      await migrateToLatest(db, { logger: false })
      expect(await receipt.durable).toMatchObject({ status: 'rejected', reasons: ['unknown_device'] })
      await writer.close()
      const letters = await db
        .selectFrom('telemetry_rejects')
        .select(['reason', 'device_id'])
        .where('source', '=', 'unmigrated')
        .execute()
      expect(letters).toEqual([{ reason: 'unknown_device', device_id: 'dev_later' }])
    } finally {
      await db.destroy()
    }
  })
})

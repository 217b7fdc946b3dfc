import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRepositories, createTelemetryWriter } from '../../src/index.js'
import { describeServer } from '../support/backends.js'
import { randomMac } from '../support/migrated.js'
import { expectRollupsMatchRaw } from '../support/rollups.js'
import { startProxiedServer, type ProxiedServer } from '../support/proxied-server.js'

describeServer('telemetry writer through a database outage', () => {
  let server: ProxiedServer

  beforeAll(async () => {
    server = await startProxiedServer()
  })
  afterAll(async () => {
    await server?.close()
  })

  it('keeps every accepted packet, writes each exactly once, and reports none durable before its commit', async () => {
    const { direct, proxy } = server
    const { device } = await createRepositories(direct, { passwordIterations: 1_000 }).devices.provision({
      macAddress: randomMac(),
      sensorTypes: [],
    })
    const db = server.throughProxy()
    const writer = createTelemetryWriter(db, { logger: false, batchSize: 50, maxBatchAgeMs: 20, maxRetryDelayMs: 300 })

    const total = 2_000
    const base = Math.floor(Date.now() / 1000) * 1000 - total * 1000
    const durableAt: number[] = []
    const outcomes: Promise<unknown>[] = []
    let cutAt = 0
    let restoredAt = 0
    for (let i = 0; i < total; i += 1) {
      if (i === 600) {
        await proxy.cut()
        cutAt = Date.now()
        setTimeout(() => void proxy.restore().then(() => (restoredAt = Date.now())), 2_000)
      }
      const receipt = await writer.write({ deviceId: device.id, time: base + i * 1000, humidity: i % 100 })
      outcomes.push(receipt.durable.then(() => durableAt.push(Date.now())))
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await Promise.all(outcomes)
    await writer.close()
    await db.destroy()

    expect(restoredAt).toBeGreaterThan(cutAt)
    expect(writer.stats().retries).toBeGreaterThan(0)
    expect(writer.stats().written + writer.stats().duplicates).toBe(total)
    // While the database was unreachable nothing could commit, so nothing may have been reported durable.
    const reportedDuringCut = durableAt.filter((t) => t > cutAt + 100 && t < restoredAt)
    expect(reportedDuringCut).toEqual([])
    const { rows } = await sql<{ n: number; distinct_times: number }>`
      SELECT count(*)::int AS n, count(DISTINCT time)::int AS distinct_times FROM telemetry WHERE device_id = ${device.id}`.execute(
      direct,
    )
    expect(rows[0]).toEqual({ n: total, distinct_times: total })
    // A batch whose COMMIT was cut may have landed; its retry finds the rows stored and must not count them again.
    expect(await expectRollupsMatchRaw(direct, [device.id])).toBe(total)
  })
})

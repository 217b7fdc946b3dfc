import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createDatabase, createRepositories, createTelemetryWriter, migrateToLatest, type Database } from '../../src/index.js'
import type { Kysely } from 'kysely'
import { createServerDatabase, describeServer } from '../support/backends.js'
import { randomMac } from '../support/migrated.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

describeServer('telemetry writer through a database outage', () => {
  let server: { url: string; drop(): Promise<void> }
  let direct: Kysely<Database>
  let proxy: TcpProxy

  beforeAll(async () => {
    server = await createServerDatabase()
    direct = createDatabase({ connectionString: server.url })
    await migrateToLatest(direct, { logger: false })
    const target = new URL(server.url)
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
  })
  afterAll(async () => {
    await proxy?.close()
    await direct?.destroy()
    await server?.drop()
  })

  it('keeps every accepted packet, writes each exactly once, and reports none durable before its commit', async () => {
    const { device } = await createRepositories(direct, { passwordIterations: 1_000 }).devices.provision({ macAddress: randomMac(), sensorTypes: [] })
    const proxied = new URL(server.url)
    proxied.port = String(proxy.port)
    const quiet = { debug() {}, info() {}, warn() {}, error() {} }
    const db = createDatabase({ connectionString: proxied.toString(), connectionTimeoutMs: 500, logger: quiet })
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
      SELECT count(*)::int AS n, count(DISTINCT time)::int AS distinct_times FROM telemetry WHERE device_id = ${device.id}`.execute(direct)
    expect(rows[0]).toEqual({ n: total, distinct_times: total })
  })
})

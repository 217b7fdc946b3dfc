import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRepositories, createTelemetryWriter } from '../../src/index.js'
import { createMqttIngestor } from '../../src/mqtt/index.js'
import { startAedes } from '../support/aedes.js'
import { describeServer } from '../support/backends.js'
import { eventually } from '../support/eventually.js'
import { randomMac } from '../support/migrated.js'
import { startProxiedServer, type ProxiedServer } from '../support/proxied-server.js'

describeServer('MQTT ingestion through a database outage', () => {
  let server: ProxiedServer
  let broker: { url: string; stop(): Promise<void> }

  beforeAll(async () => {
    server = await startProxiedServer()
    broker = await startAedes()
  })
  afterAll(async () => {
    await broker?.stop()
    await server?.close()
  })

  it('stops acknowledging while the database is away, resumes by itself, loses and repeats nothing, stays bounded', async () => {
    const { direct, proxy } = server
    const { device } = await createRepositories(direct, { passwordIterations: 1_000 }).devices.provision({
      macAddress: randomMac(),
      sensorTypes: [],
    })
    const db = server.throughProxy()
    const bound = 300
    const writer = createTelemetryWriter(db, {
      logger: false,
      batchSize: 100,
      maxBufferedRows: bound,
      maxBatchAgeMs: 20,
      maxRetryDelayMs: 300,
    })
    const prefix = `plantops-${randomBytes(3).toString('hex')}`
    const ingestor = await createMqttIngestor({
      url: broker.url,
      writer,
      clientId: `ingest-outage-${randomBytes(3).toString('hex')}`,
      topicPrefix: prefix,
      logger: false,
    })
    const publisher = await mqtt.connectAsync(broker.url, { clientId: `pub-${randomBytes(3).toString('hex')}` })

    let maxBuffered = 0
    const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, writer.stats().bufferedRows)), 5)
    const total = 3_000
    const base = Math.floor(Date.now() / 1000) * 1000 - total * 1000
    let heldDuringCut = 0
    for (let i = 0; i < total; i += 1) {
      if (i === 1_000) {
        await proxy.cut()
        setTimeout(() => {
          heldDuringCut = ingestor.stats().heldAcks
          void proxy.restore()
        }, 3_000)
      }
      await publisher.publishAsync(
        `${prefix}/${device.id}/telemetry`,
        JSON.stringify({ time: base + i * 1000, humidity: i % 100 }),
        { qos: 1 },
      )
    }
    await eventually(
      async () => {
        const { rows } = await sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`.execute(direct)
        return rows[0]!.n >= total
      },
      'every message is stored after the database came back',
      60_000,
    )
    clearInterval(sampler)
    await ingestor.close({ forgetSession: true })
    await writer.close()
    await publisher.endAsync()
    await db.destroy()

    const { rows } = await sql<{ n: number; distinct: number }>`
      SELECT count(*)::int AS n, count(DISTINCT time)::int AS distinct FROM telemetry WHERE device_id = ${device.id}`.execute(
      direct,
    )
    expect(rows[0]).toEqual({ n: total, distinct: total })
    expect(writer.stats().retries).toBeGreaterThan(0)
    expect(maxBuffered).toBeLessThanOrEqual(bound)
    // While the database was away, messages waited unacknowledged at the broker's side of the window.
    expect(heldDuringCut).toBeGreaterThan(0)
    expect(heldDuringCut).toBeLessThanOrEqual(bound)
  })
})

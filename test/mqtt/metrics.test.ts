import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { createTelemetryWriter } from '../../src/index.js'
import { createMqttIngestor } from '../../src/mqtt/index.js'
import { aedesBroker, machineBroker } from '../support/brokers.js'
import { backends } from '../support/backends.js'
import { eventually } from '../support/eventually.js'
import { inMemoryMeter, pointValue } from '../support/metrics.js'
import { randomMac, useMigratedDatabase } from '../support/migrated.js'

for (const broker of [aedesBroker, machineBroker]) {
  for (const backend of backends.filter((b) => b.name !== 'timescaledb')) {
    const define = broker.enabled && backend.enabled ? describe : describe.skip
    define(`ingestor metrics through OpenTelemetry [${broker.name}, ${backend.name}]`, () => {
      const m = useMigratedDatabase(backend)

      it('exports stats() exactly: messages consumed, dead letters, statuses, and per connection held PUBACKs and connected', async () => {
        const { url, stop } = await broker.start()
        const metrics = inMemoryMeter()
        const publisher = await mqtt.connectAsync(url, { clientId: `pub-${randomBytes(3).toString('hex')}` })
        const clientId = `metrics-${randomBytes(4).toString('hex')}`
        const topicPrefix = `plantops-${randomBytes(3).toString('hex')}`
        const writer = createTelemetryWriter(m.t.db, { logger: false, maxBatchAgeMs: 20, meter: metrics.meter })
        const ingestor = await createMqttIngestor({
          url,
          writer,
          clientId,
          topicPrefix,
          logger: false,
          meter: metrics.meter,
        })
        try {
          const devices = await Promise.all(
            [0, 1, 2].map(
              async () => (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device,
            ),
          )
          const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000
          for (const device of devices) {
            for (let i = 0; i < 30; i += 1) {
              const body = JSON.stringify({ time: base + i * 1000, humidity: 40 + i })
              await publisher.publishAsync(`${topicPrefix}/${device.id}/telemetry`, body, { qos: 1 })
            }
          }
          await publisher.publishAsync(`${topicPrefix}/${devices[0]!.id}/telemetry`, '{not json', { qos: 1 })
          await publisher.publishAsync(`${topicPrefix}/${devices[1]!.id}/status`, 'offline', { qos: 1 })
          await eventually(
            () =>
              writer.stats().written === 90 && ingestor.stats().heldAcks === 0 && writer.stats().statusUpdates === 1,
            'every message is durable and acknowledged',
          )

          const points = await metrics.collect()
          const stats = ingestor.stats()
          const consumed = points.get('messaging.client.consumed.messages')!
          expect(consumed).toHaveLength(1)
          expect(consumed[0]!.value).toBe(stats.received)
          expect(stats.received).toBe(92)
          expect(consumed[0]!.attributes['messaging.system']).toBe('mqtt')
          expect(pointValue(points, 'plantops.mqtt.dead_lettered')).toBe(stats.deadLettered)
          expect(stats.deadLettered).toBe(1)
          expect(pointValue(points, 'plantops.mqtt.status_updates')).toBe(stats.statusUpdates)
          for (const c of stats.connections) {
            const id = { 'messaging.client.id': c.clientId }
            expect(pointValue(points, 'plantops.mqtt.held_acks', id)).toBe(0)
            expect(pointValue(points, 'plantops.mqtt.connected', id)).toBe(1)
            expect(pointValue(points, 'plantops.mqtt.renewals', id)).toBe(c.renewals)
          }
          expect(points.get('plantops.mqtt.connected')).toHaveLength(stats.connections.length)

          const { rows } = await sql<{ n: number }>`
            SELECT count(*)::int AS n FROM telemetry WHERE device_id IN (${sql.join(devices.map((d) => d.id))})`.execute(
            m.t.db,
          )
          expect(pointValue(points, 'plantops.writer.rows.written')).toBe(rows[0]!.n)
          expect(rows[0]!.n).toBe(90)
        } finally {
          await ingestor.close({ forgetSession: true })
          await writer.close()
          await publisher.endAsync()
          await metrics.close()
          await stop()
        }
      })
    })
  }
}

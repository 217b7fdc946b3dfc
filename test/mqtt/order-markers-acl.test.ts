import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { createDatabase, createRepositories, createTelemetryWriter, migrateToLatest } from '../../src/index.js'
import { createMqttIngestor } from '../../src/mqtt/index.js'
import { eventually } from '../support/eventually.js'
import { randomMac } from '../support/migrated.js'
import { mosquittoEnabled, startMosquitto } from '../support/mosquitto.js'

/** A private Mosquitto whose ACL file, for anonymous clients, is `acl`. */
async function brokerWithAcl(acl: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'plantops-acl-'))
  const path = join(dir, 'acl')
  await writeFile(path, `${acl.join('\n')}\n`, { mode: 0o644 })
  const broker = await startMosquitto({ config: ['allow_anonymous true', `acl_file ${path}`] })
  return {
    url: broker.url,
    async dispose() {
      await broker.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

const define = mosquittoEnabled ? describe : describe.skip

define('order markers on a broker whose ACL refuses their topic', () => {
  it('statuses still land: after 15 s once, then as they arrive, with one warning naming the topic', async () => {
    const prefix = `acl${randomBytes(3).toString('hex')}`
    // Mosquitto 2.0 grants a subscription its ACL forbids and then delivers nothing on it.
    const broker = await brokerWithAcl([`topic readwrite ${prefix}/#`])
    const db = createDatabase({ embedded: true, logger: false })
    const warnings: string[] = []
    const logger = { debug() {}, info() {}, error() {}, warn: (_: object, message: string) => warnings.push(message) }
    const writer = createTelemetryWriter(db, { logger: false })
    const publisher = await mqtt.connectAsync(broker.url)
    const clientId = `acl-${randomBytes(3).toString('hex')}`
    try {
      await migrateToLatest(db, { logger: false })
      const device = (await createRepositories(db).devices.provision({ macAddress: randomMac(), sensorTypes: [] }))
        .device.id
      const ingestor = await createMqttIngestor({ url: broker.url, writer, clientId, topicPrefix: prefix, logger })
      expect(ingestor.stats().connections).toHaveLength(2)
      const status = async (value: string) => {
        await publisher.publishAsync(`${prefix}/${device}/status`, value, { qos: 1 })
        const started = Date.now()
        await eventually(
          async () => (await createRepositories(db).devices.get(device)).status === value,
          `"${value}" is applied`,
          25_000,
        )
        return Date.now() - started
      }
      await publisher.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ humidity: 40 }), { qos: 1 })
      await eventually(() => writer.stats().written === 1, 'the reading is written at once')
      expect(await status('offline')).toBeGreaterThanOrEqual(14_000)
      expect(await status('online')).toBeLessThan(10_000)
      expect(ingestor.stats().statusUpdates).toBe(2)
      const named = warnings.filter((w) => w.includes(`"plantops-ingestors/${clientId}/order" never came back`))
      expect(named).toHaveLength(1)
      await ingestor.close({ forgetSession: true })
    } finally {
      await publisher.endAsync()
      await writer.close()
      await db.destroy()
      await broker.dispose()
    }
  }, 60_000)
})

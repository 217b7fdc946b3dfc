import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sql, type Kysely } from 'kysely'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, createRepositories, migrateToLatest, type Database } from '../../src/index.js'
import { createServerDatabase, describeServer } from '../support/backends.js'
import { eventually } from '../support/eventually.js'
import { randomMac } from '../support/migrated.js'
import { mosquittoEnabled, startMosquitto, type MosquittoBroker } from '../support/mosquitto.js'
import { RUNTIME_DEPENDENCIES, outsideProject } from '../support/outside-project.js'

/** A host service: writer + ingestor from the installed package, closed gracefully on SIGTERM. */
const INGESTOR_SCRIPT = `
import { createDatabase, createTelemetryWriter } from 'plantops-db'
import { createMqttIngestor } from 'plantops-db/mqtt'
const db = createDatabase({ logger: { debug() {}, info() {}, warn() {}, error() {} } })
const writer = createTelemetryWriter(db, { logger: false, maxBatchAgeMs: 20 })
const ingestor = await createMqttIngestor({
  url: process.env.MQTT_URL, writer, clientId: process.env.CLIENT_ID, topicPrefix: process.env.PREFIX,
  shareGroup: process.env.SHARE_GROUP || undefined, protocolVersion: 5, logger: false,
})
process.on('SIGTERM', async () => { await ingestor.close({ forgetSession: true }); await writer.close(); await db.destroy(); process.exit(0) })
console.log('ready')
`

const define = mosquittoEnabled ? describeServer : describe.skip

define('ingestor processes', () => {
  let server: { url: string; drop(): Promise<void> }
  let db: Kysely<Database>
  let broker: MosquittoBroker
  /** Debian's limits: 1,000 messages queued per session, then dropped. */
  let stockBroker: MosquittoBroker
  let publisher: MqttClient
  let project: { dir: string; remove(): Promise<void> }
  const children = new Set<ChildProcess>()

  beforeAll(async () => {
    server = await createServerDatabase()
    db = createDatabase({ connectionString: server.url })
    await migrateToLatest(db, { logger: false })
    broker = await startMosquitto({ config: ['max_inflight_messages 0', 'max_queued_messages 100000'] })
    stockBroker = await startMosquitto({ stock: true })
    publisher = await mqtt.connectAsync(broker.url, { clientId: `publisher-${randomBytes(3).toString('hex')}` })
    project = await outsideProject([...RUNTIME_DEPENDENCIES, 'mqtt'])
    await writeFile(join(project.dir, 'ingest.mjs'), INGESTOR_SCRIPT)
  })
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL')
    await publisher?.endAsync()
    await broker?.stop()
    await stockBroker?.stop()
    await project?.remove()
    await db?.destroy()
    await server?.drop()
  })

  async function spawnIngestor(env: {
    CLIENT_ID: string
    PREFIX: string
    SHARE_GROUP?: string
    MQTT_URL?: string
  }): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['ingest.mjs'], {
      cwd: project.dir,
      env: { ...process.env, DATABASE_URL: server.url, MQTT_URL: broker.url, SHARE_GROUP: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    child.once('exit', () => children.delete(child))
    let errors = ''
    child.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()))
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve())
      child.once('exit', (code) => reject(new Error(`ingestor exited with ${code}: ${errors}`)))
    })
    return child
  }

  function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return new Promise((resolve) => {
      child.once('exit', () => resolve())
      child.kill(signal)
    })
  }

  /** `total` readings at `rate` a second from a publisher of its own on `url`, calling `action` once at message `at`. */
  async function pacedStream(
    url: string,
    prefix: string,
    deviceId: string,
    total: number,
    rate: number,
    at: number,
    action: () => Promise<void>,
  ) {
    const client = await mqtt.connectAsync(url, { clientId: `paced-${randomBytes(3).toString('hex')}` })
    const base = Math.floor(Date.now() / 1000) * 1000 - total * 1000
    const sends: Promise<unknown>[] = []
    let acting: Promise<void> | undefined
    const started = Date.now()
    for (let i = 0; i < total; i += 1) {
      if (i === at) acting = action()
      const due = started + (i * 1000) / rate
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()))
      sends.push(
        client.publishAsync(
          `${prefix}/${deviceId}/telemetry`,
          JSON.stringify({ time: base + i * 1000, humidity: i % 100 }),
          { qos: 1 },
        ),
      )
    }
    await Promise.all(sends)
    await acting
    await client.endAsync()
  }

  async function stored(deviceId: string): Promise<{ n: number; distinct: number }> {
    const { rows } = await sql<{ n: number; distinct: number }>`
      SELECT count(*)::int AS n, count(DISTINCT time)::int AS distinct FROM telemetry WHERE device_id = ${deviceId}`.execute(
      db,
    )
    return rows[0]!
  }

  async function publishStream(
    prefix: string,
    deviceId: string,
    total: number,
    at: number,
    action: () => Promise<void>,
  ) {
    const base = Math.floor(Date.now() / 1000) * 1000 - total * 1000
    for (let i = 0; i < total; i += 1) {
      if (i === at) await action()
      await publisher.publishAsync(
        `${prefix}/${deviceId}/telemetry`,
        JSON.stringify({ time: base + i * 1000, humidity: i % 100 }),
        { qos: 1 },
      )
    }
  }

  it('an ingestor killed with SIGKILL and started again with the same client id loses and repeats nothing', async () => {
    const prefix = `plantops-${randomBytes(3).toString('hex')}`
    const { device } = await createRepositories(db, { passwordIterations: 1_000 }).devices.provision({
      macAddress: randomMac(),
      sensorTypes: [],
    })
    const clientId = `ingest-kill-${randomBytes(3).toString('hex')}`
    let child = await spawnIngestor({ CLIENT_ID: clientId, PREFIX: prefix })
    await publishStream(prefix, device.id, 3_000, 1_000, async () => {
      await kill(child)
      child = await spawnIngestor({ CLIENT_ID: clientId, PREFIX: prefix })
    })
    await eventually(async () => (await stored(device.id)).n >= 3_000, 'all 3,000 messages are stored', 60_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await stored(device.id)).toEqual({ n: 3_000, distinct: 3_000 })
    child.kill('SIGTERM')
  })

  it('three ingestors in one share group split the stream; one killed mid-stream and restarted, every message lands once', async () => {
    const prefix = `plantops-${randomBytes(3).toString('hex')}`
    const { device } = await createRepositories(db, { passwordIterations: 1_000 }).devices.provision({
      macAddress: randomMac(),
      sensorTypes: [],
    })
    const ids = [0, 1, 2].map((i) => `ingest-group-${i}-${randomBytes(2).toString('hex')}`)
    const group = await Promise.all(
      ids.map((id) => spawnIngestor({ CLIENT_ID: id, PREFIX: prefix, SHARE_GROUP: 'ingest' })),
    )
    await publishStream(prefix, device.id, 3_000, 1_000, async () => {
      await kill(group[1]!)
      group[1] = await spawnIngestor({ CLIENT_ID: ids[1]!, PREFIX: prefix, SHARE_GROUP: 'ingest' })
    })
    await eventually(async () => (await stored(device.id)).n >= 3_000, 'all 3,000 messages are stored', 60_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await stored(device.id)).toEqual({ n: 3_000, distinct: 3_000 })
    for (const child of group) child.kill('SIGTERM')
  })

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`stock-config broker, two ingestors in one share group under load: one stopped with ${signal} and restarted, 0 lost`, async () => {
      const prefix = `plantops-${randomBytes(3).toString('hex')}`
      const { device } = await createRepositories(db, { passwordIterations: 1_000 }).devices.provision({
        macAddress: randomMac(),
        sensorTypes: [],
      })
      const ids = [0, 1].map((i) => `ingest-ha-${i}-${randomBytes(2).toString('hex')}`)
      const member = (id: string) =>
        spawnIngestor({ CLIENT_ID: id, PREFIX: prefix, SHARE_GROUP: 'ha', MQTT_URL: stockBroker.url })
      const group = await Promise.all(ids.map(member))
      // SIGTERM leaves the group (unsubscribe, drain, end the session): the other member takes the whole
      // stream, however long the new instance takes to start (3 s here: 3,000 messages, three times the queue).
      // SIGKILL leaves the session behind: the broker queues its share (1,000 at most) until the restart takes it.
      const rate = signal === 'SIGTERM' ? 2_000 : 500
      await pacedStream(stockBroker.url, prefix, device.id, rate * 6, rate, rate * 2, async () => {
        await kill(group[1]!, signal)
        if (signal === 'SIGTERM') await new Promise((resolve) => setTimeout(resolve, 3_000))
        group[1] = await member(ids[1]!)
      })
      await eventually(
        async () => (await stored(device.id)).n >= rate * 6,
        `all ${rate * 6} messages are stored`,
        60_000,
      ).catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await stored(device.id)).toEqual({ n: rate * 6, distinct: rate * 6 })
      expect(stockBroker.log()).not.toContain('dropped')
      await Promise.all(group.map((child) => kill(child, 'SIGTERM')))
    }, 90_000)
  }
})

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
  let publisher: MqttClient
  let project: { dir: string; remove(): Promise<void> }
  const children = new Set<ChildProcess>()

  beforeAll(async () => {
    server = await createServerDatabase()
    db = createDatabase({ connectionString: server.url })
    await migrateToLatest(db, { logger: false })
    broker = await startMosquitto({ config: ['max_inflight_messages 0', 'max_queued_messages 100000'] })
    publisher = await mqtt.connectAsync(broker.url, { clientId: `publisher-${randomBytes(3).toString('hex')}` })
    project = await outsideProject([...RUNTIME_DEPENDENCIES, 'mqtt'])
    await writeFile(join(project.dir, 'ingest.mjs'), INGESTOR_SCRIPT)
  })
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL')
    await publisher?.endAsync()
    await broker?.stop()
    await project?.remove()
    await db?.destroy()
    await server?.drop()
  })

  async function spawnIngestor(env: { CLIENT_ID: string; PREFIX: string; SHARE_GROUP?: string }): Promise<ChildProcess> {
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

  function kill(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }

  async function stored(deviceId: string): Promise<{ n: number; distinct: number }> {
    const { rows } = await sql<{ n: number; distinct: number }>`
      SELECT count(*)::int AS n, count(DISTINCT time)::int AS distinct FROM telemetry WHERE device_id = ${deviceId}`.execute(db)
    return rows[0]!
  }

  async function publishStream(prefix: string, deviceId: string, total: number, at: number, action: () => Promise<void>) {
    const base = Math.floor(Date.now() / 1000) * 1000 - total * 1000
    for (let i = 0; i < total; i += 1) {
      if (i === at) await action()
      await publisher.publishAsync(`${prefix}/${deviceId}/telemetry`, JSON.stringify({ time: base + i * 1000, humidity: i % 100 }), { qos: 1 })
    }
  }

  it('an ingestor killed with SIGKILL and started again with the same client id loses and repeats nothing', async () => {
    const prefix = `plantops-${randomBytes(3).toString('hex')}`
    const { device } = await createRepositories(db, { passwordIterations: 1_000 }).devices.provision({ macAddress: randomMac(), sensorTypes: [] })
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
    const { device } = await createRepositories(db, { passwordIterations: 1_000 }).devices.provision({ macAddress: randomMac(), sensorTypes: [] })
    const ids = [0, 1, 2].map((i) => `ingest-group-${i}-${randomBytes(2).toString('hex')}`)
    const group = await Promise.all(ids.map((id) => spawnIngestor({ CLIENT_ID: id, PREFIX: prefix, SHARE_GROUP: 'ingest' })))
    await publishStream(prefix, device.id, 3_000, 1_000, async () => {
      await kill(group[1]!)
      group[1] = await spawnIngestor({ CLIENT_ID: ids[1]!, PREFIX: prefix, SHARE_GROUP: 'ingest' })
    })
    await eventually(async () => (await stored(device.id)).n >= 3_000, 'all 3,000 messages are stored', 60_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await stored(device.id)).toEqual({ n: 3_000, distinct: 3_000 })
    for (const child of group) child.kill('SIGTERM')
  })
})

import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRepositories, verifyDevicePassword } from '../../src/index.js'
import { backends, type TestDatabase } from '../support/backends.js'
import { mosquittoEnabled, startMosquitto, type MosquittoBroker } from '../support/mosquitto.js'
import { randomMac } from '../support/migrated.js'

const run = promisify(execFile)

/** Connects once, without retrying, and reports how the broker answered. */
async function tryConnect(url: string, username: string, password: string): Promise<'accepted' | string> {
  const client = mqtt.connect(url, {
    username,
    password,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    protocolVersion: 4,
  })
  try {
    return await new Promise((resolve) => {
      client.once('connect', () => resolve('accepted'))
      client.once('error', (error) => resolve(`${(error as { code?: number }).code}: ${error.message}`))
    })
  } finally {
    await client.endAsync(true)
  }
}

const define = mosquittoEnabled ? describe : describe.skip

define('device credentials against a real Mosquitto', () => {
  let t: TestDatabase
  let broker: MosquittoBroker | undefined

  beforeAll(async () => {
    t = await backends[0]!.open()
    const { migrateToLatest } = await import('../../src/index.js')
    await migrateToLatest(t.db, { logger: false })
  })
  afterAll(async () => {
    await broker?.stop()
    await t.close()
  })

  it('accepts a provisioned device and refuses a wrong password', async () => {
    const { devices } = createRepositories(t.db) // the default, 210 000 iterations
    const { credentials } = await devices.provision({ macAddress: randomMac(), sensorTypes: ['soil_moisture'] })
    const retired = await devices.provision({ macAddress: randomMac(), sensorTypes: [] })
    await devices.setStatus(retired.device.id, 'decommissioned')

    broker = await startMosquitto({ passwordFile: await devices.mosquittoPasswordFile() })
    expect(await tryConnect(broker.url, credentials.username, credentials.password), broker.log()).toBe('accepted')
    expect(await tryConnect(broker.url, credentials.username, `${credentials.password}!`)).toBe(
      '5: Connection refused: Not authorized',
    )
    expect(await tryConnect(broker.url, retired.credentials.username, retired.credentials.password)).toBe(
      '5: Connection refused: Not authorized',
    )
  })

  it('verifies a line written by mosquitto_passwd', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plantops-passwd-'))
    try {
      const file = join(dir, 'passwd')
      await run('mosquitto_passwd', ['-c', '-b', file, 'dev_from_cli', 'correct horse'])
      const [username, hash] = (await readFile(file, 'utf8')).trim().split(':') as [string, string]
      expect(hash).toMatch(/^\$7\$\d+\$/)
      expect(await verifyDevicePassword('correct horse', hash)).toBe(true)
      expect(await verifyDevicePassword('wrong horse', hash)).toBe(false)

      await sql`INSERT INTO devices (id, mqtt_username, mqtt_password_hash) VALUES (${username}, ${username}, ${hash})`.execute(
        t.db,
      )
      const { devices } = createRepositories(t.db)
      expect((await devices.verifyCredentials(username, 'correct horse'))?.id).toBe(username)
      expect(await devices.verifyCredentials(username, 'wrong horse')).toBeNull()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

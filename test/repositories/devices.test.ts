import { sql, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs } from 'kysely'
import { expect, it } from 'vitest'
import {
  ConflictError,
  InvalidStateError,
  MissingReferenceError,
  NotFoundError,
  ValidationError,
  createRepositories,
} from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { TEST_PASSWORD_ITERATIONS, randomMac, rejectionOf, useMigratedDatabase } from '../support/migrated.js'

/** Counts the statements a repository sends. */
function statementCounter(): KyselyPlugin & { count: number } {
  const counter = {
    count: 0,
    transformQuery(args: PluginTransformQueryArgs) {
      counter.count += 1
      return args.node
    },
    async transformResult(args: PluginTransformResultArgs) {
      return args.result
    },
  }
  return counter
}

describeEachBackend('devices repository', (backend) => {
  const m = useMigratedDatabase(backend)
  const provision = (extra: Record<string, unknown> = {}) =>
    m.repos.devices.provision({
      macAddress: randomMac(),
      sensorTypes: ['soil_moisture', 'temperature'],
      firmwareVersion: '1.0.0',
      ...extra,
    })

  async function storedHash(id: string): Promise<string> {
    const { rows } = await sql<{
      hash: string
    }>`SELECT mqtt_password_hash AS hash FROM devices WHERE id = ${id}`.execute(m.t.db)
    return rows[0]!.hash
  }

  it('never returns the password hash from a read: provision, get, find, by MAC, by username, list, changes, verify', async () => {
    const plant = await m.repos.plants.create({ name: 'Secretless fern' })
    const { device, credentials } = await provision()
    const reads = [
      device,
      await m.repos.devices.get(device.id),
      await m.repos.devices.find(device.id),
      await m.repos.devices.getByMac(device.mac_address!),
      await m.repos.devices.getByUsername(credentials.username),
      ...(await m.repos.devices.list({ limit: 500 })).items,
      await m.repos.devices.assignPlant(device.id, plant.id),
      await m.repos.devices.unassignPlant(device.id),
      await m.repos.devices.setStatus(device.id, 'online'),
      await m.repos.devices.verifyCredentials(credentials.username, credentials.password),
    ]
    for (const read of reads) {
      expect(read).not.toHaveProperty('mqtt_password_hash')
      expect(JSON.stringify(read)).not.toContain(await storedHash(device.id))
    }
    expect(reads.length).toBeGreaterThanOrEqual(10)
  })

  it('provisions a device with credentials, storing only a Mosquitto-format hash', async () => {
    const mac = randomMac().toUpperCase().replaceAll(':', '-')
    const { device, credentials } = await m.repos.devices.provision({
      macAddress: mac,
      sensorTypes: ['humidity'],
      firmwareVersion: '2.1',
    })
    expect(device).toEqual({
      id: expect.stringMatching(/^dev_[a-z2-7]{16}$/),
      mac_address: mac.toLowerCase().replaceAll('-', ':'),
      mqtt_username: device.id,
      plant_id: null,
      status: 'provisioning',
      firmware_version: '2.1',
      sensor_types: ['humidity'],
      last_seen_at: null,
      created_at: expect.any(Date),
    })
    expect(credentials).toEqual({ username: device.id, password: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) })
    const hash = await storedHash(device.id)
    expect(hash).toMatch(new RegExp(`^\\$7\\$${TEST_PASSWORD_ITERATIONS}\\$[A-Za-z0-9+/]{16}\\$[A-Za-z0-9+/]{86}==$`))
    expect(hash).not.toContain(credentials.password)
    expect(await m.repos.devices.verifyCredentials(credentials.username, credentials.password)).toEqual(device)
    expect(await m.repos.devices.verifyCredentials(credentials.username, `${credentials.password}x`)).toBeNull()
    expect(await m.repos.devices.verifyCredentials('dev_nobody', credentials.password)).toBeNull()
  })

  it('hashes with 210 000 PBKDF2-SHA512 iterations by default', async () => {
    const { devices } = createRepositories(m.t.db)
    const { device, credentials } = await devices.provision({ macAddress: randomMac(), sensorTypes: [] })
    expect(await storedHash(device.id)).toMatch(/^\$7\$210000\$/)
    expect(await devices.verifyCredentials(credentials.username, credentials.password)).toEqual(device)
  })

  it('treats two spellings of one MAC address as the same, and conflicting', async () => {
    const mac = randomMac()
    await provision({ macAddress: mac })
    const dotted = mac
      .replaceAll(':', '')
      .toUpperCase()
      .replace(/(.{4})(.{4})(.{4})/, '$1.$2.$3')
    const error = await rejectionOf(provision({ macAddress: dotted }))
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({
      entity: 'device',
      field: 'macAddress',
      message: `device macAddress "${mac}" is already taken`,
    })
    expect((await m.repos.devices.getByMac(dotted)).mac_address).toBe(mac)
  })

  it('refuses malformed input with field paths', async () => {
    const error = await rejectionOf(
      m.repos.devices.provision({
        macAddress: 'AA:BB:CC',
        sensorTypes: ['soil_moisture', 'soil_moisture', 'co2'],
      } as never),
    )
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual([['macAddress'], ['sensorTypes', 2]])
    const repeated = await rejectionOf(provision({ sensorTypes: ['humidity', 'humidity'] }))
    expect((repeated as ValidationError).issues).toEqual([
      { path: ['sensorTypes'], message: 'sensor types must not repeat' },
    ])
  })

  it('refuses an unknown plant with MissingReferenceError', async () => {
    const error = await rejectionOf(provision({ plantId: 'plant_absent' }))
    expect(error).toBeInstanceOf(MissingReferenceError)
    expect(error).toMatchObject({
      entity: 'plant',
      key: 'plant_absent',
      message: 'plant "plant_absent" does not exist',
    })
  })

  it('assigns and unassigns plants; a decommissioned device is frozen', async () => {
    const plant = await m.repos.plants.create({ name: 'Monstera' })
    const { device, credentials } = await provision()
    expect((await m.repos.devices.assignPlant(device.id, plant.id)).plant_id).toBe(plant.id)
    expect((await m.repos.devices.list({ plantId: plant.id })).items.map((d) => d.id)).toEqual([device.id])
    expect(await rejectionOf(m.repos.devices.assignPlant(device.id, 'plant_absent'))).toBeInstanceOf(
      MissingReferenceError,
    )
    expect((await m.repos.devices.unassignPlant(device.id)).plant_id).toBeNull()

    expect((await m.repos.devices.setStatus(device.id, 'decommissioned')).status).toBe('decommissioned')
    const frozen = await rejectionOf(m.repos.devices.assignPlant(device.id, plant.id))
    expect(frozen).toEqual(new InvalidStateError(`device "${device.id}" is decommissioned and cannot be changed`))
    expect(await rejectionOf(m.repos.devices.setStatus(device.id, 'online'))).toBeInstanceOf(InvalidStateError)
    expect(await rejectionOf(m.repos.devices.rotateCredentials(device.id))).toBeInstanceOf(InvalidStateError)
    expect(await m.repos.devices.verifyCredentials(credentials.username, credentials.password)).toBeNull()
    expect(await rejectionOf(m.repos.devices.assignPlant('dev_absent', plant.id))).toEqual(
      new NotFoundError('device', 'dev_absent'),
    )
    expect(await rejectionOf(m.repos.devices.setStatus(device.id, 'provisioning' as never))).toBeInstanceOf(
      ValidationError,
    )
  })

  it('rotates credentials: the old password stops working', async () => {
    const { device, credentials } = await provision()
    const fresh = await m.repos.devices.rotateCredentials(device.id)
    expect(fresh.username).toBe(credentials.username)
    expect(fresh.password).not.toBe(credentials.password)
    expect(await m.repos.devices.verifyCredentials(credentials.username, credentials.password)).toBeNull()
    expect((await m.repos.devices.verifyCredentials(fresh.username, fresh.password))?.id).toBe(device.id)
  })

  it('gives a device adopted without a username working credentials when rotated', async () => {
    const id = `dev_adopted_${Math.random().toString(36).slice(2, 10)}`
    await sql`INSERT INTO devices (id, mqtt_password_hash) VALUES (${id}, 'unknown')`.execute(m.t.db)
    const credentials = await m.repos.devices.rotateCredentials(id)
    expect(credentials.username).toBe(id)
    expect((await m.repos.devices.verifyCredentials(credentials.username, credentials.password))?.id).toBe(id)
    expect(
      (await m.repos.devices.mosquittoPasswordFile()).split('\n').some((line) => line.startsWith(`${id}:$7$`)),
    ).toBe(true)
  })

  it('marks many devices seen in one statement: newest time wins, decommissioned untouched', async () => {
    const [a, b, c] = await Promise.all([provision(), provision(), provision()])
    await m.repos.devices.setStatus(c!.device.id, 'decommissioned')
    const counter = statementCounter()
    const changed = await createRepositories(m.t.db.withPlugin(counter)).devices.markSeen([
      { deviceId: a!.device.id, time: new Date('2026-01-01T10:00:00Z') },
      { deviceId: a!.device.id, time: '2026-01-01T12:00:00Z' },
      { deviceId: a!.device.id, time: new Date('2026-01-01T11:00:00Z') },
      { deviceId: b!.device.id, time: new Date('2026-01-01T09:00:00Z') },
      { deviceId: c!.device.id, time: new Date('2026-01-01T09:00:00Z') },
      { deviceId: 'dev_absent', time: new Date('2026-01-01T09:00:00Z') },
    ])
    expect(counter.count).toBe(1)
    expect(changed).toBe(2)
    expect(await m.repos.devices.get(a!.device.id)).toMatchObject({
      status: 'online',
      last_seen_at: new Date('2026-01-01T12:00:00Z'),
    })
    expect(await m.repos.devices.get(b!.device.id)).toMatchObject({
      status: 'online',
      last_seen_at: new Date('2026-01-01T09:00:00Z'),
    })
    expect(await m.repos.devices.get(c!.device.id)).toMatchObject({ status: 'decommissioned', last_seen_at: null })
    // An older time never moves last_seen_at backwards.
    await m.repos.devices.markSeen([{ deviceId: a!.device.id, time: new Date('2025-01-01T00:00:00Z') }])
    expect((await m.repos.devices.get(a!.device.id)).last_seen_at).toEqual(new Date('2026-01-01T12:00:00Z'))
  })

  it('finds devices by id, MAC and username, and lists by status a page at a time', async () => {
    const { device } = await provision()
    expect(await m.repos.devices.getByUsername(device.mqtt_username!)).toEqual(device)
    expect(await m.repos.devices.getByMac(device.mac_address!.toUpperCase())).toEqual(device)
    expect(await rejectionOf(m.repos.devices.getByMac('02:00:00:00:00:00'))).toBeInstanceOf(NotFoundError)
    await m.repos.devices.setStatus(device.id, 'offline')
    const offline: string[] = []
    for (let cursor: string | undefined, more = true; more; ) {
      const page = await m.repos.devices.list({ status: 'offline', limit: 1, ...(cursor && { cursor }) })
      offline.push(...page.items.map((d) => d.id))
      cursor = page.nextCursor ?? undefined
      more = page.nextCursor !== null
    }
    expect(offline).toContain(device.id)
    expect(new Set(offline).size).toBe(offline.length)
  })

  it('writes a Mosquitto password file of every device that is not decommissioned', async () => {
    const { device } = await provision()
    const retired = await provision()
    await m.repos.devices.setStatus(retired.device.id, 'decommissioned')
    const lines = (await m.repos.devices.mosquittoPasswordFile()).split('\n')
    expect(lines).toContain(`${device.id}:${await storedHash(device.id)}`)
    expect(lines.some((line) => line.startsWith(`${retired.device.id}:`))).toBe(false)
    expect(lines.at(-1)).toBe('')
  })

  it('deletes a device with its telemetry and alerts', async () => {
    const plant = await m.repos.plants.create({ name: 'Aloe' })
    const { device } = await provision({ plantId: plant.id })
    await m.repos.telemetry.insert({ deviceId: device.id, time: new Date(), soil_moisture: 10 })
    await m.repos.alerts.create({
      plantId: plant.id,
      deviceId: device.id,
      metric: 'soil_moisture',
      value: 10,
      threshold: 20,
      direction: 'below',
    })
    await m.repos.devices.delete(device.id)
    expect(await m.repos.telemetry.latest({ deviceIds: [device.id] })).toEqual([])
    expect(await m.repos.alerts.countSince(plant.id, new Date(0))).toBe(0)
    expect(await rejectionOf(m.repos.devices.delete(device.id))).toBeInstanceOf(NotFoundError)
  })
})

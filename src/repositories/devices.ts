import type { Kysely } from 'kysely'
import { z } from 'zod'
import { InvalidStateError, NotFoundError } from '../errors/errors.js'
import type { Database, Device, DevicesTable } from '../schema/database.js'
import { sensorTypesSchema } from '../schema/json-columns.js'
import { deviceStatusSchema, type DeviceStatus } from '../schema/metrics.js'
import { markDevicesSeenQuery } from './device-statements.js'
import { macAddressSchema } from './mac-address.js'
import { generateDevicePassword, hashDevicePassword, verifyDevicePassword } from './mosquitto-password.js'
import {
  decodeCursor,
  generateId,
  guarded,
  idSchema,
  instantSchema,
  pageFields,
  storableText,
  toPage,
  validate,
  type Page,
} from './shared/index.js'

/**
 * Input of `devices.provision`.
 *
 * @example
 * ```ts
 * import { provisionInputSchema } from 'plantops-db'
 * provisionInputSchema.parse({
 *   macAddress: 'AA:BB:CC:00:11:22',
 *   sensorTypes: ['soil_moisture'],
 *   firmwareVersion: '1.4.2',
 * })
 * ```
 */
export const provisionInputSchema = z.strictObject({
  macAddress: macAddressSchema,
  sensorTypes: sensorTypesSchema,
  firmwareVersion: storableText(64).min(1).nullable().optional(),
  plantId: idSchema.nullable().optional(),
})

/**
 * Options of `devices.list`: filter by status and/or plant, and a page.
 *
 * @example
 * ```ts
 * import { deviceListOptionsSchema } from 'plantops-db'
 * deviceListOptionsSchema.parse({ status: 'online', limit: 50 })
 * ```
 */
export const deviceListOptionsSchema = z.strictObject({
  status: deviceStatusSchema.optional(),
  plantId: idSchema.optional(),
  ...pageFields,
})

/**
 * Input of `devices.markSeen`: when each device was last heard from.
 *
 * @example
 * ```ts
 * import { seenEntriesSchema } from 'plantops-db'
 * seenEntriesSchema.parse([{ deviceId: 'dev_1', time: new Date() }])
 * ```
 */
export const seenEntriesSchema = z.array(z.strictObject({ deviceId: idSchema, time: instantSchema })).max(100_000)

/** A status a device can be moved to (a device never goes back to `provisioning`). */
const statusChangeSchema = z.enum(['online', 'offline', 'decommissioned'])

/**
 * Input of `devices.provision`.
 *
 * @example
 * ```ts
 * const input: ProvisionInput = { macAddress: 'aa:bb:cc:00:11:22', sensorTypes: [] }
 * ```
 */
export type ProvisionInput = z.input<typeof provisionInputSchema>
/** Options of `devices.list`. @example `const options: DeviceListOptions = { plantId: 'plant_1' }` */
export type DeviceListOptions = z.input<typeof deviceListOptionsSchema>
/** One entry of `devices.markSeen`. @example `const seen: SeenEntry = { deviceId: 'dev_1', time: new Date() }` */
export type SeenEntry = z.input<typeof seenEntriesSchema>[number]

/**
 * MQTT credentials of a device. The password is shown once, when issued;
 * only its hash is stored. The username is the device id, so a broker ACL
 * such as `pattern write plantops/%u/#` confines each device to its own topics.
 *
 * @example
 * ```ts
 * const { credentials } = await repos.devices.provision(input)
 * flashDevice({ user: credentials.username, pass: credentials.password })
 * ```
 */
export interface DeviceCredentials {
  readonly username: string
  readonly password: string
}

/**
 * The `devices` repository: provisioning with MQTT credentials, lookups,
 * plant assignment, status and last-seen updates.
 *
 * @example
 * ```ts
 * const { devices } = createRepositories(db)
 * const { device, credentials } = await devices.provision({
 *   macAddress: 'AA:BB:CC:00:11:22',
 *   sensorTypes: ['soil_moisture'],
 * })
 * await devices.assignPlant(device.id, 'plant_fern')
 * const ok = await devices.verifyCredentials(credentials.username, credentials.password) // the device
 * ```
 */
export interface DevicesRepository {
  /** Creates a device with a generated id and credentials; `ConflictError` for a known MAC. */
  provision(input: ProvisionInput): Promise<{ device: Device; credentials: DeviceCredentials }>
  /** The device, or `NotFoundError`. */
  get(id: string): Promise<Device>
  /** The device, or `undefined`. */
  find(id: string): Promise<Device | undefined>
  /** The device with this MAC address in any spelling, or `NotFoundError`. */
  getByMac(macAddress: string): Promise<Device>
  /** The device with this MQTT username, or `NotFoundError`. */
  getByUsername(username: string): Promise<Device>
  /** Devices by id, optionally by status and/or plant, a page at a time. */
  list(options?: DeviceListOptions): Promise<Page<Device>>
  /**
   * Assigns the device to a plant; `MissingReferenceError` for an unknown
   * plant, `InvalidStateError` when decommissioned.
   */
  assignPlant(id: string, plantId: string): Promise<Device>
  /** Clears the device's plant. */
  unassignPlant(id: string): Promise<Device>
  /** Moves the device to `online`, `offline` or `decommissioned`; a decommissioned device stays so. */
  setStatus(id: string, status: 'online' | 'offline' | 'decommissioned'): Promise<Device>
  /**
   * Records when devices were last heard from (newest wins) and marks them
   * online, in one statement. Returns how many devices changed.
   */
  markSeen(entries: readonly SeenEntry[]): Promise<number>
  /** The device when the credentials are right and it is not decommissioned, else `null`. Constant time. */
  verifyCredentials(username: string, password: string): Promise<Device | null>
  /** Issues a new password (the old one stops working) and returns it, once. */
  rotateCredentials(id: string): Promise<DeviceCredentials>
  /** A Mosquitto `password_file` with every device that is not decommissioned. */
  mosquittoPasswordFile(): Promise<string>
  /** Deletes the device and, with it, its telemetry and alerts. */
  delete(id: string): Promise<void>
}

/** Options of the devices repository. */
export interface DevicesRepositoryOptions {
  /** PBKDF2 iterations for new passwords. */
  readonly passwordIterations: number
}

const DECOMMISSIONED: DeviceStatus = 'decommissioned'

/** Every column a device read returns: all but `mqtt_password_hash`, which only credential checks read. */
const DEVICE_COLUMNS = [
  'id',
  'mac_address',
  'mqtt_username',
  'plant_id',
  'status',
  'firmware_version',
  'sensor_types',
  'last_seen_at',
  'created_at',
] as const satisfies readonly Exclude<keyof DevicesTable, 'mqtt_password_hash'>[]
const cursorShape = z.tuple([z.string()])

export function createDevicesRepository(db: Kysely<Database>, options: DevicesRepositoryOptions): DevicesRepository {
  const byColumn = (column: 'id' | 'mac_address' | 'mqtt_username', value: string): Promise<Device | undefined> =>
    db.selectFrom('devices').select(DEVICE_COLUMNS).where(column, '=', value).executeTakeFirst()

  const existing = async (id: string): Promise<Device> => {
    const device = await byColumn('id', id)
    if (!device) throw new NotFoundError('device', id)
    return device
  }

  const updateDevice = (id: string) => db.updateTable('devices').where('id', '=', id)

  /** Applies a change unless the device is decommissioned, and says which it was. */
  const changeActive = async (id: string, change: (query: ReturnType<typeof updateDevice>) => typeof query) => {
    const updated = await guarded('device', () =>
      change(updateDevice(id))
        .where('status', 'is distinct from', DECOMMISSIONED)
        .returning(DEVICE_COLUMNS)
        .executeTakeFirst(),
    )
    if (updated) return updated
    await existing(id)
    throw new InvalidStateError(`device "${id}" is decommissioned and cannot be changed`)
  }

  return {
    async provision(input) {
      const { macAddress, sensorTypes, firmwareVersion, plantId } = validate(provisionInputSchema, input, 'device')
      const id = generateId('dev')
      const password = generateDevicePassword()
      const row = {
        id,
        mac_address: macAddress,
        mqtt_username: id,
        mqtt_password_hash: await hashDevicePassword(password, options.passwordIterations),
        plant_id: plantId ?? null,
        firmware_version: firmwareVersion ?? null,
        sensor_types: JSON.stringify(sensorTypes),
      }
      const device = await guarded('device', () =>
        db.insertInto('devices').values(row).returning(DEVICE_COLUMNS).executeTakeFirstOrThrow(),
      )
      return { device, credentials: { username: id, password } }
    },

    async get(id) {
      return existing(validate(idSchema, id, 'device id'))
    },

    async find(id) {
      return byColumn('id', validate(idSchema, id, 'device id'))
    },

    async getByMac(macAddress) {
      const mac = validate(macAddressSchema, macAddress, 'MAC address')
      const device = await byColumn('mac_address', mac)
      if (!device) throw new NotFoundError('device with MAC address', mac)
      return device
    },

    async getByUsername(username) {
      const name = validate(idSchema, username, 'MQTT username')
      const device = await byColumn('mqtt_username', name)
      if (!device) throw new NotFoundError('device with MQTT username', name)
      return device
    },

    async list(listOptions = {}) {
      const { status, plantId, limit, cursor } = validate(deviceListOptionsSchema, listOptions, 'device list options')
      let query = db
        .selectFrom('devices')
        .select(DEVICE_COLUMNS)
        .orderBy('id')
        .limit(limit + 1)
      if (status !== undefined) query = query.where('status', '=', status)
      if (plantId !== undefined) query = query.where('plant_id', '=', plantId)
      if (cursor !== undefined)
        query = query.where('id', '>', decodeCursor(cursor, cursorShape, 'device list options')[0])
      return toPage(await query.execute(), limit, (device) => [device.id])
    },

    async assignPlant(id, plantId) {
      const key = validate(idSchema, id, 'device id')
      const plant = validate(idSchema, plantId, 'plant id')
      return changeActive(key, (query) => query.set({ plant_id: plant }))
    },

    async unassignPlant(id) {
      const key = validate(idSchema, id, 'device id')
      const updated = await updateDevice(key).set({ plant_id: null }).returning(DEVICE_COLUMNS).executeTakeFirst()
      if (!updated) throw new NotFoundError('device', key)
      return updated
    },

    async setStatus(id, status) {
      const key = validate(idSchema, id, 'device id')
      const next = validate(statusChangeSchema, status, 'device status')
      return changeActive(key, (query) => query.set({ status: next }))
    },

    async markSeen(entries) {
      const seen = validate(seenEntriesSchema, entries, 'seen entries')
      if (seen.length === 0) return 0
      const result = await markDevicesSeenQuery(
        seen.map((e) => e.deviceId),
        seen.map((e) => e.time),
      ).execute(db)
      return Number(result.numAffectedRows ?? 0)
    },

    async verifyCredentials(username, password) {
      if (typeof username !== 'string' || typeof password !== 'string') return null
      // The one read of the hash: it is compared here and never returned.
      const row = idSchema.safeParse(username).success
        ? await db.selectFrom('devices').selectAll().where('mqtt_username', '=', username).executeTakeFirst()
        : undefined
      const usable = row !== undefined && row.status !== DECOMMISSIONED
      const matches = await verifyDevicePassword(
        password,
        usable ? row.mqtt_password_hash : undefined,
        options.passwordIterations,
      )
      if (!matches || !usable) return null
      const { mqtt_password_hash: _secret, ...device } = row
      return device
    },

    async rotateCredentials(id) {
      const key = validate(idSchema, id, 'device id')
      const password = generateDevicePassword()
      const hash = await hashDevicePassword(password, options.passwordIterations)
      // A device adopted without a username gets its id as one, so the credentials issued here work.
      const device = await changeActive(key, (query) =>
        query.set((eb) => ({ mqtt_password_hash: hash, mqtt_username: eb.fn.coalesce('mqtt_username', 'id') })),
      )
      return { username: device.mqtt_username!, password }
    },

    async mosquittoPasswordFile() {
      const rows = await db
        .selectFrom('devices')
        .select(['mqtt_username', 'mqtt_password_hash'])
        .where('mqtt_username', 'is not', null)
        .where('status', 'is distinct from', DECOMMISSIONED)
        .orderBy('mqtt_username')
        .execute()
      return rows.map((row) => `${row.mqtt_username}:${row.mqtt_password_hash}\n`).join('')
    },

    async delete(id) {
      const key = validate(idSchema, id, 'device id')
      const deleted = await db.deleteFrom('devices').where('id', '=', key).returning('id').executeTakeFirst()
      if (!deleted) throw new NotFoundError('device', key)
    },
  }
}

import { translateDatabaseError, type ConstraintMeaning } from '../../errors/sqlstate.js'

/**
 * Every named constraint of the schema, with what it means to a caller.
 * Names are PostgreSQL's defaults for the constraints the migrations create.
 */
const CONSTRAINTS: Readonly<Record<string, ConstraintMeaning>> = Object.freeze({
  plants_pkey: { entity: 'plant', field: 'id' },
  devices_pkey: { entity: 'device', field: 'id' },
  devices_mac_address_key: { entity: 'device', field: 'macAddress' },
  devices_mqtt_username_key: { entity: 'device', field: 'mqttUsername' },
  settings_pkey: { entity: 'setting', field: 'key' },
  care_plans_plant_id_key: { entity: 'care plan', field: 'plantId' },
  devices_plant_id_fkey: { entity: 'plant', field: 'plantId' },
  telemetry_device_id_fkey: { entity: 'device', field: 'deviceId' },
  telemetry_plant_id_fkey: { entity: 'plant', field: 'plantId' },
  alerts_plant_id_fkey: { entity: 'plant', field: 'plantId' },
  alerts_device_id_fkey: { entity: 'device', field: 'deviceId' },
  care_plans_plant_id_fkey: { entity: 'plant', field: 'plantId' },
  idx_telemetry_device_time_unique: { entity: 'reading', field: 'deviceId and time' },
})

/**
 * TimescaleDB copies a hypertable's indexes and constraints onto each chunk
 * under prefixed names: `_hyper_1_1_chunk_idx_…` for indexes, `1_1_telemetry_…`
 * for constraints (`compress_hyper_…` on compressed chunks).
 */
const CHUNK_PREFIX = /^(?:compress)?_hyper_\d+_\d+_chunk_|^\d+_\d+_/

/** What a constraint named in an error protects, on a plain table or on a hypertable's chunk. */
export function meaningOfConstraint(name: string): ConstraintMeaning | undefined {
  return CONSTRAINTS[name] ?? CONSTRAINTS[name.replace(CHUNK_PREFIX, '')]
}

/**
 * Runs a statement and turns a database error the input caused into a typed
 * error; a raw pg error never reaches the caller for a mistake in the input.
 */
export async function guarded<T>(what: string, statement: () => Promise<T>): Promise<T> {
  try {
    return await statement()
  } catch (error) {
    throw translateDatabaseError(error, what, meaningOfConstraint)
  }
}

import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'
import type { PlanData, SensorTypes, Thresholds } from './json-columns.js'
import type { AlertDirection, DeviceStatus, Metric } from './metrics.js'

/**
 * A `TIMESTAMPTZ` column: node-postgres and PGlite return a `Date`; a `Date`
 * or an ISO-8601 string may be written.
 *
 * @example
 * ```ts
 * import type { Timestamp } from 'plantops-db'
 * type Seen = Timestamp // selects as Date
 * ```
 */
export type Timestamp = ColumnType<Date, Date | string, Date | string>

/**
 * A `JSONB` column: it reads back parsed as `T`, and is written as JSON text
 * (`JSON.stringify(value)`, or `null` where the column allows it), because node-postgres would turn a JavaScript
 * array into a PostgreSQL array literal, not JSON. The repositories do this for you.
 *
 * @example
 * ```ts
 * import type { Json, Thresholds } from 'plantops-db'
 * type ThresholdsColumn = Json<Thresholds | null>
 * ```
 */
export type Json<T> = ColumnType<T, null extends T ? string | null : string, null extends T ? string | null : string>

/**
 * `plants`: one row per plant being watched.
 *
 * @example
 * ```ts
 * import type { PlantsTable } from 'plantops-db'
 * type Name = PlantsTable['name'] // string
 * ```
 */
export interface PlantsTable {
  id: string
  name: string
  species: string | null
  thresholds: Json<Thresholds | null>
  created_at: Generated<Date | null>
}

/**
 * `devices`: one row per sensor device, with its MQTT credentials (hash only).
 *
 * @example
 * ```ts
 * import type { DevicesTable } from 'plantops-db'
 * type Status = DevicesTable['status']
 * ```
 */
export interface DevicesTable {
  id: string
  mac_address: string | null
  mqtt_username: string | null
  mqtt_password_hash: string
  plant_id: string | null
  status: ColumnType<DeviceStatus | null, DeviceStatus | undefined, DeviceStatus>
  firmware_version: string | null
  sensor_types: Json<SensorTypes | null>
  last_seen_at: ColumnType<Date | null, Date | string | null, Date | string | null>
  created_at: Generated<Date | null>
}

/**
 * `telemetry`: one row per reading. A TimescaleDB hypertable on `time` when
 * the extension is there, a plain table otherwise. Every metric is nullable
 * because a device reports only the sensors it has.
 *
 * @example
 * ```ts
 * import type { TelemetryTable } from 'plantops-db'
 * type Moisture = TelemetryTable['soil_moisture'] // number | null
 * ```
 */
export type TelemetryTable = {
  time: Timestamp
  device_id: string | null
  plant_id: string | null
} & { [M in Metric]: number | null }

/**
 * `alerts`: a reading that crossed one of its plant's thresholds.
 *
 * @example
 * ```ts
 * import type { AlertsTable } from 'plantops-db'
 * type Direction = AlertsTable['direction'] // 'below' | 'above'
 * ```
 */
export interface AlertsTable {
  id: Generated<number>
  plant_id: string | null
  device_id: string | null
  metric: string
  value: number
  threshold: number
  direction: AlertDirection
  sent_at: Generated<Date | null>
}

/**
 * `settings`: plain key/value text, with typed accessors for the library's own keys.
 *
 * @example
 * ```ts
 * import type { SettingsTable } from 'plantops-db'
 * type Value = SettingsTable['value'] // string
 * ```
 */
export interface SettingsTable {
  key: string
  value: string
  updated_at: Generated<Date | null>
}

/**
 * `care_plans`: at most one care plan per plant.
 *
 * @example
 * ```ts
 * import type { CarePlansTable } from 'plantops-db'
 * type Plan = CarePlansTable['plan_data']
 * ```
 */
export interface CarePlansTable {
  id: Generated<number>
  plant_id: string | null
  plan_data: Json<PlanData>
  generated_at: Generated<Date | null>
}

/**
 * `telemetry_rejects`: the dead-letter table. Every packet the writer refuses
 * lands here with its raw bytes and the reason; `replayed_at` is set once
 * `replayRejects()` has resubmitted it.
 *
 * @example
 * ```ts
 * import type { TelemetryRejectsTable } from 'plantops-db'
 * type Reason = TelemetryRejectsTable['reason'] // string, e.g. 'unknown_device'
 * ```
 */
export interface TelemetryRejectsTable {
  id: ColumnType<number, never, never>
  received_at: Generated<Date>
  device_id: string | null
  source: string | null
  payload: Buffer
  reason: string
  detail: string | null
  replayed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
}

/**
 * `plantops_context_epoch`: one counter that triggers bump whenever a
 * device's plant, its decommissioning or a plant's thresholds change, so
 * writers know when to drop their cache. Internal.
 *
 * @example
 * ```ts
 * import type { ContextEpochTable } from 'plantops-db'
 * type Epoch = ContextEpochTable['epoch'] // number
 * ```
 */
export interface ContextEpochTable {
  id: Generated<boolean>
  epoch: number
}

/**
 * `telemetry_hourly`: the hourly rollup of `telemetry`, kept exactly by the
 * writer and `telemetry.insert` in the transaction that writes the raw rows.
 * One row per device, plant the readings were written under, and hour; per
 * metric the sum, count, minimum and maximum of the values. `telemetry.buckets`
 * reads it for whole-hour buckets.
 *
 * @example
 * ```ts
 * import type { TelemetryHourlyTable } from 'plantops-db'
 * type Sum = TelemetryHourlyTable['soil_moisture_sum'] // number
 * ```
 */
export type TelemetryHourlyTable = {
  hour: Timestamp
  device_id: string | null
  plant_id: string | null
  readings: number
} & RollupAggregateColumns

/**
 * Per metric, the four aggregate columns every rollup keeps.
 *
 * @example
 * ```ts
 * import type { RollupAggregateColumns } from 'plantops-db'
 * type Count = RollupAggregateColumns['light_level_count'] // number
 * ```
 */
export type RollupAggregateColumns = { [M in Metric as `${M}_sum`]: number } & {
  [M in Metric as `${M}_count`]: number
} & { [M in Metric as `${M}_min` | `${M}_max`]: number | null }

/**
 * `telemetry_plant_hourly`: `telemetry_hourly` summed over each plant's
 * devices, one row per plant and hour, kept in the same transactions. A
 * plant's month chart reads 720 of these rows rather than 14,400 device
 * hours of a twenty-device plant.
 *
 * @example
 * ```ts
 * import type { TelemetryPlantHourlyTable } from 'plantops-db'
 * type Max = TelemetryPlantHourlyTable['temperature_max'] // number | null
 * ```
 */
export type TelemetryPlantHourlyTable = {
  plant_id: string
  hour: Timestamp
  readings: number
} & RollupAggregateColumns

/**
 * `telemetry_plant_5min`: the raw readings summed per plant and five
 * minutes, kept in the same transactions. A plant's day chart in
 * five-minute buckets reads 288 of these rows rather than 28,800 raw rows
 * of a twenty-device plant.
 *
 * @example
 * ```ts
 * import type { TelemetryPlantFiveMinuteTable } from 'plantops-db'
 * type Start = TelemetryPlantFiveMinuteTable['start'] // the bucket's first instant
 * ```
 */
export type TelemetryPlantFiveMinuteTable = {
  plant_id: string
  start: Timestamp
  readings: number
} & RollupAggregateColumns

/**
 * The Kysely database interface of plantops-db: pass it to `Kysely<Database>`
 * (or use `createDatabase`, which does) to get typed queries.
 *
 * @example
 * ```ts
 * import { createDatabase } from 'plantops-db'
 * const db = createDatabase()
 * const plants = await db.selectFrom('plants').select(['id', 'name']).execute()
 * ```
 */
export interface Database {
  plants: PlantsTable
  devices: DevicesTable
  telemetry: TelemetryTable
  alerts: AlertsTable
  settings: SettingsTable
  care_plans: CarePlansTable
  telemetry_rejects: TelemetryRejectsTable
  plantops_context_epoch: ContextEpochTable
  telemetry_hourly: TelemetryHourlyTable
  telemetry_plant_hourly: TelemetryPlantHourlyTable
  telemetry_plant_5min: TelemetryPlantFiveMinuteTable
}

/** A row of `plants` as read. @example `const p: Plant = await repos.plants.get('plant_1')` */
export type Plant = Selectable<PlantsTable>
/** A row of `plants` to insert. @example `const p: NewPlant = { id: 'plant_1', name: 'Fern' }` */
export type NewPlant = Insertable<PlantsTable>
/** Changes to a `plants` row. @example `const u: PlantUpdate = { species: 'Nephrolepis' }` */
export type PlantUpdate = Updateable<PlantsTable>
/**
 * A device as the repository returns it: every column of `devices` except
 * `mqtt_password_hash`, so a device returned as JSON never carries a secret.
 *
 * @example
 * ```ts
 * const d: Device = await repos.devices.get('dev_1')
 * ```
 */
export type Device = Omit<Selectable<DevicesTable>, 'mqtt_password_hash'>
/**
 * A whole row of `devices`, password hash included, as a query of your own on the table returns it.
 *
 * @example
 * ```ts
 * const row: DeviceRow = await db.selectFrom('devices').selectAll().where('id', '=', 'dev_1').executeTakeFirstOrThrow()
 * ```
 */
export type DeviceRow = Selectable<DevicesTable>
/** A row of `devices` to insert. @example `const d: NewDevice = { id: 'dev_1', mqtt_password_hash: hash }` */
export type NewDevice = Insertable<DevicesTable>
/** Changes to a `devices` row. @example `const u: DeviceUpdate = { status: 'offline' }` */
export type DeviceUpdate = Updateable<DevicesTable>
/** A row of `telemetry` as read. @example `const r: Telemetry = rows[0]` */
export type Telemetry = Selectable<TelemetryTable>
/**
 * A row of `telemetry` to insert.
 *
 * @example
 * ```ts
 * const r: NewTelemetry = { time: new Date(), device_id: 'dev_1', soil_moisture: 41 }
 * ```
 */
export type NewTelemetry = Insertable<TelemetryTable>
/** Changes to a `telemetry` row. @example `const u: TelemetryUpdate = { plant_id: null }` */
export type TelemetryUpdate = Updateable<TelemetryTable>
/** A row of `alerts` as read. @example `const a: Alert = await repos.alerts.create(input)` */
export type Alert = Selectable<AlertsTable>
/**
 * A row of `alerts` to insert.
 *
 * @example
 * ```ts
 * const a: NewAlert = { metric: 'humidity', value: 20, threshold: 40, direction: 'below' }
 * ```
 */
export type NewAlert = Insertable<AlertsTable>
/** Changes to an `alerts` row. @example `const u: AlertUpdate = { plant_id: null }` */
export type AlertUpdate = Updateable<AlertsTable>
/** A row of `settings` as read. @example `const s: Setting = await repos.settings.get('k')` */
export type Setting = Selectable<SettingsTable>
/** A row of `settings` to insert. @example `const s: NewSetting = { key: 'k', value: 'v' }` */
export type NewSetting = Insertable<SettingsTable>
/** Changes to a `settings` row. @example `const u: SettingUpdate = { value: 'v2' }` */
export type SettingUpdate = Updateable<SettingsTable>
/** A row of `care_plans` as read. @example `const c: CarePlan = await repos.carePlans.get('plant_1')` */
export type CarePlan = Selectable<CarePlansTable>
/**
 * A row of `care_plans` to insert.
 *
 * @example
 * ```ts
 * const c: NewCarePlan = { plant_id: 'plant_1', plan_data: JSON.stringify(plan) }
 * ```
 */
export type NewCarePlan = Insertable<CarePlansTable>
/** Changes to a `care_plans` row. @example `const u: CarePlanUpdate = { plan_data: JSON.stringify(plan) }` */
export type CarePlanUpdate = Updateable<CarePlansTable>
/** A row of `telemetry_rejects` as read. @example `const r: TelemetryReject = rows[0]` */
export type TelemetryReject = Selectable<TelemetryRejectsTable>

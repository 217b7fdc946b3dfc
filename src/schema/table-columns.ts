import type { Database, RollupAggregateColumns } from './database.js'
import { ROLLUP_METRIC_COLUMNS } from './rollups.js'
import { METRICS, type Metric } from './metrics.js'

type Columns<T> = { readonly [C in keyof T]-?: true }

const metricColumns = Object.fromEntries(METRICS.map((metric) => [metric, true])) as Record<Metric, true>
const rollupColumns = Object.fromEntries(
  ROLLUP_METRIC_COLUMNS.map((column) => [column, true]),
) as Columns<RollupAggregateColumns>

/**
 * Every column of every table plantops-db uses, at run time: the same set as
 * the `Database` type (the compiler checks both ways), so the migrator can
 * tell its own tables from a host's table of the same name.
 */
export const TABLE_COLUMNS: { readonly [T in keyof Database]: Columns<Database[T]> } = {
  plants: { id: true, name: true, species: true, thresholds: true, created_at: true },
  devices: {
    id: true,
    mac_address: true,
    mqtt_username: true,
    mqtt_password_hash: true,
    plant_id: true,
    status: true,
    firmware_version: true,
    sensor_types: true,
    last_seen_at: true,
    created_at: true,
  },
  telemetry: { time: true, device_id: true, plant_id: true, ...metricColumns },
  alerts: {
    id: true,
    plant_id: true,
    device_id: true,
    metric: true,
    value: true,
    threshold: true,
    direction: true,
    sent_at: true,
  },
  settings: { key: true, value: true, updated_at: true },
  care_plans: { id: true, plant_id: true, plan_data: true, generated_at: true },
  telemetry_rejects: {
    id: true,
    received_at: true,
    device_id: true,
    source: true,
    payload: true,
    reason: true,
    detail: true,
    replayed_at: true,
  },
  plantops_context_epoch: { id: true, epoch: true },
  telemetry_hourly: { hour: true, device_id: true, plant_id: true, readings: true, ...rollupColumns },
  telemetry_plant_hourly: { plant_id: true, hour: true, readings: true, ...rollupColumns },
  telemetry_plant_5min: { plant_id: true, start: true, readings: true, ...rollupColumns },
}

import { sql } from 'kysely'
import type { MetricRow } from '../schema/metric-values.js'
import { METRICS } from '../schema/metrics.js'
import {
  HOUR_MS,
  PLANT_ROLLUP_COLUMNS,
  PLANT_ROLLUP_TABLE,
  ROLLUP_COLUMNS,
  ROLLUP_CONFLICT_TARGET,
  ROLLUP_TABLE,
  aggregatesOfRollups,
  columnList,
  rollupMerge,
} from '../schema/rollups.js'

/** A row just inserted into `telemetry`, as the rollup needs it. */
export interface InsertedReading {
  /** Epoch milliseconds. */
  readonly timeMs: number
  readonly deviceId: string | null
  readonly plantId: string | null
  /** Metric values in `METRICS` order. */
  readonly values: MetricRow
}

/** One rollup row's worth of inserted readings. */
interface HourGroup {
  readonly hourMs: number
  readonly deviceId: string | null
  readonly plantId: string | null
  readings: number
  readonly sum: number[]
  readonly count: number[]
  readonly min: (number | null)[]
  readonly max: (number | null)[]
}

function newGroup(hourMs: number, reading: InsertedReading): HourGroup {
  const n = METRICS.length
  return {
    hourMs,
    deviceId: reading.deviceId,
    plantId: reading.plantId,
    readings: 0,
    sum: new Array<number>(n).fill(0),
    count: new Array<number>(n).fill(0),
    min: new Array<number | null>(n).fill(null),
    max: new Array<number | null>(n).fill(null),
  }
}

function add(group: HourGroup, values: MetricRow): void {
  group.readings += 1
  for (let i = 0; i < METRICS.length; i += 1) {
    const value = values[i]
    if (value === null || value === undefined) continue
    group.sum[i]! += value
    group.count[i]! += 1
    if (group.min[i] === null || value < group.min[i]!) group.min[i] = value
    if (group.max[i] === null || value > group.max[i]!) group.max[i] = value
  }
}

/** The rollup's unique key order: device, hour, plant, with NULL as the empty string it is indexed as. */
function byKey(a: HourGroup, b: HourGroup): number {
  const [deviceA, deviceB] = [a.deviceId ?? '', b.deviceId ?? '']
  if (deviceA !== deviceB) return deviceA < deviceB ? -1 : 1
  if (a.hourMs !== b.hourMs) return a.hourMs - b.hourMs
  const [plantA, plantB] = [a.plantId ?? '', b.plantId ?? '']
  return plantA === plantB ? 0 : plantA < plantB ? -1 : 1
}

/**
 * Inserted readings summed per (device, plant, hour), ordered by that key:
 * every transaction then locks rollup rows in the same order, so two that
 * share rows wait for each other instead of deadlocking. Nested maps, not a
 * composite string key: this runs for every row the writer stores.
 */
export function hourGroups(readings: readonly InsertedReading[]): HourGroup[] {
  const byDevice = new Map<string | null, Map<string | null, Map<number, HourGroup>>>()
  const groups: HourGroup[] = []
  for (const reading of readings) {
    const hourMs = Math.floor(reading.timeMs / HOUR_MS) * HOUR_MS
    let byPlant = byDevice.get(reading.deviceId)
    if (!byPlant) {
      byPlant = new Map()
      byDevice.set(reading.deviceId, byPlant)
    }
    let byHour = byPlant.get(reading.plantId)
    if (!byHour) {
      byHour = new Map()
      byPlant.set(reading.plantId, byHour)
    }
    let group = byHour.get(hourMs)
    if (!group) {
      group = newGroup(hourMs, reading)
      byHour.set(hourMs, group)
      groups.push(group)
    }
    add(group, reading.values)
  }
  return groups.sort(byKey)
}

/**
 * A PostgreSQL array literal. Written here rather than by the driver: its
 * generic per-element conversion cost a tenth of the writer's CPU for the
 * twenty arrays of every batch. Numbers print as PostgreSQL reads them;
 * text is quoted, with `"` and `\\` escaped.
 */
function arrayLiteral(values: readonly (number | string | null)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i += 1) {
    const value = values[i]
    if (i > 0) out += ','
    if (value === null || value === undefined) out += 'NULL'
    else if (typeof value === 'number') out += String(value)
    else out += `"${value.replace(/["\\]/g, '\\$&')}"`
  }
  return `${out}}`
}

type ArrayColumn = { values: (number | string | null)[]; type: string }

/** The aggregate columns of `groups` as arrays, in rollup column order after the key. */
function aggregateArrays(groups: readonly HourGroup[]): ArrayColumn[] {
  const columns: ArrayColumn[] = [{ values: groups.map((g) => g.readings), type: 'int4' }]
  METRICS.forEach((_, i) => {
    columns.push(
      { values: groups.map((g) => g.sum[i]!), type: 'float8' },
      { values: groups.map((g) => g.count[i]!), type: 'int4' },
      { values: groups.map((g) => g.min[i]!), type: 'float8' },
      { values: groups.map((g) => g.max[i]!), type: 'float8' },
    )
  })
  return columns
}

const hours = (groups: readonly HourGroup[]): ArrayColumn => ({
  values: groups.map((g) => new Date(g.hourMs).toISOString()),
  type: 'timestamptz',
})

/**
 * Adds inserted readings to both rollups in one statement, whatever the
 * number of hours: the device hours from the groups, and the plant hours
 * summed from the same groups by the server. Only for rows that were
 * actually inserted, in their transaction, so a redelivery never counts
 * twice and a rollback takes all three. Every writer and `telemetry.insert`
 * runs this same statement, so concurrent ones lock the rows they share in
 * the same order (and the groups are sorted by key) and wait rather than
 * deadlock.
 */
export function addToRollupsQuery(groups: readonly HourGroup[]) {
  const arrays = [
    hours(groups),
    { values: groups.map((g) => g.deviceId), type: 'text' },
    { values: groups.map((g) => g.plantId), type: 'text' },
    ...aggregateArrays(groups),
  ].map(({ values, type }) => sql`${arrayLiteral(values)}::${sql.raw(type)}[]`)
  return sql`
    WITH batch (${columnList(ROLLUP_COLUMNS)}) AS (SELECT * FROM unnest(${sql.join(arrays)})),
    device_hours AS (
      INSERT INTO ${sql.id(ROLLUP_TABLE)} (${columnList(ROLLUP_COLUMNS)}) SELECT * FROM batch
      ON CONFLICT ${ROLLUP_CONFLICT_TARGET} DO UPDATE SET ${rollupMerge(ROLLUP_TABLE)}
    )
    INSERT INTO ${sql.id(PLANT_ROLLUP_TABLE)} (${columnList(PLANT_ROLLUP_COLUMNS)})
    SELECT plant_id, hour, ${aggregatesOfRollups()} FROM batch WHERE plant_id IS NOT NULL
    GROUP BY plant_id, hour ORDER BY plant_id, hour
    ON CONFLICT (plant_id, hour) DO UPDATE SET ${rollupMerge(PLANT_ROLLUP_TABLE)}`
}

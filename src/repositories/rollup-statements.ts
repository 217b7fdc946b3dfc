import { sql } from 'kysely'
import type { MetricRow } from '../schema/metric-values.js'
import { METRICS } from '../schema/metrics.js'
import { HOUR_MS, ROLLUP_COLUMNS, ROLLUP_CONFLICT_TARGET, ROLLUP_TABLE, rollupMerge } from '../schema/rollups.js'

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

/**
 * Adds inserted readings to the hourly rollup: one statement, whatever the
 * number of hours. Only for rows that were actually inserted, in their
 * transaction, so a redelivery never counts twice and a rollback takes both.
 */
export function addToRollupsQuery(groups: readonly HourGroup[]) {
  const columns: (number | string | null)[][] = [
    groups.map((g) => new Date(g.hourMs).toISOString()),
    groups.map((g) => g.deviceId),
    groups.map((g) => g.plantId),
    groups.map((g) => g.readings),
  ]
  const types = ['timestamptz', 'text', 'text', 'int4']
  METRICS.forEach((_, i) => {
    columns.push(
      groups.map((g) => g.sum[i]!),
      groups.map((g) => g.count[i]!),
      groups.map((g) => g.min[i]!),
      groups.map((g) => g.max[i]!),
    )
    types.push('float8', 'int4', 'float8', 'float8')
  })
  const arrays = columns.map((values, i) => sql`${arrayLiteral(values)}::${sql.raw(types[i]!)}[]`)
  return sql`
    INSERT INTO ${sql.id(ROLLUP_TABLE)} (${sql.join(ROLLUP_COLUMNS.map((c) => sql.id(c)))})
    SELECT * FROM unnest(${sql.join(arrays)})
    ON CONFLICT ${ROLLUP_CONFLICT_TARGET} DO UPDATE SET ${rollupMerge()}`
}

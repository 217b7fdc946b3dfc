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
  readonly key: string
  readonly hourMs: number
  readonly deviceId: string | null
  readonly plantId: string | null
  readings: number
  readonly sum: number[]
  readonly count: number[]
  readonly min: (number | null)[]
  readonly max: (number | null)[]
}

function newGroup(key: string, hourMs: number, reading: InsertedReading): HourGroup {
  const n = METRICS.length
  return {
    key,
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

/**
 * Inserted readings summed per (device, plant, hour), ordered by that key:
 * every transaction then locks rollup rows in the same order, so two that
 * share rows wait for each other instead of deadlocking.
 */
export function hourGroups(readings: readonly InsertedReading[]): HourGroup[] {
  const groups = new Map<string, HourGroup>()
  for (const reading of readings) {
    const hourMs = Math.floor(reading.timeMs / HOUR_MS) * HOUR_MS
    const key = `${reading.deviceId ?? ''}\u0000${hourMs}\u0000${reading.plantId ?? ''}`
    let group = groups.get(key)
    if (!group) {
      group = newGroup(key, hourMs, reading)
      groups.set(key, group)
    }
    group.readings += 1
    for (let i = 0; i < METRICS.length; i += 1) {
      const value = reading.values[i]
      if (value === null || value === undefined) continue
      group.sum[i]! += value
      group.count[i]! += 1
      if (group.min[i] === null || value < group.min[i]!) group.min[i] = value
      if (group.max[i] === null || value > group.max[i]!) group.max[i] = value
    }
  }
  return [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/**
 * Adds inserted readings to the hourly rollup: one statement, whatever the
 * number of hours. Only for rows that were actually inserted, in their
 * transaction, so a redelivery never counts twice and a rollback takes both.
 */
export function addToRollupsQuery(groups: readonly HourGroup[]) {
  const columns: unknown[][] = [
    groups.map((g) => new Date(g.hourMs).toISOString()),
    groups.map((g) => g.deviceId),
    groups.map((g) => g.plantId),
    groups.map((g) => g.readings),
  ]
  const types = ['timestamptz', 'text', 'text', 'int4']
  METRICS.forEach((_, i) => {
    columns.push(
      groups.map((g) => g.sum[i]),
      groups.map((g) => g.count[i]),
      groups.map((g) => g.min[i]),
      groups.map((g) => g.max[i]),
    )
    types.push('float8', 'int4', 'float8', 'float8')
  })
  const arrays = columns.map((values, i) => sql`${values}::${sql.raw(types[i]!)}[]`)
  return sql`
    INSERT INTO ${sql.id(ROLLUP_TABLE)} (${sql.join(ROLLUP_COLUMNS.map((c) => sql.id(c)))})
    SELECT * FROM unnest(${sql.join(arrays)})
    ON CONFLICT ${ROLLUP_CONFLICT_TARGET} DO UPDATE SET ${rollupMerge()}`
}

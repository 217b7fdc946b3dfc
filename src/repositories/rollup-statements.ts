import { sql } from 'kysely'
import type { MetricRow } from '../schema/metric-values.js'
import { METRICS } from '../schema/metrics.js'
import {
  FIVE_MINUTES_MS,
  HOUR_MS,
  PLANT_FIVE_MINUTE_COLUMNS,
  PLANT_FIVE_MINUTE_TABLE,
  PLANT_ROLLUP_COLUMNS,
  PLANT_ROLLUP_TABLE,
  ROLLUP_COLUMNS,
  ROLLUP_CONFLICT_TARGET,
  ROLLUP_TABLE,
  aggregatesOfRollups,
  columnList,
  rollupMerge,
} from '../schema/rollups.js'
import { binaryArray, type BinaryElementType } from '../util/pg-binary.js'

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
interface Group {
  /** The bucket's start, epoch milliseconds. */
  readonly startMs: number
  readonly deviceId: string | null
  readonly plantId: string | null
  readings: number
  readonly sum: number[]
  readonly count: number[]
  readonly min: (number | null)[]
  readonly max: (number | null)[]
}

function newGroup(startMs: number, deviceId: string | null, reading: InsertedReading): Group {
  const n = METRICS.length
  return {
    startMs,
    deviceId,
    plantId: reading.plantId,
    readings: 0,
    sum: new Array<number>(n).fill(0),
    count: new Array<number>(n).fill(0),
    min: new Array<number | null>(n).fill(null),
    max: new Array<number | null>(n).fill(null),
  }
}

function add(group: Group, values: MetricRow): void {
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

/** The rollup's unique key order: device, start, plant, with NULL as the empty string it is indexed as. */
function byKey(a: Group, b: Group): number {
  const [deviceA, deviceB] = [a.deviceId ?? '', b.deviceId ?? '']
  if (deviceA !== deviceB) return deviceA < deviceB ? -1 : 1
  if (a.startMs !== b.startMs) return a.startMs - b.startMs
  const [plantA, plantB] = [a.plantId ?? '', b.plantId ?? '']
  return plantA === plantB ? 0 : plantA < plantB ? -1 : 1
}

/**
 * Inserted readings summed per (device, plant, bucket of `grainMs`), ordered
 * by that key: every transaction then locks rollup rows in the same order,
 * so two that share rows wait for each other instead of deadlocking. Per
 * plant only (`perDevice` false), plantless readings are left out. Nested
 * maps, not a composite string key: this runs for every row the writer stores.
 */
function groupsOf(readings: readonly InsertedReading[], grainMs: number, perDevice: boolean): Group[] {
  const byDevice = new Map<string | null, Map<string | null, Map<number, Group>>>()
  const groups: Group[] = []
  for (const reading of readings) {
    if (!perDevice && reading.plantId === null) continue
    const deviceId = perDevice ? reading.deviceId : null
    const startMs = Math.floor(reading.timeMs / grainMs) * grainMs
    let byPlant = byDevice.get(deviceId)
    if (!byPlant) {
      byPlant = new Map()
      byDevice.set(deviceId, byPlant)
    }
    let byStart = byPlant.get(reading.plantId)
    if (!byStart) {
      byStart = new Map()
      byPlant.set(reading.plantId, byStart)
    }
    let group = byStart.get(startMs)
    if (!group) {
      group = newGroup(startMs, deviceId, reading)
      byStart.set(startMs, group)
      groups.push(group)
    }
    add(group, reading.values)
  }
  return groups.sort(byKey)
}

type ArrayColumn = { readonly values: (number | string | null)[]; readonly type: BinaryElementType }

/**
 * A PostgreSQL array literal, for drivers that send parameters as text.
 * Written here rather than by the driver: its generic per-element
 * conversion cost a tenth of the writer's CPU for the twenty arrays of every
 * batch. Numbers print as PostgreSQL reads them; text is quoted, with `"`
 * and `\\` escaped; a `timestamptz` (epoch ms) prints as ISO 8601.
 */
function arrayLiteral({ values, type }: ArrayColumn): string {
  let out = '{'
  for (let i = 0; i < values.length; i += 1) {
    const value = values[i]
    if (i > 0) out += ','
    if (value === null || value === undefined) out += 'NULL'
    else if (type === 'timestamptz') out += new Date(value as number).toISOString()
    else if (typeof value === 'number') out += String(value)
    else out += `"${value.replace(/["\\]/g, '\\$&')}"`
  }
  return `${out}}`
}

/** The aggregate columns of `groups` as arrays, in rollup column order after the key. */
function aggregateArrays(groups: readonly Group[]): ArrayColumn[] {
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

const starts = (groups: readonly Group[]): ArrayColumn => ({
  values: groups.map((g) => g.startMs),
  type: 'timestamptz',
})

const ids = (values: (string | null)[]): ArrayColumn => ({ values, type: 'text' })

/**
 * How array parameters travel: `binary` (node-postgres sends a Buffer in
 * PostgreSQL's binary format, which the server reads without parsing a
 * number) or `text` (any driver).
 */
export type ArrayEncoding = 'binary' | 'text'

/** `columns` as SQL array parameters in `encoding`. */
const asArrays = (columns: readonly ArrayColumn[], encoding: ArrayEncoding) =>
  sql.join(
    columns.map(
      (column) =>
        sql`${encoding === 'binary' ? binaryArray(column.type, column.values) : arrayLiteral(column)}::${sql.raw(column.type)}[]`,
    ),
  )

/**
 * Adds inserted readings to the three rollups in one statement, whatever
 * the number of buckets: the device hours, the plant hours summed from them
 * by the server, and the plant's five minutes. Only for rows that were
 * actually inserted, in their transaction, so a redelivery never counts
 * twice and a rollback takes them all. Every writer and `telemetry.insert`
 * runs this same statement, so concurrent ones lock the rows they share in
 * the same order (and the groups are sorted by key) and wait rather than
 * deadlock.
 */
export function addToRollupsQuery(readings: readonly InsertedReading[], encoding: ArrayEncoding = 'text') {
  const hours = groupsOf(readings, HOUR_MS, true)
  const fives = groupsOf(readings, FIVE_MINUTES_MS, false)
  const deviceHours = [
    starts(hours),
    ids(hours.map((g) => g.deviceId)),
    ids(hours.map((g) => g.plantId)),
    ...aggregateArrays(hours),
  ]
  const plantFives = [ids(fives.map((g) => g.plantId)), starts(fives), ...aggregateArrays(fives)]
  return sql`
    WITH batch (${columnList(ROLLUP_COLUMNS)}) AS (SELECT * FROM unnest(${asArrays(deviceHours, encoding)})),
    device_hours AS (
      INSERT INTO ${sql.id(ROLLUP_TABLE)} (${columnList(ROLLUP_COLUMNS)}) SELECT * FROM batch
      ON CONFLICT ${ROLLUP_CONFLICT_TARGET} DO UPDATE SET ${rollupMerge(ROLLUP_TABLE)}
    ),
    plant_five_minutes AS (
      INSERT INTO ${sql.id(PLANT_FIVE_MINUTE_TABLE)} (${columnList(PLANT_FIVE_MINUTE_COLUMNS)})
      SELECT * FROM unnest(${asArrays(plantFives, encoding)})
      ON CONFLICT (plant_id, start) DO UPDATE SET ${rollupMerge(PLANT_FIVE_MINUTE_TABLE)}
    )
    INSERT INTO ${sql.id(PLANT_ROLLUP_TABLE)} (${columnList(PLANT_ROLLUP_COLUMNS)})
    SELECT plant_id, hour, ${aggregatesOfRollups()} FROM batch WHERE plant_id IS NOT NULL
    GROUP BY plant_id, hour ORDER BY plant_id, hour
    ON CONFLICT (plant_id, hour) DO UPDATE SET ${rollupMerge(PLANT_ROLLUP_TABLE)}`
}

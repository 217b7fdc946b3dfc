import { sql } from 'kysely'
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
import { RollupBuckets, type InsertedReading } from './rollup-buckets.js'

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

/** The aggregate columns of `buckets` in `order` as arrays, in rollup column order after the key. */
function aggregateArrays(buckets: RollupBuckets, order: readonly number[]): ArrayColumn[] {
  const columns: ArrayColumn[] = [{ values: order.map((b) => buckets.readings[b]!), type: 'int4' }]
  METRICS.forEach((_, m) => {
    columns.push(
      { values: order.map((b) => buckets.sum(b, m)), type: 'float8' },
      { values: order.map((b) => buckets.count(b, m)), type: 'int4' },
      { values: order.map((b) => buckets.min(b, m)), type: 'float8' },
      { values: order.map((b) => buckets.max(b, m)), type: 'float8' },
    )
  })
  return columns
}

/** One key column of `buckets` in `order`. */
function keyColumn(
  buckets: RollupBuckets,
  order: readonly number[],
  key: 'startsMs' | 'deviceIds' | 'plantIds',
): ArrayColumn {
  const column = buckets[key]
  return { values: order.map((b) => column[b]!), type: key === 'startsMs' ? 'timestamptz' : 'text' }
}

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
  const hours = RollupBuckets.of(readings, HOUR_MS, true)
  const fives = RollupBuckets.of(readings, FIVE_MINUTES_MS, false)
  const [hourOrder, fiveOrder] = [hours.inKeyOrder(), fives.inKeyOrder()]
  const deviceHours = [
    keyColumn(hours, hourOrder, 'startsMs'),
    keyColumn(hours, hourOrder, 'deviceIds'),
    keyColumn(hours, hourOrder, 'plantIds'),
    ...aggregateArrays(hours, hourOrder),
  ]
  const plantFives = [
    keyColumn(fives, fiveOrder, 'plantIds'),
    keyColumn(fives, fiveOrder, 'startsMs'),
    ...aggregateArrays(fives, fiveOrder),
  ]
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

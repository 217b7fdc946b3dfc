import { sql, type Kysely, type RawBuilder } from 'kysely'
import { METRICS, type Metric } from './metrics.js'

/** The hourly rollup of `telemetry`: one row per device, plant it was written under, and hour. */
export const ROLLUP_TABLE = 'telemetry_hourly'

/** {@link ROLLUP_TABLE} summed per plant and hour: what a plant's chart reads. */
export const PLANT_ROLLUP_TABLE = 'telemetry_plant_hourly'

/**
 * The raw readings summed per plant and five minutes: what a plant's day
 * chart reads, as Home Assistant's short-term statistics.
 */
export const PLANT_FIVE_MINUTE_TABLE = 'telemetry_plant_5min'

/** Where buckets start counting, raw or rolled up: TimescaleDB's default `time_bucket` origin (a Monday, on an hour). */
export const BUCKET_ORIGIN = '2000-01-03T00:00:00Z'

/**
 * Any Kysely instance: the migrations pass `Kysely<unknown>`, the
 * repositories `Kysely<Database>`, and Kysely's type parameter is invariant.
 */
// biome-ignore lint/suspicious/noExplicitAny: no narrower type admits both callers (see above)
type AnyKysely = Kysely<any>

/** One hour in milliseconds: the rollup's grain. */
export const HOUR_MS = 3_600_000

/** Five minutes in milliseconds: the grain of {@link PLANT_FIVE_MINUTE_TABLE}. */
export const FIVE_MINUTES_MS = 300_000

/**
 * Every rollup table with its time column, its grain and the id it is kept
 * per: the one list reads, refills, retention and compression go by.
 * Ordered as refills lock them.
 */
export const ROLLUPS = Object.freeze({
  deviceHours: Object.freeze({ table: ROLLUP_TABLE, time: 'hour', grainMs: HOUR_MS, per: 'device_id' } as const),
  plantHours: Object.freeze({ table: PLANT_ROLLUP_TABLE, time: 'hour', grainMs: HOUR_MS, per: 'plant_id' } as const),
  plantFiveMinutes: Object.freeze({
    table: PLANT_FIVE_MINUTE_TABLE,
    time: 'start',
    grainMs: FIVE_MINUTES_MS,
    per: 'plant_id',
  } as const),
})

/** One of {@link ROLLUPS}. */
export type Rollup = (typeof ROLLUPS)[keyof typeof ROLLUPS]

/** Every rollup table, in the order refills lock them. */
export const ROLLUP_TABLES: readonly string[] = Object.freeze(Object.values(ROLLUPS).map((rollup) => rollup.table))

/** The four aggregates kept per metric, in column order. */
export const ROLLUP_AGGREGATES = ['sum', 'count', 'min', 'max'] as const

/** One of {@link ROLLUP_AGGREGATES}. */
export type RollupAggregate = (typeof ROLLUP_AGGREGATES)[number]

/** The column holding `aggregate` of `metric`, e.g. `soil_moisture_sum`. */
export function rollupColumn(metric: Metric, aggregate: RollupAggregate): `${Metric}_${RollupAggregate}` {
  return `${metric}_${aggregate}`
}

/** Every metric's aggregate columns, metric by metric in {@link METRICS} order. */
export const ROLLUP_METRIC_COLUMNS: readonly string[] = Object.freeze(
  METRICS.flatMap((metric) => ROLLUP_AGGREGATES.map((aggregate) => rollupColumn(metric, aggregate))),
)

/** The rollup's columns in table order. */
export const ROLLUP_COLUMNS: readonly string[] = Object.freeze([
  'hour',
  'device_id',
  'plant_id',
  'readings',
  ...ROLLUP_METRIC_COLUMNS,
])

/** The aggregate columns' definitions, for `CREATE TABLE`: sums and counts start at 0, extremes at NULL. */
export function rollupAggregateColumnsDdl(): RawBuilder<unknown> {
  return sql.join(
    METRICS.map(
      (metric) => sql`${sql.id(rollupColumn(metric, 'sum'))} FLOAT NOT NULL DEFAULT 0,
        ${sql.id(rollupColumn(metric, 'count'))} INTEGER NOT NULL DEFAULT 0,
        ${sql.id(rollupColumn(metric, 'min'))} FLOAT, ${sql.id(rollupColumn(metric, 'max'))} FLOAT`,
    ),
  )
}

/** The plant rollup's columns in table order; its key is `(plant_id, hour)`. */
export const PLANT_ROLLUP_COLUMNS: readonly string[] = Object.freeze([
  'plant_id',
  'hour',
  'readings',
  ...ROLLUP_METRIC_COLUMNS,
])

/** The five-minute plant rollup's columns in table order; its key is `(plant_id, start)`. */
export const PLANT_FIVE_MINUTE_COLUMNS: readonly string[] = Object.freeze([
  'plant_id',
  'start',
  'readings',
  ...ROLLUP_METRIC_COLUMNS,
])

/**
 * The rollup's key as its unique index spells it. Device and plant may be
 * NULL (a reading of a plantless device; a deleted plant's readings), and
 * `ON CONFLICT` never matches NULL, so the index keys on `coalesce(…, '')`;
 * an id is never empty.
 */
export const ROLLUP_CONFLICT_TARGET = sql.raw(`((coalesce(device_id, '')), hour, (coalesce(plant_id, '')))`)

const merges = new Map<string, RawBuilder<unknown>>()

/**
 * How an existing row of rollup `table` takes in another one (`excluded`):
 * sums and counts add up, minimum and maximum widen. `least`/`greatest`
 * ignore NULL. Built once per table: every batch uses it.
 */
export function rollupMerge(table = ROLLUP_TABLE): RawBuilder<unknown> {
  let merge = merges.get(table)
  if (!merge) {
    merge = buildMerge(table)
    merges.set(table, merge)
  }
  return merge
}

function buildMerge(table: string): RawBuilder<unknown> {
  const t = sql.id(table)
  const add = (column: string) => sql`${sql.id(column)} = ${t}.${sql.id(column)} + excluded.${sql.id(column)}`
  const widen = (column: string, fn: 'least' | 'greatest') =>
    sql`${sql.id(column)} = ${sql.raw(fn)}(${t}.${sql.id(column)}, excluded.${sql.id(column)})`
  const sets = [add('readings')]
  for (const metric of METRICS) {
    sets.push(add(rollupColumn(metric, 'sum')), add(rollupColumn(metric, 'count')))
    sets.push(widen(rollupColumn(metric, 'min'), 'least'), widen(rollupColumn(metric, 'max'), 'greatest'))
  }
  return sql.join(sets)
}

/** A `[from, to)` range of whole hours; either end open. */
export interface HourRange {
  readonly from?: Date | undefined
  readonly to?: Date | undefined
}

function hourFilter(column: string, range: HourRange): RawBuilder<unknown> {
  const conditions = [sql`TRUE`]
  if (range.from) conditions.push(sql`${sql.id(column)} >= ${range.from.toISOString()}::timestamptz`)
  if (range.to) conditions.push(sql`${sql.id(column)} < ${range.to.toISOString()}::timestamptz`)
  return sql.join(conditions, sql` AND `)
}

/** Per metric, the rollup aggregates of raw values. */
function aggregatesOfRaw(): RawBuilder<unknown> {
  return sql.join(
    METRICS.map((metric) => {
      const value = sql.id(metric)
      return sql`coalesce(sum(${value}), 0), count(${value}), min(${value}), max(${value})`
    }),
  )
}

/**
 * Rollup rows summed: `readings`, then per metric the summed sums and
 * counts and the widest minimum and maximum, in column order.
 */
export function aggregatesOfRollups(): RawBuilder<unknown> {
  const of = (column: string, fn: 'sum' | 'min' | 'max') => sql`${sql.raw(fn)}(${sql.id(column)})`
  return sql.join([
    of('readings', 'sum'),
    ...METRICS.flatMap((metric) => [
      of(rollupColumn(metric, 'sum'), 'sum'),
      of(rollupColumn(metric, 'count'), 'sum'),
      of(rollupColumn(metric, 'min'), 'min'),
      of(rollupColumn(metric, 'max'), 'max'),
    ]),
  ])
}

/** `columns` as a comma-separated list of quoted identifiers. */
export const columnList = (columns: readonly string[]): RawBuilder<unknown> => sql.join(columns.map((c) => sql.id(c)))

/**
 * Readies the caller's transaction to recompute `tables`: the lock waits for
 * writers' open batches and holds new ones until commit, so none adds to an
 * hour recomputed from a snapshot without its rows. The connection's
 * `statement_timeout` (60 s by default) is lifted for this transaction only:
 * a month of a large fleet takes minutes.
 */
export async function lockForRefill(db: AnyKysely, tables: readonly string[]): Promise<void> {
  await sql`SET LOCAL statement_timeout = 0`.execute(db)
  await sql`LOCK TABLE ${sql.join(tables.map((t) => sql.id(t)))} IN SHARE ROW EXCLUSIVE MODE`.execute(db)
}

/** Deletes a rollup's rows of `range`, before a refill writes them again. */
async function clearRange(db: AnyKysely, rollup: Rollup, range: HourRange): Promise<void> {
  await sql`DELETE FROM ${sql.id(rollup.table)} WHERE ${hourFilter(rollup.time, range)}`.execute(db)
}

/** Runs an `INSERT … RETURNING 1` and returns how many rows it inserted. */
async function countInserted(db: AnyKysely, insert: RawBuilder<unknown>): Promise<number> {
  const { rows } = await sql<{ n: number }>`WITH filled AS (${insert}) SELECT count(*)::int AS n FROM filled`.execute(
    db,
  )
  return rows[0]?.n ?? 0
}

/**
 * Recomputes the device rollup's rows of `range` (whole hours) from the raw
 * rows; returns how many it wrote. One statement whatever the range: a plain
 * `telemetry` has no index on time alone, so steps would each scan the table.
 */
export async function refillDeviceRollups(db: AnyKysely, range: HourRange): Promise<number> {
  await clearRange(db, ROLLUPS.deviceHours, range)
  return countInserted(
    db,
    sql`INSERT INTO ${sql.id(ROLLUP_TABLE)} (${columnList(ROLLUP_COLUMNS)})
      SELECT date_bin('1 hour', time, ${BUCKET_ORIGIN}::timestamptz), device_id, plant_id, count(*), ${aggregatesOfRaw()}
      FROM telemetry WHERE ${hourFilter('time', range)}
      GROUP BY 1, 2, 3
      RETURNING 1`,
  )
}

/** Recomputes the plant rollup's rows of `range` from the device rollup; returns how many it wrote. */
export async function refillPlantRollups(db: AnyKysely, range: HourRange): Promise<number> {
  await clearRange(db, ROLLUPS.plantHours, range)
  return countInserted(
    db,
    sql`INSERT INTO ${sql.id(PLANT_ROLLUP_TABLE)} (${columnList(PLANT_ROLLUP_COLUMNS)})
      SELECT plant_id, hour, ${aggregatesOfRollups()}
      FROM ${sql.id(ROLLUP_TABLE)} WHERE plant_id IS NOT NULL AND ${hourFilter('hour', range)}
      GROUP BY 1, 2
      RETURNING 1`,
  )
}

/**
 * The five-minute plant rollup's rows of the raw readings `from` a source
 * (`telemetry`, or `telemetry` joined to the buckets to recompute) that
 * `where` keeps, as an `INSERT`. No bound parameters: the device-deletion
 * trigger's function body uses it too.
 */
export function insertPlantFiveMinutesOf(from: RawBuilder<unknown>, where: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`INSERT INTO ${sql.id(PLANT_FIVE_MINUTE_TABLE)} (${columnList(PLANT_FIVE_MINUTE_COLUMNS)})
    SELECT plant_id, ${fiveMinuteStartOf(sql.id('time'))}, count(*), ${aggregatesOfRaw()}
    FROM ${from} WHERE plant_id IS NOT NULL AND ${where}
    GROUP BY 1, 2`
}

/** The five-minute bucket `time` falls in, from {@link BUCKET_ORIGIN}; as a literal, for function bodies too. */
export function fiveMinuteStartOf(time: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`date_bin('5 minutes', ${time}, ${sql.lit(BUCKET_ORIGIN)}::timestamptz)`
}

/** Recomputes the five-minute plant rollup's rows of `range` (whole hours) from the raw rows; returns how many it wrote. */
export async function refillPlantFiveMinutes(db: AnyKysely, range: HourRange): Promise<number> {
  await clearRange(db, ROLLUPS.plantFiveMinutes, range)
  return countInserted(db, sql`${insertPlantFiveMinutesOf(sql`telemetry`, hourFilter('time', range))} RETURNING 1`)
}

/**
 * Recomputes every rollup's rows of `range` from the raw rows, in the
 * caller's transaction; returns how many device-hour rows it wrote.
 */
export async function refillRollups(db: AnyKysely, range: HourRange): Promise<number> {
  await lockForRefill(db, ROLLUP_TABLES)
  const rows = await refillDeviceRollups(db, range)
  await refillPlantRollups(db, range)
  await refillPlantFiveMinutes(db, range)
  return rows
}

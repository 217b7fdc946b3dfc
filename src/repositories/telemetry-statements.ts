import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database, Telemetry } from '../schema/database.js'
import { METRICS, type Metric } from '../schema/metrics.js'
import { BUCKET_ORIGIN, ROLLUP_METRIC_COLUMNS, ROLLUPS, rollupColumn, type Rollup } from '../schema/rollups.js'

/** The reading scope of a query: one device's or one plant's telemetry. */
export type TelemetryScope = { column: 'device_id' | 'plant_id'; id: string }

/**
 * The newest reading of each id, one index descent per id through the
 * `(device_id, time DESC)` / `(plant_id, time DESC)` index: no scan of the table.
 */
export function latestQuery(column: 'device_id' | 'plant_id', ids: readonly string[]) {
  return sql<Telemetry>`
    SELECT t.*
    FROM unnest(${[...ids]}::text[]) AS wanted(id)
    CROSS JOIN LATERAL (
      SELECT * FROM telemetry
      WHERE ${sql.ref(column)} = wanted.id
      ORDER BY time DESC
      LIMIT 1
    ) AS t`
}

/**
 * Per metric: the average, minimum, maximum and number of values in a bucket.
 *
 * @example
 * ```ts
 * import type { MetricAggregate } from 'plantops-db'
 * const spread = (m: MetricAggregate) => (m.max ?? 0) - (m.min ?? 0)
 * ```
 */
export interface MetricAggregate {
  readonly avg: number | null
  readonly min: number | null
  readonly max: number | null
  readonly count: number
}

/**
 * One time bucket of `telemetry.buckets`: its start, how many readings fell
 * in it, and each metric's aggregate.
 *
 * @example
 * ```ts
 * import type { TelemetryBucket } from 'plantops-db'
 * const dry = (b: TelemetryBucket) => (b.soil_moisture.avg ?? 100) < 20
 * ```
 */
export type TelemetryBucket = { readonly bucket: Date; readonly readings: number } & {
  readonly [M in Metric]: MetricAggregate
}

type BucketRow = { bucket: Date; readings: number | string } & Record<string, number | string | null>

/** Each metric's result column names: spelled once, for the queries and for decoding every row. */
const AGGREGATE_KEYS = METRICS.map((metric) => ({
  metric,
  avg: `${metric}_avg`,
  min: `${metric}_min`,
  max: `${metric}_max`,
  count: `${metric}_count`,
}))

const numberOrNull = (value: number | string | null | undefined) =>
  value === null || value === undefined ? null : Number(value)

/**
 * A result row as a bucket. Plain assignments, not `Object.fromEntries` and
 * spreads: a month of hourly buckets is 720 rows, and the generic way took
 * as long as the query.
 */
function bucketOf(row: BucketRow): TelemetryBucket {
  const bucket: Record<string, unknown> = { bucket: row.bucket, readings: Number(row.readings) }
  for (const keys of AGGREGATE_KEYS) {
    const aggregate: MetricAggregate = {
      avg: numberOrNull(row[keys.avg]),
      min: numberOrNull(row[keys.min]),
      max: numberOrNull(row[keys.max]),
      count: Number(row[keys.count]),
    }
    bucket[keys.metric] = aggregate
  }
  return bucket as TelemetryBucket
}

/** The bucket widths the hourly rollups can answer: whole numbers of hours. */
const WHOLE_HOUR_WIDTHS: ReadonlySet<string> = new Set(['1 hour', '6 hours', '12 hours', '1 day', '1 week'])

/** The widths the five-minute plant rollup answers: whole numbers of five minutes, shorter than an hour. */
const FIVE_MINUTE_WIDTHS: ReadonlySet<string> = new Set(['5 minutes', '15 minutes', '30 minutes'])

/** A bucket query's range and width. */
export type BucketRange = { from: Date; to: Date; width: string }

/** A rollup buckets can be summed from, with how it names the scope's id. */
export type RollupSource = Rollup & { readonly owner: RawBuilder<unknown> }

const DEVICE_HOURS: RollupSource = Object.freeze({ ...ROLLUPS.deviceHours, owner: sql`coalesce(device_id, '')` })
const PLANT_HOURS: RollupSource = Object.freeze({ ...ROLLUPS.plantHours, owner: sql.ref('plant_id') })
const PLANT_FIVE_MINUTES: RollupSource = Object.freeze({ ...ROLLUPS.plantFiveMinutes, owner: sql.ref('plant_id') })

/**
 * The rollups that answer a scope's buckets of `width`, coarsest first (the
 * finer ones fill the ragged ends of the coarser), or none: the hourly
 * rollups for whole hours (a device's through its unique key's
 * `coalesce(device_id, '')`), the five-minute plant rollup for a plant's
 * shorter widths and a plant's partial hours. Every such width's edges fall
 * on the grain, as the origin is on an hour. A device's sub-hour buckets
 * come from raw rows: a day of them is 1,440 rows, which a third table per
 * device would not beat by enough to pay for its writes.
 */
export function rollupFor(scope: TelemetryScope, width: string): readonly RollupSource[] {
  const plant = scope.column === 'plant_id'
  if (WHOLE_HOUR_WIDTHS.has(width)) return plant ? [PLANT_HOURS, PLANT_FIVE_MINUTES] : [DEVICE_HOURS]
  return plant && FIVE_MINUTE_WIDTHS.has(width) ? [PLANT_FIVE_MINUTES] : []
}

/** Per metric, aggregates of the raw values. */
function rawAggregates() {
  return AGGREGATE_KEYS.map((keys) => {
    const column = sql.ref(keys.metric)
    return sql`avg(${column}) AS ${sql.ref(keys.avg)}, min(${column}) AS ${sql.ref(keys.min)},
      max(${column}) AS ${sql.ref(keys.max)}, count(${column}) AS ${sql.ref(keys.count)}`
  })
}

/** Per metric, the aggregates recombined from partial ones: the mean is the summed sum over the summed count. */
function recombinedAggregates() {
  return AGGREGATE_KEYS.map((keys) => {
    const [sum, count, min, max] = (['sum', 'count', 'min', 'max'] as const).map((a) =>
      sql.ref(rollupColumn(keys.metric, a)),
    )
    return sql`sum(${sum}) / nullif(sum(${count}), 0) AS ${sql.ref(keys.avg)},
      min(${min}) AS ${sql.ref(keys.min)}, max(${max}) AS ${sql.ref(keys.max)},
      sum(${count}) AS ${sql.ref(keys.count)}`
  })
}

/** Raw rows in `[from, to)` as one-reading partial aggregates, shaped like rollup rows. */
function rawAsPartials(scope: TelemetryScope, width: RawBuilder<unknown>, from: Date, to: Date) {
  const partials = METRICS.map((metric) => {
    const value = sql.ref(metric)
    return sql`coalesce(${value}, 0), (${value} IS NOT NULL)::int, ${value}, ${value}`
  })
  return sql`SELECT date_bin(${width}, time, ${BUCKET_ORIGIN}::timestamptz), 1, ${sql.join(partials)}
    FROM telemetry WHERE ${sql.ref(scope.column)} = ${scope.id}
      AND time >= ${from.toISOString()}::timestamptz AND time < ${to.toISOString()}::timestamptz`
}

function bucketsFromRaw(scope: TelemetryScope, range: BucketRange, useTimeBucket: boolean) {
  const width = sql`${range.width}::interval`
  const origin = sql`${BUCKET_ORIGIN}::timestamptz`
  const bucket = useTimeBucket ? sql`time_bucket(${width}, time, ${origin})` : sql`date_bin(${width}, time, ${origin})`
  return sql<BucketRow>`
    SELECT ${bucket} AS bucket, count(*) AS readings, ${sql.join(rawAggregates())}
    FROM telemetry
    WHERE ${sql.ref(scope.column)} = ${scope.id} AND time >= ${range.from.toISOString()}::timestamptz
      AND time < ${range.to.toISOString()}::timestamptz
    GROUP BY 1
    ORDER BY 1`
}

/**
 * The partial aggregates of `[from, to)`: the coarsest rollup's rows inside
 * it, and the ragged ends either side from the next finer rollup, down to
 * the raw rows of the last ragged grain. So a plant's chart of "the last 30
 * days" from any instant reads 24 rollup rows per day, a few five-minute
 * rows, and at most ten minutes of raw rows, not 1,440 raw rows per device
 * and day. The parts never overlap.
 */
function partsOf(
  scope: TelemetryScope,
  width: RawBuilder<unknown>,
  from: Date,
  to: Date,
  rollups: readonly RollupSource[],
): RawBuilder<unknown>[] {
  const [rollup, ...finer] = rollups
  if (!rollup) return from < to ? [rawAsPartials(scope, width, from, to)] : []
  const { grainMs } = rollup
  const first = new Date(Math.ceil(from.getTime() / grainMs) * grainMs)
  const last = new Date(Math.max(Math.floor(to.getTime() / grainMs) * grainMs, first.getTime()))
  const time = sql.ref(rollup.time)
  const whole = sql`SELECT date_bin(${width}, ${time}, ${BUCKET_ORIGIN}::timestamptz), ${partialColumns()}
    FROM ${sql.id(rollup.table)}
    WHERE ${rollup.owner} = ${scope.id} AND ${time} >= ${first.toISOString()}::timestamptz
      AND ${time} < ${last.toISOString()}::timestamptz`
  const head = new Date(Math.min(first.getTime(), to.getTime()))
  return [whole, ...partsOf(scope, width, from, head, finer), ...partsOf(scope, width, last, to, finer)]
}

/** The columns of a partial aggregate, rollup row or raw row alike. */
const partialColumns = () => sql.join(['readings', ...ROLLUP_METRIC_COLUMNS].map((c) => sql.ref(c)))

/**
 * Buckets summed from {@link partsOf}. In one statement, with the server's
 * planner settings: the raw parts are at most one grain of the finest
 * rollup at either end, too few rows for the planner to start parallel
 * workers (it did, taking a plant's "last 30 days" from 9 to 35 ms, when
 * those ends were whole hours of raw rows).
 */
function bucketsFromRollups(scope: TelemetryScope, range: BucketRange, rollups: readonly RollupSource[]) {
  const parts = partsOf(scope, sql`${range.width}::interval`, range.from, range.to, rollups)
  return sql<BucketRow>`
    SELECT bucket, sum(readings) AS readings, ${sql.join(recombinedAggregates())}
    FROM (${sql.join(parts, sql` UNION ALL `)}) AS parts (bucket, ${partialColumns()})
    GROUP BY bucket
    ORDER BY bucket`
}

/**
 * Aggregates a scope's readings in `[from, to)` into buckets of `width`:
 * from the rollups when they answer (see {@link rollupFor} and
 * {@link partsOf}), else from the raw rows, with `time_bucket` on
 * a hypertable and `date_bin` on a plain table, all from the same origin so
 * they cut time identically.
 */
export async function selectBuckets(
  db: Kysely<Database>,
  scope: TelemetryScope,
  range: BucketRange,
  source: { rollups: readonly RollupSource[]; useTimeBucket: boolean },
): Promise<TelemetryBucket[]> {
  if (source.rollups.length === 0)
    return (await bucketsFromRaw(scope, range, source.useTimeBucket).execute(db)).rows.map(bucketOf)
  return (await bucketsFromRollups(scope, range, source.rollups).execute(db)).rows.map(bucketOf)
}

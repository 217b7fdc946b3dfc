import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database, Telemetry } from '../schema/database.js'
import { METRICS, type Metric } from '../schema/metrics.js'
import {
  BUCKET_ORIGIN,
  HOUR_MS,
  PLANT_ROLLUP_TABLE,
  ROLLUP_METRIC_COLUMNS,
  ROLLUP_TABLE,
  rollupColumn,
} from '../schema/rollups.js'

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

/** The bucket widths the hourly rollup can answer: whole numbers of hours. */
const WHOLE_HOUR_WIDTHS: ReadonlySet<string> = new Set(['1 hour', '6 hours', '12 hours', '1 day', '1 week'])

/** A bucket query's range and width. */
export type BucketRange = { from: Date; to: Date; width: string }

/**
 * Whether the hourly rollup can answer buckets of this width: whole numbers
 * of hours, whose edges (the origin is on an hour) all fall on hours.
 */
export function rollupAnswers(width: string): boolean {
  return WHOLE_HOUR_WIDTHS.has(width)
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
 * Whole-hour buckets from the rollup's hours inside `[from, to)`, plus the
 * raw rows of the ragged hour at either end, so a chart of "the last 30
 * days" from any instant reads 24 rollup rows per day, not 1,440 raw ones
 * per device. The three parts never overlap. A plant reads the plant
 * rollup; a device the device rollup, through its unique key's
 * `coalesce(device_id, '')`.
 */
function bucketsFromRollup(scope: TelemetryScope, range: BucketRange) {
  const width = sql`${range.width}::interval`
  const firstHour = new Date(Math.ceil(range.from.getTime() / HOUR_MS) * HOUR_MS)
  const lastHour = new Date(Math.max(Math.floor(range.to.getTime() / HOUR_MS) * HOUR_MS, firstHour.getTime()))
  const [table, owner] =
    scope.column === 'device_id'
      ? [ROLLUP_TABLE, sql`coalesce(device_id, '')`]
      : [PLANT_ROLLUP_TABLE, sql.ref('plant_id')]
  const columns = sql.join(['readings', ...ROLLUP_METRIC_COLUMNS].map((c) => sql.ref(c)))
  const parts = [
    sql`SELECT date_bin(${width}, hour, ${BUCKET_ORIGIN}::timestamptz), ${columns}
      FROM ${sql.id(table)}
      WHERE ${owner} = ${scope.id} AND hour >= ${firstHour.toISOString()}::timestamptz
        AND hour < ${lastHour.toISOString()}::timestamptz`,
  ]
  const head = new Date(Math.min(firstHour.getTime(), range.to.getTime()))
  if (range.from < head) parts.push(rawAsPartials(scope, width, range.from, head))
  if (lastHour < range.to) parts.push(rawAsPartials(scope, width, lastHour, range.to))
  const query = sql<BucketRow>`
    SELECT bucket, sum(readings) AS readings, ${sql.join(recombinedAggregates())}
    FROM (${sql.join(parts, sql` UNION ALL `)}) AS parts (bucket, ${columns})
    GROUP BY bucket
    ORDER BY bucket`
  return { query, readsRawRows: parts.length > 1 }
}

/**
 * Aggregates a scope's readings in `[from, to)` into buckets of `width`:
 * from the hourly rollup for whole-hour widths (see {@link bucketsFromRollup}),
 * else from the raw rows, with `time_bucket` on a hypertable and `date_bin`
 * on a plain table, all from the same origin so they cut time identically.
 */
export async function selectBuckets(
  db: Kysely<Database>,
  scope: TelemetryScope,
  range: BucketRange,
  source: { rollup: boolean; useTimeBucket: boolean },
): Promise<TelemetryBucket[]> {
  if (!source.rollup) return (await bucketsFromRaw(scope, range, source.useTimeBucket).execute(db)).rows.map(bucketOf)
  const { query, readsRawRows } = bucketsFromRollup(scope, range)
  if (!readsRawRows || db.isTransaction) return (await query.execute(db)).rows.map(bucketOf)
  // With the raw rows of its partial hours, the planner prices a few hundred
  // rows as random reads of a large table and starts parallel workers: at
  // 43.2 million rows a plant's "last 30 days" took 10 ms in the server with
  // two and 4 ms without (35 against 9 through the API on two cores). So it
  // runs in a transaction of its own with none; never in a caller's, whose
  // settings are not ours to change.
  return db.transaction().execute(async (trx) => {
    await sql`SET LOCAL max_parallel_workers_per_gather = 0`.execute(trx)
    return (await query.execute(trx)).rows.map(bucketOf)
  })
}

/**
 * The tables retention and compression act on: the raw readings, or their
 * two hourly rollups. Each kind ages on its own, so charts outlive the raw rows.
 */
export const AGED_TABLES = {
  readings: [{ table: 'telemetry', time: 'time', segmentBy: 'device_id', orderBy: 'time DESC' }],
  rollups: [
    { table: ROLLUP_TABLE, time: 'hour', segmentBy: 'device_id', orderBy: 'hour DESC' },
    { table: PLANT_ROLLUP_TABLE, time: 'hour', segmentBy: 'plant_id', orderBy: 'hour DESC' },
  ],
} as const

/** Which of {@link AGED_TABLES}. */
export type AgedTable = keyof typeof AGED_TABLES

type AgedTableInfo = (typeof AGED_TABLES)[AgedTable][number]

/** Drops every chunk of `of`'s tables entirely older than `age`; returns how many. */
export async function dropOldChunks(db: Kysely<Database>, age: string, of: AgedTable): Promise<number> {
  let dropped = 0
  for (const { table } of AGED_TABLES[of]) {
    const { rows } = await sql<{ chunk: string }>`
      SELECT drop_chunks(${table}::regclass, older_than => now() - ${age}::interval) AS chunk`.execute(db)
    dropped += rows.length
  }
  return dropped
}

/**
 * Deletes rows of `of`'s tables older than `age` in batches, so no single
 * statement holds locks on, or writes WAL for, the whole backlog at once.
 */
export async function deleteOldRows(
  db: Kysely<Database>,
  age: string,
  of: AgedTable,
  batchSize = 10_000,
): Promise<number> {
  let total = 0
  for (const aged of AGED_TABLES[of]) total += await deleteOldRowsOf(db, age, aged, batchSize)
  return total
}

async function deleteOldRowsOf(db: Kysely<Database>, age: string, aged: AgedTableInfo, batchSize: number) {
  const [table, time] = [sql.id(aged.table), sql.id(aged.time)]
  let total = 0
  for (;;) {
    const result = await sql`
      DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM ${table} WHERE ${time} < now() - ${age}::interval LIMIT ${batchSize}))`.execute(db)
    const deleted = Number(result.numAffectedRows ?? 0)
    total += deleted
    if (deleted < batchSize) return total
  }
}

/** The two TimescaleDB policies plantops-db manages, by the job procedure, its age key and its remover. */
const POLICIES = {
  compression: { procedure: 'policy_compression', ageKey: 'compress_after', remove: 'remove_compression_policy' },
  retention: { procedure: 'policy_retention', ageKey: 'drop_after', remove: 'remove_retention_policy' },
} as const

type PolicyKind = keyof typeof POLICIES

/** The job of `kind` on `table`, with whether its age is `age`; none when there is no such job. */
async function policyJob(db: Kysely<Database>, kind: PolicyKind, table: string, age: string) {
  const { procedure, ageKey } = POLICIES[kind]
  const { rows } = await sql<{ job_id: number; same: boolean }>`
    SELECT job_id, (config->>${ageKey})::interval = ${age}::interval AS same
    FROM timescaledb_information.jobs
    WHERE hypertable_schema = current_schema() AND hypertable_name = ${table} AND proc_name = ${procedure}`.execute(db)
  return rows[0]
}

/**
 * Schedules a policy at `age` on each of `of`'s tables: the job already
 * there when its age is the same; otherwise the old job is replaced, in one
 * transaction. TimescaleDB's own `if_not_exists` would keep the old age and
 * only warn. Returns the first table's job id.
 */
async function schedulePolicy(db: Kysely<Database>, kind: PolicyKind, of: AgedTable, age: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    let first: number | undefined
    for (const { table } of AGED_TABLES[of]) {
      const job = await scheduleOn(trx, kind, table, age)
      first ??= job
    }
    return first!
  })
}

async function scheduleOn(trx: Kysely<Database>, kind: PolicyKind, table: string, age: string): Promise<number> {
  const existing = await policyJob(trx, kind, table, age)
  if (existing?.same) return Number(existing.job_id)
  if (existing) await sql`SELECT ${sql.raw(POLICIES[kind].remove)}(${table}::regclass)`.execute(trx)
  const add = kind === 'compression' ? sql`add_compression_policy` : sql`add_retention_policy`
  const { rows } = await sql<{ job: number }>`SELECT ${add}(${table}::regclass, ${age}::interval) AS job`.execute(trx)
  return Number(rows[0]!.job)
}

/**
 * Enables native compression of `of`'s tables (segmented by device, or by
 * plant) and schedules it after `after`, replacing a compression policy of
 * another age; returns the first table's job id.
 */
export async function addCompressionJob(db: Kysely<Database>, after: string, of: AgedTable): Promise<number> {
  for (const { table, segmentBy, orderBy } of AGED_TABLES[of])
    await sql`ALTER TABLE ${sql.id(table)} SET (timescaledb.compress, timescaledb.compress_segmentby = ${sql.lit(segmentBy)},
      timescaledb.compress_orderby = ${sql.lit(orderBy)})`.execute(db)
  return schedulePolicy(db, 'compression', of, after)
}

/** Schedules dropping chunks of `of`'s tables older than `after`, replacing a retention policy of another age; returns the first table's job id. */
export function addRetentionJob(db: Kysely<Database>, after: string, of: AgedTable): Promise<number> {
  return schedulePolicy(db, 'retention', of, after)
}

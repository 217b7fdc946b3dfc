import { sql, type Kysely } from 'kysely'
import type { Database, Telemetry } from '../schema/database.js'
import { METRICS, type Metric } from '../schema/metrics.js'

/** The reading scope of a query: one device's or one plant's telemetry. */
export type TelemetryScope = { column: 'device_id' | 'plant_id'; id: string }

/** Where `date_bin` starts counting: TimescaleDB's default `time_bucket` origin (a Monday). */
const BUCKET_ORIGIN = '2000-01-03T00:00:00Z'

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

function aggregateOf(row: BucketRow, metric: Metric): MetricAggregate {
  const number = (value: number | string | null | undefined) =>
    value === null || value === undefined ? null : Number(value)
  return {
    avg: number(row[`${metric}_avg`]),
    min: number(row[`${metric}_min`]),
    max: number(row[`${metric}_max`]),
    count: Number(row[`${metric}_count`]),
  }
}

/**
 * Aggregates a scope's readings in `[from, to)` into buckets of `width`, with
 * `time_bucket` on a hypertable and `date_bin` on a plain table, both from the
 * same origin so they cut time identically.
 */
export async function selectBuckets(
  db: Kysely<Database>,
  scope: TelemetryScope,
  range: { from: Date; to: Date; width: string },
  useTimeBucket: boolean,
): Promise<TelemetryBucket[]> {
  const width = sql`${range.width}::interval`
  const origin = sql`${BUCKET_ORIGIN}::timestamptz`
  const bucket = useTimeBucket ? sql`time_bucket(${width}, time, ${origin})` : sql`date_bin(${width}, time, ${origin})`
  const aggregates = METRICS.map((metric) => {
    const column = sql.ref(metric)
    return sql`avg(${column}) AS ${sql.ref(`${metric}_avg`)}, min(${column}) AS ${sql.ref(`${metric}_min`)},
      max(${column}) AS ${sql.ref(`${metric}_max`)}, count(${column}) AS ${sql.ref(`${metric}_count`)}`
  })
  const { rows } = await sql<BucketRow>`
    SELECT ${bucket} AS bucket, count(*) AS readings, ${sql.join(aggregates)}
    FROM telemetry
    WHERE ${sql.ref(scope.column)} = ${scope.id} AND time >= ${range.from.toISOString()}::timestamptz
      AND time < ${range.to.toISOString()}::timestamptz
    GROUP BY 1
    ORDER BY 1`.execute(db)
  return rows.map((row) => {
    const metrics = Object.fromEntries(METRICS.map((metric) => [metric, aggregateOf(row, metric)]))
    return { bucket: row.bucket, readings: Number(row.readings), ...metrics } as TelemetryBucket
  })
}

/** Drops every chunk entirely older than `age`; returns how many. */
export async function dropOldChunks(db: Kysely<Database>, age: string): Promise<number> {
  const { rows } = await sql<{ chunk: string }>`
    SELECT drop_chunks('telemetry', older_than => now() - ${age}::interval) AS chunk`.execute(db)
  return rows.length
}

/**
 * Deletes rows older than `age` in batches, so no single statement holds
 * locks on, or writes WAL for, the whole backlog at once.
 */
export async function deleteOldRows(db: Kysely<Database>, age: string, batchSize = 10_000): Promise<number> {
  let total = 0
  for (;;) {
    const result = await sql`
      DELETE FROM telemetry WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM telemetry WHERE time < now() - ${age}::interval LIMIT ${batchSize}))`.execute(db)
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

/** The telemetry job of `kind`, with whether its age is `age`; none when there is no such job. */
async function policyJob(db: Kysely<Database>, kind: PolicyKind, age: string) {
  const { procedure, ageKey } = POLICIES[kind]
  const { rows } = await sql<{ job_id: number; same: boolean }>`
    SELECT job_id, (config->>${ageKey})::interval = ${age}::interval AS same
    FROM timescaledb_information.jobs
    WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry' AND proc_name = ${procedure}`.execute(
    db,
  )
  return rows[0]
}

/**
 * Schedules a policy at `age`: the job already there when its age is the
 * same; otherwise the old job is replaced, in one transaction. TimescaleDB's
 * own `if_not_exists` would keep the old age and only warn.
 */
async function schedulePolicy(db: Kysely<Database>, kind: PolicyKind, age: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const existing = await policyJob(trx, kind, age)
    if (existing?.same) return Number(existing.job_id)
    if (existing) await sql`SELECT ${sql.raw(POLICIES[kind].remove)}('telemetry')`.execute(trx)
    const add = kind === 'compression' ? sql`add_compression_policy` : sql`add_retention_policy`
    const { rows } = await sql<{ job: number }>`SELECT ${add}('telemetry', ${age}::interval) AS job`.execute(trx)
    return Number(rows[0]!.job)
  })
}

/**
 * Enables native compression (segmented by device) and schedules it after
 * `after`, replacing a compression policy of another age; returns the job id.
 */
export async function addCompressionJob(db: Kysely<Database>, after: string): Promise<number> {
  await sql`ALTER TABLE telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC')`.execute(db)
  return schedulePolicy(db, 'compression', after)
}

/** Schedules dropping chunks older than `after`, replacing a retention policy of another age; returns the job id. */
export function addRetentionJob(db: Kysely<Database>, after: string): Promise<number> {
  return schedulePolicy(db, 'retention', after)
}

import { sql, type Kysely } from 'kysely'
import { expect } from 'vitest'
import { METRICS, type Database, type TelemetryBucket } from '../../src/index.js'

/** Sums are added in another order by the rollup (per batch, then per bucket) than by `sum()`: the last bits may differ. */
export const SUM_TOLERANCE = 1e-9

export function close(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b
  return Math.abs(a - b) <= SUM_TOLERANCE * Math.max(1, Math.abs(a), Math.abs(b))
}

type HourRow = { hour: string; device_id: string | null; plant_id: string | null; readings: number } & Record<
  string,
  number | string | null
>

const aggregates = (prefix: 'raw' | 'rollup') =>
  sql.join(
    METRICS.map((m) =>
      prefix === 'raw'
        ? sql`coalesce(sum(${sql.id(m)}), 0)::float8 AS ${sql.id(`${m}_sum`)}, count(${sql.id(m)})::int AS ${sql.id(`${m}_count`)},
            min(${sql.id(m)}) AS ${sql.id(`${m}_min`)}, max(${sql.id(m)}) AS ${sql.id(`${m}_max`)}`
        : sql`${sql.id(`${m}_sum`)}, ${sql.id(`${m}_count`)}, ${sql.id(`${m}_min`)}, ${sql.id(`${m}_max`)}`,
    ),
  )

/** The devices' hourly aggregates straight from the raw rows, by an independent query. */
export async function rawHours(db: Kysely<Database>, deviceIds: readonly string[]): Promise<HourRow[]> {
  const { rows } = await sql<HourRow>`
    SELECT to_char(date_trunc('hour', time AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24') AS hour, device_id, plant_id,
      count(*)::int AS readings, ${aggregates('raw')}
    FROM telemetry WHERE device_id = ANY (${[...deviceIds]}::text[])
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 NULLS FIRST`.execute(db)
  return rows
}

/** The devices' rows of the rollup the library keeps. */
export async function rollupHours(db: Kysely<Database>, deviceIds: readonly string[]): Promise<HourRow[]> {
  const { rows } = await sql<HourRow>`
    SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24') AS hour, device_id, plant_id, readings, ${aggregates('rollup')}
    FROM telemetry_hourly WHERE device_id = ANY (${[...deviceIds]}::text[])
    ORDER BY 1, 2, 3 NULLS FIRST`.execute(db)
  return rows
}

type PlantHourRow = { hour: string; plant_id: string; readings: number } & Record<string, number | string | null>

/** A plant rollup and its grain: the hourly one, or the five-minute one. */
const PLANT_ROLLUPS = {
  hour: { table: 'telemetry_plant_hourly', time: 'hour' },
  '5 minutes': { table: 'telemetry_plant_5min', time: 'start' },
} as const

type PlantGrain = keyof typeof PLANT_ROLLUPS

/** A raw row's bucket of `grain` as text, computed without `date_bin`: minutes floored to fives by arithmetic. */
function rawBucketText(grain: PlantGrain) {
  const utc = sql`(time AT TIME ZONE 'UTC')`
  return grain === 'hour'
    ? sql`to_char(date_trunc('hour', ${utc}), 'YYYY-MM-DD HH24')`
    : sql`to_char(date_trunc('hour', ${utc}) + floor(extract(minute FROM ${utc}) / 5) * INTERVAL '5 minutes', 'YYYY-MM-DD HH24:MI')`
}

/** Every plant's aggregates per `grain` straight from the raw rows, by an independent query. */
export async function rawPlantHours(db: Kysely<Database>, grain: PlantGrain = 'hour'): Promise<PlantHourRow[]> {
  const { rows } = await sql<PlantHourRow>`
    SELECT ${rawBucketText(grain)} AS hour, plant_id, count(*)::int AS readings, ${aggregates('raw')}
    FROM telemetry WHERE plant_id IS NOT NULL
    GROUP BY 1, 2 ORDER BY 1, 2`.execute(db)
  return rows
}

/** Every row of the plant rollup of `grain` the library keeps. */
export async function plantRollupHours(db: Kysely<Database>, grain: PlantGrain = 'hour'): Promise<PlantHourRow[]> {
  const { table, time } = PLANT_ROLLUPS[grain]
  const format = grain === 'hour' ? 'YYYY-MM-DD HH24' : 'YYYY-MM-DD HH24:MI'
  const { rows } = await sql<PlantHourRow>`
    SELECT to_char(${sql.ref(time)} AT TIME ZONE 'UTC', ${format}) AS hour, plant_id, readings, ${aggregates('rollup')}
    FROM ${sql.table(table)} ORDER BY 1, 2`.execute(db)
  return rows
}

/** Counts, minima and maxima exactly; sums to {@link SUM_TOLERANCE}. */
function expectSameHours<R extends { hour: string; readings: number }>(rolled: R[], raw: R[]): void {
  const exact = (rows: R[]) =>
    rows.map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !k.endsWith('_sum'))))
  expect(exact(rolled)).toEqual(exact(raw))
  for (const [i, row] of raw.entries())
    for (const metric of METRICS) {
      const [a, b] = [Number(row[`${metric}_sum` as keyof R]), Number(rolled[i]![`${metric}_sum` as keyof R])]
      if (!close(a, b)) expect({ hour: row.hour, metric, rollup: b }).toEqual({ hour: row.hour, metric, rollup: a })
    }
}

/**
 * The devices' rollup rows, and every plant's hours and five minutes, equal
 * aggregations of the raw rows; returns how many raw rows the devices have.
 */
export async function expectRollupsMatchRaw(db: Kysely<Database>, deviceIds: readonly string[]): Promise<number> {
  const raw = await rawHours(db, deviceIds)
  expectSameHours(await rollupHours(db, deviceIds), raw)
  for (const grain of ['hour', '5 minutes'] as const)
    expectSameHours(await plantRollupHours(db, grain), await rawPlantHours(db, grain))
  return raw.reduce((n, row) => n + row.readings, 0)
}

/** Buckets from the rollup equal those from raw rows: exactly, but for averages to {@link SUM_TOLERANCE}. */
export function expectSameBuckets(fromRollup: TelemetryBucket[], fromRaw: TelemetryBucket[]): void {
  const withoutAvg = (buckets: TelemetryBucket[]) =>
    buckets.map((b) => ({
      ...b,
      ...Object.fromEntries(METRICS.map((metric) => [metric, { ...b[metric], avg: undefined }])),
    }))
  expect(withoutAvg(fromRollup)).toEqual(withoutAvg(fromRaw))
  for (const [i, bucket] of fromRaw.entries())
    for (const metric of METRICS) {
      const [a, b] = [bucket[metric].avg, fromRollup[i]![metric].avg]
      if (!close(a, b))
        expect({ bucket: bucket.bucket, metric, avg: b }).toEqual({ bucket: bucket.bucket, metric, avg: a })
    }
}

import type { Kysely } from 'kysely'
import { z } from 'zod'
import { isHypertable } from '../schema/timescaledb.js'
import { InvalidStateError, MissingReferenceError, TimescaleUnavailableError } from '../errors/errors.js'
import type { Database, Telemetry } from '../schema/database.js'
import { METRICS } from '../schema/metrics.js'
import { hasAMetric, metricValueFields } from '../schema/readings.js'
import {
  olderThanCursor,
  guarded,
  idSchema,
  instantSchema,
  pageFields,
  timeKey,
  validate,
  toTimePage,
  type Page,
} from './shared/index.js'
import {
  addCompressionJob,
  addRetentionJob,
  deleteOldRows,
  dropOldChunks,
  selectBuckets,
  latestQuery,
  type TelemetryBucket,
  type TelemetryScope,
} from './telemetry-statements.js'

const MAX_INSERT = 1_000
const MAX_LATEST_IDS = 10_000

/**
 * One reading for `telemetry.insert`: the device, when, and at least one
 * metric, each finite and physically plausible (see `METRIC_RANGES`). The
 * plant is always the device's current plant; a reading cannot choose it.
 *
 * @example
 * ```ts
 * import { telemetryInputSchema } from 'plantops-db'
 * telemetryInputSchema.parse({ deviceId: 'dev_1', time: new Date(), soil_moisture: 41.5 })
 * ```
 */
export const telemetryInputSchema = z
  .strictObject({ deviceId: idSchema, time: instantSchema, ...metricValueFields })
  .refine(hasAMetric.check, { message: hasAMetric.message })

/** Exactly one of `deviceId` and `plantId`. */
const scopeFields = { deviceId: idSchema.optional(), plantId: idSchema.optional() }
const oneScope = (value: { deviceId?: string | undefined; plantId?: string | undefined }) =>
  (value.deviceId === undefined) !== (value.plantId === undefined)
const oneScopeMessage = { message: 'give exactly one of deviceId and plantId' }

/**
 * Options of `telemetry.range`: whose readings, an optional `[from, to)` window, and a page.
 *
 * @example
 * ```ts
 * import { telemetryRangeOptionsSchema } from 'plantops-db'
 * telemetryRangeOptionsSchema.parse({ plantId: 'plant_1', from: '2026-01-01T00:00:00Z', limit: 500 })
 * ```
 */
export const telemetryRangeOptionsSchema = z
  .strictObject({ ...scopeFields, from: instantSchema.optional(), to: instantSchema.optional(), ...pageFields })
  .refine(oneScope, oneScopeMessage)

/**
 * Bucket widths `telemetry.buckets` accepts: fixed lengths, which `date_bin`
 * and `time_bucket` cut identically.
 *
 * @example
 * ```ts
 * import { BUCKET_WIDTHS } from 'plantops-db'
 * BUCKET_WIDTHS.includes('1 hour') // true
 * ```
 */
export const BUCKET_WIDTHS = [
  '1 minute',
  '5 minutes',
  '15 minutes',
  '30 minutes',
  '1 hour',
  '6 hours',
  '12 hours',
  '1 day',
  '1 week',
] as const

/**
 * Options of `telemetry.buckets`.
 *
 * @example
 * ```ts
 * import { telemetryBucketOptionsSchema } from 'plantops-db'
 * telemetryBucketOptionsSchema.parse({ deviceId: 'dev_1', from: new Date(0), to: new Date(), bucket: '1 hour' })
 * ```
 */
export const telemetryBucketOptionsSchema = z
  .strictObject({ ...scopeFields, from: instantSchema, to: instantSchema, bucket: z.enum(BUCKET_WIDTHS) })
  .refine(oneScope, oneScopeMessage)
  .refine((options) => options.from < options.to, { message: 'from must be before to', path: ['from'] })

/**
 * An age such as `'30 days'` or `'12 hours'`, for retention and compression.
 *
 * @example
 * ```ts
 * import { ageSchema } from 'plantops-db'
 * ageSchema.parse('90 days')
 * ```
 */
export const ageSchema = z
  .string()
  .regex(/^[1-9]\d{0,5} (second|minute|hour|day|week)s?$/, { message: 'must look like "30 days" or "12 hours"' })

/**
 * One reading for `telemetry.insert`.
 *
 * @example
 * ```ts
 * const r: TelemetryInput = { deviceId: 'dev_1', time: new Date(), humidity: 60 }
 * ```
 */
export type TelemetryInput = z.input<typeof telemetryInputSchema>
/** Options of `telemetry.range`. @example `const o: TelemetryRangeOptions = { deviceId: 'dev_1', limit: 100 }` */
export type TelemetryRangeOptions = z.input<typeof telemetryRangeOptionsSchema>
/**
 * Options of `telemetry.buckets`.
 *
 * @example
 * ```ts
 * const o: TelemetryBucketOptions = { plantId: 'p', from, to, bucket: '1 hour' }
 * ```
 */
export type TelemetryBucketOptions = z.input<typeof telemetryBucketOptionsSchema>
/**
 * Whose latest readings `telemetry.latest` returns.
 *
 * @example
 * ```ts
 * const w: LatestFor = { deviceIds: ['dev_1', 'dev_2'] }
 * ```
 */
export type LatestFor = { deviceIds: readonly string[] } | { plantIds: readonly string[] }
/** What `telemetry.deleteOlderThan` removed. @example `if (r.method === 'delete') console.log(r.rowsDeleted)` */
export type RetentionResult =
  | { method: 'drop_chunks'; chunksDropped: number }
  | { method: 'delete'; rowsDeleted: number }

export type { TelemetryBucket, MetricAggregate } from './telemetry-statements.js'

/**
 * The `telemetry` repository: small writes and every read. Bulk ingestion
 * goes through `createTelemetryWriter`.
 *
 * @example
 * ```ts
 * const { telemetry } = createRepositories(db)
 * await telemetry.insert({ deviceId: 'dev_1', time: new Date(), soil_moisture: 38 })
 * const [newest] = await telemetry.latest({ plantIds: ['plant_fern'] })
 * const hourly = await telemetry.buckets({ plantId: 'plant_fern', from, to, bucket: '1 hour' })
 * ```
 */
export interface TelemetryRepository {
  /** Inserts up to 1,000 readings; the plant is the device's current one. */
  insert(readings: TelemetryInput | readonly TelemetryInput[]): Promise<Telemetry[]>
  /** A device's or plant's readings, newest first, a page at a time. */
  range(options: TelemetryRangeOptions): Promise<Page<Telemetry>>
  /** The newest reading of each of up to 10,000 devices or plants, in one query. */
  latest(of: LatestFor): Promise<Telemetry[]>
  /** Average, minimum, maximum and count per metric per time bucket. */
  buckets(options: TelemetryBucketOptions): Promise<TelemetryBucket[]>
  /** Removes telemetry older than `age` (`drop_chunks` on a hypertable: whole chunks only). */
  deleteOlderThan(age: string): Promise<RetentionResult>
  /**
   * TimescaleDB only: compress chunks older than `after`; returns the job id.
   * Idempotent for the same age; another age replaces the policy (new job id).
   */
  addCompressionPolicy(after: string): Promise<number>
  /**
   * TimescaleDB only: drop chunks older than `after` on a schedule; returns the
   * job id. Idempotent for the same age; another age replaces the policy (new job id).
   */
  addRetentionPolicy(after: string): Promise<number>
}

function scopeOf(options: { deviceId?: string | undefined; plantId?: string | undefined }): TelemetryScope {
  return options.deviceId !== undefined
    ? { column: 'device_id', id: options.deviceId }
    : { column: 'plant_id', id: options.plantId! }
}

export function createTelemetryRepository(db: Kysely<Database>): TelemetryRepository {
  /** Plant and status of each device, checked before writing its readings. */
  const devicesFor = async (ids: string[]) => {
    const devices = await db.selectFrom('devices').select(['id', 'plant_id', 'status']).where('id', 'in', ids).execute()
    const byId = new Map(devices.map((device) => [device.id, device]))
    for (const id of ids) {
      const device = byId.get(id)
      if (!device) throw new MissingReferenceError('device', id)
      if (device.status === 'decommissioned')
        throw new InvalidStateError(`device "${id}" is decommissioned; its readings are refused`)
    }
    return byId
  }

  const requireHypertable = async (what: string) => {
    if (!(await isHypertable(db, 'telemetry'))) throw new TimescaleUnavailableError(what, 'telemetry is a plain table')
  }

  return {
    async insert(readings) {
      // Error paths are relative to what the caller passed: no index for a single reading.
      const list = Array.isArray(readings)
        ? validate(z.array(telemetryInputSchema).min(1).max(MAX_INSERT), readings, 'readings')
        : [validate(telemetryInputSchema, readings, 'reading')]
      const devices = await devicesFor([...new Set(list.map((reading) => reading.deviceId))])
      const rows = list.map((reading) => ({
        time: reading.time,
        device_id: reading.deviceId,
        plant_id: devices.get(reading.deviceId)!.plant_id,
        ...Object.fromEntries(METRICS.map((metric) => [metric, reading[metric] ?? null])),
      }))
      return guarded('readings', () => db.insertInto('telemetry').values(rows).returningAll().execute())
    },

    async range(options) {
      const { from, to, limit, cursor, ...scope } = validate(
        telemetryRangeOptionsSchema,
        options,
        'telemetry range options',
      )
      const { column, id } = scopeOf(scope)
      let query = db
        .selectFrom('telemetry')
        .selectAll()
        .select((eb) => timeKey(eb.ref('time')).as('cursor_time'))
        .where(column, '=', id)
        .orderBy('time', 'desc')
        .orderBy('device_id', 'desc')
        .limit(limit + 1)
      if (from) query = query.where('time', '>=', from)
      if (to) query = query.where('time', '<', to)
      if (cursor !== undefined)
        query = query.where(
          olderThanCursor(cursor, { time: 'time', tieBreaker: 'device_id' }, 'telemetry range options'),
        )
      const rows = await guarded('telemetry range options', () => query.execute())
      return toTimePage(rows, limit, (reading) => reading.device_id ?? '')
    },

    async latest(of) {
      const wanted = validate(
        z.union([
          z.strictObject({ deviceIds: z.array(idSchema).max(MAX_LATEST_IDS) }),
          z.strictObject({ plantIds: z.array(idSchema).max(MAX_LATEST_IDS) }),
        ]),
        of,
        'latest telemetry selection',
      )
      const [column, ids] =
        'deviceIds' in wanted ? (['device_id', wanted.deviceIds] as const) : (['plant_id', wanted.plantIds] as const)
      if (ids.length === 0) return []
      return (await latestQuery(column, [...new Set(ids)]).execute(db)).rows
    },

    async buckets(options) {
      const { from, to, bucket, ...scope } = validate(telemetryBucketOptionsSchema, options, 'telemetry bucket options')
      return selectBuckets(db, scopeOf(scope), { from, to, width: bucket }, await isHypertable(db, 'telemetry'))
    },

    async deleteOlderThan(age) {
      const interval = validate(ageSchema, age, 'retention age')
      if (await isHypertable(db, 'telemetry'))
        return { method: 'drop_chunks', chunksDropped: await dropOldChunks(db, interval) }
      return { method: 'delete', rowsDeleted: await deleteOldRows(db, interval) }
    },

    async addCompressionPolicy(after) {
      const interval = validate(ageSchema, after, 'compression age')
      await requireHypertable('a compression policy')
      return addCompressionJob(db, interval)
    },

    async addRetentionPolicy(after) {
      const interval = validate(ageSchema, after, 'retention age')
      await requireHypertable('a retention policy')
      return addRetentionJob(db, interval)
    },
  }
}

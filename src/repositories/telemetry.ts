import type { Kysely } from 'kysely'
import { z } from 'zod'
import { isHypertable } from '../schema/timescaledb.js'
import { InvalidStateError, MissingReferenceError, TimescaleUnavailableError } from '../errors/errors.js'
import type { Database, Telemetry } from '../schema/database.js'
import { METRICS } from '../schema/metrics.js'
import { olderThanCursor, guarded, idSchema, timeKey, validate, toTimePage, type Page } from './shared/index.js'
import { HOUR_MS, refillRollups } from '../schema/rollups.js'
import type { InsertedReading } from './rollup-buckets.js'
import { addToRollupsQuery } from './rollup-statements.js'
import {
  AGED_TABLES,
  addCompressionJob,
  addRetentionJob,
  deleteOldRows,
  dropOldChunks,
  type AgedTable,
} from './telemetry-aging.js'
import {
  selectBuckets,
  latestQuery,
  rollupFor,
  type TelemetryBucket,
  type TelemetryScope,
} from './telemetry-statements.js'
import {
  MAX_INSERT,
  MAX_LATEST_IDS,
  agedSchema,
  ageSchema,
  rebuildRollupsOptionsSchema,
  telemetryBucketOptionsSchema,
  telemetryInputSchema,
  telemetryRangeOptionsSchema,
  type AgedTelemetry,
  type LatestFor,
  type RebuildRollupsOptions,
  type RebuildRollupsResult,
  type RetentionResult,
  type TelemetryBucketOptions,
  type TelemetryInput,
  type TelemetryRangeOptions,
} from './telemetry-options.js'

export type { TelemetryBucket, MetricAggregate } from './telemetry-statements.js'
export * from './telemetry-options.js'

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
  /** Inserts up to 1,000 readings, and adds them to the rollups; the plant is the device's current one. */
  insert(readings: TelemetryInput | readonly TelemetryInput[]): Promise<Telemetry[]>
  /** A device's or plant's readings, newest first, a page at a time. */
  range(options: TelemetryRangeOptions): Promise<Page<Telemetry>>
  /** The newest reading of each of up to 10,000 devices or plants, in one query. */
  latest(of: LatestFor): Promise<Telemetry[]>
  /**
   * Average, minimum, maximum and count per metric per time bucket: from the
   * rollups where they answer (whole hours; a plant's five minutes), with raw
   * rows only for ragged ends; else from raw rows.
   */
  buckets(options: TelemetryBucketOptions): Promise<TelemetryBucket[]>
  /**
   * Recomputes every rollup (device hours, plant hours, plant five minutes) of `[from, to)`, widened
   * to whole hours, from the raw rows: for rows written around the writer (an
   * import, a restore).
   * One transaction, free of `statement_timeout`; writers' batches wait for it.
   */
  rebuildRollups(options: RebuildRollupsOptions): Promise<RebuildRollupsResult>
  /**
   * Removes raw readings (or, with `{ of: 'rollups' }`, every rollup's rows) older
   * than `age`; `drop_chunks` on a hypertable (whole chunks only). Deleting
   * raw readings keeps their rollups.
   */
  deleteOlderThan(age: string, options?: AgedTelemetry): Promise<RetentionResult>
  /**
   * TimescaleDB only: compress chunks of the raw readings (or the rollups)
   * older than `after`; returns the job id (for the rollups, the device
   * rollup's; each plant rollup gets its own job of the same age). Idempotent
   * for the same age; another age replaces the policy (new job id).
   */
  addCompressionPolicy(after: string, options?: AgedTelemetry): Promise<number>
  /**
   * TimescaleDB only: drop chunks of the raw readings (or the rollups) older
   * than `after` on a schedule; returns the job id (for the rollups, the
   * device rollup's; each plant rollup gets its own job of the same age).
   * Idempotent for the same age; another age replaces the policy (new job id).
   */
  addRetentionPolicy(after: string, options?: AgedTelemetry): Promise<number>
}

/** A row `telemetry.insert` just stored, as the rollup takes it. */
function asInsertedReading(row: Telemetry): InsertedReading {
  return {
    // A host's pool may parse timestamps and floats its own way.
    timeMs: new Date(row.time).getTime(),
    deviceId: row.device_id,
    plantId: row.plant_id,
    values: METRICS.map((metric) => (row[metric] === null ? null : Number(row[metric]))),
  }
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

  const requireHypertable = async (what: string, of: AgedTable) => {
    for (const { table } of AGED_TABLES[of])
      if (!(await isHypertable(db, table))) throw new TimescaleUnavailableError(what, `${table} is a plain table`)
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
      return guarded('readings', () =>
        db.transaction().execute(async (trx) => {
          const inserted = await trx.insertInto('telemetry').values(rows).returningAll().execute()
          await addToRollupsQuery(inserted.map(asInsertedReading)).execute(trx)
          return inserted
        }),
      )
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
      const { from, to, bucket, source, ...scope } = validate(
        telemetryBucketOptionsSchema,
        options,
        'telemetry bucket options',
      )
      const range = { from, to, width: bucket }
      const rollups = source === 'auto' ? rollupFor(scopeOf(scope), bucket) : []
      const useTimeBucket = rollups.length === 0 && (await isHypertable(db, 'telemetry'))
      return selectBuckets(db, scopeOf(scope), range, { rollups, useTimeBucket })
    },

    async rebuildRollups(options) {
      const range = validate(rebuildRollupsOptionsSchema, options, 'rebuild rollups options')
      const from = new Date(Math.floor(range.from.getTime() / HOUR_MS) * HOUR_MS)
      const to = new Date(Math.ceil(range.to.getTime() / HOUR_MS) * HOUR_MS)
      const rows = await db.transaction().execute((trx) => refillRollups(trx, { from, to }))
      return { from, to, rows }
    },

    async deleteOlderThan(age, options = {}) {
      const interval = validate(ageSchema, age, 'retention age')
      const { of } = validate(agedSchema, options, 'retention options')
      if (await isHypertable(db, AGED_TABLES[of][0].table))
        return { method: 'drop_chunks', chunksDropped: await dropOldChunks(db, interval, of) }
      return { method: 'delete', rowsDeleted: await deleteOldRows(db, interval, of) }
    },

    async addCompressionPolicy(after, options = {}) {
      const interval = validate(ageSchema, after, 'compression age')
      const { of } = validate(agedSchema, options, 'compression options')
      await requireHypertable('a compression policy', of)
      return addCompressionJob(db, interval, of)
    },

    async addRetentionPolicy(after, options = {}) {
      const interval = validate(ageSchema, after, 'retention age')
      const { of } = validate(agedSchema, options, 'retention options')
      await requireHypertable('a retention policy', of)
      return addRetentionJob(db, interval, of)
    },
  }
}

import type { Kysely } from 'kysely'
import { z } from 'zod'
import type { Alert, Database } from '../schema/database.js'
import { alertDirectionSchema, metricSchema, type AlertDirection, type Metric } from '../schema/metrics.js'
import {
  olderThanCursor,
  finiteNumber,
  guarded,
  idSchema,
  instantSchema,
  pageFields,
  timeKey,
  validate,
  toTimePage,
  type Page,
} from './shared/index.js'

/**
 * Input of `alerts.create`: a reading of `metric` whose `value` crossed the
 * plant's `threshold` in `direction`.
 *
 * @example
 * ```ts
 * import { newAlertInputSchema } from 'plantops-db'
 * newAlertInputSchema.parse({
 *   plantId: 'plant_1',
 *   deviceId: 'dev_1',
 *   metric: 'soil_moisture',
 *   value: 12,
 *   threshold: 30,
 *   direction: 'below',
 * })
 * ```
 */
export const newAlertInputSchema = z.strictObject({
  plantId: idSchema,
  deviceId: idSchema.nullable().optional(),
  metric: metricSchema,
  value: finiteNumber,
  threshold: finiteNumber,
  direction: alertDirectionSchema,
})

/**
 * Options of `alerts.listForPlant`.
 *
 * @example
 * ```ts
 * import { alertListOptionsSchema } from 'plantops-db'
 * alertListOptionsSchema.parse({ since: new Date(Date.now() - 86_400_000), limit: 20 })
 * ```
 */
export const alertListOptionsSchema = z.strictObject({ since: instantSchema.optional(), ...pageFields })

/**
 * Input of `alerts.create`.
 *
 * @example
 * ```ts
 * const a: NewAlertInput = { plantId: 'p', metric: 'humidity', value: 20, threshold: 40, direction: 'below' }
 * ```
 */
export type NewAlertInput = z.input<typeof newAlertInputSchema>
/** Options of `alerts.listForPlant`. @example `const o: AlertListOptions = { limit: 10 }` */
export type AlertListOptions = z.input<typeof alertListOptionsSchema>

/**
 * The `alerts` repository.
 *
 * @example
 * ```ts
 * const { alerts } = createRepositories(db)
 * await alerts.create({ plantId: 'plant_fern', metric: 'soil_moisture', value: 12, threshold: 30, direction: 'below' })
 * const last = await alerts.latestFor('plant_fern', 'soil_moisture', 'below')
 * ```
 */
export interface AlertsRepository {
  /** Records an alert; `MissingReferenceError` for an unknown plant or device. */
  create(input: NewAlertInput): Promise<Alert>
  /** A plant's alerts, newest first, a page at a time. */
  listForPlant(plantId: string, options?: AlertListOptions): Promise<Page<Alert>>
  /** The plant's newest alert for this metric and direction, or `undefined`. */
  latestFor(plantId: string, metric: Metric, direction: AlertDirection): Promise<Alert | undefined>
  /** How many alerts the plant has had since `since`. */
  countSince(plantId: string, since: Date | string): Promise<number>
}

export function createAlertsRepository(db: Kysely<Database>): AlertsRepository {
  return {
    async create(input) {
      const alert = validate(newAlertInputSchema, input, 'alert')
      const row = {
        plant_id: alert.plantId,
        device_id: alert.deviceId ?? null,
        metric: alert.metric,
        value: alert.value,
        threshold: alert.threshold,
        direction: alert.direction,
      }
      return guarded('alert', () => db.insertInto('alerts').values(row).returningAll().executeTakeFirstOrThrow())
    },

    async listForPlant(plantId, options = {}) {
      const plant = validate(idSchema, plantId, 'plant id')
      const { since, limit, cursor } = validate(alertListOptionsSchema, options, 'alert list options')
      let query = db
        .selectFrom('alerts')
        .selectAll()
        .select((eb) => timeKey(eb.ref('sent_at')).as('cursor_time'))
        .where('plant_id', '=', plant)
        .orderBy('sent_at', (ob) => ob.desc().nullsLast())
        .orderBy('id', 'desc')
        .limit(limit + 1)
      if (since) query = query.where('sent_at', '>=', since)
      if (cursor !== undefined)
        query = query.where(olderThanCursor(cursor, { time: 'sent_at', tieBreaker: 'id' }, 'alert list options'))
      const rows = await guarded('alert list options', () => query.execute())
      return toTimePage(rows, limit, (alert) => alert.id)
    },

    async latestFor(plantId, metric, direction) {
      const plant = validate(idSchema, plantId, 'plant id')
      const which = validate(metricSchema, metric, 'metric')
      const towards = validate(alertDirectionSchema, direction, 'direction')
      return db
        .selectFrom('alerts')
        .selectAll()
        .where('plant_id', '=', plant)
        .where('metric', '=', which)
        .where('direction', '=', towards)
        .orderBy('sent_at', (ob) => ob.desc().nullsLast())
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst()
    },

    async countSince(plantId, since) {
      const plant = validate(idSchema, plantId, 'plant id')
      const from = validate(instantSchema, since, 'since')
      const { count } = await db
        .selectFrom('alerts')
        .select((eb) => eb.fn.countAll().as('count'))
        .where('plant_id', '=', plant)
        .where('sent_at', '>=', from)
        .executeTakeFirstOrThrow()
      return Number(count)
    },
  }
}

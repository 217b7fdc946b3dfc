import { z } from 'zod'
import { hasAMetric, metricValueFields } from '../schema/readings.js'
import { idSchema, instantSchema, pageFields } from './shared/index.js'
import type { AgedTable } from './telemetry-aging.js'

export const MAX_INSERT = 1_000
export const MAX_LATEST_IDS = 10_000

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
 * Options of `telemetry.buckets`. `source: 'auto'` (the default) answers
 * whole-hour buckets (`'1 hour'` … `'1 week'`) from the hourly rollups, and
 * a plant's `'5 minutes'`, `'15 minutes'` and `'30 minutes'` from its
 * five-minute rollup; a ragged end of the range from the next finer rollup
 * and then the raw rows of its last partial grain. A device's sub-hour
 * buckets come from the raw rows. `'raw'` always aggregates the raw rows (to
 * check the rollups, or after writing around them before `rebuildRollups`).
 *
 * @example
 * ```ts
 * import { telemetryBucketOptionsSchema } from 'plantops-db'
 * telemetryBucketOptionsSchema.parse({ deviceId: 'dev_1', from: new Date(0), to: new Date(), bucket: '1 hour' })
 * ```
 */
export const telemetryBucketOptionsSchema = z
  .strictObject({
    ...scopeFields,
    from: instantSchema,
    to: instantSchema,
    bucket: z.enum(BUCKET_WIDTHS),
    source: z.enum(['auto', 'raw']).default('auto'),
  })
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
 * Which telemetry a retention or compression call acts on: the raw
 * `readings` (default) or their `rollups` (device hours, plant hours, plant
 * five minutes), which age separately.
 *
 * @example
 * ```ts
 * await telemetry.deleteOlderThan('90 days') // raw readings; the hourly charts stay
 * await telemetry.deleteOlderThan('5 years', { of: 'rollups' })
 * ```
 */
export type AgedTelemetry = { readonly of?: AgedTable }

export const agedSchema = z.strictObject({ of: z.enum(['readings', 'rollups']).default('readings') })

/**
 * The `[from, to)` range `telemetry.rebuildRollups` recomputes; widened to whole hours.
 *
 * @example
 * ```ts
 * import { rebuildRollupsOptionsSchema } from 'plantops-db'
 * rebuildRollupsOptionsSchema.parse({ from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' })
 * ```
 */
export const rebuildRollupsOptionsSchema = z
  .strictObject({ from: instantSchema, to: instantSchema })
  .refine((options) => options.from < options.to, { message: 'from must be before to', path: ['from'] })

/**
 * Options of `telemetry.rebuildRollups`.
 *
 * @example
 * ```ts
 * const o: RebuildRollupsOptions = { from: new Date('2026-01-01'), to: new Date('2026-02-01') }
 * ```
 */
export type RebuildRollupsOptions = z.input<typeof rebuildRollupsOptionsSchema>

/**
 * What `telemetry.rebuildRollups` did: the whole hours it recomputed and how many rollup rows it wrote.
 *
 * @example
 * ```ts
 * const { from, to, rows } = await telemetry.rebuildRollups({ from: importStart, to: importEnd })
 * ```
 */
export interface RebuildRollupsResult {
  readonly from: Date
  readonly to: Date
  readonly rows: number
}

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

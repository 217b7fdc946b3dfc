import { z } from 'zod'
import { METRICS, metricSchema, type Metric } from './metrics.js'
import { withoutNegativeZero } from './numbers.js'

const finite = (base = z.number()) =>
  base.refine(Number.isFinite, { message: 'must be a finite number' }).transform(withoutNegativeZero)

/** Ensures `min <= max` when both bounds are present. */
function boundsAreOrdered(range: { min?: number; max?: number }): boolean {
  return range.min === undefined || range.max === undefined || range.min <= range.max
}

/**
 * The alert bounds of one metric: readings below `min` or above `max` raise an
 * alert. Either bound may be left out; when both are present `min <= max`.
 *
 * @example
 * ```ts
 * import { thresholdRangeSchema } from 'plantops-db'
 * thresholdRangeSchema.parse({ min: 30, max: 70 })
 * ```
 */
export const thresholdRangeSchema = z
  .strictObject({ min: finite().optional(), max: finite().optional() })
  .refine(boundsAreOrdered, { message: 'min must be less than or equal to max', path: ['min'] })

/**
 * `{ min?, max? }`, see {@link thresholdRangeSchema}.
 *
 * @example
 * ```ts
 * import type { ThresholdRange } from 'plantops-db'
 * const dry: ThresholdRange = { min: 25 }
 * ```
 */
export type ThresholdRange = z.infer<typeof thresholdRangeSchema>

/**
 * The shape of `plants.thresholds`: for each known metric an optional
 * {@link ThresholdRange}. Unknown metric names are refused.
 *
 * @example
 * ```ts
 * import { thresholdsSchema } from 'plantops-db'
 * thresholdsSchema.parse({ soil_moisture: { min: 30, max: 70 }, temperature: { max: 32 } })
 * ```
 */
export const thresholdsSchema = z.strictObject(
  Object.fromEntries(METRICS.map((metric) => [metric, thresholdRangeSchema.optional()])) as Record<
    Metric,
    z.ZodOptional<typeof thresholdRangeSchema>
  >,
)

/**
 * Per-metric alert bounds stored in `plants.thresholds`.
 *
 * @example
 * ```ts
 * import type { Thresholds } from 'plantops-db'
 * const thresholds: Thresholds = { humidity: { min: 40, max: 80 } }
 * ```
 */
export type Thresholds = z.infer<typeof thresholdsSchema>

/**
 * The shape of `devices.sensor_types`: which metrics a device reports, each at
 * most once.
 *
 * @example
 * ```ts
 * import { sensorTypesSchema } from 'plantops-db'
 * sensorTypesSchema.parse(['soil_moisture', 'temperature'])
 * ```
 */
export const sensorTypesSchema = z
  .array(metricSchema)
  .refine((list) => new Set(list).size === list.length, { message: 'sensor types must not repeat' })

/**
 * The metrics a device reports.
 *
 * @example
 * ```ts
 * import type { SensorTypes } from 'plantops-db'
 * const sensors: SensorTypes = ['soil_moisture', 'light_level']
 * ```
 */
export type SensorTypes = z.infer<typeof sensorTypesSchema>

const rangeSchema = z
  .strictObject({ min: finite(), max: finite() })
  .refine(boundsAreOrdered, { message: 'min must be less than or equal to max', path: ['min'] })

/**
 * The shape of `care_plans.plan_data`, version 1. A care plan is advice for one
 * plant, written by a person, a rule set or a model:
 *
 * - `version`: always `1` for this shape; a later shape gets a new number so old rows stay readable;
 * - `summary`: one or two sentences a person reads first;
 * - `watering`: how often (`intervalDays`), how much (`amountMl`, optional) and the soil moisture
 *   band to keep (`soilMoisture`, percent, optional);
 * - `light`: the lux band (`lux`) and hours of light per day (`hoursPerDay`, optional);
 * - `temperature`: the °C band; `humidity`: the %RH band;
 * - `notes`: free-form advice, in order;
 * - `generatedBy`: who or what wrote the plan (`kind` is `person`, `rules` or `model`; `name`
 *   says which one, for example a model id).
 *
 * @example
 * ```ts
 * import { planDataSchema } from 'plantops-db'
 * planDataSchema.parse({
 *   version: 1,
 *   summary: 'Keep evenly moist, bright indirect light.',
 *   watering: { intervalDays: 3, amountMl: 250, soilMoisture: { min: 35, max: 60 } },
 *   light: { lux: { min: 10_000, max: 25_000 }, hoursPerDay: 12 },
 *   temperature: { min: 18, max: 27 },
 *   humidity: { min: 50, max: 70 },
 *   notes: ['Mist leaves in winter.'],
 *   generatedBy: { kind: 'person', name: 'ada' },
 * })
 * ```
 */
export const planDataSchema = z.strictObject({
  version: z.literal(1),
  summary: z.string().min(1).max(2_000),
  watering: z.strictObject({
    intervalDays: finite(z.number().positive().max(365)),
    amountMl: finite(z.number().positive().max(100_000)).optional(),
    soilMoisture: rangeSchema.optional(),
  }),
  light: z.strictObject({
    lux: rangeSchema,
    hoursPerDay: finite(z.number().min(0).max(24)).optional(),
  }),
  temperature: rangeSchema,
  humidity: rangeSchema,
  notes: z.array(z.string().max(2_000)).max(100),
  generatedBy: z.strictObject({
    kind: z.enum(['person', 'rules', 'model']),
    name: z.string().min(1).max(200),
  }),
})

/**
 * A care plan, see {@link planDataSchema}.
 *
 * @example
 * ```ts
 * import type { PlanData } from 'plantops-db'
 * function wateringEvery(plan: PlanData): number { return plan.watering.intervalDays }
 * ```
 */
export type PlanData = z.infer<typeof planDataSchema>

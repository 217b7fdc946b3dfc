import { z } from 'zod'
import { metricProblem, metricProblemMessage } from './metric-values.js'
import { METRICS, type Metric } from './metrics.js'
import { withoutNegativeZero } from './numbers.js'

/** Zod's default `number` message names the type, not the problem; `metricProblem` names the problem. */
function metricValueSchema(metric: Metric) {
  return z
    .number({
      error: (issue) => metricProblemMessage(metric, typeof issue.input === 'number' ? 'non_finite' : 'schema'),
    })
    .superRefine((value, context) => {
      const problem = metricProblem(metric, value)
      if (problem !== undefined) context.addIssue({ code: 'custom', message: metricProblemMessage(metric, problem) })
    })
    .transform(withoutNegativeZero)
}

/**
 * The four metric fields of a reading, each optional, `null` meaning "not
 * measured", each finite and within {@link METRIC_RANGES}. Spread it into an
 * object schema, and add {@link hasAMetric}.
 *
 * @example
 * ```ts
 * import { z } from 'zod'
 * import { hasAMetric, metricValueFields } from 'plantops-db'
 * const reading = z
 *   .object({ at: z.date(), ...metricValueFields })
 *   .refine(hasAMetric.check, { message: hasAMetric.message })
 * ```
 */
export const metricValueFields = Object.fromEntries(
  METRICS.map((metric) => [metric, metricValueSchema(metric).nullable().optional()]),
) as Record<Metric, z.ZodOptional<z.ZodNullable<ReturnType<typeof metricValueSchema>>>>

/**
 * The rule that a reading carries at least one metric: `check` for a
 * refinement, `message` for its issue.
 *
 * @example
 * ```ts
 * import { hasAMetric } from 'plantops-db'
 * hasAMetric.check({ humidity: null }) // false
 * ```
 */
export const hasAMetric = Object.freeze({
  /** True when at least one metric is present and not null. */
  check: (values: Partial<Record<Metric, number | null | undefined>>): boolean =>
    METRICS.some((metric) => values[metric] !== undefined && values[metric] !== null),
  message: `a reading needs at least one of ${METRICS.join(', ')}`,
})

/**
 * The metric values of one reading: {@link metricValueFields} with at least one present.
 *
 * @example
 * ```ts
 * import { metricValuesSchema } from 'plantops-db'
 * metricValuesSchema.parse({ soil_moisture: 41.5, temperature: 22.1 })
 * ```
 */
export const metricValuesSchema = z
  .strictObject(metricValueFields)
  .refine(hasAMetric.check, { message: hasAMetric.message })

/**
 * Metric values of one reading, see {@link metricValuesSchema}.
 *
 * @example
 * ```ts
 * import type { MetricValues } from 'plantops-db'
 * const values: MetricValues = { humidity: 55 }
 * ```
 */
export type MetricValues = z.infer<typeof metricValuesSchema>

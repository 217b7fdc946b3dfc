import { METRICS, METRIC_RANGES, type Metric } from './metrics.js'

/**
 * Why a metric value is refused: not a number (`schema`), NaN or ±Infinity
 * (`non_finite`), or outside {@link METRIC_RANGES} (`implausible`). The same
 * words name the dead-letter reasons.
 */
export type MetricProblem = 'schema' | 'non_finite' | 'implausible'

/**
 * The one rule for a metric's value, used by every schema and by the
 * writer's hot path: what is wrong with it, or undefined when it may be
 * stored. Absent (`undefined` or `null`) means "not measured", which is fine.
 */
export function metricProblem(metric: Metric, value: unknown): MetricProblem | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number') return 'schema'
  if (!Number.isFinite(value)) return 'non_finite'
  const { min, max } = METRIC_RANGES[metric]
  return value < min || value > max ? 'implausible' : undefined
}

/** The message for a refused value, naming the problem rather than the type. */
export function metricProblemMessage(metric: Metric, problem: MetricProblem): string {
  const { min, max, unit } = METRIC_RANGES[metric]
  if (problem === 'schema') return `${metric} must be a number`
  if (problem === 'non_finite') return `${metric} must be a finite number`
  return `${metric} must be between ${min} and ${max} ${unit} (a physically plausible reading)`
}

/** A reading's metric values in {@link METRICS} order, `null` where not measured. */
export type MetricRow = readonly (number | null)[]

/** A metric row as an object of the metrics it has, for a payload or a log line. */
export function metricObject(values: MetricRow, metrics: readonly string[] = METRICS): Record<string, number> {
  const object: Record<string, number> = {}
  for (let i = 0; i < metrics.length; i += 1)
    if (values[i] !== null && values[i] !== undefined) object[metrics[i]!] = values[i]!
  return object
}

/**
 * The columns of `telemetry` in table order: the reading's time, device and
 * plant, then one column per metric. Taking the list, rather than reading
 * {@link METRICS}, lets a test prove that every statement and encoder follows it.
 */
export function telemetryColumns(metrics: readonly string[] = METRICS): readonly string[] {
  return Object.freeze(['time', 'device_id', 'plant_id', ...metrics])
}

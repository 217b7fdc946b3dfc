import { z } from 'zod'
import { metricProblem, metricProblemMessage, type MetricProblem, type MetricRow } from '../schema/metric-values.js'
import { METRICS, type Metric } from '../schema/metrics.js'
import { withoutNegativeZero } from '../schema/numbers.js'
import { hasAMetric } from '../schema/readings.js'
import { idSchema, isId } from '../schema/fields.js'

/**
 * Numbers below this are epoch **seconds**, numbers at or above it epoch
 * **milliseconds**. 10^11 seconds is the year 5138; 10^11 milliseconds is
 * March 1973, before any of these sensors existed, so the two never overlap
 * for real readings.
 *
 * @example
 * ```ts
 * import { EPOCH_MILLISECONDS_FROM } from 'plantops-db'
 * const asDate = (n: number) => new Date(n < EPOCH_MILLISECONDS_FROM ? n * 1000 : n)
 * ```
 */
export const EPOCH_MILLISECONDS_FROM = 100_000_000_000

/**
 * The most readings one backlog packet may carry.
 *
 * @example
 * ```ts
 * import { MAX_BACKLOG_READINGS } from 'plantops-db'
 * for (let i = 0; i < buffered.length; i += MAX_BACKLOG_READINGS) {
 *   await writer.write({ deviceId, readings: buffered.slice(i, i + MAX_BACKLOG_READINGS) })
 * }
 * ```
 */
export const MAX_BACKLOG_READINGS = 10_000

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i

/** The latest instant a Date can hold, in milliseconds either side of 1970. */
const MAX_DATE_MS = 8.64e15

/**
 * A packet's time in epoch milliseconds, whole as a Date's, or undefined when
 * it is not one of the accepted forms. Milliseconds rather than a Date: a
 * buffered reading then holds one object fewer.
 */
export function packetTimeMs(value: unknown): number | undefined {
  let ms: number
  if (value instanceof Date) ms = value.getTime()
  else if (typeof value === 'string') ms = ISO_WITH_OFFSET.test(value) ? Date.parse(value) : Number.NaN
  else if (typeof value === 'number' && Number.isFinite(value) && value >= 0)
    ms = value < EPOCH_MILLISECONDS_FROM ? value * 1000 : value
  else return undefined
  const whole = Math.trunc(ms)
  return Math.abs(whole) <= MAX_DATE_MS ? whole + 0 : undefined
}

/** A packet's time as a Date, or undefined when it is not one of the accepted forms. */
export function parsePacketTime(value: unknown): Date | undefined {
  const ms = packetTimeMs(value)
  return ms === undefined ? undefined : new Date(ms)
}

const timeSchema = z.unknown().transform((value, context) => {
  const date = parsePacketTime(value)
  if (date) return date
  context.addIssue({
    code: 'custom',
    message: 'must be a Date, an ISO-8601 date-time with an offset, or epoch seconds / milliseconds',
  })
  return z.NEVER
})

/** A metric field: absent or null means not measured; otherwise the rules of `metricProblem`. */
function metricField(metric: Metric) {
  return z.unknown().transform((value, context) => {
    const problem = metricProblem(metric, value)
    if (problem === undefined)
      return value === undefined || value === null ? null : withoutNegativeZero(value as number)
    context.addIssue({ code: 'custom', message: metricProblemMessage(metric, problem), params: { reason: problem } })
    return z.NEVER
  })
}

const metricSchemas = Object.fromEntries(METRICS.map((metric) => [metric, metricField(metric).optional()])) as Record<
  Metric,
  z.ZodOptional<ReturnType<typeof metricField>>
>

const needsMetric = { message: hasAMetric.message }

const readingSchema = z.object({ time: timeSchema, ...metricSchemas }).refine(hasAMetric.check, needsMetric)
const singleSchema = z
  .object({ deviceId: idSchema, time: timeSchema.optional(), ...metricSchemas })
  .refine(hasAMetric.check, needsMetric)
const backlogSchema = z.object({
  deviceId: idSchema,
  readings: z.array(readingSchema).min(1).max(MAX_BACKLOG_READINGS),
})

/**
 * A decoded sensor packet, in one of two forms (extra fields, such as a
 * battery level, are ignored):
 *
 * - one reading: `{ deviceId, time?, soil_moisture?, temperature?, humidity?, light_level? }`;
 * - a backlog a device buffered while offline: `{ deviceId, readings: [{ time, …metrics }, …] }`
 *   (up to 10,000 readings).
 *
 * `time` is a `Date`, an ISO-8601 string with an offset, or an epoch number
 * (seconds below {@link EPOCH_MILLISECONDS_FROM}, milliseconds above); a single
 * reading without one gets the receive time. Metrics follow `METRIC_RANGES`;
 * each reading needs at least one.
 *
 * @example
 * ```ts
 * import { sensorPacketSchema } from 'plantops-db'
 * sensorPacketSchema.parse({ deviceId: 'dev_1', time: 1767225600, soil_moisture: 41.5 })
 * sensorPacketSchema.parse({ deviceId: 'dev_1', readings: [{ time: '2026-01-01T00:00:00Z', humidity: 60 }] })
 * ```
 */
export const sensorPacketSchema = z.union([backlogSchema, singleSchema])

/** A reading's metrics: each a number, or absent / null when the device did not measure it. */
type MetricValues = { readonly [M in Metric]?: number | null }

/**
 * When a reading was measured: a `Date`, an ISO-8601 string with an offset,
 * or epoch seconds / milliseconds (see {@link EPOCH_MILLISECONDS_FROM}).
 *
 * @example
 * ```ts
 * const times: PacketTime[] = [new Date(), '2026-01-01T00:00:00Z', 1767225600]
 * ```
 */
export type PacketTime = Date | string | number

/**
 * One reading of a backlog packet.
 *
 * @example
 * ```ts
 * const reading: SensorReading = { time: '2026-01-01T00:00:00Z', humidity: 60 }
 * ```
 */
export type SensorReading = MetricValues & { readonly time: PacketTime }

/**
 * A sensor packet as code writes it, so a misspelt metric in a literal
 * (`soilMoisture` for `soil_moisture`) is a compile error. Payloads from
 * outside (MQTT, HTTP bodies) are `unknown`: give them to `writer.writeRaw`,
 * which validates and dead-letters them.
 *
 * @example
 * ```ts
 * const one: SensorPacket = { deviceId: 'dev_1', soil_moisture: 41.5 }
 * const backlog: SensorPacket = { deviceId: 'dev_1', readings: [{ time: 1767225600, humidity: 60 }] }
 * ```
 */
export type SensorPacket =
  | (MetricValues & { readonly deviceId: string; readonly time?: PacketTime; readonly readings?: never })
  | { readonly deviceId: string; readonly readings: readonly SensorReading[] }

/** One validated reading, ready for a batch. */
export interface Reading {
  readonly deviceId: string
  /** Epoch milliseconds. */
  readonly timeMs: number
  readonly values: MetricRow
}

export type PacketProblem = { reason: MetricProblem; detail: string }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The hot path: plain checks, with the same predicates the zod schema uses. */
function readingOf(deviceId: string, raw: Record<string, unknown>, timeMs: number): Reading | 'invalid' {
  // Not `.fill(null)`: an array that never held null keeps its numbers unboxed
  // (one object, not one per metric), and buffered readings are what the
  // writer's garbage collection copies.
  const values: (number | null)[] = new Array(METRICS.length)
  let present = false
  for (let i = 0; i < METRICS.length; i += 1) {
    const value = raw[METRICS[i]!]
    if (value === undefined || value === null) {
      values[i] = null
      continue
    }
    if (metricProblem(METRICS[i]!, value) !== undefined) return 'invalid'
    values[i] = withoutNegativeZero(value as number)
    present = true
  }
  return present ? { deviceId, timeMs, values } : 'invalid'
}

function fastReadings(raw: unknown, receivedAtMs: number): Reading[] | undefined {
  if (!isRecord(raw) || !isId(raw.deviceId)) return undefined
  const deviceId = raw.deviceId
  if (raw.readings === undefined) {
    const time = raw.time === undefined ? receivedAtMs : packetTimeMs(raw.time)
    const reading = time !== undefined && readingOf(deviceId, raw, time)
    return reading && reading !== 'invalid' ? [reading] : undefined
  }
  const list = raw.readings
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BACKLOG_READINGS) return undefined
  const readings: Reading[] = []
  for (const item of list) {
    if (!isRecord(item)) return undefined
    const time = packetTimeMs(item.time)
    const reading = time !== undefined && readingOf(deviceId, item, time)
    if (!reading || reading === 'invalid') return undefined
    readings.push(reading)
  }
  return readings
}

/** The refusal, worded by zod, and classified: a wrong shape, a non-finite value, or an implausible one. */
function problemOf(raw: unknown): PacketProblem {
  const schema = isRecord(raw) && raw.readings !== undefined ? backlogSchema : singleSchema
  const result = schema.safeParse(raw)
  const issues = result.success ? [] : result.error.issues
  const reasons = issues.map((issue) => (issue as { params?: { reason?: string } }).params?.reason)
  const reason = reasons.includes('non_finite')
    ? 'non_finite'
    : reasons.includes('implausible')
      ? 'implausible'
      : 'schema'
  const detail = issues
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ')
  return { reason, detail: detail || 'not a sensor packet' }
}

/**
 * Validates a decoded packet into readings (a single packet without a time
 * gets `receivedAtMs`), or says why it is refused.
 */
export function readPacket(raw: unknown, receivedAtMs: number): { readings: Reading[] } | PacketProblem {
  const readings = fastReadings(raw, receivedAtMs)
  return readings ? { readings } : problemOf(raw)
}

import { z } from 'zod'

/**
 * The four quantities a plantops sensor device measures, in the order the
 * `telemetry` table stores them.
 *
 * @example
 * ```ts
 * import { METRICS } from 'plantops-db'
 * for (const metric of METRICS) console.log(metric) // soil_moisture, temperature, …
 * ```
 */
export const METRICS = ['soil_moisture', 'temperature', 'humidity', 'light_level'] as const

/**
 * One of {@link METRICS}.
 *
 * @example
 * ```ts
 * import type { Metric } from 'plantops-db'
 * const metric: Metric = 'humidity'
 * ```
 */
export type Metric = (typeof METRICS)[number]

/**
 * Validates a metric name.
 *
 * @example
 * ```ts
 * import { metricSchema } from 'plantops-db'
 * metricSchema.parse('light_level') // 'light_level'
 * ```
 */
export const metricSchema = z.enum(METRICS)

/**
 * The physically plausible range of each metric, the single place the library
 * keeps them. A reading outside its range is refused as impossible (a broken
 * sensor or a corrupted packet), not stored.
 *
 * | metric          | unit                 | range          | why                                           |
 * |-----------------|----------------------|----------------|-----------------------------------------------|
 * | `soil_moisture` | % volumetric water   | 0 … 100        | a percentage                                  |
 * | `temperature`   | °C                   | -60 … 100      | beyond any plant; wider than DHT22/DS18B20 use |
 * | `humidity`      | % relative humidity  | 0 … 100        | a percentage                                  |
 * | `light_level`   | lux                  | 0 … 200 000    | direct tropical sun is about 120 000 lux      |
 *
 * @example
 * ```ts
 * import { METRIC_RANGES } from 'plantops-db'
 * METRIC_RANGES.humidity // { min: 0, max: 100, unit: '%RH' }
 * ```
 */
export const METRIC_RANGES: Readonly<Record<Metric, Readonly<{ min: number; max: number; unit: string }>>> =
  Object.freeze({
    soil_moisture: Object.freeze({ min: 0, max: 100, unit: '%' }),
    temperature: Object.freeze({ min: -60, max: 100, unit: '°C' }),
    humidity: Object.freeze({ min: 0, max: 100, unit: '%RH' }),
    light_level: Object.freeze({ min: 0, max: 200_000, unit: 'lux' }),
  })

/**
 * The direction in which a reading crossed a threshold: `below` its `min`
 * or `above` its `max`.
 *
 * @example
 * ```ts
 * import { alertDirectionSchema } from 'plantops-db'
 * alertDirectionSchema.parse('below')
 * ```
 */
export const alertDirectionSchema = z.enum(['below', 'above'])

/**
 * `'below' | 'above'`: see {@link alertDirectionSchema}.
 *
 * @example
 * ```ts
 * import type { AlertDirection } from 'plantops-db'
 * const direction: AlertDirection = 'above'
 * ```
 */
export type AlertDirection = z.infer<typeof alertDirectionSchema>

/**
 * The life cycle of a device, stored in `devices.status`:
 *
 * - `provisioning`: created, credentials issued, never heard from (the column default);
 * - `online`: has published recently;
 * - `offline`: said so itself (status message or MQTT last will);
 * - `decommissioned`: retired for good; it cannot be assigned to a plant or authenticate.
 *
 * @example
 * ```ts
 * import { deviceStatusSchema } from 'plantops-db'
 * deviceStatusSchema.parse('online')
 * ```
 */
export const deviceStatusSchema = z.enum(['provisioning', 'online', 'offline', 'decommissioned'])

/**
 * One of the states in {@link deviceStatusSchema}.
 *
 * @example
 * ```ts
 * import type { DeviceStatus } from 'plantops-db'
 * const status: DeviceStatus = 'provisioning'
 * ```
 */
export type DeviceStatus = z.infer<typeof deviceStatusSchema>

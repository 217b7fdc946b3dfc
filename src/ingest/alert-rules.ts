import { METRICS } from '../schema/metrics.js'
import type { Thresholds } from '../schema/json-columns.js'
import type { AlertCandidate } from '../repositories/alert-statements.js'
import type { DeviceInfo } from './device-context.js'
import type { Row } from './statements.js'

/**
 * A plant's thresholds as numbers in `METRICS` order: minimum at `2i`,
 * maximum at `2i + 1`, NaN where there is none (no value compares below or
 * above NaN). Built once per device the writer caches, so checking a reading
 * is array reads rather than property look-ups by metric name.
 */
export type Limits = Float64Array

/** `thresholds` as {@link Limits}, or null when it sets none. */
export function limitsOf(thresholds: Thresholds | null): Limits | null {
  if (!thresholds) return null
  const limits = new Float64Array(METRICS.length * 2).fill(Number.NaN)
  METRICS.forEach((metric, i) => {
    limits[2 * i] = thresholds[metric]?.min ?? Number.NaN
    limits[2 * i + 1] = thresholds[metric]?.max ?? Number.NaN
  })
  return limits.some((limit) => !Number.isNaN(limit)) ? limits : null
}

/**
 * The threshold crossings in a batch: for each (plant, metric, direction) the
 * earliest reading that crossed, since one alert per cooldown is all that is
 * recorded anyway.
 */
export function alertCandidates(rows: readonly Row[], devices: ReadonlyMap<string, DeviceInfo>): AlertCandidate[] {
  const earliest = new Map<string, { candidate: AlertCandidate; time: number }>()
  const consider = (row: Row, metric: number, threshold: number, direction: 'below' | 'above') => {
    const { plantId, deviceId, timeMs } = row
    const key = `${plantId}|${METRICS[metric]}|${direction}`
    const current = earliest.get(key)
    if (current && current.time <= timeMs) return
    const candidate = {
      plantId: plantId!,
      deviceId,
      metric: METRICS[metric]!,
      value: row.values[metric]!,
      threshold,
      direction,
    }
    earliest.set(key, { candidate, time: timeMs })
  }
  for (const row of rows) {
    const limits = devices.get(row.deviceId)?.limits
    if (!limits || row.plantId === null) continue
    const { values } = row
    for (let i = 0; i < METRICS.length; i += 1) {
      const value = values[i]
      if (value === null || value === undefined) continue
      if (value < limits[2 * i]!) consider(row, i, limits[2 * i]!, 'below')
      if (value > limits[2 * i + 1]!) consider(row, i, limits[2 * i + 1]!, 'above')
    }
  }
  return [...earliest.values()].map((entry) => entry.candidate)
}

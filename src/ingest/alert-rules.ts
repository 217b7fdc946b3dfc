import { METRICS } from '../schema/metrics.js'
import type { AlertCandidate } from '../repositories/alert-statements.js'
import type { DeviceInfo } from './device-context.js'
import type { Row } from './statements.js'

/**
 * The threshold crossings in a batch: for each (plant, metric, direction) the
 * earliest reading that crossed, since one alert per cooldown is all that is
 * recorded anyway.
 */
export function alertCandidates(rows: readonly Row[], devices: ReadonlyMap<string, DeviceInfo>): AlertCandidate[] {
  const earliest = new Map<string, { candidate: AlertCandidate; time: number }>()
  const consider = (candidate: AlertCandidate, time: number) => {
    const key = `${candidate.plantId}|${candidate.metric}|${candidate.direction}`
    const current = earliest.get(key)
    if (!current || time < current.time) earliest.set(key, { candidate, time })
  }
  for (const row of rows) {
    const thresholds = devices.get(row.deviceId)?.thresholds
    if (!thresholds || row.plantId === null) continue
    for (let i = 0; i < METRICS.length; i += 1) {
      const metric = METRICS[i]!
      const value = row.values[i]
      const range = thresholds[metric]
      if (value === null || value === undefined || !range) continue
      const { plantId, deviceId, timeMs } = row
      if (range.min !== undefined && value < range.min)
        consider({ plantId, deviceId, metric, value, threshold: range.min, direction: 'below' }, timeMs)
      if (range.max !== undefined && value > range.max)
        consider({ plantId, deviceId, metric, value, threshold: range.max, direction: 'above' }, timeMs)
    }
  }
  return [...earliest.values()].map((entry) => entry.candidate)
}

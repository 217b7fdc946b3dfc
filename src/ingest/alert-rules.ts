import { METRICS } from '../schema/metrics.js'
import type { AlertCandidate, DeviceInfo, Row } from './statements.js'

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
      const base = { plantId: row.plantId, deviceId: row.deviceId, metric, value }
      if (range.min !== undefined && value < range.min) consider({ ...base, threshold: range.min, direction: 'below' }, row.time.getTime())
      if (range.max !== undefined && value > range.max) consider({ ...base, threshold: range.max, direction: 'above' }, row.time.getTime())
    }
  }
  return [...earliest.values()].map((entry) => entry.candidate)
}

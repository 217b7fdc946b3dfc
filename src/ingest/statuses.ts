import type { DeviceInfo } from './device-context.js'
import type { Entry, ReadingEntry, StatusEntry } from './entries.js'
import type { RejectReason } from './outcome.js'
import { jsonPayload } from './payload.js'
import type { DeadLetter } from './statements.js'

/**
 * Which statuses to apply after the batch's rows: per device, the last status
 * in lane order, unless a reading written after it shows the device is back
 * (its rows mark it online). Unknown and retired devices' statuses are refused.
 */
export function placeStatuses(
  entries: readonly Entry[],
  devices: ReadonlyMap<string, DeviceInfo>,
  written: ReadonlySet<ReadingEntry>,
): {
  applied: Map<string, 'online' | 'offline'>
  accepted: StatusEntry[]
  refused: { entry: StatusEntry; reason: RejectReason }[]
} {
  const applied = new Map<string, 'online' | 'offline'>()
  const accepted: StatusEntry[] = []
  const refused: { entry: StatusEntry; reason: RejectReason }[] = []
  for (const entry of entries) {
    if (entry.kind === 'reading' && written.has(entry)) applied.delete(entry.deviceId)
    if (entry.kind !== 'status') continue
    const device = devices.get(entry.deviceId)
    const reason = !device ? 'unknown_device' : device.decommissioned ? 'decommissioned_device' : undefined
    if (reason) refused.push({ entry, reason })
    else {
      applied.set(entry.deviceId, entry.status)
      accepted.push(entry)
    }
  }
  return { applied, accepted, refused }
}

export function statusLetter(entry: StatusEntry, reason: RejectReason): DeadLetter {
  return {
    receivedAt: new Date(entry.receivedAtMs),
    deviceId: entry.deviceId,
    source: entry.source,
    payload: jsonPayload({ deviceId: entry.deviceId, status: entry.status }),
    reason,
    detail:
      reason === 'unknown_device' ? `no device "${entry.deviceId}"` : `device "${entry.deviceId}" is decommissioned`,
  }
}

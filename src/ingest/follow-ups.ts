import type { RawBuilder } from 'kysely'
import { insertAlertsQuery, lockAlertKeysQuery, type AlertCandidate } from '../repositories/alert-statements.js'
import { markDevicesSeenQuery } from '../repositories/device-statements.js'
import { addToRollupsQuery, type ArrayEncoding } from '../repositories/rollup-statements.js'
import { settingValueQuery } from '../repositories/settings-statements.js'
import { alertCandidates } from './alert-rules.js'
import type { DeviceInfo } from './device-context.js'
import type { Row } from './statements.js'
import type { Session } from './store.js'

/**
 * What a batch's written rows lead to: the devices' last seen time, the
 * threshold crossings and the rollups. Built apart from sending, so that on
 * the fast path the building overlaps the server storing the rows.
 */
export interface FollowUps {
  readonly seen: RawBuilder<unknown> | undefined
  readonly candidates: AlertCandidate[]
  readonly rollups: RawBuilder<unknown> | undefined
}

/** The {@link FollowUps} of `written`; `arrays` is how the session takes array parameters. */
export function followUpsFor(
  written: readonly Row[],
  devices: ReadonlyMap<string, DeviceInfo>,
  maintainRollups: boolean,
  arrays: ArrayEncoding,
): FollowUps {
  return {
    seen: lastSeenStatement(newestPerDevice(written)),
    candidates: alertCandidates(written, devices),
    rollups: maintainRollups && written.length > 0 ? addToRollupsQuery(written, arrays) : undefined,
  }
}

/** Each device's newest time among the rows (epoch ms), for `last_seen_at`. */
function newestPerDevice(rows: readonly Row[]): Map<string, number> {
  const newest = new Map<string, number>()
  for (const row of rows) {
    const current = newest.get(row.deviceId)
    if (current === undefined || current < row.timeMs) newest.set(row.deviceId, row.timeMs)
  }
  return newest
}

/** Newest time (epoch ms) per device, once per batch, in one statement; never moves backwards. */
function lastSeenStatement(seen: ReadonlyMap<string, number>): RawBuilder<unknown> | undefined {
  if (seen.size === 0) return undefined
  return markDevicesSeenQuery(
    [...seen.keys()],
    [...seen.values()].map((ms) => new Date(ms)),
  )
}

/** Records the batch's threshold crossings, one per (plant, metric, direction) per cooldown; returns how many. */
export async function raiseAlerts(
  session: Session,
  candidates: readonly AlertCandidate[],
  defaultCooldownSeconds: number,
): Promise<number> {
  if (candidates.length === 0) return 0
  const cooldown = await alertCooldownSeconds(session, defaultCooldownSeconds)
  await session.execute(lockAlertKeysQuery(candidates))
  const { rowCount } = await session.execute(insertAlertsQuery(candidates, cooldown))
  return rowCount
}

/** The `alerts.cooldown_seconds` setting, or the writer's default when it is unset or not a whole number. */
async function alertCooldownSeconds(session: Session, fallback: number): Promise<number> {
  const { rows } = await session.execute(settingValueQuery('alerts.cooldown_seconds'))
  const value = rows[0] === undefined ? Number.NaN : Number(rows[0].value)
  return Number.isInteger(value) && value >= 0 ? value : fallback
}

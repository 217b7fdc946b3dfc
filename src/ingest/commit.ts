import { isStatementLevelError, isTransientDatabaseError } from '../errors/sqlstate.js'
import { metricObject } from '../schema/metric-values.js'
import { BatchKeys } from './batch-keys.js'
import type { ResolvedWriterOptions } from './options.js'
import type { PacketTracker, RejectReason } from './outcome.js'
import { jsonPayload } from './payload.js'
import { placeStatuses, statusLetter } from './statuses.js'
import { provisionDevicesQuery, setDeviceStatusesQuery } from '../repositories/device-statements.js'
import { followUpsFor, raiseAlerts, type FollowUps } from './follow-ups.js'
import { readDevices, type DeviceContext, type DeviceInfo } from './device-context.js'
import type { Entry, ReadingEntry, StatusEntry } from './entries.js'
import {
  insertDeadLetters,
  insertNewRows,
  insertRows,
  openBatch,
  rowKey,
  type DeadLetter,
  type Row,
} from './statements.js'
import type { Session, Store } from './store.js'

/** What one committed batch did to its entries; applied to the trackers only after COMMIT. */
export interface BatchResult {
  readonly written: ReadingEntry[]
  readonly duplicates: ReadingEntry[]
  readonly rejected: { entry: Entry; reason: RejectReason }[]
  readonly alerts: number
  /** Devices this batch registered. */
  readonly provisioned: number
  /** Status entries applied (or superseded by a later reading of the same batch). */
  readonly statuses: StatusEntry[]
}

/** A reading placed under its device's plant: the entry is the row. */
type Placed = ReadingEntry

/** The dead letter for readings of one packet refused together (their device is unknown or retired). */
function letterFor(entries: readonly ReadingEntry[], reason: RejectReason, detail: string): DeadLetter {
  const first = entries[0]!
  const readings = entries.map((entry) => ({ time: new Date(entry.timeMs), ...metricObject(entry.values) }))
  return {
    receivedAt: new Date(first.receivedAtMs),
    deviceId: first.deviceId,
    source: first.source,
    payload: jsonPayload(
      readings.length === 1 ? { deviceId: first.deviceId, ...readings[0] } : { deviceId: first.deviceId, readings },
    ),
    reason,
    detail,
  }
}

/**
 * Raised inside the fast path's transaction when a row conflicts or is
 * refused: the transaction is rolled back and the batch is written again,
 * carefully. Conflicts are rare (redeliveries), so the common batch pays for
 * no savepoint and no conflict handling.
 */
export class CarefulRetry extends Error {
  constructor(cause: unknown) {
    super('batch needs the careful path', { cause })
  }
}

type Stored = { stored: Set<string> | 'all'; refused: { placed: Placed; detail: string }[] }

/**
 * The careful path: only rows not yet stored go in; where the database refuses
 * some for good, halves the set until each refused row stands alone, so the
 * others are still written. Each try runs in a savepoint so a failure does not
 * abort the batch's transaction.
 */
async function writeIsolating(session: Session, placed: readonly Placed[]): Promise<Stored> {
  await session.query('SAVEPOINT plantops_rows')
  try {
    const stored = await insertNewRows(session, placed)
    await session.query('RELEASE SAVEPOINT plantops_rows')
    return { stored, refused: [] }
  } catch (error) {
    await session.query('ROLLBACK TO SAVEPOINT plantops_rows')
    if (isTransientDatabaseError(error) || isStatementLevelError(error)) throw error
    if (placed.length === 1)
      return { stored: new Set(), refused: [{ placed: placed[0]!, detail: (error as Error).message }] }
    const middle = Math.ceil(placed.length / 2)
    const halves = [
      await writeIsolating(session, placed.slice(0, middle)),
      await writeIsolating(session, placed.slice(middle)),
    ]
    const stored = new Set<string>()
    for (const half of halves) for (const key of half.stored as Set<string>) stored.add(key)
    return { stored, refused: halves.flatMap((half) => half.refused) }
  }
}

/**
 * The fast path: COPY (or one INSERT) of every row, no savepoint; any
 * refusal sends the batch down the careful path.
 */
async function writeFast(session: Session, placed: readonly Placed[], whileStoring: () => void): Promise<Stored> {
  try {
    await insertRows(session, placed, undefined, whileStoring)
    return { stored: 'all', refused: [] }
  } catch (error) {
    // A refusal no row caused (a missing column, no permission) is retried whole:
    // bisecting would dead-letter every row.
    if (isTransientDatabaseError(error) || isStatementLevelError(error)) throw error
    throw new CarefulRetry(error)
  }
}

/**
 * Sorts a batch's readings into rows to write, readings the batch already
 * holds, and readings of unknown or retired devices (one dead letter per
 * packet and reason).
 */
function placeReadings(
  readings: readonly ReadingEntry[],
  devices: ReadonlyMap<string, DeviceInfo>,
): { placed: Placed[]; duplicates: ReadingEntry[]; refused: { letter: DeadLetter; entries: ReadingEntry[] }[] } {
  const refusedByPacket = new Map<PacketTracker, { reason: RejectReason; entries: ReadingEntry[] }>()
  const placed: Placed[] = []
  const duplicates: ReadingEntry[] = []
  const inBatch = new BatchKeys()
  for (const entry of readings) {
    const device = devices.get(entry.deviceId)
    const reason = !device ? 'unknown_device' : device.decommissioned ? 'decommissioned_device' : undefined
    if (reason) {
      const group = refusedByPacket.get(entry.tracker) ?? { reason, entries: [] }
      group.entries.push(entry)
      refusedByPacket.set(entry.tracker, group)
      continue
    }
    if (inBatch.add(entry.deviceId, entry.timeMs)) {
      entry.plantId = device!.plantId
      placed.push(entry)
    } else duplicates.push(entry)
  }
  const refused = [...refusedByPacket.values()].map(({ reason, entries }) => {
    const id = entries[0]!.deviceId
    return {
      letter: letterFor(
        entries,
        reason,
        reason === 'unknown_device' ? `no device "${id}"` : `device "${id}" is decommissioned`,
      ),
      entries,
    }
  })
  return { placed, duplicates, refused }
}

/** The writer options a batch's transaction uses. */
export type BatchSettings = Pick<
  ResolvedWriterOptions,
  'defaultAlertCooldownSeconds' | 'randomPageCost' | 'maintainRollups'
>

/** The whole batch in one transaction: context, rows, dead letters, last seen, statuses, alerts, rollups. */
export async function commitBatch(
  store: Store,
  entries: readonly Entry[],
  context: DeviceContext,
  settings: BatchSettings,
  careful: boolean,
): Promise<BatchResult> {
  return store.transaction(async (session) => {
    const epoch = await openBatch(session, settings.randomPageCost)
    const { readings, statuses, ids } = sortEntries(entries)
    // Awaited only when there is something to wait for: see DeviceContext.resolve.
    const resolved = context.resolve(session, ids, epoch)
    const devices = resolved instanceof Map ? resolved : await resolved
    const wanted = unknownToProvision(readings, devices)
    const provisioned = wanted.length > 0 ? await provision(session, wanted, devices) : 0
    const { placed, duplicates, refused: refusedDevices } = placeReadings(readings, devices)
    const result: Omit<BatchResult, 'alerts' | 'provisioned'> = { written: [], duplicates, rejected: [], statuses: [] }
    const letters: DeadLetter[] = []

    for (const entry of entries) {
      if (entry.kind === 'reject') {
        letters.push(entry.letter)
        result.rejected.push({ entry, reason: entry.letter.reason })
      }
    }
    for (const { letter, entries: group } of refusedDevices) {
      letters.push(letter)
      for (const entry of group) result.rejected.push({ entry, reason: letter.reason })
    }

    // On the fast path every placed row is written, so what follows from them
    // is built while the server stores them; the careful path builds it after.
    let followUps: FollowUps | undefined
    const followUpsOf = (rows: readonly Row[]) => followUpsFor(rows, devices, settings.maintainRollups, session.arrays)
    if (placed.length > 0) {
      const { stored, refused } = careful
        ? await writeIsolating(session, placed)
        : await writeFast(session, placed, () => (followUps = followUpsOf(placed)))
      const refusedSet = new Set(refused.map((r) => r.placed))
      for (const p of placed) {
        if (refusedSet.has(p)) continue
        if (stored === 'all' || stored.has(rowKey(p.deviceId, p.timeMs))) result.written.push(p)
        else result.duplicates.push(p)
      }
      for (const { placed: p, detail } of refused) {
        letters.push(letterFor([p], 'database_refused', detail))
        result.rejected.push({ entry: p, reason: 'database_refused' })
      }
    }

    const placedStatuses = statuses.length > 0 ? placeStatuses(entries, devices, new Set(result.written)) : undefined
    result.statuses.push(...(placedStatuses?.accepted ?? []))
    for (const { entry, reason } of placedStatuses?.refused ?? []) {
      letters.push(statusLetter(entry, reason))
      result.rejected.push({ entry, reason })
    }

    const { seen, candidates, rollups } = followUps ?? followUpsOf(result.written)
    if (letters.length > 0) await insertDeadLetters(session, letters)
    if (seen) await session.execute(seen)
    if (placedStatuses && placedStatuses.applied.size > 0) {
      const { applied } = placedStatuses
      await session.execute(setDeviceStatusesQuery([...applied.keys()], [...applied.values()]))
    }
    const alerts =
      candidates.length > 0 ? await raiseAlerts(session, candidates, settings.defaultAlertCooldownSeconds) : 0
    // Last in the transaction: concurrent batches share rollup rows (a plant's
    // hour or five minutes), so their locks are held only until the commit.
    if (rollups) await session.execute(rollups)
    return { ...result, provisioned, alerts }
  })
}

/** A batch's readings and statuses, and the devices they name. */
function sortEntries(entries: readonly Entry[]): {
  readings: ReadingEntry[]
  statuses: StatusEntry[]
  ids: Set<string>
} {
  const readings: ReadingEntry[] = []
  const statuses: StatusEntry[] = []
  const ids = new Set<string>()
  for (const entry of entries) {
    if (entry.kind === 'reading') readings.push(entry)
    else if (entry.kind === 'status') statuses.push(entry)
    else continue
    ids.add(entry.deviceId)
  }
  return { readings, statuses, ids }
}

/** The unknown devices whose packets asked to be registered. */
function unknownToProvision(readings: readonly ReadingEntry[], devices: ReadonlyMap<string, DeviceInfo>): string[] {
  const wanted = new Set<string>()
  for (const entry of readings) if (entry.provision && !devices.has(entry.deviceId)) wanted.add(entry.deviceId)
  return [...wanted]
}

/**
 * Registers `wanted` devices, adding them to `devices` for this batch only:
 * they are not cached, because the transaction may yet roll back. Returns
 * how many rows it inserted.
 */
async function provision(
  session: Session,
  wanted: readonly string[],
  devices: Map<string, DeviceInfo>,
): Promise<number> {
  const { rowCount } = await session.execute(provisionDevicesQuery(wanted))
  for (const [id, info] of await readDevices(session, wanted)) devices.set(id, info)
  return rowCount
}

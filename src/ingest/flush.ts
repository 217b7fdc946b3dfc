import { isStatementLevelError, isTransientDatabaseError } from '../errors/sqlstate.js'
import { metricObject } from '../schema/metric-values.js'
import { alertCandidates } from './alert-rules.js'
import { BatchKeys } from './batch-keys.js'
import type { DeviceContext } from './device-context.js'
import type { ResolvedWriterOptions } from './options.js'
import type { PacketTracker, RejectReason } from './outcome.js'
import type { Reading } from './packet.js'
import { jsonPayload } from './payload.js'
import { placeStatuses, statusLetter } from './statuses.js'
import {
  insertAlerts,
  insertDeadLetters,
  insertNewRows,
  insertRows,
  markDevicesSeen,
  setDeviceStatuses,
  insertProvisionedDevices,
  planForSmallTables,
  readAlertCooldownSeconds,
  rowKey,
  selectDevices,
  type DeadLetter,
  type DeviceInfo,
  type Row,
} from './statements.js'
import type { Session, Store } from './store.js'

/** A validated reading waiting in the buffer. */
export interface ReadingEntry {
  readonly kind: 'reading'
  readonly reading: Reading
  readonly tracker: PacketTracker
  readonly source: string | null
  /** When the packet arrived, in epoch milliseconds. */
  readonly receivedAtMs: number
  /** Register the device if it is unknown (`PacketMeta.provisionIfUnknown`). */
  readonly provision: boolean
  /** Estimated bytes held, and when it was queued (ms), for the buffer's bounds and age. */
  readonly bytes: number
  readonly at: number
}

/** A packet refused before it reached a batch, waiting to be dead-lettered. */
export interface RejectEntry {
  readonly kind: 'reject'
  readonly letter: DeadLetter
  readonly tracker: PacketTracker
  readonly bytes: number
  readonly at: number
}

/** An `online` / `offline` status a device announced (a status message or its last will). */
export interface StatusEntry {
  readonly kind: 'status'
  readonly deviceId: string
  readonly status: 'online' | 'offline'
  readonly tracker: PacketTracker
  readonly source: string | null
  readonly receivedAtMs: number
  readonly bytes: number
  readonly at: number
}

export type Entry = ReadingEntry | RejectEntry | StatusEntry

/** The device an entry belongs to, which picks its lane: a device's entries stay in order. */
export function deviceOf(entry: Entry): string | null {
  return entry.kind === 'reading' ? entry.reading.deviceId : entry.kind === 'status' ? entry.deviceId : entry.letter.deviceId
}

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

/** A row with the entry it came from: one object per row, as the encoders take it. */
type Placed = Row & { readonly entry: ReadingEntry }

/** The dead letter for readings of one packet refused together (their device is unknown or retired). */
function letterFor(entries: readonly ReadingEntry[], reason: RejectReason, detail: string): DeadLetter {
  const first = entries[0]!
  const readings = entries.map(({ reading }) => ({ time: new Date(reading.timeMs), ...metricObject(reading.values) }))
  return {
    receivedAt: new Date(first.receivedAtMs),
    deviceId: first.reading.deviceId,
    source: first.source,
    payload: jsonPayload(readings.length === 1 ? { deviceId: first.reading.deviceId, ...readings[0] } : { deviceId: first.reading.deviceId, readings }),
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
    if (placed.length === 1) return { stored: new Set(), refused: [{ placed: placed[0]!, detail: (error as Error).message }] }
    const middle = Math.ceil(placed.length / 2)
    const halves = [await writeIsolating(session, placed.slice(0, middle)), await writeIsolating(session, placed.slice(middle))]
    const stored = new Set<string>()
    for (const half of halves) for (const key of half.stored as Set<string>) stored.add(key)
    return { stored, refused: halves.flatMap((half) => half.refused) }
  }
}

/** The fast path: COPY (or one INSERT) of every row, no savepoint; any refusal sends the batch down the careful path. */
async function writeFast(session: Session, placed: readonly Placed[]): Promise<Stored> {
  try {
    await insertRows(session, placed)
    return { stored: 'all', refused: [] }
  } catch (error) {
    // A refusal no row caused (a missing column, no permission) is retried whole: bisecting would dead-letter every row.
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
    const device = devices.get(entry.reading.deviceId)
    const reason = !device ? 'unknown_device' : device.decommissioned ? 'decommissioned_device' : undefined
    if (reason) {
      const group = refusedByPacket.get(entry.tracker) ?? { reason, entries: [] }
      group.entries.push(entry)
      refusedByPacket.set(entry.tracker, group)
      continue
    }
    const { deviceId, timeMs, values } = entry.reading
    if (inBatch.add(deviceId, timeMs)) placed.push({ timeMs, deviceId, plantId: device!.plantId, values, entry })
    else duplicates.push(entry)
  }
  const refused = [...refusedByPacket.values()].map(({ reason, entries }) => {
    const id = entries[0]!.reading.deviceId
    return { letter: letterFor(entries, reason, reason === 'unknown_device' ? `no device "${id}"` : `device "${id}" is decommissioned`), entries }
  })
  return { placed, duplicates, refused }
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

/** The writer options a batch's transaction uses. */
export type BatchSettings = Pick<ResolvedWriterOptions, 'defaultAlertCooldownSeconds' | 'randomPageCost'>

/** The whole batch in one transaction: context, rows, dead letters, last seen, alerts. */
export async function flushBatch(
  store: Store,
  entries: readonly Entry[],
  context: DeviceContext,
  settings: BatchSettings,
  careful: boolean,
): Promise<BatchResult> {
  return store.transaction(async (session) => {
    if (settings.randomPageCost !== null) await planForSmallTables(session, settings.randomPageCost)
    const readings = entries.filter((e): e is ReadingEntry => e.kind === 'reading')
    const statuses = entries.filter((e): e is StatusEntry => e.kind === 'status')
    const ids = new Set(readings.map((e) => e.reading.deviceId))
    for (const entry of statuses) ids.add(entry.deviceId)
    const devices = await context.resolve(session, [...ids])
    const provisioned = await provisionUnknown(session, readings, devices)
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

    const written: Row[] = []
    if (placed.length > 0) {
      const { stored, refused } = careful ? await writeIsolating(session, placed) : await writeFast(session, placed)
      const refusedSet = new Set(refused.map((r) => r.placed))
      for (const p of placed) {
        if (refusedSet.has(p)) continue
        if (stored === 'all' || stored.has(rowKey(p.deviceId, p.timeMs))) {
          result.written.push(p.entry)
          written.push(p)
        } else {
          result.duplicates.push(p.entry)
        }
      }
      for (const { placed: p, detail } of refused) {
        letters.push(letterFor([p.entry], 'database_refused', detail))
        result.rejected.push({ entry: p.entry, reason: 'database_refused' })
      }
    }

    const applied = new Map<string, 'online' | 'offline'>()
    if (statuses.length > 0) {
      const placedStatuses = placeStatuses(entries, devices, new Set(result.written))
      for (const [id, status] of placedStatuses.applied) applied.set(id, status)
      result.statuses.push(...placedStatuses.accepted)
      for (const { entry, reason } of placedStatuses.refused) {
        letters.push(statusLetter(entry, reason))
        result.rejected.push({ entry, reason })
      }
    }

    await insertDeadLetters(session, letters)
    await markDevicesSeen(session, newestPerDevice(written))
    await setDeviceStatuses(session, applied)
    return { ...result, provisioned, alerts: await raiseAlerts(session, written, devices, settings.defaultAlertCooldownSeconds) }
  })
}

/**
 * Registers the unknown devices whose packets asked for it, adding them to
 * `devices` for this batch only: they are not cached, because the
 * transaction may yet roll back. Returns how many rows it inserted.
 */
async function provisionUnknown(session: Session, readings: readonly ReadingEntry[], devices: Map<string, DeviceInfo>): Promise<number> {
  const wanted = new Set<string>()
  for (const entry of readings) if (entry.provision && !devices.has(entry.reading.deviceId)) wanted.add(entry.reading.deviceId)
  if (wanted.size === 0) return 0
  const inserted = await insertProvisionedDevices(session, [...wanted])
  for (const [id, info] of await selectDevices(session, [...wanted])) devices.set(id, info)
  return inserted
}

/** Records the batch's threshold crossings, one per (plant, metric, direction) per cooldown; returns how many. */
async function raiseAlerts(
  session: Session,
  rows: readonly Row[],
  devices: ReadonlyMap<string, DeviceInfo>,
  defaultCooldownSeconds: number,
): Promise<number> {
  const candidates = alertCandidates(rows, devices)
  if (candidates.length === 0) return 0
  const cooldown = await readAlertCooldownSeconds(session, defaultCooldownSeconds)
  return insertAlerts(session, candidates, cooldown)
}

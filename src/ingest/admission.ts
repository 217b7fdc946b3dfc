import { ValidationError } from '../errors/errors.js'
import { isId } from '../schema/fields.js'
import type { Entry, ReadingEntry, StatusEntry } from './entries.js'
import type { ResolvedWriterOptions } from './options.js'
import { PacketTracker } from './outcome.js'
import { readPacket, type Reading } from './packet.js'
import type { DeadLetterInput, PacketMeta } from './packet-meta.js'
import { jsonPayload } from './payload.js'

/** Estimated memory of one buffered reading (entry, reading, row, arrays). */
const READING_BYTES = 320
/** Beyond its payload, what one dead letter costs. */
const LETTER_BYTES = 256
/** What one buffered status costs. */
const STATUS_BYTES = 160

/**
 * What one packet becomes on arrival: the entries it adds to the buffer (all
 * of one device, so one lane), their estimated bytes, and the tracker that
 * settles its receipt. An invalid packet becomes one dead-letter entry.
 */
export interface Admission {
  readonly entries: Entry[]
  readonly bytes: number
  readonly tracker: PacketTracker
}

/** When the packet arrived, in epoch ms: now, or `meta.receivedAt` when that is a valid Date. */
export function arrivalMs(meta: PacketMeta): number | ValidationError {
  if (meta.receivedAt === undefined) return Date.now()
  const ms = meta.receivedAt instanceof Date ? meta.receivedAt.getTime() : Number.NaN
  return Number.isNaN(ms)
    ? new ValidationError('packet meta', [{ path: ['receivedAt'], message: 'must be a valid Date' }])
    : ms
}

/** The time window a reading must fall in, from the writer's options. */
export type TimeBounds = Pick<ResolvedWriterOptions, 'maxPastAgeMs' | 'maxFutureSkewMs'>

function timely(reading: Reading, receivedAtMs: number, bounds: TimeBounds): boolean {
  const offset = reading.timeMs - receivedAtMs
  return offset <= bounds.maxFutureSkewMs && -offset <= bounds.maxPastAgeMs
}

function deviceIdOf(packet: unknown): string | undefined {
  const id = (packet as { deviceId?: unknown } | null)?.deviceId
  return typeof id === 'string' ? id : undefined
}

/** The first reading outside the time window, if any. */
function firstUntimely(readings: readonly Reading[], receivedAtMs: number, bounds: TimeBounds): Reading | undefined {
  for (const reading of readings) if (!timely(reading, receivedAtMs, bounds)) return reading
  return undefined
}

/** A sensor packet: its readings, or one dead letter saying why it is refused (invalid, or out of time). */
export function admitPacket(packet: unknown, meta: PacketMeta, receivedAtMs: number, bounds: TimeBounds): Admission {
  const result = readPacket(packet, receivedAtMs)
  if (!('readings' in result)) {
    const { reason, detail } = result
    return admitLetter({
      payload: packet,
      reason,
      detail,
      receivedAt: new Date(receivedAtMs),
      source: meta.source,
      deviceId: deviceIdOf(packet),
    })
  }
  const skewed = firstUntimely(result.readings, receivedAtMs, bounds)
  if (skewed) {
    const window = `[received − ${bounds.maxPastAgeMs} ms, received + ${bounds.maxFutureSkewMs} ms]`
    const detail = `time ${new Date(skewed.timeMs).toISOString()} is outside ${window}`
    return admitLetter({
      payload: packet,
      reason: 'time_skew',
      detail,
      receivedAt: new Date(receivedAtMs),
      source: meta.source,
      deviceId: skewed.deviceId,
    })
  }
  const tracker = new PacketTracker(result.readings.length)
  const source = meta.source ?? null
  const provision = meta.provisionIfUnknown === true
  const at = Date.now()
  const entries: ReadingEntry[] = []
  for (const { deviceId, timeMs, values } of result.readings)
    entries.push({
      kind: 'reading',
      deviceId,
      timeMs,
      values,
      tracker,
      source,
      receivedAtMs,
      provision,
      bytes: READING_BYTES,
      at,
      plantId: null,
    })
  return { entries, bytes: READING_BYTES * entries.length, tracker }
}

/** A device's `online` / `offline` status, or a dead letter when the id or the status is not valid. */
export function admitStatus(deviceId: string, status: string, meta: PacketMeta, receivedAtMs: number): Admission {
  const validId = isId(deviceId)
  if (!validId || (status !== 'online' && status !== 'offline')) {
    return admitLetter({
      payload: { deviceId, status },
      reason: 'schema',
      detail: validId ? 'a status is "online" or "offline"' : 'a status names a valid device id',
      receivedAt: new Date(receivedAtMs),
      source: meta.source,
      deviceId: typeof deviceId === 'string' ? deviceId : undefined,
    })
  }
  const tracker = new PacketTracker(1)
  const source = meta.source ?? null
  const entry: StatusEntry = {
    kind: 'status',
    deviceId,
    status,
    tracker,
    source,
    receivedAtMs,
    bytes: STATUS_BYTES,
    at: Date.now(),
  }
  return { entries: [entry], bytes: STATUS_BYTES, tracker }
}

/** Something to dead-letter as it is, with its reason. */
export function admitLetter(input: DeadLetterInput): Admission {
  const tracker = new PacketTracker(1)
  const payload = jsonPayload(input.payload)
  const letter = {
    receivedAt: input.receivedAt ?? new Date(),
    deviceId: input.deviceId ?? null,
    source: input.source ?? null,
    payload,
    reason: input.reason,
    detail: input.detail ?? null,
  }
  const bytes = LETTER_BYTES + payload.length
  return { entries: [{ kind: 'reject', letter, tracker, bytes, at: Date.now() }], bytes, tracker }
}

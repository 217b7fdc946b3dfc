import type { Kysely } from 'kysely'
import { z } from 'zod'
import { validate } from '../util/validate.js'
import type { Database } from '../schema/database.js'
import type { TelemetryWriter } from './writer.js'

/**
 * Options of `replayRejects`.
 *
 * @example
 * ```ts
 * const options: ReplayOptions = { reason: 'unknown_device', limit: 500 }
 * ```
 */
export interface ReplayOptions {
  /** Only dead letters with this reason. */
  readonly reason?: string
  /** At most this many, oldest first. Default 1,000. */
  readonly limit?: number
  /**
   * Turns a dead letter's bytes back into a packet. Default: JSON, with the
   * letter's device id added when the payload has none (packets whose identity
   * came from an MQTT topic).
   */
  readonly decode?: (payload: Buffer, letter: { deviceId: string | null; source: string | null }) => unknown
}

/**
 * What a replay did: how many dead letters were resubmitted and how their
 * readings fared. A letter refused again gets a new dead letter with the new
 * reason; the old one is marked replayed either way.
 *
 * @example
 * ```ts
 * const report: ReplayReport = await replayRejects(db, writer)
 * console.log(`${report.written} readings recovered, ${report.rejectedAgain} still refused`)
 * ```
 */
export interface ReplayReport {
  readonly replayed: number
  readonly written: number
  readonly duplicates: number
  readonly rejectedAgain: number
}

function defaultDecode(payload: Buffer, letter: { deviceId: string | null }): unknown {
  let packet: unknown
  try {
    packet = JSON.parse(payload.toString('utf8'))
  } catch {
    return payload
  }
  if (typeof packet === 'object' && packet !== null && !('deviceId' in packet) && letter.deviceId !== null) {
    return { ...packet, deviceId: letter.deviceId }
  }
  return packet
}

const optionsSchema = z.strictObject({
  reason: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(100_000).default(1_000),
  decode: z.custom<NonNullable<ReplayOptions['decode']>>((v) => typeof v === 'function').optional(),
})

/**
 * Resubmits dead letters not yet replayed (after the cause is fixed: the
 * device provisioned, a decoder corrected) through `writer`, with their
 * original receive time, and marks them replayed once the resubmission is
 * durable.
 *
 * @example
 * ```ts
 * import { replayRejects } from 'plantops-db'
 * await repos.devices.provision({ macAddress, sensorTypes }) // the device was unknown before
 * const report = await replayRejects(db, writer, { reason: 'unknown_device' })
 * ```
 */
export async function replayRejects(
  db: Kysely<Database>,
  writer: TelemetryWriter,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const { reason, limit, decode = defaultDecode } = validate(optionsSchema, options, 'replay options')
  let query = db
    .selectFrom('telemetry_rejects')
    .select(['id', 'device_id', 'source', 'payload', 'received_at'])
    .where('replayed_at', 'is', null)
    .orderBy('id')
    .limit(limit)
  if (reason !== undefined) query = query.where('reason', '=', reason)
  const letters = await query.execute()

  const receipts = []
  for (const letter of letters) {
    const packet = decode(Buffer.from(letter.payload), { deviceId: letter.device_id, source: letter.source })
    const meta = { source: letter.source ?? `replay:${letter.id}`, receivedAt: letter.received_at }
    receipts.push((await writer.writeRaw(packet, meta)).durable)
  }
  const outcomes = await Promise.all(receipts)
  if (letters.length > 0) {
    await db
      .updateTable('telemetry_rejects')
      .set({ replayed_at: new Date() })
      .where(
        'id',
        'in',
        letters.map((l) => l.id),
      )
      .execute()
  }
  return {
    replayed: letters.length,
    written: outcomes.reduce((sum, o) => sum + o.written, 0),
    duplicates: outcomes.reduce((sum, o) => sum + o.duplicates, 0),
    rejectedAgain: outcomes.reduce((sum, o) => sum + o.rejected, 0),
  }
}

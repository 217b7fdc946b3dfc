import type { WriteReceipt } from '../ingest/outcome.js'
import type { TelemetryWriter } from '../ingest/writer.js'
import { decodeJson, decodeStatus, statusOf, type PayloadDecoder } from './decode.js'
import type { TopicLayout } from './topics.js'

/** Of an oversize payload, this much is kept in its dead letter. */
const KEPT_OVERSIZE_BYTES = 4_096

/** One message as the broker delivered it. */
export interface Delivery {
  readonly topic: string
  readonly payload: Buffer
  /** Set by the broker when it replays a topic's retained message to a new subscription. */
  readonly retained: boolean
  /**
   * When it arrived; default now. A spooled message keeps its arrival time, so
   * a reading without a time of its own gets the same time when it is
   * drained again after a crash, and deduplicates.
   */
  readonly receivedAt?: Date
}

export interface ReceiveSettings {
  readonly writer: TelemetryWriter
  readonly layout: TopicLayout
  readonly decode?: PayloadDecoder | undefined
  readonly maxPayloadBytes: number
  readonly autoProvision: boolean
  /** Called for each message the ingestor itself dead-letters. */
  readonly onDeadLetter: () => void
  /** Called once a status message was applied. */
  readonly onStatusApplied: () => void
  /**
   * With several connections: resolves once everything the broker sent
   * before a status has arrived, so the status joins its device's lane
   * behind those readings (see `OrderBarrier`).
   */
  readonly afterEarlierMessages?: (() => Promise<void> | undefined) | undefined
}

/** Whether a telemetry payload says when it was measured (top-level `time`, or a `time` on every reading). */
function hasOwnTime(decoded: object): boolean {
  const { time, readings } = decoded as { time?: unknown; readings?: unknown }
  if (time !== undefined) return true
  return (
    Array.isArray(readings) &&
    readings.length > 0 &&
    readings.every((r) => typeof r === 'object' && r !== null && (r as { time?: unknown }).time !== undefined)
  )
}

/**
 * The one path for everything a device sends: a message becomes a reading,
 * a status or a dead letter, each through the writer, so each is retried,
 * counted and made durable the same way. Resolves once the writer accepted
 * it, with the promise of its durability.
 */
export function createReceiver(settings: ReceiveSettings): (delivery: Delivery) => Promise<WriteReceipt> {
  const { writer, layout } = settings
  const decode = settings.decode ?? decodeJson

  const letter = (
    delivery: Delivery,
    reason: string,
    detail: string,
    deviceId?: string,
    payload = delivery.payload,
  ): Promise<WriteReceipt> => {
    settings.onDeadLetter()
    return writer.deadLetter({
      payload,
      reason,
      detail,
      source: `mqtt:${delivery.topic}`,
      ...(delivery.receivedAt !== undefined && { receivedAt: delivery.receivedAt }),
      ...(deviceId !== undefined && { deviceId }),
    })
  }

  const writeStatusInOrder = async (
    deviceId: string,
    status: 'online' | 'offline',
    source: string,
    receivedAt: Date,
  ): Promise<WriteReceipt> => {
    const meta = { source, receivedAt }
    const earlier = settings.afterEarlierMessages?.()
    if (!earlier) return writer.writeStatus(deviceId, status, meta)
    // The connection reads on meanwhile (its own order marker must get through); the PUBACK waits for this.
    const durable = earlier.then(() => writer.writeStatus(deviceId, status, meta)).then((receipt) => receipt.durable)
    return { durable }
  }

  return async (delivery) => {
    const { topic, payload } = delivery
    const route = layout.route(topic)
    if (!route) {
      const why = topic.startsWith('/') ? ' (a leading "/" makes an empty first level)' : ''
      return letter(delivery, 'unknown_topic', `no device id and channel in topic "${topic}"${why}`)
    }
    if (payload.length > settings.maxPayloadBytes) {
      const detail =
        `payload of ${payload.length} bytes exceeds ${settings.maxPayloadBytes}; ` +
        `its first ${KEPT_OVERSIZE_BYTES} bytes are kept`
      return letter(delivery, 'oversize', detail, route.deviceId, payload.subarray(0, KEPT_OVERSIZE_BYTES))
    }
    let decoded: unknown
    try {
      decoded = route.channel === 'status' ? decodeStatus(decode, topic, payload) : decode(topic, payload)
    } catch (error) {
      return letter(delivery, 'decode_failed', error instanceof Error ? error.message : String(error), route.deviceId)
    }
    const source = `mqtt:${topic}`
    if (route.channel === 'status') {
      const status = statusOf(decoded)
      if (!status) return letter(delivery, 'schema', 'a status is "online" or "offline"', route.deviceId)
      const receipt = await writeStatusInOrder(route.deviceId, status, source, delivery.receivedAt ?? new Date())
      receipt.durable.then(
        (outcome) => outcome.status === 'written' && settings.onStatusApplied(),
        () => {},
      )
      return receipt
    }
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
      return letter(delivery, 'schema', 'a telemetry payload is a JSON object', route.deviceId)
    }
    const named = (decoded as { deviceId?: unknown }).deviceId
    if (named !== undefined && named !== route.deviceId) {
      return letter(
        delivery,
        'device_mismatch',
        `payload names device "${String(named)}" but arrived on the topic of "${route.deviceId}"`,
        route.deviceId,
      )
    }
    if (delivery.retained && !hasOwnTime(decoded)) {
      // A replayed retained message is the device's last value, not a new reading: stamped with
      // this receive time it would become a second row on every resubscription.
      const detail =
        'a retained telemetry message replayed on subscribe carries no time of its own, ' +
        'so when it was measured is unknown'
      return letter(delivery, 'retained_without_time', detail, route.deviceId)
    }
    return writer.writeRaw(
      { ...decoded, deviceId: route.deviceId },
      {
        source,
        provisionIfUnknown: settings.autoProvision,
        ...(delivery.receivedAt !== undefined && { receivedAt: delivery.receivedAt }),
      },
    )
  }
}

import { hostname } from 'node:os'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { z } from 'zod'
import { InvalidStateError, NotFoundError } from '../errors/errors.js'
import { isTransientDatabaseError } from '../errors/sqlstate.js'
import type { TelemetryWriter } from '../ingest/writer.js'
import type { WriteReceipt } from '../ingest/outcome.js'
import { consoleLogger, silentLogger, type Logger } from '../logging/logger.js'
import { createRepositories } from '../repositories/index.js'
import { validate } from '../repositories/shared/validate.js'
import { decodeJson, decodeStatus, statusOf, type PayloadDecoder } from './decode.js'
import { HeldAcks } from './held-acks.js'
import { prefixLayout, sharedFilters, type TopicLayout, type TopicRoute } from './topics.js'

/**
 * Options of `createMqttIngestor`.
 *
 * @example
 * ```ts
 * import type { MqttIngestorOptions } from 'plantops-db/mqtt'
 * const options: MqttIngestorOptions = { url: 'mqtt://broker:1883', writer, clientId: 'ingest-1', shareGroup: 'ingest' }
 * ```
 */
export interface MqttIngestorOptions {
  /** The broker, e.g. `mqtt://127.0.0.1:1883`. */
  readonly url: string
  /** The writer that makes packets durable; the ingestor never closes it. */
  readonly writer: TelemetryWriter
  /** A stable client id: with it the broker keeps the session, and what was not acknowledged, across restarts. Default `plantops-ingest-<hostname>`. */
  readonly clientId?: string
  /** Topics are `<prefix>/<deviceId>/telemetry` and `<prefix>/<deviceId>/status`. Default `plantops`. */
  readonly topicPrefix?: string
  /**
   * A layout of your own instead of the prefix: the topic filters to subscribe
   * to, and a function from a topic to its device id and channel (or
   * `undefined`, and the message is dead-lettered as `unknown_topic`).
   */
  readonly topics?: TopicLayout
  /** Subscribe through `$share/<group>/…` so several ingestors split the stream (MQTT 5 brokers; Mosquitto also for 3.1.1). */
  readonly shareGroup?: string
  /**
   * Register a device the database does not know when telemetry arrives on its
   * topic, instead of dead-lettering it as `unknown_device`. Only sensible when
   * the broker authenticates publishers and restricts each to its own topic
   * (an ACL such as `pattern write plantops/%u/#`), since the topic is the
   * identity. A new device has no plant and no MQTT password of ours, and,
   * like any device that reports, is marked `online`. Decommissioned devices
   * stay refused. Default false.
   */
  readonly autoProvision?: boolean
  /** `'at-least-once'` (default): PUBACK after commit. `'at-most-once'`: PUBACK on receipt; what was buffered is lost on a crash. */
  readonly delivery?: 'at-least-once' | 'at-most-once'
  /** Payload decoder. Default: UTF-8 JSON. */
  readonly decode?: PayloadDecoder
  /** Larger payloads are dead-lettered as `oversize`. Default 256 KiB. */
  readonly maxPayloadBytes?: number
  /** MQTT protocol version. Default 4 (3.1.1); 5 adds session expiry and receive maximum. */
  readonly protocolVersion?: 4 | 5
  /** Passed through to mqtt.js (credentials, TLS, keepalive…). */
  readonly mqtt?: IClientOptions
  /** A pino-compatible logger, or `false`. Default: the console. */
  readonly logger?: Logger | false
}

/**
 * Counters of an ingestor, from `ingestor.stats()`.
 *
 * @example
 * ```ts
 * const { received, deadLettered, heldAcks } = ingestor.stats()
 * ```
 */
export interface IngestorStats {
  /** Messages read from the broker. */
  readonly received: number
  /** Messages the ingestor itself dead-lettered (unroutable, oversize, undecodable, mismatched). */
  readonly deadLettered: number
  /** Status messages applied to `devices.status`. */
  readonly statusUpdates: number
  /** PUBACKs waiting for their message to become durable. */
  readonly heldAcks: number
  /** Whether the broker connection is up right now. */
  readonly connected: boolean
}

/**
 * A running MQTT ingestor.
 *
 * @example
 * ```ts
 * const ingestor = await createMqttIngestor({ url, writer })
 * process.on('SIGTERM', async () => { await ingestor.close(); await writer.close(); await db.destroy() })
 * ```
 */
export interface MqttIngestor {
  /** The mqtt.js client, for events and diagnostics; do not end it yourself, call `close()`. */
  readonly client: MqttClient
  /** Counters since the ingestor started. */
  stats(): IngestorStats
  /** Stops reading, waits until everything received is durable and acknowledged, then disconnects. */
  close(): Promise<void>
}

const optionsSchema = z.strictObject({
  url: z.string().min(1),
  writer: z.custom<TelemetryWriter>((v) => typeof v === 'object' && v !== null && typeof (v as TelemetryWriter).write === 'function'),
  clientId: z.string().min(1).max(128).optional(),
  topicPrefix: z.string().min(1).regex(/^[^#+]+$/, { message: 'must not contain MQTT wildcards' }).default('plantops'),
  topics: z.custom<TopicLayout>((v) => typeof v === 'object' && v !== null && typeof (v as TopicLayout).route === 'function').optional(),
  shareGroup: z.string().regex(/^[^/#+]+$/, { message: 'must be one topic level without wildcards' }).optional(),
  autoProvision: z.boolean().default(false),
  delivery: z.enum(['at-least-once', 'at-most-once']).default('at-least-once'),
  decode: z.custom<PayloadDecoder>((v) => typeof v === 'function').optional(),
  maxPayloadBytes: z.number().int().min(64).default(256 * 1024),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
  mqtt: z.custom<IClientOptions>((v) => typeof v === 'object' && v !== null).optional(),
  logger: z.custom<Logger | false>().optional(),
})

const KEPT_OVERSIZE_BYTES = 4_096

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Connects to an MQTT broker, subscribes to the fleet's topics at QoS 1 with a
 * persistent session, and feeds every message to the telemetry writer.
 *
 * - **The topic is the identity**: the device id comes from the topic; a payload naming another device is
 *   dead-lettered (`device_mismatch`), as are undecodable (`decode_failed`), oversize and unroutable messages.
 * - **At-least-once** (default): a message is acknowledged only once it is committed or dead-lettered, so
 *   after a crash the broker redelivers what was not durable and deduplication absorbs the repeats.
 * - Status messages (`online` / `offline`, including a last will) update `devices.status`.
 *
 * @example
 * ```ts
 * import { createDatabase, createTelemetryWriter } from 'plantops-db'
 * import { createMqttIngestor } from 'plantops-db/mqtt'
 * const db = createDatabase()
 * const writer = createTelemetryWriter(db)
 * const ingestor = await createMqttIngestor({ url: 'mqtt://127.0.0.1:1883', writer, clientId: 'ingest-1' })
 * ```
 */
export async function createMqttIngestor(options: MqttIngestorOptions): Promise<MqttIngestor> {
  const settings = validate(optionsSchema, options, 'MQTT ingestor options')
  const logger = settings.logger === false ? silentLogger : (settings.logger ?? consoleLogger)
  const decode = settings.decode ?? decodeJson
  const writer = settings.writer
  const devices = createRepositories(writer.db).devices
  const layout = settings.topics ?? prefixLayout(settings.topicPrefix)
  const atLeastOnce = settings.delivery === 'at-least-once'
  const counters = { received: 0, deadLettered: 0, statusUpdates: 0 }
  let closing = false

  const client = mqtt.connect(settings.url, {
    clientId: settings.clientId ?? `plantops-ingest-${hostname()}`,
    clean: false,
    protocolVersion: settings.protocolVersion,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
    ...(settings.protocolVersion === 5 && { properties: { sessionExpiryInterval: 0xffffffff, receiveMaximum: 65_535 } }),
    ...settings.mqtt,
  })
  const acks = atLeastOnce ? new HeldAcks(client) : undefined
  client.on('close', () => acks?.reset())
  client.on('error', (error) => logger.warn({ err: error }, 'MQTT connection error; reconnecting'))

  const letter = async (payload: Buffer, reason: string, detail: string, topic: string, deviceId?: string): Promise<WriteReceipt> => {
    counters.deadLettered += 1
    return writer.deadLetter({ payload, reason, detail, source: `mqtt:${topic}`, ...(deviceId !== undefined && { deviceId }) })
  }

  /** Status updates go straight to `devices`, retried while the database is unreachable. */
  const updateStatus = async (route: TopicRoute, status: 'online' | 'offline', payload: Buffer, topic: string): Promise<unknown> => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await devices.setStatus(route.deviceId, status)
        counters.statusUpdates += 1
        return
      } catch (error) {
        if (error instanceof NotFoundError) return (await letter(payload, 'unknown_device', String(error.message), topic, route.deviceId)).durable
        if (error instanceof InvalidStateError) return (await letter(payload, 'decommissioned_device', error.message, topic, route.deviceId)).durable
        if (!isTransientDatabaseError(error)) throw error
        await sleep(Math.min(5_000, 100 * 2 ** attempt))
      }
    }
  }

  /** Resolves once the message is accepted, with a promise of its durability. */
  const receive = async (topic: string, payload: Buffer): Promise<{ durable: Promise<unknown> }> => {
    counters.received += 1
    const route = layout.route(topic)
    if (!route) return letter(payload, 'unknown_topic', `no device id in topic "${topic}"`, topic)
    if (payload.length > settings.maxPayloadBytes) {
      const detail = `payload of ${payload.length} bytes exceeds ${settings.maxPayloadBytes}; its first ${KEPT_OVERSIZE_BYTES} bytes are kept`
      return letter(payload.subarray(0, KEPT_OVERSIZE_BYTES), 'oversize', detail, topic, route.deviceId)
    }
    let decoded: unknown
    try {
      decoded = route.channel === 'status' ? decodeStatus(decode, topic, payload) : decode(topic, payload)
    } catch (error) {
      return letter(payload, 'decode_failed', error instanceof Error ? error.message : String(error), topic, route.deviceId)
    }
    if (route.channel === 'status') {
      const status = statusOf(decoded)
      if (!status) return letter(payload, 'schema', 'a status is "online" or "offline"', topic, route.deviceId)
      return { durable: updateStatus(route, status, payload, topic) }
    }
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
      return letter(payload, 'schema', 'a telemetry payload is a JSON object', topic, route.deviceId)
    }
    const named = (decoded as { deviceId?: unknown }).deviceId
    if (named !== undefined && named !== route.deviceId) {
      return letter(payload, 'device_mismatch', `payload names device "${String(named)}" but arrived on the topic of "${route.deviceId}"`, topic, route.deviceId)
    }
    return writer.write({ ...decoded, deviceId: route.deviceId }, { source: `mqtt:${topic}`, provisionIfUnknown: settings.autoProvision })
  }

  client.handleMessage = (packet, callback) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const unacknowledged = () => {
      // Never acknowledged: the broker redelivers it to this session or another member of the group.
      if (acks && packet.qos > 0 && packet.messageId !== undefined) {
        const never = Promise.reject(new Error('not durable'))
        never.catch(() => {})
        acks.hold(packet.messageId, never)
      }
      callback()
    }
    if (closing) return unacknowledged()
    receive(packet.topic, payload).then(
      (receipt) => {
        if (acks && packet.qos > 0 && packet.messageId !== undefined) acks.hold(packet.messageId, receipt.durable)
        callback()
      },
      (error: unknown) => {
        logger.error({ err: error, topic: packet.topic }, 'message not accepted; it will be redelivered')
        unacknowledged()
      },
    )
  }

  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => {
      client.subscribe(sharedFilters(layout.filters, settings.shareGroup), { qos: 1 }, (error) => (error ? reject(error) : resolve()))
    })
    client.once('error', reject)
  }).catch(async (error: unknown) => {
    await client.endAsync(true)
    throw error
  })
  logger.info({ url: settings.url, delivery: settings.delivery }, `MQTT ingestor subscribed (${settings.delivery})`)

  return {
    client,
    stats: () =>
      Object.freeze({ ...counters, heldAcks: acks?.size ?? 0, connected: client.connected }),
    async close() {
      closing = true
      await writer.flush()
      // Held PUBACKs go out as their messages became durable; give them the moment they need.
      for (let waited = 0; (acks?.size ?? 0) > 0 && waited < 5_000; waited += 10) await sleep(10)
      await client.endAsync()
    },
  }
}

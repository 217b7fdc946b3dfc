import { hostname } from 'node:os'
import type { IClientOptions } from 'mqtt'
import { z } from 'zod'
import type { TelemetryWriter } from '../ingest/writer.js'
import type { SpoolOptions } from '../spool/options.js'
import { loggerOption, resolveLogger, type Logger } from '../util/logger.js'
import { meterOption, type MeterLike } from '../util/metrics.js'
import { validate } from '../util/validate.js'
import type { PayloadDecoder } from './decode.js'
import type { TopicLayout } from './topics.js'

/**
 * Options of `createMqttIngestor`.
 *
 * @example
 * ```ts
 * import type { MqttIngestorOptions } from 'plantops-db/mqtt'
 * const options: MqttIngestorOptions = {
 *   url: 'mqtt://broker:1883',
 *   writer,
 *   clientId: 'ingest-1',
 *   shareGroup: 'ingest',
 * }
 * ```
 */
export interface MqttIngestorOptions {
  /** The broker, e.g. `mqtt://127.0.0.1:1883`. */
  readonly url: string
  /** The writer that makes packets durable; the ingestor never closes it. */
  readonly writer: TelemetryWriter
  /**
   * A stable client id: with it the broker keeps the session, and what was not
   * acknowledged, across restarts. Default `plantops-ingest-<hostname>`. With
   * several `connections`, the others are `<clientId>-2`, `<clientId>-3`, …
   */
  readonly clientId?: string
  /**
   * Topics are `<prefix>/<deviceId>/telemetry` and `<prefix>/<deviceId>/status`;
   * everything else under the prefix is dead-lettered. Default `plantops`.
   */
  readonly topicPrefix?: string
  /**
   * A layout of your own instead of the prefix: the topic filters to subscribe
   * to, and a function from a topic to its device id and channel (or
   * `undefined`, and the message is dead-lettered as `unknown_topic`).
   */
  readonly topics?: TopicLayout
  /**
   * Subscribe through `$share/<group>/…` so several ingestors (and several
   * connections of one) split the stream, and the broker routes to the live
   * members while one restarts. Supported by Mosquitto (also for 3.1.1),
   * EMQX and HiveMQ; not by aedes.
   */
  readonly shareGroup?: string
  /**
   * Broker connections of this ingestor, all in one share group (`shareGroup`,
   * or `plantops-<clientId>` when none is given). The broker gives each
   * connection its own window of unacknowledged messages and its own queue
   * (on a stock Mosquitto with MQTT 5: 65,535 in flight and 1,000 queued,
   * then it drops; EMQX: 32 and 1,000; HiveMQ: 50 and 1,000), so N
   * connections absorb N times the burst or outage and, on a small window,
   * N times the rate. The broker deals a device's messages out to the
   * connections in turn; readings do not mind (each has its time, and
   * repeats are absorbed), and a status is held back until everything the
   * broker sent before it has arrived (an order marker the ingestor
   * publishes to `plantops-ingestors/<clientId>/order` and each connection
   * receives), so a last will still lands after the readings before it.
   * Needs a broker with shared subscriptions (Mosquitto, also for 3.1.1;
   * EMQX; HiveMQ; not aedes, which accepts `$share` and never delivers).
   *
   * Default: 2 when MQTT 5 is spoken and the broker did not say it lacks
   * shared subscriptions (one stock-Mosquitto session holds 66,535
   * unacknowledged messages at most, less than a burst a fleet can send
   * while the database commits, or while a spool's fsync stalls; two hold
   * twice that); otherwise 1, since an MQTT 3.1.1 broker cannot say whether
   * it delivers shared subscriptions. The price of 2: Mosquitto restores a
   * session after its own restart without its shared subscriptions, so what
   * devices publish before the ingestor has reconnected (250 ms) and
   * subscribed again is dropped by the broker; `connections: 1` has no such
   * gap and half the window.
   */
  readonly connections?: number
  /**
   * A durable local spool between the broker and the database: each message
   * is appended to a file in `dir` and acknowledged to the broker once it is
   * fsync'd (many messages per fsync), then drained in order through the
   * writer, and removed once committed. The database can then be away for
   * as long as the spool has room (`maxBytes`, default 1 GiB, and the disk's
   * free space); when it is full, acknowledgements are held again and the
   * broker's window and queue apply. Only with `delivery: 'at-least-once'`.
   * Default: none (writing to disk is the host's choice; `plantops-db
   * ingest` spools by default).
   */
  readonly spool?: SpoolOptions
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
  /**
   * `'at-least-once'` (default): PUBACK after commit. `'at-most-once'`: PUBACK
   * on receipt; what was buffered is lost on a crash.
   */
  readonly delivery?: 'at-least-once' | 'at-most-once'
  /** Payload decoder. Default: UTF-8 JSON. */
  readonly decode?: PayloadDecoder
  /** Larger payloads are dead-lettered as `oversize`. Default 256 KiB. */
  readonly maxPayloadBytes?: number
  /**
   * MQTT protocol version. Default 5, with a Receive Maximum of 65,535 so the
   * broker may send that many unacknowledged messages; a broker that refuses
   * protocol 5 is spoken to in 3.1.1, with one warning. `4` forces 3.1.1.
   */
  readonly protocolVersion?: 4 | 5
  /**
   * MQTT 5: how long the broker keeps this ingestor's session (its
   * subscriptions and unacknowledged messages) after a disconnect, in
   * seconds. Default one week, so an ingestor that is gone for good is
   * forgotten. (3.1.1 sessions live until the broker's own expiry.)
   */
  readonly sessionExpirySeconds?: number
  /**
   * PUBACKs are held until a message is durable; when some are held and
   * nothing new arrived for this long, the broker's window is probably full,
   * and the writer is told to write now instead of waiting `maxBatchAgeMs`.
   * Default 5 ms.
   */
  readonly idleFlushMs?: number
  /** Passed through to mqtt.js (credentials, TLS, keepalive…). */
  readonly mqtt?: IClientOptions
  /** A pino-compatible logger, or `false`. Default: the console. */
  readonly logger?: Logger | false
  /**
   * An OpenTelemetry `Meter` to report through: `stats()` as
   * `messaging.client.consumed.messages` and `plantops.mqtt.*` instruments,
   * read from `stats()` at collection. Give the writer one too. Default: none.
   */
  readonly meter?: MeterLike
}

const optionsSchema = z.strictObject({
  url: z.string().min(1),
  writer: z.custom<TelemetryWriter>(
    (v) => typeof v === 'object' && v !== null && typeof (v as TelemetryWriter).write === 'function',
    {
      message: 'must be a TelemetryWriter',
    },
  ),
  clientId: z.string().min(1).max(120).optional(),
  topicPrefix: z
    .string()
    .min(1)
    .regex(/^[^#+]+$/, { message: 'must not contain MQTT wildcards' })
    .default('plantops'),
  topics: z
    .custom<TopicLayout>((v) => typeof v === 'object' && v !== null && typeof (v as TopicLayout).route === 'function')
    .optional(),
  shareGroup: z
    .string()
    .regex(/^[^/#+]+$/, { message: 'must be one topic level without wildcards' })
    .optional(),
  connections: z.number().int().min(1).max(64).optional(),
  spool: z
    .custom<SpoolOptions>((v) => typeof v === 'object' && v !== null, { message: 'must be { dir, … }' })
    .optional(),
  autoProvision: z.boolean().default(false),
  delivery: z.enum(['at-least-once', 'at-most-once']).default('at-least-once'),
  decode: z.custom<PayloadDecoder>((v) => typeof v === 'function').optional(),
  maxPayloadBytes: z
    .number()
    .int()
    .min(64)
    .default(256 * 1024),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).optional(),
  sessionExpirySeconds: z
    .number()
    .int()
    .min(0)
    .max(0xffffffff)
    .default(7 * 24 * 3600),
  idleFlushMs: z.number().int().min(1).max(60_000).default(5),
  mqtt: z.custom<IClientOptions>((v) => typeof v === 'object' && v !== null).optional(),
  logger: loggerOption,
  meter: meterOption,
})

export type ResolvedIngestorOptions = Omit<z.output<typeof optionsSchema>, 'logger' | 'clientId'> & {
  logger: Logger
  clientId: string
}

export function resolveIngestorOptions(options: MqttIngestorOptions): ResolvedIngestorOptions {
  const parsed = validate(optionsSchema, options, 'MQTT ingestor options')
  return Object.freeze({
    ...parsed,
    logger: resolveLogger(parsed.logger),
    clientId: parsed.clientId ?? `plantops-ingest-${hostname()}`,
  })
}

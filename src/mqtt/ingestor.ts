import type { MqttClient } from 'mqtt'
import { randomBytes } from 'node:crypto'
import { BrokerConnection, isProtocolRefusal, type ConnectionSpec, type ConnectionStats } from './connection.js'
import { resolveIngestorOptions, type MqttIngestorOptions, type ResolvedIngestorOptions } from './options.js'
import { meterIngestor } from './metrics.js'
import { OrderBarrier } from './order-barrier.js'
import { createReceiver } from './receive.js'
import { markerTopic, prefixLayout, sharedFilters } from './topics.js'
import { ConfigurationError } from '../errors/errors.js'
import { Spool, type SpoolStats } from '../spool/spool.js'
import { sleep } from '../util/sleep.js'
import type { Delivery } from './receive.js'

export type { MqttIngestorOptions } from './options.js'

/**
 * Counters of an ingestor, from `ingestor.stats()`.
 *
 * @example
 * ```ts
 * const { received, deadLettered, heldAcks, connections } = ingestor.stats()
 * const windows = connections.map((c) => c.window) // e.g. [20] on a stock Mosquitto with MQTT 3.1.1
 * ```
 */
export interface IngestorStats {
  /** Messages read from the broker. */
  readonly received: number
  /**
   * Messages the ingestor itself dead-lettered (unroutable, oversize,
   * undecodable, mismatched, retained without a time).
   */
  readonly deadLettered: number
  /** Status messages applied to `devices.status`. */
  readonly statusUpdates: number
  /** PUBACKs waiting for their message to become durable, over all connections. */
  readonly heldAcks: number
  /** Whether every broker connection is up right now. */
  readonly connected: boolean
  /** The protocol spoken: 5, or 4 (3.1.1) when forced or when the broker refused 5. */
  readonly protocolVersion: 4 | 5
  /** Each broker connection, with the window the broker gives it. */
  readonly connections: readonly ConnectionStats[]
  /** The spool's levels and counters; `null` without a spool. */
  readonly spool: SpoolStats | null
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
  /** The first connection's mqtt.js client, for events and diagnostics; do not end it yourself, call `close()`. */
  readonly client: MqttClient
  /** Every connection's mqtt.js client, the first one first. */
  readonly clients: readonly MqttClient[]
  /** Counters since the ingestor started. */
  stats(): IngestorStats
  /**
   * Stops, waits until everything received is durable and acknowledged, then
   * disconnects. By default the broker keeps the session and its
   * subscriptions, and queues for it (up to its limit) until the ingestor
   * returns: right for a lone ingestor. `forgetSession: true` leaves for good:
   * it unsubscribes first, so in a share group the other members get every
   * new message at once, writes and acknowledges what the broker had already
   * sent, then ends the session. Right for a member of a share group on
   * SIGTERM (rolling restarts lose nothing), a test or a demo; wrong for a
   * lone ingestor that will restart, which would miss what is published
   * while it is away.
   */
  close(options?: { forgetSession?: boolean }): Promise<void>
}

/**
 * Client ids of the connections: the first is `clientId` itself, so a
 * one-connection ingestor keeps its session name.
 */
function connectionIds(clientId: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i === 0 ? clientId : `${clientId}-${i + 1}`))
}

/** The share group: the one given, or one of this ingestor's own when it has several connections. */
function shareGroupOf(settings: ResolvedIngestorOptions, connections: number): string | undefined {
  if (settings.shareGroup !== undefined) return settings.shareGroup
  return connections > 1 ? `plantops-${settings.clientId.replace(/[/#+]/g, '_')}` : undefined
}

/** The default: two connections where the broker can be trusted to share a stream between them (see `connections`). */
function connectionCount(settings: ResolvedIngestorOptions, first: BrokerConnection): number {
  if (settings.connections !== undefined) return settings.connections
  return first.stats().protocolVersion === 5 && !first.sharedSubscriptionsRefused ? 2 : 1
}

/**
 * Order markers for an ingestor whose connections split the stream: published
 * on the first connection, received on each; a marker of an earlier process
 * (queued in a persistent session) carries another nonce and is ignored.
 */
function orderMarkers(
  topic: string,
  connections: readonly BrokerConnection[],
  count: number,
  settings: ResolvedIngestorOptions,
) {
  const first = connections[0]!
  const nonce = randomBytes(6).toString('hex')
  let publishFailed = false
  const barrier = new OrderBarrier(
    count,
    (round) =>
      first.client.publish(topic, `${nonce}:${round}`, { qos: 1 }, (error) => {
        if (!error || publishFailed) return
        publishFailed = true
        settings.logger.warn({ err: error, topic }, 'the broker refused an order marker')
      }),
    settings.logger,
    topic,
    (index) => connections[index]?.client.connected === true,
  )
  const routeFor = (index: number) => ({
    topic,
    onMarker(payload: Buffer) {
      const [from, round] = payload.toString('utf8').split(':')
      if (from === nonce) barrier.received(index, Number(round))
    },
  })
  return { barrier, routeFor }
}

/** The first connection: MQTT 5 unless told otherwise, and 3.1.1 (with one warning) when the broker refuses 5. */
async function connectFirst(
  settings: ResolvedIngestorOptions,
  spec: (clientId: string, version: 4 | 5) => ConnectionSpec,
): Promise<BrokerConnection> {
  try {
    return await BrokerConnection.connect(spec(settings.clientId, settings.protocolVersion ?? 5))
  } catch (error) {
    if (settings.protocolVersion !== undefined || !isProtocolRefusal(error)) throw error
    settings.logger.warn(
      { url: settings.url },
      'the broker refused MQTT 5; speaking MQTT 3.1.1, where the broker alone sets how many ' +
        'unacknowledged messages it sends (see the README on broker windows)',
    )
    return BrokerConnection.connect(spec(settings.clientId, 4))
  }
}

/** How long `close()` waits for held PUBACKs to go out. */
const CLOSE_WAIT_MS = 5_000
/** When leaving for good, the broker has sent all it queued for us once nothing arrived for this long. */
const LEAVE_QUIET_MS = 100

/**
 * Connects to an MQTT broker, subscribes to the fleet's topics at QoS 1 with a
 * persistent session, and feeds every message to the telemetry writer.
 *
 * - **The topic is the identity**: the device id comes from the topic; a payload naming another device is
 *   dead-lettered (`device_mismatch`), as are undecodable (`decode_failed`), oversize and unroutable
 *   (`unknown_topic`: anything under the prefix that is not `<prefix>/<id>/telemetry|status`) messages.
 * - **At-least-once** (default): a message is acknowledged only once it is committed or dead-lettered, so
 *   after a crash the broker redelivers what was not durable and deduplication absorbs the repeats.
 * - **MQTT 5** by default, asking the broker for a window of 65,535 unacknowledged messages; falls back to
 *   3.1.1 (with one warning) when the broker refuses 5.
 * - **Two connections** by default on MQTT 5 (one on 3.1.1), in one share group, so the broker's windows
 *   and queues add up (see `connections`).
 * - Status messages (`online` / `offline`, including a last will) go through the writer, behind every
 *   reading the broker sent before them, whichever connection those came on.
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
  const settings = resolveIngestorOptions(options)
  if (settings.spool && settings.delivery !== 'at-least-once') {
    throw new ConfigurationError("a spool acknowledges what is on disk: it goes with delivery 'at-least-once'")
  }
  const spool = settings.spool ? await Spool.open(settings.spool, settings.logger) : undefined
  try {
    return await startIngestor(settings, spool)
  } catch (error) {
    await spool?.close()
    throw error
  }
}

/**
 * A message into the spool: acknowledged once fsync'd. A status waits for its
 * order marker first when connections split the stream (see `OrderBarrier`).
 */
function spoolIngress(spool: Spool, isStatus: (topic: string) => boolean, barrier: () => OrderBarrier | undefined) {
  return (delivery: Delivery) => {
    const record = { ...delivery, receivedAtMs: Date.now() }
    const earlier = barrier() && isStatus(delivery.topic) ? barrier()!.afterEarlierMessages() : undefined
    const durable = earlier ? earlier.then(() => spool.append(record)) : spool.append(record)
    return Promise.resolve({ durable })
  }
}

async function startIngestor(settings: ResolvedIngestorOptions, spool: Spool | undefined): Promise<MqttIngestor> {
  const { writer, logger } = settings
  const layout = settings.topics ?? prefixLayout(settings.topicPrefix)
  const counters = { deadLettered: 0, statusUpdates: 0 }
  let closing = false
  let barrier: OrderBarrier | undefined
  const receive = createReceiver({
    writer,
    layout,
    decode: settings.decode,
    maxPayloadBytes: settings.maxPayloadBytes,
    autoProvision: settings.autoProvision,
    onDeadLetter: () => (counters.deadLettered += 1),
    onStatusApplied: () => (counters.statusUpdates += 1),
    // Through a spool, statuses took their place in order before they were spooled.
    afterEarlierMessages: () => (spool ? undefined : barrier?.afterEarlierMessages()),
  })
  spool?.startDrain((record) => receive({ ...record, receivedAt: new Date(record.receivedAtMs) }))
  const ingress = spool
    ? spoolIngress(
        spool,
        (topic) => layout.route(topic)?.channel === 'status',
        () => barrier,
      )
    : receive
  const spec = (clientId: string, protocolVersion: 4 | 5): ConnectionSpec => ({
    url: settings.url,
    clientId,
    protocolVersion,
    sessionExpirySeconds: settings.sessionExpirySeconds,
    atLeastOnce: settings.delivery === 'at-least-once',
    idleFlushMs: settings.idleFlushMs,
    mqtt: settings.mqtt,
    logger,
    receive: ingress,
    // Through a spool, acknowledgements wait for an fsync, not a commit: hurrying the writer would only
    // put its WAL fsyncs in the way of the spool's.
    flush: () => void (spool ? undefined : writer.flush()),
    closing: () => closing,
  })

  const first = await connectFirst(settings, spec)
  const { protocolVersion } = first.stats()
  const count = connectionCount(settings, first)
  const filters = sharedFilters(layout.filters, shareGroupOf(settings, count))
  const connections = [first]
  const markers = count > 1 ? orderMarkers(markerTopic(settings.clientId), connections, count, settings) : undefined
  barrier = markers?.barrier
  try {
    await first.subscribe(filters, markers?.routeFor(0))
    for (const [index, id] of connectionIds(settings.clientId, count).entries()) {
      if (index === 0) continue
      const connection = await BrokerConnection.connect(spec(id, protocolVersion))
      connections.push(connection)
      await connection.subscribe(filters, markers?.routeFor(index))
    }
  } catch (error) {
    await Promise.all(connections.map((c) => c.end(false)))
    throw error
  }
  logger.info(
    { url: settings.url, delivery: settings.delivery, protocolVersion, connections: connections.length, filters },
    `MQTT ingestor subscribed (${settings.delivery}, MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}, ` +
      `${connections.length} connection${connections.length > 1 ? 's' : ''}` +
      `${spool ? `, spooling to ${spool.options.dir}` : ''})`,
  )

  const heldAcks = () => connections.reduce((sum, c) => sum + c.heldAcks, 0)
  const stats = (): IngestorStats =>
    Object.freeze({
      ...counters,
      received: connections.reduce((sum, c) => sum + c.received, 0),
      heldAcks: heldAcks(),
      connected: connections.every((c) => c.client.connected),
      protocolVersion,
      connections: Object.freeze(connections.map((c) => c.stats())),
      spool: spool?.stats() ?? null,
    })
  if (settings.meter) meterIngestor(settings.meter, stats, shareGroupOf(settings, count))
  return {
    client: first.client,
    clients: Object.freeze(connections.map((c) => c.client)),
    stats,
    async close(closeOptions = {}) {
      const forget = closeOptions.forgetSession === true
      // Statuses waiting for their order marker are written now, in the order they arrived.
      barrier?.releaseAll()
      // Leaving for good: unsubscribe first, so a share group's other members take the whole stream
      // while this one writes what the broker had already sent or queued for it.
      if (forget) await Promise.all(connections.map((c) => c.unsubscribe()))
      else closing = true
      const settled = () => heldAcks() === 0 && (!forget || connections.every((c) => c.quietForMs >= LEAVE_QUIET_MS))
      for (let waited = 0; !settled() && waited < CLOSE_WAIT_MS; waited += 10) {
        await writer.flush()
        if (!settled()) await sleep(10)
      }
      closing = true
      await Promise.all(connections.map((c) => c.end(forget)))
      await spool?.close(() => writer.flush())
    },
  }
}

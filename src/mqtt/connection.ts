import mqtt, {
  type IClientOptions,
  type IClientSubscribeOptions,
  type IConnackPacket,
  type ISubscriptionMap,
  type MqttClient,
} from 'mqtt'
import { ConfigurationError } from '../errors/errors.js'
import { backoffDelayMs, type BackoffPolicy } from '../util/backoff.js'
import type { Logger } from '../util/logger.js'
import { HeldAcks } from './held-acks.js'
import type { Delivery } from './receive.js'
import { WindowGauge } from './window.js'

/** How soon a lost connection is tried again (mqtt.js's default is 1 s, devices' often 5 to 10 s). */
const RECONNECT_MS = 250

/**
 * Renewing a connection to get back unacknowledged messages: at most once a
 * second, doubling while nothing else gets through.
 */
const RENEWAL_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 1_000, maxMs: 30_000, jitter: 'none' })

/**
 * One broker connection of an ingestor, from `ingestor.stats().connections`.
 *
 * @example
 * ```ts
 * for (const c of ingestor.stats().connections) console.log(c.clientId, c.protocolVersion, c.window)
 * ```
 */
export interface ConnectionStats {
  readonly clientId: string
  /** 5 for MQTT 5, 4 for MQTT 3.1.1. */
  readonly protocolVersion: 4 | 5
  readonly connected: boolean
  /** PUBACKs waiting for their message to become durable. */
  readonly heldAcks: number
  /**
   * The window the broker gave this connection, as measured: the most
   * PUBACKs held when the inflow stalled (nothing new for `idleFlushMs`);
   * `null` before the first stall.
   */
  readonly window: number | null
  /**
   * Whether the inflow stopped at one height three times in a row: a cap the
   * broker sets, not a pause of the publishers.
   */
  readonly windowCapped: boolean
  /** Times the connection was renewed so the broker would send again messages that could not be made durable. */
  readonly renewals: number
}

/** What a connection needs from its ingestor. */
export interface ConnectionSpec {
  readonly url: string
  readonly clientId: string
  readonly protocolVersion: 4 | 5
  readonly sessionExpirySeconds: number
  readonly atLeastOnce: boolean
  readonly idleFlushMs: number
  readonly mqtt?: IClientOptions | undefined
  readonly logger: Logger
  /** Hands a message on (to the writer, or the spool); resolves once accepted, with when it is durable. */
  receive(delivery: Delivery): Promise<{ readonly durable: Promise<unknown> }>
  /** Asks the writer to write what it holds now. */
  flush(): void
  /** Whether the ingestor is closing: messages are then left unacknowledged for the next session. */
  closing(): boolean
}

/** The ingestor's own order markers on one connection: a topic of their own, and who hears of each. */
export interface MarkerRoute {
  readonly topic: string
  /** Called with the payload of each marker this connection receives. */
  onMarker(payload: Buffer): void
}

/** A broker that answered CONNECT by refusing the protocol version (3.1.1's return code 1, MQTT 5's reason 0x84). */
export function isProtocolRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 1 || code === 0x84
}

/**
 * One MQTT client subscribed at QoS 1 with a persistent session, feeding the
 * writer and holding each PUBACK until its message is durable. It also
 * watches the flow: when PUBACKs are held and nothing arrives for
 * `idleFlushMs`, the broker's window is probably full and waiting for
 * `maxBatchAgeMs` cannot grow the batch, so it asks the writer to write now.
 */
export class BrokerConnection {
  readonly client: MqttClient
  readonly #spec: ConnectionSpec
  readonly #acks: HeldAcks | undefined
  /** What the broker answered to the first CONNECT. */
  #connack: IConnackPacket | undefined
  #filters: readonly string[] = []
  #marker: MarkerRoute | undefined
  #received = 0
  #lastMessageAt = 0
  #idleTimer: NodeJS.Timeout | undefined
  readonly #window: WindowGauge
  #renewTimer: NodeJS.Timeout | undefined
  #renewals = 0
  #fruitlessRenewals = 0
  #acknowledgedAtRenewal = 0

  private constructor(spec: ConnectionSpec) {
    this.#spec = spec
    this.#window = new WindowGauge(spec.logger, spec.clientId, spec.protocolVersion)
    this.client = mqtt.connect(spec.url, {
      clientId: spec.clientId,
      clean: false,
      protocolVersion: spec.protocolVersion,
      reconnectPeriod: 0, // until the first CONNACK: a refusal must reach connect(), not be retried
      connectTimeout: 10_000,
      ...(spec.protocolVersion === 5 && {
        properties: { sessionExpiryInterval: spec.sessionExpirySeconds, receiveMaximum: 65_535 },
      }),
      ...spec.mqtt,
    })
    this.#acks = spec.atLeastOnce ? new HeldAcks(this.client, () => this.#scheduleRenewal()) : undefined
    this.client.handleMessage = (packet, callback) => this.#handle(packet, callback)
    this.client.on('close', () => this.#acks?.reset())
  }

  /** Connects; rejects with the broker's refusal (see `isProtocolRefusal`). Subscribe next. */
  static async connect(spec: ConnectionSpec): Promise<BrokerConnection> {
    const connection = new BrokerConnection(spec)
    const { client } = connection
    try {
      connection.#connack = await new Promise<IConnackPacket>((resolve, reject) => {
        client.once('connect', resolve)
        client.once('error', reject)
      })
    } catch (error) {
      await client.endAsync(true)
      throw error
    }
    // Back before the devices are: after a broker restart they resend what they held, all at once, and
    // while this session is away the broker queues only so much for it (Mosquitto: 1,000) and drops the rest.
    client.options.reconnectPeriod = spec.mqtt?.reconnectPeriod ?? RECONNECT_MS
    client.on('error', (error) =>
      spec.logger.warn({ err: error, clientId: spec.clientId }, 'MQTT connection error; reconnecting'),
    )
    return connection
  }

  /** Whether the broker said in CONNACK that it has no shared subscriptions (only MQTT 5 brokers can say so). */
  get sharedSubscriptionsRefused(): boolean {
    return this.#connack?.properties?.sharedSubscriptionAvailable === false
  }

  /**
   * Subscribes at QoS 1 (MQTT 5: retained messages only for a subscription
   * the session did not have). With `marker`, also to the ingestor's order
   * markers, unshared, first: they travel in the same queue as the messages.
   */
  async subscribe(filters: readonly string[], marker?: MarkerRoute): Promise<void> {
    // MQTT 5 brokers say in CONNACK when they have no shared subscriptions; 3.1.1 cannot tell.
    if (filters.some((filter) => filter.startsWith('$share/')) && this.sharedSubscriptionsRefused) {
      throw new ConfigurationError(
        'the broker does not support shared subscriptions ($share/…): use one connection and no shareGroup',
      )
    }
    this.#marker = marker
    this.#filters = marker ? [marker.topic, ...filters] : filters
    await this.#subscribe()
    if (filters.some((filter) => filter.startsWith('$share/'))) {
      // Mosquitto 2.0 brings a persistent session back after its own restart without its shared
      // subscriptions, yet says the session is present (so mqtt.js does not subscribe again): every
      // message would go elsewhere or nowhere. Subscribing again is harmless where they survived.
      this.client.on('connect', () => void this.#subscribeAgain())
    }
  }

  /**
   * Subscribes again after a reconnect, retrying (with backoff) until the
   * broker grants it or the connection goes: a failure is never left as a
   * logged error with the connection up and subscribed to nothing. A
   * connection that went is subscribed again on its next `connect`.
   */
  async #subscribeAgain(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#subscribe(true)
        if (attempt > 1) this.#spec.logger.info({ clientId: this.#spec.clientId, attempt }, 'subscribed again')
        return
      } catch (error) {
        if (this.#spec.closing() || !this.client.connected) return
        const retryInMs = backoffDelayMs(RENEWAL_BACKOFF, attempt)
        this.#spec.logger.warn(
          { err: error, clientId: this.#spec.clientId, attempt, retryInMs },
          'could not subscribe again after reconnecting; retrying',
        )
        await new Promise((resolve) => setTimeout(resolve, retryInMs))
      }
    }
  }

  /** `again`: send SUBSCRIBE even for filters mqtt.js believes the session still has. */
  async #subscribe(again = false): Promise<void> {
    const options: IClientSubscribeOptions = { qos: 1, ...(this.#spec.protocolVersion === 5 && { rh: 1 }) }
    const map = Object.fromEntries(this.#filters.map((filter) => [filter, options])) as ISubscriptionMap
    if (again) map.resubscribe = true
    const granted = await this.client.subscribeAsync(map)
    const refused = granted.filter((g) => g.qos > 2)
    if (refused.length > 0)
      throw new ConfigurationError(
        `the broker refused the subscription to ${refused.map((g) => `"${g.topic}" (code ${g.qos})`).join(', ')}`,
      )
  }

  stats(): ConnectionStats {
    return Object.freeze({
      clientId: this.#spec.clientId,
      protocolVersion: this.#spec.protocolVersion,
      connected: this.client.connected,
      heldAcks: this.#acks?.size ?? 0,
      window: this.#window.widest,
      windowCapped: this.#window.cap !== null,
      renewals: this.#renewals,
    })
  }

  get received(): number {
    return this.#received
  }

  get heldAcks(): number {
    return this.#acks?.size ?? 0
  }

  /** Milliseconds (performance clock) since the last message arrived. */
  get quietForMs(): number {
    return performance.now() - this.#lastMessageAt
  }

  /**
   * Leaves the subscriptions, so the broker routes new messages to the other
   * members of a share group; what it already queued for this session still
   * arrives and is written as usual.
   */
  async unsubscribe(): Promise<void> {
    if (this.client.connected && this.#filters.length > 0) await this.client.unsubscribeAsync([...this.#filters])
  }

  /**
   * Disconnects. With `forgetSession`, the broker also drops the session
   * (its subscriptions and queue). MQTT 5 says so in DISCONNECT; but a
   * DISCONNECT can be lost with its connection, so a clean connection of the
   * same id, opened and closed at once, makes sure on every protocol.
   */
  async end(forgetSession: boolean): Promise<void> {
    clearTimeout(this.#idleTimer)
    clearTimeout(this.#renewTimer)
    const v5 = this.#spec.protocolVersion === 5
    if (!forgetSession) return void (await this.client.endAsync())
    await this.client.endAsync(false, v5 && this.client.connected ? { properties: { sessionExpiryInterval: 0 } } : {})
    const cleaner = await mqtt.connectAsync(this.#spec.url, {
      ...this.#spec.mqtt,
      clientId: this.#spec.clientId,
      clean: true,
      protocolVersion: this.#spec.protocolVersion,
      reconnectPeriod: 0,
      ...(v5 && { properties: { sessionExpiryInterval: 0 } }),
    })
    await cleaner.endAsync()
  }

  #handle(packet: mqtt.IPublishPacket, callback: (error?: Error) => void): void {
    const acks = this.#acks
    const acknowledged = acks !== undefined && packet.qos > 0 && packet.messageId !== undefined
    const generation = acks?.generation ?? 0
    if (this.#marker && packet.topic === this.#marker.topic) {
      // Ours, carrying no data: acknowledged in turn with the messages before it.
      if (acknowledged) acks.holdOurs(packet.messageId!, generation)
      this.#marker.onMarker(Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload))
      callback()
      return
    }
    this.#received += 1
    this.#noteArrival()
    const never = () => {
      // Never acknowledged: the broker sends it again to this session, or to another member of the group.
      if (acknowledged) acks.hold(packet.messageId!, rejected(), generation)
      callback()
    }
    if (this.#spec.closing()) {
      never()
      return
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    this.#spec.receive({ topic: packet.topic, payload, retained: packet.retain === true }).then(
      (receipt) => {
        if (acknowledged) acks.hold(packet.messageId!, receipt.durable, generation)
        callback()
        // The broker sends nothing more until we acknowledge: no point waiting for the idle interval.
        if (acknowledged && acks.size === this.#window.cap) this.#spec.flush()
      },
      (error: unknown) => {
        this.#spec.logger.error({ err: error, topic: packet.topic }, 'message not accepted; it will be delivered again')
        never()
      },
    )
  }

  #noteArrival(): void {
    this.#lastMessageAt = performance.now()
    this.#idleTimer ??= setTimeout(() => this.#onIdle(), this.#spec.idleFlushMs)
  }

  #onIdle(): void {
    this.#idleTimer = undefined
    const quietFor = performance.now() - this.#lastMessageAt
    if (quietFor < this.#spec.idleFlushMs) {
      this.#idleTimer = setTimeout(() => this.#onIdle(), Math.ceil(this.#spec.idleFlushMs - quietFor))
      return
    }
    // A timer can fire late because the event loop was busy, with messages waiting unread in the
    // socket: only after one more turn, whose I/O phase reads them, is a quiet inflow a real stall.
    const before = this.#received
    setImmediate(() => {
      const held = this.heldAcks
      if (this.#received !== before || held === 0) return
      this.#window.noteStall(held)
      this.#spec.flush()
    })
  }

  /**
   * A message that cannot be made durable keeps one of the broker's in-flight
   * slots until this session reconnects, and the broker sends it again. So
   * renew the connection, at most once a second (longer while renewals bring
   * nothing through), instead of letting such messages fill the window.
   */
  #scheduleRenewal(): void {
    if (this.#renewTimer !== undefined || this.#spec.closing()) return
    const delay = backoffDelayMs(RENEWAL_BACKOFF, this.#fruitlessRenewals + 1)
    this.#renewTimer = setTimeout(() => {
      this.#renewTimer = undefined
      if (this.#spec.closing() || !this.client.connected) return
      const acknowledged = this.#acks?.acknowledged ?? 0
      this.#fruitlessRenewals =
        acknowledged > this.#acknowledgedAtRenewal ? 0 : Math.min(this.#fruitlessRenewals + 1, 5)
      this.#acknowledgedAtRenewal = acknowledged
      this.#renewals += 1
      this.#spec.logger.warn(
        { clientId: this.#spec.clientId, delayMs: delay },
        'messages could not be made durable; reconnecting so the broker delivers them again',
      )
      this.client.stream.destroy()
    }, delay)
  }
}

function rejected(): Promise<never> {
  const never = Promise.reject(new Error('not durable'))
  never.catch(() => {})
  return never
}

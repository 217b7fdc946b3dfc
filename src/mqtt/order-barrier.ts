import type { Logger } from '../util/logger.js'

/** While statuses wait, a round that has not come back on every connection is published again this often. */
const REPUBLISH_MS = 1_000
/**
 * A status waits at most this long for its round: a connection that is down,
 * or a marker topic the broker's ACL refuses, must not hold statuses forever.
 */
const GIVE_UP_MS = 15_000

interface Waiter {
  readonly round: number
  readonly since: number
  readonly resolve: () => void
}

/**
 * Keeps a device's status behind the readings the broker sent before it,
 * when an ingestor's connections split one stream.
 *
 * A share group deals messages out to the connections in turn, so a last
 * will that arrives on one connection can overtake a reading still unread on
 * another. The broker keeps each connection's messages in order, though. So
 * when a status arrives, the ingestor publishes a marker (a round number) to
 * a topic every connection subscribes to without sharing; once the round is
 * back on every connection, everything the broker sent before the status has
 * arrived, and the status is handed to the writer behind it. A round costs
 * one small message per connection, and one round serves every status that
 * arrived before it was published.
 */
export class OrderBarrier {
  readonly #publish: (round: number) => void
  readonly #isConnected: (connection: number) => boolean
  readonly #logger: Logger
  /** The highest round each connection has received. */
  readonly #seen: number[]
  #published = 0
  #scheduled = false
  #waiters: Waiter[] = []
  #timer: NodeJS.Timeout | undefined
  #progressAt = 0
  #warned = false
  /** Markers never came back on some connection: statuses no longer wait for them. */
  #off = false

  constructor(
    connections: number,
    publish: (round: number) => void,
    logger: Logger,
    readonly topic: string,
    /** Whether a connection is up now: only one that is up and never sees a marker shows a refused topic. */
    isConnected: (connection: number) => boolean = () => true,
  ) {
    this.#seen = new Array<number>(connections).fill(0)
    this.#publish = publish
    this.#isConnected = isConnected
    this.#logger = logger
  }

  /**
   * Resolves once every message the broker sent before now has arrived on
   * every connection; `undefined` (nothing to wait for) once the markers are
   * known not to come back.
   */
  afterEarlierMessages(): Promise<void> | undefined {
    if (this.#off) return undefined
    return new Promise((resolve) => {
      this.#waiters.push({ round: this.#published + 1, since: performance.now(), resolve })
      this.#schedule()
    })
  }

  /** A connection received the marker of `round`. */
  received(connection: number, round: number): void {
    if (!(round > (this.#seen[connection] ?? Number.POSITIVE_INFINITY))) return
    this.#seen[connection] = round
    this.#progressAt = performance.now()
    const complete = Math.min(...this.#seen)
    this.#release((waiter) => waiter.round <= complete)
  }

  /** Closing: whatever waits goes to the writer now. */
  releaseAll(): void {
    this.#release(() => true)
  }

  get waiting(): number {
    return this.#waiters.length
  }

  /** One publish serves every status that arrives before it goes out. */
  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#published += 1
      this.#publish(this.#published)
      this.#progressAt ||= performance.now()
      this.#timer ??= setInterval(() => this.#check(), REPUBLISH_MS)
    })
  }

  /** A marker can be dropped (a full queue) or refused (an ACL): publish again, and never wait for ever. */
  #check(): void {
    const now = performance.now()
    const stale = (waiter: Waiter) => now - waiter.since >= GIVE_UP_MS
    if (this.#waiters.some(stale)) {
      // Never one marker on a connection that is up: the path itself is closed (Mosquitto grants a subscription
      // its ACL forbids, then delivers nothing), so waiting again would only delay every status by GIVE_UP_MS.
      // A connection that is down has simply not had its chance yet.
      if (this.#seen.some((round, connection) => round === 0 && this.#isConnected(connection))) this.#giveUpForGood()
      else this.#warnOnce()
      this.#release(this.#off ? () => true : stale)
    }
    if (this.#waiters.length > 0 && now - this.#progressAt >= REPUBLISH_MS) this.#schedule()
  }

  #warnOnce(): void {
    if (this.#warned) return
    this.#warned = true
    this.#logger.warn(
      { topic: this.topic, waitedMs: GIVE_UP_MS },
      'an order marker did not come back on every connection within 15 s (a connection is down, or the ' +
        'broker’s queue for it is full): statuses waiting for it are applied without waiting for readings ' +
        'still on their way',
    )
  }

  #giveUpForGood(): void {
    this.#off = true
    this.#logger.warn(
      { topic: this.topic, waitedMs: GIVE_UP_MS },
      `the ingestor’s order markers on "${this.topic}" never came back on every connection: the broker probably ` +
        'refuses that topic (an ACL). Statuses are applied as they arrive from now on, and one arriving on one ' +
        'connection may overtake a reading on another. Let the ingestor read and write that topic, or use ' +
        'connections: 1',
    )
  }

  #release(which: (waiter: Waiter) => boolean): void {
    const keep: Waiter[] = []
    for (const waiter of this.#waiters) {
      if (which(waiter)) waiter.resolve()
      else keep.push(waiter)
    }
    this.#waiters = keep
    if (keep.length === 0) {
      clearInterval(this.#timer)
      this.#timer = undefined
      this.#progressAt = 0
    }
  }
}

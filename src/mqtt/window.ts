import type { Logger } from '../util/logger.js'

/** A window is a cap of the broker's once the inflow stopped at the same height this many times in a row. */
const STALLS_TO_KNOW_A_CAP = 3
/** Fewer held than this at a stall says more about the publishers than about the broker. */
const SMALLEST_WINDOW = 10
/** A window below this, on a broker that queues only so much behind it, deserves a warning. */
const SMALL_WINDOW = 1_000

/**
 * What raises a broker's per-connection window, and the queue behind it,
 * for the brokers our users run. Used in the ingestor's warning and kept in
 * step with the README's delivery section.
 */
export function brokerWindowAdvice(protocolVersion: 4 | 5): string {
  const mosquitto =
    protocolVersion === 4
      ? 'Mosquitto: max_inflight_messages (default 20, for 3.1.1 clients; MQTT 5 clients get their Receive Maximum) ' +
        'and max_queued_messages (default 1000)'
      : 'Mosquitto: max_queued_messages (default 1000)'
  return [
    `Raise the broker's limits: ${mosquitto}`,
    'EMQX: mqtt.max_inflight (default 32) and mqtt.max_mqueue_len (default 1000)',
    'HiveMQ: its in-flight window (50) is fixed; raise <queued-messages><max-queue-size> (default 1000)',
    'or give the ingestor more connections (option connections, with a broker that supports shared subscriptions).',
  ].join('; ')
}

/**
 * The window a broker gives one connection, as measured: the PUBACKs held
 * each time the inflow stalled. Three stalls in a row at one height are a
 * cap the broker sets (not a pause of the publishers); a small cap is worth
 * one warning naming the setting that raises it.
 */
export class WindowGauge {
  readonly #logger: Logger
  readonly #clientId: string
  readonly #protocolVersion: 4 | 5
  #widest = 0
  readonly #recent: number[] = []
  #cap: number | null = null
  #warned = false

  constructor(logger: Logger, clientId: string, protocolVersion: 4 | 5) {
    this.#logger = logger
    this.#clientId = clientId
    this.#protocolVersion = protocolVersion
  }

  /** The most PUBACKs held at any stall; `null` before the first. */
  get widest(): number | null {
    return this.#widest > 0 ? this.#widest : null
  }

  /** The height the inflow keeps stopping at, once it is known to be the broker's cap. */
  get cap(): number | null {
    return this.#cap
  }

  noteStall(held: number): void {
    this.#widest = Math.max(this.#widest, held)
    this.#recent.push(held)
    if (this.#recent.length > STALLS_TO_KNOW_A_CAP) this.#recent.shift()
    this.#cap = capOf(this.#recent)
    if (this.#cap === null || this.#cap >= SMALL_WINDOW || this.#warned) return
    this.#warned = true
    this.#logger.warn(
      { clientId: this.#clientId, window: this.#cap, protocolVersion: this.#protocolVersion },
      `the broker lets this connection hold only ${this.#cap} unacknowledged messages; ` +
        `behind them it queues a fixed number and then drops. ${brokerWindowAdvice(this.#protocolVersion)}`,
    )
  }
}

/** The latest three stalls at one height, and not a tiny one. */
function capOf(recent: readonly number[]): number | null {
  const latest = recent.slice(-STALLS_TO_KNOW_A_CAP)
  const height = latest[0]!
  return latest.length === STALLS_TO_KNOW_A_CAP && height >= SMALLEST_WINDOW && latest.every((h) => h === height)
    ? height
    : null
}

import type { MqttClient } from 'mqtt'
import { ConfigurationError } from '../errors/errors.js'

type SendPacket = (
  packet: { cmd: string; messageId?: number },
  cb?: (error?: Error) => void,
  ...rest: unknown[]
) => void
type Held = { ready: boolean; dead: boolean; generation: number; ours: boolean; send: () => void }
/** A PUBACK for a message of a connection that is gone: never sent on the next one. */
const STALE = Symbol('stale')

/**
 * Holds each QoS 1 PUBACK until its message is durable, while letting mqtt.js
 * read the next message at once.
 *
 * mqtt.js sends a PUBACK when `handleMessage` calls back, and reads nothing
 * more until then: calling back only after the commit would mean one message
 * per commit. Instead `handleMessage` calls back as soon as the writer has
 * accepted the message, and this gate intercepts the PUBACK mqtt.js then
 * sends (through its `_sendPacket`, an internal: checked at startup, and the
 * at-least-once tests fail if its behaviour changes), releasing PUBACKs in
 * the order the messages arrived (MQTT 3.1.1 §4.6) once each is durable.
 * After a reconnect, PUBACKs for the old connection are dropped: the broker
 * redelivers those messages and the writer's deduplication absorbs them.
 * A message that will never be durable (its write was refused, the writer
 * gave up) is never acknowledged; `onDead` hears of it, since it occupies
 * one of the broker's in-flight slots until the connection is renewed.
 */
export class HeldAcks {
  readonly #pending = new Map<number, Promise<unknown> | typeof STALE>()
  /** PUBACKs in arrival order; `#head` is the first not yet released (shift() would be O(n) per release). */
  #queue: Held[] = []
  #head = 0
  #generation = 0
  /** Ids, then queued PUBACKs, of the ingestor's own messages (order markers): held in turn, never counted. */
  readonly #oursPending = new Set<number>()
  #oursQueued = 0
  /** PUBACKs sent since the start. */
  acknowledged = 0

  readonly #onDead: () => void

  constructor(client: MqttClient, onDead: () => void = () => {}) {
    this.#onDead = onDead
    const internals = client as unknown as { _sendPacket?: SendPacket }
    const original = internals._sendPacket
    if (typeof original !== 'function') {
      throw new ConfigurationError(
        'this mqtt.js version has no _sendPacket, so PUBACKs cannot be held until commit; ' +
          "use delivery: 'at-most-once' or mqtt@5",
      )
    }
    internals._sendPacket = (packet, cb, ...rest) => {
      const durable =
        packet.cmd === 'puback' && packet.messageId !== undefined ? this.#pending.get(packet.messageId) : undefined
      if (durable === undefined) return original.call(client, packet, cb, ...rest)
      this.#pending.delete(packet.messageId!)
      const ours = this.#oursPending.delete(packet.messageId!)
      if (durable === STALE) return cb?.()
      const held: Held = {
        ready: false,
        dead: false,
        generation: this.#generation,
        ours,
        send: () => original.call(client, packet, undefined, ...rest),
      }
      if (ours) this.#oursQueued += 1
      this.#queue.push(held)
      durable.then(
        () => {
          held.ready = true
          this.#release()
        },
        () => {
          held.dead = true // never acknowledged: the broker redelivers it
          this.#release()
          if (held.generation === this.#generation) this.#onDead()
        },
      )
      cb?.() // mqtt.js may read the next message now
    }
  }

  /** The connection a message arrived on, to pass back to `hold`. */
  get generation(): number {
    return this.#generation
  }

  /**
   * Registers the durability of a message before mqtt.js tries to acknowledge
   * it. A message of an earlier connection (`generation`) is never
   * acknowledged on this one: its id may name another message by now.
   */
  hold(messageId: number, durable: Promise<unknown>, generation = this.#generation): void {
    this.#pending.set(messageId, generation === this.#generation ? durable : STALE)
  }

  /**
   * The ingestor's own message (an order marker): acknowledged in turn with
   * the messages before it, but not counted in `size`, which is about data.
   */
  holdOurs(messageId: number, generation = this.#generation): void {
    this.hold(messageId, Promise.resolve(), generation)
    if (generation === this.#generation) this.#oursPending.add(messageId)
  }

  /** The connection is gone: PUBACKs still held belong to it and must not reach the next one. */
  reset(): void {
    this.#generation += 1
    this.#pending.clear()
    this.#oursPending.clear()
    this.#oursQueued = 0
    this.#queue = []
    this.#head = 0
  }

  /** PUBACKs of data messages still held. */
  get size(): number {
    return this.#queue.length - this.#head - this.#oursQueued + this.#pending.size - this.#oursPending.size
  }

  #release(): void {
    while (this.#head < this.#queue.length && (this.#queue[this.#head]!.ready || this.#queue[this.#head]!.dead)) {
      const held = this.#queue[this.#head]!
      this.#head += 1
      if (held.ours) this.#oursQueued -= 1
      if (held.ready && held.generation === this.#generation) {
        held.send()
        this.acknowledged += 1
      }
    }
    if (this.#head > 1_024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }
}

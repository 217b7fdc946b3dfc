/**
 * Why the writer dead-lettered a packet (or one of its readings):
 *
 * - `schema`: not a sensor packet (shape, types, device id);
 * - `non_finite`: a metric is NaN or ±Infinity;
 * - `implausible`: a metric is outside `METRIC_RANGES`;
 * - `time_skew`: the reading's time is too far in the future or the past;
 * - `unknown_device` / `decommissioned_device`: no such device, or a retired one;
 * - `database_refused`: PostgreSQL refused the row for good (it is isolated, the rest of the batch is written);
 * - any other string an upstream source gives to `deadLetter()` (the MQTT adapter uses `decode_failed`,
 *   `device_mismatch`, `oversize`).
 *
 * @example
 * ```ts
 * import type { RejectReason } from 'plantops-db'
 * const reason: RejectReason = 'time_skew'
 * ```
 */
export type RejectReason =
  | 'schema'
  | 'non_finite'
  | 'implausible'
  | 'time_skew'
  | 'unknown_device'
  | 'decommissioned_device'
  | 'database_refused'
  | 'duplicate_reading'
  | (string & {})

/**
 * What became of one packet, once it is durable: how many of its readings
 * were written, were already stored (duplicates), or were dead-lettered.
 *
 * @example
 * ```ts
 * const receipt = await writer.write(packet)
 * const outcome: WriteOutcome = await receipt.durable
 * if (outcome.status === 'rejected') console.warn(outcome.reasons)
 * ```
 */
export interface WriteOutcome {
  /** `written` (all new), `duplicate` (all already stored), `rejected` (all dead-lettered), or `partial`. */
  readonly status: 'written' | 'duplicate' | 'rejected' | 'partial'
  readonly written: number
  readonly duplicates: number
  readonly rejected: number
  readonly reasons: readonly RejectReason[]
}

/**
 * The writer's answer to `write()`: the packet is in the buffer (that is when
 * `write()` resolves); `durable` resolves once it is committed or
 * dead-lettered, never before.
 *
 * @example
 * ```ts
 * const receipt: WriteReceipt = await writer.write(packet) // may wait while the buffer is full
 * receipt.durable.then(() => acknowledgeUpstream())
 * ```
 */
export interface WriteReceipt {
  readonly durable: Promise<WriteOutcome>
}

const NO_REASONS: readonly RejectReason[] = Object.freeze([])

/**
 * Settles a packet once each of its entries has an outcome. It is also the
 * packet's receipt: `durable` and the outcome are created only when someone
 * asks for them, so a caller that does not wait for durability costs no
 * promise and no outcome object per packet.
 */
export class PacketTracker implements WriteReceipt {
  #pending: number
  #written = 0
  #duplicates = 0
  #rejected = 0
  #reasons: RejectReason[] | undefined
  #done = false
  #outcome: WriteOutcome | undefined
  #failure: Error | undefined
  #durable: Promise<WriteOutcome> | undefined
  #resolve: ((outcome: WriteOutcome) => void) | undefined
  #reject: ((error: Error) => void) | undefined

  constructor(entries: number) {
    this.#pending = entries
  }

  get durable(): Promise<WriteOutcome> {
    if (!this.#durable) {
      if (this.#done) this.#durable = Promise.resolve(this.#outcomeNow())
      else if (this.#failure) this.#durable = Promise.reject(this.#failure)
      else
        this.#durable = new Promise((resolve, reject) => {
          this.#resolve = resolve
          this.#reject = reject
        })
    }
    return this.#durable
  }

  get settled(): boolean {
    return this.#done || this.#failure !== undefined
  }

  written(): void {
    this.#written += 1
    this.#settleOne()
  }

  duplicate(): void {
    this.#duplicates += 1
    this.#settleOne()
  }

  rejected(reason: RejectReason): void {
    this.#rejected += 1
    this.#reasons ??= []
    if (!this.#reasons.includes(reason)) this.#reasons.push(reason)
    this.#settleOne()
  }

  /** The packet will not become durable (the writer was closed before the database came back). */
  abort(error: Error): void {
    if (this.settled) return
    this.#failure = error
    this.#reject?.(error)
  }

  #settleOne(): void {
    this.#pending -= 1
    if (this.#pending > 0 || this.settled) return
    this.#done = true
    this.#resolve?.(this.#outcomeNow())
  }

  /** The settled packet's outcome, built once. */
  #outcomeNow(): WriteOutcome {
    if (this.#outcome) return this.#outcome
    const total = this.#written + this.#duplicates + this.#rejected
    const status =
      this.#rejected === total
        ? 'rejected'
        : this.#duplicates === total
          ? 'duplicate'
          : this.#rejected + this.#duplicates === 0
            ? 'written'
            : 'partial'
    this.#outcome = Object.freeze({
      status,
      written: this.#written,
      duplicates: this.#duplicates,
      rejected: this.#rejected,
      reasons: this.#reasons ? Object.freeze(this.#reasons) : NO_REASONS,
    })
    return this.#outcome
  }
}

import type { RejectReason } from './outcome.js'

/**
 * Where a packet came from and when, for `write()` and `deadLetter()`.
 *
 * @example
 * ```ts
 * await writer.write(packet, { source: 'mqtt:plantops/dev_1/telemetry', receivedAt: new Date() })
 * ```
 */
export interface PacketMeta {
  /** Kept with any dead letter, e.g. the MQTT topic. */
  readonly source?: string
  /** When the packet arrived; default now. A reading without its own time gets this one. */
  readonly receivedAt?: Date
  /**
   * Register the packet's device if the database does not know it (no
   * plant, no usable MQTT password; marked `online` as it reports), instead of
   * dead-lettering the packet as `unknown_device`. Only for sources that
   * vouch for the device id themselves, such as a broker that authenticated
   * the publisher of the device's topic. A decommissioned device is never
   * brought back. Default false.
   */
  readonly provisionIfUnknown?: boolean
}

/**
 * A packet an upstream source could not even decode, for `deadLetter()`.
 *
 * @example
 * ```ts
 * await writer.deadLetter({ payload: rawBytes, reason: 'decode_failed', detail: 'not JSON', source: topic })
 * ```
 */
export interface DeadLetterInput extends PacketMeta {
  readonly payload: unknown
  readonly reason: RejectReason
  readonly detail?: string
  readonly deviceId?: string
}

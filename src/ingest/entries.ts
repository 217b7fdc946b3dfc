import type { PacketTracker } from './outcome.js'
import type { Reading } from './packet.js'
import type { DeadLetter } from './statements.js'

/**
 * A validated reading waiting in the buffer, its fields copied from the
 * `Reading` rather than pointing at it: one object per buffered reading
 * instead of two, which the writer's garbage collection showed.
 */
export interface ReadingEntry extends Reading {
  readonly kind: 'reading'
  readonly tracker: PacketTracker
  readonly source: string | null
  /** When the packet arrived, in epoch milliseconds. */
  readonly receivedAtMs: number
  /** Register the device if it is unknown (`PacketMeta.provisionIfUnknown`). */
  readonly provision: boolean
  /** Estimated bytes held, and when it was queued (ms), for the buffer's bounds and age. */
  readonly bytes: number
  readonly at: number
  /**
   * The plant it is written under, set when its batch places it (each
   * attempt anew): the entry is then the row itself, with no second object
   * per reading.
   */
  plantId: string | null
}

/** A packet refused before it reached a batch, waiting to be dead-lettered. */
export interface RejectEntry {
  readonly kind: 'reject'
  readonly letter: DeadLetter
  readonly tracker: PacketTracker
  readonly bytes: number
  readonly at: number
}

/** An `online` / `offline` status a device announced (a status message or its last will). */
export interface StatusEntry {
  readonly kind: 'status'
  readonly deviceId: string
  readonly status: 'online' | 'offline'
  readonly tracker: PacketTracker
  readonly source: string | null
  readonly receivedAtMs: number
  readonly bytes: number
  readonly at: number
}

export type Entry = ReadingEntry | RejectEntry | StatusEntry

/** The device an entry belongs to, which picks its lane: a device's entries stay in order. */
export function deviceOf(entry: Entry): string | null {
  return entry.kind === 'reject' ? entry.letter.deviceId : entry.deviceId
}

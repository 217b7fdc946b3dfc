import type { Entry } from './entries.js'

/** A batch being written: where it starts in its lane's sequence, and its entries. */
export type Running = { start: number; entries: Entry[] }

/**
 * A share of the devices with its own queue and one batch in flight at a
 * time. Concurrent batches therefore never touch the same device rows (no
 * lock sharing between their transactions) and never race on the same
 * (device, time) key.
 */
export class Lane {
  readonly queue: Entry[] = []
  /** Entries ever queued, and ever taken into a batch: flush() waits on these counts. */
  enqueued = 0
  dequeued = 0
  drainTo = 0
  running: Running | undefined
  timer: NodeJS.Timeout | undefined
}

/** FNV-1a: a cheap, stable spread of device ids over lanes. */
export function laneOf(deviceId: string | null, lanes: number): number {
  if (lanes === 1 || deviceId === null) return 0
  let hash = 0x811c9dc5
  for (let i = 0; i < deviceId.length; i += 1) hash = Math.imul(hash ^ deviceId.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % lanes
}

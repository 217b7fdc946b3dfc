import type { BatchResult } from './commit.js'
import type { WriterStats } from './options.js'
import type { RejectReason } from './outcome.js'

/** What the buffer and the lanes hold right now, which the tally does not count itself. */
export type BufferState = Pick<WriterStats, 'bufferedRows' | 'bufferedBytes' | 'inFlightBatches'>

/**
 * The writer's counters since it started, and the settling of a committed
 * batch's packets: each entry's tracker learns its outcome when the batch
 * is counted, never before its commit.
 */
export class WriterTally {
  readonly #counts = {
    received: 0,
    written: 0,
    duplicates: 0,
    statusUpdates: 0,
    alerts: 0,
    devicesProvisioned: 0,
    retries: 0,
    batches: 0,
    lastBatchMs: null as number | null,
  }
  readonly #rejected: Partial<Record<RejectReason, number>> = {}

  received(): void {
    this.#counts.received += 1
  }

  retried(): void {
    this.#counts.retries += 1
  }

  /** A batch committed: counts it and settles its entries' packets. */
  committed(result: BatchResult, durationMs: number): void {
    const counts = this.#counts
    counts.batches += 1
    counts.lastBatchMs = durationMs
    counts.written += result.written.length
    counts.duplicates += result.duplicates.length
    counts.alerts += result.alerts
    counts.devicesProvisioned += result.provisioned
    counts.statusUpdates += result.statuses.length
    for (const entry of result.statuses) entry.tracker.written()
    for (const entry of result.written) entry.tracker.written()
    for (const entry of result.duplicates) entry.tracker.duplicate()
    for (const { entry, reason } of result.rejected) {
      this.#rejected[reason] = (this.#rejected[reason] ?? 0) + 1
      entry.tracker.rejected(reason)
    }
  }

  /** The counters with the buffer's state, frozen. */
  snapshot(buffer: BufferState): WriterStats {
    return Object.freeze({
      ...this.#counts,
      lastFlushMs: this.#counts.lastBatchMs,
      rejected: Object.freeze({ ...this.#rejected }),
      ...buffer,
    })
  }
}

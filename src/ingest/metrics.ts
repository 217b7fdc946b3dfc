import type { Attributes } from '../util/metrics.js'
import { sqlStateOf } from '../errors/sqlstate.js'
import { observeStats, one, type MeterLike, type ObservedInstrument } from '../util/metrics.js'
import type { WriterStats } from './options.js'

/** The writer's batches in OpenTelemetry's database conventions: one `BATCH INSERT` into `telemetry`. */
const BATCH_ATTRIBUTES: Attributes = Object.freeze({
  'db.system.name': 'postgresql',
  'db.collection.name': 'telemetry',
  'db.operation.name': 'BATCH INSERT',
})

/** The bucket boundaries OpenTelemetry's semantic conventions advise for `db.client.operation.duration`. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

const counter = (
  name: string,
  unit: string,
  description: string,
  values: (s: WriterStats) => readonly (readonly [number, Attributes?])[],
): ObservedInstrument<WriterStats> => ({ name, kind: 'counter', unit, description, values })
const gauge = (name: string, unit: string, description: string, read: (s: WriterStats) => number) =>
  ({ name, kind: 'gauge', unit, description, values: (s) => one(read(s)) }) satisfies ObservedInstrument<WriterStats>

/** Every writer counter and level, each the `stats()` field it names. */
export const WRITER_INSTRUMENTS: readonly ObservedInstrument<WriterStats>[] = [
  counter('plantops.writer.received', '{packet}', 'Packets handed to the writer (stats().received)', (s) =>
    one(s.received),
  ),
  counter('plantops.writer.rows.written', '{row}', 'Readings written to telemetry (stats().written)', (s) =>
    one(s.written),
  ),
  counter('plantops.writer.rows.duplicate', '{row}', 'Readings already stored (stats().duplicates)', (s) =>
    one(s.duplicates),
  ),
  counter('plantops.writer.rejected', '{entry}', 'Entries dead-lettered, by reason (stats().rejected)', (s) =>
    Object.entries(s.rejected).map(([reason, n]) => [n ?? 0, { 'plantops.reject.reason': reason }] as const),
  ),
  counter('plantops.writer.status_updates', '{status}', 'Device statuses applied (stats().statusUpdates)', (s) =>
    one(s.statusUpdates),
  ),
  counter('plantops.writer.alerts', '{alert}', 'Alerts raised (stats().alerts)', (s) => one(s.alerts)),
  counter('plantops.writer.devices.provisioned', '{device}', 'Devices provisioned by packets', (s) =>
    one(s.devicesProvisioned),
  ),
  counter('plantops.writer.retries', '{attempt}', 'Failed batch commits, each retried (stats().retries)', (s) =>
    one(s.retries),
  ),
  counter('plantops.writer.batches', '{batch}', 'Batches committed (stats().batches)', (s) => one(s.batches)),
  gauge('plantops.writer.buffered.rows', '{row}', 'Rows accepted and not yet durable', (s) => s.bufferedRows),
  gauge('plantops.writer.buffered.bytes', 'By', 'Estimated bytes accepted and not yet durable', (s) => s.bufferedBytes),
  gauge('plantops.writer.batches.in_flight', '{batch}', 'Batches being committed now', (s) => s.inFlightBatches),
]

/** What the writer reports as it goes; the rest is read from `stats()` at collection. */
export interface WriterMeters {
  batchCommitted(durationMs: number): void
  batchFailed(durationMs: number, error: unknown): void
}

/** The class of a failure, as `error.type` wants it: the SQLSTATE, else the error's name. */
function errorType(error: unknown): string {
  return sqlStateOf(error) ?? (error instanceof Error ? error.name : 'unknown')
}

/**
 * Instruments a writer: the observed counters above, and the duration of
 * every batch commit attempt as `db.client.operation.duration` (seconds).
 */
export function meterWriter(meter: MeterLike, stats: () => WriterStats): WriterMeters {
  observeStats(meter, stats, WRITER_INSTRUMENTS)
  const duration = meter.createHistogram('db.client.operation.duration', {
    unit: 's',
    description: "Duration of the writer's batch commits, each attempt",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  })
  return {
    batchCommitted: (ms) => duration.record(ms / 1000, BATCH_ATTRIBUTES),
    batchFailed: (ms, error) => duration.record(ms / 1000, { ...BATCH_ATTRIBUTES, 'error.type': errorType(error) }),
  }
}

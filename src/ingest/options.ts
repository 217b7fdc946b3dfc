import { z } from 'zod'
import { validate } from '../util/validate.js'
import { loggerOption, resolveLogger, type Logger } from '../util/logger.js'
import { meterOption, type MeterLike } from '../util/metrics.js'
import type { RejectReason } from './outcome.js'

/**
 * What one committed batch did, for the `onBatch` hook.
 *
 * @example
 * ```ts
 * const writer = createTelemetryWriter(db, { onBatch: (b: BatchInfo) => metrics.observe(b.durationMs) })
 * ```
 */
export interface BatchInfo {
  readonly rows: number
  readonly written: number
  readonly duplicates: number
  readonly rejected: number
  readonly alerts: number
  readonly durationMs: number
  /** 1 for a batch that committed at the first try. */
  readonly attempt: number
}

/**
 * A failed attempt to commit a batch, for the `onError` hook. The batch is kept and retried.
 *
 * @example
 * ```ts
 * createTelemetryWriter(db, { onError: (err, info: BatchErrorInfo) => console.warn(info.transient, info.retryInMs) })
 * ```
 */
export interface BatchErrorInfo {
  readonly attempt: number
  readonly transient: boolean
  readonly retryInMs: number
}

/**
 * The name {@link BatchInfo} had in 0.1.
 *
 * @deprecated Use {@link BatchInfo}; this alias goes in 0.3.
 * @example
 * ```ts
 * const info: FlushInfo = { rows: 1, written: 1, duplicates: 0, rejected: 0, alerts: 0, durationMs: 3, attempt: 1 }
 * ```
 */
export type FlushInfo = BatchInfo

/**
 * The name {@link BatchErrorInfo} had in 0.1.
 *
 * @deprecated Use {@link BatchErrorInfo}; this alias goes in 0.3.
 * @example `const info: FlushErrorInfo = { attempt: 1, transient: true, retryInMs: 80 }`
 */
export type FlushErrorInfo = BatchErrorInfo

/**
 * Options of `createTelemetryWriter`; every one has a default.
 *
 * @example
 * ```ts
 * import { createTelemetryWriter, type TelemetryWriterOptions } from 'plantops-db'
 * const options: TelemetryWriterOptions = { batchSize: 2_000, maxBatchAgeMs: 500, logger: pino() }
 * const writer = createTelemetryWriter(db, options)
 * ```
 */
export interface TelemetryWriterOptions {
  /**
   * Flush when this many rows wait. Default 10,000: under a backlog a batch's
   * fixed statements (last seen, rollups, commit) are then paid once per
   * 10,000 rows; with a steady trickle `maxBatchAgeMs` flushes first anyway.
   */
  readonly batchSize?: number
  /** Flush rows that waited this long, however few. Default 250 ms. */
  readonly maxBatchAgeMs?: number
  /** Rows held (buffered or being written) before `write()` makes callers wait. Default 50,000. */
  readonly maxBufferedRows?: number
  /** Estimated bytes held before `write()` makes callers wait. Default 64 MiB. */
  readonly maxBufferedBytes?: number
  /** Batches written at once, each on its own connection. Default 2 on PostgreSQL, 1 on PGlite. */
  readonly concurrency?: number
  /** Readings further in the future than this are refused (`time_skew`). Default 5 minutes. */
  readonly maxFutureSkewMs?: number
  /** Readings older than this are refused (`time_skew`). Default 30 days. */
  readonly maxPastAgeMs?: number
  /**
   * First retry delay after a batch failed to commit; doubles up to
   * `maxRetryDelayMs`, with full jitter. Default 100 ms.
   */
  readonly initialRetryDelayMs?: number
  /** Longest retry delay. Default 10 s. */
  readonly maxRetryDelayMs?: number
  /** Alert cooldown when the `alerts.cooldown_seconds` setting is unset. Default 3,600 s. */
  readonly defaultAlertCooldownSeconds?: number
  /**
   * `random_page_cost` for the writer's own transactions (`SET LOCAL`, and
   * only when lower than the server's). Default 1.1, the value PostgreSQL's
   * documentation suggests for solid-state storage: at the server default of
   * 4 the foreign-key check every row fires scans a small `plants` table
   * whole instead of using its primary key, which costs about a quarter of
   * the write speed. `null` leaves the server's setting alone.
   */
  readonly randomPageCost?: number | null
  /**
   * Whether each batch also adds its inserted rows to the rollups
   * (`telemetry_hourly`, `telemetry_plant_hourly`, `telemetry_plant_5min`), in the same transaction.
   * Default `true`. `false` is for a bulk import that calls `telemetry.rebuildRollups` over its
   * range afterwards: until then, `telemetry.buckets` read from the rollups miss those rows.
   */
  readonly maintainRollups?: boolean
  /** A pino-compatible logger, or `false`. Default: the console. */
  readonly logger?: Logger | false
  /**
   * An OpenTelemetry `Meter` to report through: every `stats()` field as a
   * `plantops.writer.*` instrument read from `stats()` at collection (so the
   * two always agree), and each batch commit attempt as
   * `db.client.operation.duration`. See "Operating it" in the README.
   * Default: none, and `@opentelemetry/api` is never loaded.
   */
  readonly meter?: MeterLike
  /** Called after each committed batch. */
  readonly onBatch?: (info: BatchInfo) => void
  /** @deprecated The name `onBatch` had in 0.1; it goes in 0.3. Give one of the two. */
  readonly onFlush?: (info: BatchInfo) => void
  /** Called after each failed attempt to commit a batch (the batch is kept and retried). */
  readonly onError?: (error: unknown, info: BatchErrorInfo) => void
}

const positiveInt = (max: number) => z.number().int().min(1).max(max)
const optionsSchema = z
  .strictObject({
    batchSize: positiveInt(1_000_000).default(10_000),
    maxBatchAgeMs: positiveInt(3_600_000).default(250),
    maxBufferedRows: positiveInt(100_000_000).default(50_000),
    maxBufferedBytes: positiveInt(Number.MAX_SAFE_INTEGER).default(64 * 1024 * 1024),
    concurrency: positiveInt(64).optional(),
    maxFutureSkewMs: z
      .number()
      .int()
      .min(0)
      .default(5 * 60_000),
    maxPastAgeMs: z
      .number()
      .int()
      .min(0)
      .default(30 * 86_400_000),
    initialRetryDelayMs: positiveInt(600_000).default(100),
    maxRetryDelayMs: positiveInt(3_600_000).default(10_000),
    defaultAlertCooldownSeconds: z.number().int().min(0).default(3_600),
    randomPageCost: z.number().positive().max(1_000).nullable().default(1.1),
    maintainRollups: z.boolean().default(true),
    logger: loggerOption,
    meter: meterOption,
    onBatch: z.custom<(info: BatchInfo) => void>((v) => typeof v === 'function').optional(),
    onFlush: z.custom<(info: BatchInfo) => void>((v) => typeof v === 'function').optional(),
    onError: z.custom<(error: unknown, info: BatchErrorInfo) => void>((v) => typeof v === 'function').optional(),
  })
  .refine((options) => options.onBatch === undefined || options.onFlush === undefined, {
    message: 'give onBatch only: onFlush is its deprecated name',
    path: ['onFlush'],
  })

export type ResolvedWriterOptions = Omit<z.output<typeof optionsSchema>, 'logger' | 'onFlush'> & { logger: Logger }

export function resolveWriterOptions(options: TelemetryWriterOptions): ResolvedWriterOptions {
  const parsed = validate(optionsSchema, options, 'telemetry writer options')
  const { onFlush, ...rest } = parsed
  return Object.freeze({ ...rest, onBatch: rest.onBatch ?? onFlush, logger: resolveLogger(parsed.logger) })
}

/**
 * Counters of a writer since it started, from `writer.stats()`.
 *
 * @example
 * ```ts
 * const { written, duplicates, rejected, bufferedRows } = writer.stats()
 * ```
 */
export interface WriterStats {
  /** Packets handed to `write()` or `deadLetter()`. */
  readonly received: number
  /** Rows written to `telemetry`. */
  readonly written: number
  /** Readings that were already stored (same device and time). */
  readonly duplicates: number
  /** Device statuses applied (`writeStatus`). */
  readonly statusUpdates: number
  /** Dead-lettered entries by reason. */
  readonly rejected: Readonly<Partial<Record<RejectReason, number>>>
  readonly alerts: number
  /** Devices registered because a packet asked for it (`provisionIfUnknown`). */
  readonly devicesProvisioned: number
  /** Failed attempts to commit a batch (each retried). */
  readonly retries: number
  /** Batches committed. */
  readonly batches: number
  /** Rows accepted and not yet durable. */
  readonly bufferedRows: number
  readonly bufferedBytes: number
  readonly inFlightBatches: number
  /** Duration of the last committed batch, in milliseconds. */
  readonly lastBatchMs: number | null
  /** @deprecated The name `lastBatchMs` had in 0.1; it goes in 0.3. */
  readonly lastFlushMs: number | null
}

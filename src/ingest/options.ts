import { z } from 'zod'
import { validate } from '../util/validate.js'
import { loggerOption, resolveLogger, type Logger } from '../util/logger.js'
import type { RejectReason } from './outcome.js'

/**
 * What a flush did, for the `onFlush` hook.
 *
 * @example
 * ```ts
 * const writer = createTelemetryWriter(db, { onFlush: (f: FlushInfo) => metrics.observe(f.durationMs) })
 * ```
 */
export interface FlushInfo {
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
 * A failed flush attempt, for the `onError` hook. The batch is kept and retried.
 *
 * @example
 * ```ts
 * createTelemetryWriter(db, { onError: (err, info: FlushErrorInfo) => console.warn(info.transient, info.retryInMs) })
 * ```
 */
export interface FlushErrorInfo {
  readonly attempt: number
  readonly transient: boolean
  readonly retryInMs: number
}

/**
 * Options of `createTelemetryWriter`; every one has a default.
 *
 * @example
 * ```ts
 * import { createTelemetryWriter, type TelemetryWriterOptions } from 'plantops-db'
 * const options: TelemetryWriterOptions = { batchSize: 10_000, maxBatchAgeMs: 500, logger: pino() }
 * const writer = createTelemetryWriter(db, options)
 * ```
 */
export interface TelemetryWriterOptions {
  /** Flush when this many rows wait. Default 5,000. */
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
  /** First retry delay after a failed flush; doubles up to `maxRetryDelayMs`, with full jitter. Default 100 ms. */
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
  /** A pino-compatible logger, or `false`. Default: the console. */
  readonly logger?: Logger | false
  /** Called after each committed batch. */
  readonly onFlush?: (info: FlushInfo) => void
  /** Called after each failed flush attempt (the batch is kept and retried). */
  readonly onError?: (error: unknown, info: FlushErrorInfo) => void
}

const positiveInt = (max: number) => z.number().int().min(1).max(max)
const optionsSchema = z.strictObject({
  batchSize: positiveInt(1_000_000).default(5_000),
  maxBatchAgeMs: positiveInt(3_600_000).default(250),
  maxBufferedRows: positiveInt(100_000_000).default(50_000),
  maxBufferedBytes: positiveInt(Number.MAX_SAFE_INTEGER).default(64 * 1024 * 1024),
  concurrency: positiveInt(64).optional(),
  maxFutureSkewMs: z.number().int().min(0).default(5 * 60_000),
  maxPastAgeMs: z.number().int().min(0).default(30 * 86_400_000),
  initialRetryDelayMs: positiveInt(600_000).default(100),
  maxRetryDelayMs: positiveInt(3_600_000).default(10_000),
  defaultAlertCooldownSeconds: z.number().int().min(0).default(3_600),
  randomPageCost: z.number().positive().max(1_000).nullable().default(1.1),
  logger: loggerOption,
  onFlush: z.custom<(info: FlushInfo) => void>((v) => typeof v === 'function').optional(),
  onError: z.custom<(error: unknown, info: FlushErrorInfo) => void>((v) => typeof v === 'function').optional(),
})

export type ResolvedWriterOptions = Omit<z.output<typeof optionsSchema>, 'logger'> & { logger: Logger }

export function resolveWriterOptions(options: TelemetryWriterOptions): ResolvedWriterOptions {
  const parsed = validate(optionsSchema, options, 'telemetry writer options')
  return Object.freeze({ ...parsed, logger: resolveLogger(parsed.logger) })
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
  /** Failed flush attempts (each retried). */
  readonly retries: number
  /** Batches committed. */
  readonly batches: number
  /** Rows accepted and not yet durable. */
  readonly bufferedRows: number
  readonly bufferedBytes: number
  readonly inFlightBatches: number
  /** Duration of the last committed batch, in milliseconds. */
  readonly lastFlushMs: number | null
}

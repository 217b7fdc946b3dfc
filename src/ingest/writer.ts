import type { Kysely } from 'kysely'
import { isTransientDatabaseError } from '../errors/sqlstate.js'
import type { Database } from '../schema/database.js'
import { DeviceContext } from './device-context.js'
import { WriterAbortedError, WriterClosedError } from './errors.js'
import { flushBatch, type BatchResult, type Entry, type ReadingEntry } from './flush.js'
import { PacketTracker, type RejectReason, type WriteReceipt } from './outcome.js'
import { resolveWriterOptions, type ResolvedWriterOptions, type TelemetryWriterOptions, type WriterStats } from './options.js'
import { readPacket, type Reading } from './packet.js'
import { jsonPayload } from './payload.js'
import { replayRejects, type ReplayOptions, type ReplayReport } from './replay.js'
import { storeFor, type Store } from './store.js'

/** Estimated memory of one buffered reading (entry, reading, row, arrays). */
const READING_BYTES = 320
/** Beyond its payload, what one dead letter costs. */
const LETTER_BYTES = 256

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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

type Waiter = { rows: number; bytes: number; admit: () => void }

/** See {@link createTelemetryWriter}. */
export class TelemetryWriter {
  readonly #options: ResolvedWriterOptions
  readonly #store: Store
  readonly #context = new DeviceContext()
  readonly #concurrency: number
  readonly #queue: (Entry & { bytes: number; at: number })[] = []
  readonly #waiters: Waiter[] = []
  readonly #pending = new Set<PacketTracker>()
  #heldRows = 0
  #heldBytes = 0
  #inFlight = 0
  #timer: NodeJS.Timeout | undefined
  #draining = false
  #closed = false
  #aborted: WriterAbortedError | undefined
  readonly #stats = { received: 0, written: 0, duplicates: 0, alerts: 0, retries: 0, batches: 0, lastFlushMs: null as number | null }
  readonly #rejected: Partial<Record<RejectReason, number>> = {}

  constructor(
    readonly db: Kysely<Database>,
    options: TelemetryWriterOptions = {},
  ) {
    this.#options = resolveWriterOptions(options)
    this.#store = storeFor(db)
    this.#concurrency = this.#options.concurrency ?? (this.#store.canCopy ? 2 : 1)
  }

  /**
   * Validates a packet and accepts it into the buffer. Resolves once it is
   * accepted, which waits while the buffer is full (backpressure); the
   * receipt's `durable` resolves once its readings are committed or
   * dead-lettered. An invalid packet is accepted too, and dead-lettered.
   */
  async write(packet: unknown, meta: PacketMeta = {}): Promise<WriteReceipt> {
    if (this.#closed) throw new WriterClosedError()
    this.#stats.received += 1
    const receivedAt = meta.receivedAt ?? new Date()
    const source = meta.source ?? null
    const result = readPacket(packet, receivedAt)
    if (!('readings' in result)) {
      const deviceId = typeof (packet as { deviceId?: unknown } | null)?.deviceId === 'string' ? (packet as { deviceId: string }).deviceId : undefined
      return this.#letter({ payload: packet, reason: result.reason, detail: result.detail, receivedAt, source: meta.source, deviceId })
    }
    const skewed = result.readings.find((r) => !this.#timely(r, receivedAt))
    if (skewed) {
      const detail = `time ${skewed.time.toISOString()} is outside [received − ${this.#options.maxPastAgeMs} ms, received + ${this.#options.maxFutureSkewMs} ms]`
      return this.#letter({ payload: packet, reason: 'time_skew', detail, receivedAt, source: meta.source, deviceId: skewed.deviceId })
    }
    const tracker = new PacketTracker(result.readings.length)
    const entries = result.readings.map((reading): ReadingEntry => ({ kind: 'reading', reading, tracker, source, receivedAt }))
    await this.#enqueue(entries, tracker, READING_BYTES)
    return { durable: tracker.durable }
  }

  /**
   * Dead-letters something an upstream source could not turn into a packet
   * (bytes that are not JSON, a payload naming another device), with the
   * same durability contract as `write()`.
   */
  async deadLetter(input: DeadLetterInput): Promise<WriteReceipt> {
    if (this.#closed) throw new WriterClosedError()
    this.#stats.received += 1
    return this.#letter(input)
  }

  /** Resolves when everything accepted so far is durable. */
  async flush(): Promise<void> {
    const waiting = [...this.#pending].map((tracker) => tracker.durable)
    this.#draining = true
    this.#pump()
    await Promise.allSettled(waiting)
    if (this.#queue.length === 0) this.#draining = false
  }

  /**
   * Stops accepting packets, writes everything accepted, and stops. With
   * `timeoutMs`, gives up waiting for an unreachable database after that
   * long: the packets still held are then not durable, and their `durable`
   * promises reject with `WriterAbortedError`. The database is not closed.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#closed = true
    const drained = this.flush().then(() => 'drained' as const)
    const outcome = options.timeoutMs === undefined ? await drained : await Promise.race([drained, sleep(options.timeoutMs).then(() => 'timeout' as const)])
    if (outcome === 'timeout') this.#abort()
    clearTimeout(this.#timer)
  }

  /** Resubmits dead letters through this writer; see {@link replayRejects}. */
  replayRejects(options: ReplayOptions = {}): Promise<ReplayReport> {
    return replayRejects(this.db, this, options)
  }

  /** Counters since the writer started. */
  stats(): WriterStats {
    return Object.freeze({
      ...this.#stats,
      rejected: Object.freeze({ ...this.#rejected }),
      bufferedRows: this.#heldRows,
      bufferedBytes: this.#heldBytes,
      inFlightBatches: this.#inFlight,
    })
  }

  #timely(reading: Reading, receivedAt: Date): boolean {
    const offset = reading.time.getTime() - receivedAt.getTime()
    return offset <= this.#options.maxFutureSkewMs && -offset <= this.#options.maxPastAgeMs
  }

  async #letter(input: DeadLetterInput): Promise<WriteReceipt> {
    const tracker = new PacketTracker(1)
    const payload = jsonPayload(input.payload)
    const letter = {
      receivedAt: input.receivedAt ?? new Date(),
      deviceId: input.deviceId ?? null,
      source: input.source ?? null,
      payload,
      reason: input.reason,
      detail: input.detail ?? null,
    }
    await this.#enqueue([{ kind: 'reject', letter, tracker }], tracker, LETTER_BYTES + payload.length)
    return { durable: tracker.durable }
  }

  async #enqueue(entries: Entry[], tracker: PacketTracker, bytesEach: number): Promise<void> {
    const bytes = bytesEach * entries.length
    await this.#admit(entries.length, bytes)
    this.#pending.add(tracker)
    void tracker.durable.then(
      () => this.#pending.delete(tracker),
      () => this.#pending.delete(tracker),
    )
    const at = Date.now()
    for (const entry of entries) this.#queue.push(Object.assign(entry, { bytes: bytesEach, at }))
    this.#pump()
  }

  /** Waits, first come first served, until the rows fit; a lone packet larger than the bound still fits an empty buffer. */
  #admit(rows: number, bytes: number): Promise<void> {
    const fits = () =>
      this.#heldRows === 0 || (this.#heldRows + rows <= this.#options.maxBufferedRows && this.#heldBytes + bytes <= this.#options.maxBufferedBytes)
    const take = () => {
      this.#heldRows += rows
      this.#heldBytes += bytes
    }
    if (this.#waiters.length === 0 && fits()) {
      take()
      return Promise.resolve()
    }
    return new Promise((resolve) => this.#waiters.push({ rows, bytes, admit: () => (take(), resolve()) }))
  }

  #release(rows: number, bytes: number): void {
    this.#heldRows -= rows
    this.#heldBytes -= bytes
    while (this.#waiters.length > 0) {
      const next = this.#waiters[0]!
      const fits =
        this.#heldRows === 0 ||
        (this.#heldRows + next.rows <= this.#options.maxBufferedRows && this.#heldBytes + next.bytes <= this.#options.maxBufferedBytes)
      if (!fits) return
      this.#waiters.shift()
      next.admit()
    }
  }

  /** Starts batches while there is work that is due and a free slot. */
  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#queue.length > 0 && !this.#aborted) {
      const due = this.#queue.length >= this.#options.batchSize || this.#draining || Date.now() - this.#queue[0]!.at >= this.#options.maxBatchAgeMs
      if (!due) break
      const batch = this.#queue.splice(0, this.#options.batchSize)
      this.#inFlight += 1
      void this.#run(batch).finally(() => {
        this.#inFlight -= 1
        this.#pump()
      })
    }
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#queue.length > 0 && !this.#aborted) {
      const wait = Math.max(0, this.#queue[0]!.at + this.#options.maxBatchAgeMs - Date.now())
      this.#timer = setTimeout(() => this.#pump(), wait)
    }
  }

  /** Writes one batch, retrying with exponential backoff and full jitter until it commits. */
  async #run(batch: (Entry & { bytes: number })[]): Promise<void> {
    const bytes = batch.reduce((sum, entry) => sum + entry.bytes, 0)
    for (let attempt = 1; ; attempt += 1) {
      if (this.#aborted) return
      const started = performance.now()
      try {
        const result = await flushBatch(this.#store, batch, this.#context, this.#options.defaultAlertCooldownSeconds)
        const durationMs = performance.now() - started
        this.#settle(result)
        this.#stats.batches += 1
        this.#stats.lastFlushMs = durationMs
        this.#release(batch.length, bytes)
        this.#options.onFlush?.({
          rows: batch.length,
          written: result.written.length,
          duplicates: result.duplicates.length,
          rejected: result.rejected.length,
          alerts: result.alerts,
          durationMs,
          attempt,
        })
        return
      } catch (error) {
        const transient = isTransientDatabaseError(error)
        const ceiling = Math.min(this.#options.maxRetryDelayMs, this.#options.initialRetryDelayMs * 2 ** (attempt - 1))
        const retryInMs = Math.round(Math.random() * ceiling)
        this.#stats.retries += 1
        const log = transient ? this.#options.logger.warn : this.#options.logger.error
        log.call(this.#options.logger, { err: error, attempt, rows: batch.length, retryInMs }, `telemetry batch failed (${transient ? 'transient' : 'unexpected'}); retrying, nothing dropped`)
        this.#options.onError?.(error, { attempt, transient, retryInMs })
        await sleep(retryInMs)
      }
    }
  }

  #settle(result: BatchResult): void {
    this.#stats.written += result.written.length
    this.#stats.duplicates += result.duplicates.length
    this.#stats.alerts += result.alerts
    for (const entry of result.written) entry.tracker.written()
    for (const entry of result.duplicates) entry.tracker.duplicate()
    for (const { entry, reason } of result.rejected) {
      this.#rejected[reason] = (this.#rejected[reason] ?? 0) + 1
      entry.tracker.rejected(reason)
    }
  }

  #abort(): void {
    this.#aborted = new WriterAbortedError(this.#heldRows)
    for (const tracker of this.#pending) tracker.abort(this.#aborted)
    this.#pending.clear()
    this.#queue.length = 0
    for (const waiter of this.#waiters.splice(0)) waiter.admit()
  }
}

/**
 * Creates the telemetry writer: decoded sensor packets in, batched,
 * deduplicated, COPY-speed writes out. At-least-once and never silently
 * lossy: every packet is either written, recognised as a duplicate, or
 * dead-lettered in `telemetry_rejects` with its reason, and `write()`
 * waits (backpressure) rather than drop anything when the buffer is full.
 *
 * @example
 * ```ts
 * import { createDatabase, createTelemetryWriter, migrateToLatest } from 'plantops-db'
 * const db = createDatabase()
 * await migrateToLatest(db)
 * const writer = createTelemetryWriter(db)
 *
 * const receipt = await writer.write({ deviceId: 'dev_1', soil_moisture: 41.5 }) // accepted
 * const outcome = await receipt.durable // committed: { status: 'written', written: 1, … }
 * await writer.close()
 * ```
 */
export function createTelemetryWriter(db: Kysely<Database>, options: TelemetryWriterOptions = {}): TelemetryWriter {
  return new TelemetryWriter(db, options)
}

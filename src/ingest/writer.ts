import type { Kysely } from 'kysely'
import { ValidationError } from '../errors/errors.js'
import { isMissingSchemaError, isTransientDatabaseError } from '../errors/sqlstate.js'
import type { Database } from '../schema/database.js'
import { DeviceContext } from './device-context.js'
import { WriterAbortedError, WriterClosedError } from './errors.js'
import { CarefulRetry, commitBatch } from './commit.js'
import { WriterTally } from './tally.js'
import { admitLetter, admitPacket, admitStatus, arrivalMs } from './admission.js'
import { deviceOf, type Entry } from './entries.js'
import type { WriteReceipt } from './outcome.js'
import { Backpressure } from './backpressure.js'
import {
  resolveWriterOptions,
  type ResolvedWriterOptions,
  type TelemetryWriterOptions,
  type WriterStats,
} from './options.js'
import { Lane, laneOf, type Running } from './lane.js'
import { meterWriter, type WriterMeters } from './metrics.js'
import type { DeadLetterInput, PacketMeta } from './packet-meta.js'
import type { SensorPacket } from './packet.js'
import { replayRejects, type ReplayOptions, type ReplayReport } from './replay.js'
import { storeFor, type Store } from './store.js'
import { backoffDelayMs, type BackoffPolicy } from '../util/backoff.js'
import { sleep } from '../util/sleep.js'

/**
 * The telemetry writer; create one with {@link createTelemetryWriter}.
 *
 * @example
 * ```ts
 * const writer: TelemetryWriter = createTelemetryWriter(db)
 * const receipt = await writer.write({ deviceId: 'dev_1', humidity: 55 })
 * await receipt.durable
 * ```
 */
export class TelemetryWriter {
  readonly #options: ResolvedWriterOptions
  readonly #retryPolicy: BackoffPolicy
  readonly #store: Store
  readonly #context = new DeviceContext()
  readonly #lanes: Lane[]
  readonly #buffer: Backpressure
  readonly #flushWaiters: { targets: number[]; resolve: () => void }[] = []
  /** `close()`'s waiters: nothing queued, waiting for room, or being written (or the writer gave up). */
  readonly #drainWaiters: (() => void)[] = []
  #closed = false
  #aborted: WriterAbortedError | undefined
  readonly #tally = new WriterTally()
  readonly #meters: WriterMeters | undefined

  constructor(
    readonly db: Kysely<Database>,
    options: TelemetryWriterOptions = {},
  ) {
    this.#options = resolveWriterOptions(options)
    this.#retryPolicy = Object.freeze({
      initialMs: this.#options.initialRetryDelayMs,
      maxMs: this.#options.maxRetryDelayMs,
      jitter: 'full',
    })
    this.#store = storeFor(db)
    const concurrency = this.#options.concurrency ?? (this.#store.canCopy ? 2 : 1)
    this.#lanes = Array.from({ length: concurrency }, () => new Lane())
    this.#buffer = new Backpressure(this.#options, (entries) => this.#queue(entries))
    this.#meters = this.#options.meter && meterWriter(this.#options.meter, () => this.stats())
  }

  /**
   * Validates a packet and accepts it into the buffer. Resolves once it is
   * accepted, which waits while the buffer is full (backpressure); the
   * receipt's `durable` resolves once its readings are committed or
   * dead-lettered. The packet is typed, so a misspelt metric in a literal is
   * a compile error; values are still checked at run time (ranges, times),
   * and a packet that fails is accepted and dead-lettered. An invalid `meta`
   * (a `receivedAt` that is not a valid Date) rejects with a `ValidationError`
   * and accepts nothing.
   *
   * @example
   * ```ts
   * const receipt = await writer.write({ deviceId: 'dev_1', soil_moisture: 41.5, time: new Date() })
   * console.log((await receipt.durable).status) // 'written'
   * ```
   */
  write(packet: SensorPacket, meta: PacketMeta = {}): Promise<WriteReceipt> {
    return this.writeRaw(packet, meta)
  }

  /**
   * {@link write} for a payload from outside whose shape is not known yet (a
   * decoded MQTT message, an HTTP body): validated at run time, and
   * dead-lettered with the reason when it is not a packet.
   *
   * @example
   * ```ts
   * const receipt = await writer.writeRaw(JSON.parse(body), { source: 'http' })
   * ```
   */
  writeRaw(packet: unknown, meta: PacketMeta = {}): Promise<WriteReceipt> {
    const receivedAtMs = this.#arrival(meta)
    if (typeof receivedAtMs !== 'number') return receivedAtMs
    return this.#buffer.admit(admitPacket(packet, meta, receivedAtMs, this.#options))
  }

  /**
   * Records a device's `online` / `offline` status (a status message, or the
   * last will a broker publishes for it) through the same lane as its
   * readings: it is applied in the order it arrived relative to them, in
   * their batch's transaction, so a last will is not undone by an older
   * reading's batch, while a reading that arrives after it marks the device
   * online again. Same contract as `write()`: retried until durable; an
   * unknown or retired device, or an invalid id or status, is dead-lettered.
   *
   * @example
   * ```ts
   * const receipt = await writer.writeStatus('dev_1', 'offline', { source: 'mqtt:plantops/dev_1/status' })
   * await receipt.durable // { status: 'written', written: 1, … } once applied
   * ```
   */
  writeStatus(deviceId: string, status: 'online' | 'offline', meta: PacketMeta = {}): Promise<WriteReceipt> {
    const receivedAtMs = this.#arrival(meta)
    if (typeof receivedAtMs !== 'number') return receivedAtMs
    return this.#buffer.admit(admitStatus(deviceId, status, meta, receivedAtMs))
  }

  /**
   * Dead-letters something an upstream source could not turn into a packet
   * (bytes that are not JSON, a payload naming another device), with the
   * same durability contract as `write()`.
   */
  deadLetter(input: DeadLetterInput): Promise<WriteReceipt> {
    const receivedAtMs = this.#arrival(input)
    if (typeof receivedAtMs !== 'number') return receivedAtMs
    return this.#buffer.admit(admitLetter({ ...input, receivedAt: new Date(receivedAtMs) }))
  }

  /** Resolves when everything accepted so far is durable (or the writer was aborted). */
  flush(): Promise<void> {
    const targets = this.#lanes.map((lane) => lane.enqueued)
    for (const lane of this.#lanes) lane.drainTo = Math.max(lane.drainTo, lane.enqueued)
    const done = new Promise<void>((resolve) => this.#flushWaiters.push({ targets, resolve }))
    for (const lane of this.#lanes) this.#pump(lane)
    this.#checkFlushed()
    return done
  }

  /**
   * Stops accepting packets and writes everything it holds, including the
   * packets of `write()` calls still waiting for room in the buffer: each of
   * those resolves, every receipt settles, and only then does `close()`
   * return. With `timeoutMs`, gives up waiting for an unreachable database
   * after that long: the packets still held are then not durable, and their
   * `durable` promises reject with `WriterAbortedError`. The database is not
   * closed.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#closed = true
    // Everything held is due at once, including what is admitted from the waiting line later.
    for (const lane of this.#lanes) lane.drainTo = Number.POSITIVE_INFINITY
    const drained = new Promise<'drained'>((resolve) => this.#drainWaiters.push(() => resolve('drained')))
    for (const lane of this.#lanes) this.#pump(lane)
    this.#checkFlushed()
    let timeout: NodeJS.Timeout | undefined
    const expired =
      options.timeoutMs === undefined
        ? undefined
        : new Promise<'timeout'>((resolve) => (timeout = setTimeout(() => resolve('timeout'), options.timeoutMs)))
    const outcome = expired ? await Promise.race([drained, expired]) : await drained
    clearTimeout(timeout)
    if (outcome === 'timeout') this.#abort()
    for (const lane of this.#lanes) clearTimeout(lane.timer)
  }

  /** Resubmits dead letters through this writer; see {@link replayRejects}. */
  replayRejects(options: ReplayOptions = {}): Promise<ReplayReport> {
    return replayRejects(this.db, this, options)
  }

  /** Counters since the writer started. */
  stats(): WriterStats {
    return this.#tally.snapshot({
      bufferedRows: this.#buffer.rows,
      bufferedBytes: this.#buffer.bytes,
      inFlightBatches: this.#lanes.filter((lane) => lane.running).length,
    })
  }

  /** Counts an arrival and says when it was; a rejection when the writer is closed or `meta` is invalid. */
  #arrival(meta: PacketMeta): number | Promise<never> {
    if (this.#closed) return Promise.reject(new WriterClosedError())
    const receivedAtMs = arrivalMs(meta)
    if (receivedAtMs instanceof ValidationError) return Promise.reject(receivedAtMs)
    this.#tally.received()
    return receivedAtMs
  }

  /** Accepted entries join their device's lane. */
  #queue(entries: Entry[]): void {
    // Every entry of a packet names the same device, so one lane takes them all.
    const lane = this.#lanes[laneOf(deviceOf(entries[0]!), this.#lanes.length)]!
    lane.enqueued += entries.length
    for (const entry of entries) lane.queue.push(entry)
    this.#pump(lane)
  }

  /** Starts the lane's next batch when one is due and none is in flight; one timer covers the oldest row's age. */
  #pump(lane: Lane): void {
    if (lane.running === undefined && lane.queue.length > 0 && !this.#aborted) {
      const due =
        lane.queue.length >= this.#options.batchSize ||
        lane.dequeued < lane.drainTo ||
        Date.now() - lane.queue[0]!.at >= this.#options.maxBatchAgeMs
      if (due) {
        const running: Running = { start: lane.dequeued, entries: lane.queue.splice(0, this.#options.batchSize) }
        lane.dequeued += running.entries.length
        lane.running = running
        void this.#run(running.entries).finally(() => {
          lane.running = undefined
          this.#checkFlushed()
          this.#pump(lane)
        })
      }
    }
    if (lane.timer === undefined && lane.queue.length > 0 && !this.#aborted) {
      const wait = Math.max(0, lane.queue[0]!.at + this.#options.maxBatchAgeMs - Date.now())
      lane.timer = setTimeout(() => {
        lane.timer = undefined
        this.#pump(lane)
      }, wait)
    }
  }

  #checkFlushed(): void {
    for (let i = this.#flushWaiters.length - 1; i >= 0; i -= 1) {
      const { targets, resolve } = this.#flushWaiters[i]!
      const settled =
        this.#aborted !== undefined ||
        this.#lanes.every(
          (lane, n) => lane.dequeued >= targets[n]! && !(lane.running && lane.running.start < targets[n]!),
        )
      if (!settled) continue
      this.#flushWaiters.splice(i, 1)
      resolve()
    }
    if (this.#drainWaiters.length > 0 && this.#isDrained())
      for (const resolve of this.#drainWaiters.splice(0)) resolve()
  }

  /** Nothing held anywhere: no waiting writes, no queued or running batch (or the writer gave up). */
  #isDrained(): boolean {
    return (
      this.#aborted !== undefined ||
      (this.#buffer.waiting === 0 && this.#lanes.every((lane) => lane.queue.length === 0 && lane.running === undefined))
    )
  }

  /** Writes one batch, retrying with exponential backoff and full jitter until it commits. */
  async #run(batch: Entry[]): Promise<void> {
    const bytes = batch.reduce((sum, entry) => sum + entry.bytes, 0)
    let careful = false
    for (let attempt = 1; ; attempt += 1) {
      if (this.#aborted) return
      const started = performance.now()
      try {
        const result = await commitBatch(this.#store, batch, this.#context, this.#options, careful)
        const durationMs = performance.now() - started
        this.#tally.committed(result, durationMs)
        this.#meters?.batchCommitted(durationMs)
        this.#buffer.release(batch.length, bytes)
        this.#options.onBatch?.({
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
        if (error instanceof CarefulRetry && !careful) {
          careful = true
          attempt -= 1
          continue
        }
        this.#meters?.batchFailed(performance.now() - started, error)
        const transient = isTransientDatabaseError(error)
        const retryInMs = backoffDelayMs(this.#retryPolicy, attempt)
        this.#tally.retried()
        const fields = { err: error, attempt, rows: batch.length, retryInMs }
        const message = isMissingSchemaError(error)
          ? 'telemetry batch failed: the database lacks plantops-db tables or columns; ' +
            'run migrateToLatest(db). Retrying, nothing dropped'
          : `telemetry batch failed (${transient ? 'transient' : 'unexpected'}); retrying, nothing dropped`
        if (transient) this.#options.logger.warn(fields, message)
        else this.#options.logger.error(fields, message)
        this.#options.onError?.(error, { attempt, transient, retryInMs })
        await sleep(retryInMs)
      }
    }
  }

  /** Gives up on everything held: each packet's `durable` rejects, so no source acknowledges it. */
  #abort(): void {
    this.#aborted = new WriterAbortedError(this.#buffer.rows)
    const held = [
      ...this.#lanes.flatMap((lane) => [...lane.queue, ...(lane.running?.entries ?? [])]),
      ...this.#buffer.abandon(),
    ]
    for (const entry of held) entry.tracker.abort(this.#aborted)
    for (const lane of this.#lanes) lane.queue.length = 0
    this.#checkFlushed()
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

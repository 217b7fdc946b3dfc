import { open } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../util/logger.js'
import type { Placed } from './appender.js'
import type { Position } from './checkpoint.js'
import type { SpoolRecord } from './record.js'
import type { Segment, SegmentRegistry } from './registry.js'
import { readSegment, segmentName } from './segments.js'

/**
 * Takes one spooled record towards the database: resolves once it is
 * accepted (waiting while the writer is full), with a promise that resolves
 * once it is committed or dead-lettered.
 *
 * @example
 * ```ts
 * const consumer: SpoolConsumer = (record) => writer.writeRaw(JSON.parse(record.payload.toString()))
 * ```
 */
export type SpoolConsumer = (record: SpoolRecord) => Promise<{ readonly durable: Promise<unknown> }>

/**
 * The drain yields to the event loop after handing on this many records, so
 * fsync completions (and the PUBACKs they release) and socket reads are not
 * kept waiting behind a long run of promise continuations.
 */
const YIELD_EVERY = 64

interface InFlight {
  readonly seq: number
  readonly end: number
  readonly receivedAtMs: number
  done: boolean
}

export interface DrainSettings {
  readonly dir: string
  readonly registry: SegmentRegistry
  readonly consumer: SpoolConsumer
  /** Records placed while the drain keeps up are handed on from memory, up to this many bytes. */
  readonly memoryBytes: number
  readonly logger: Logger
  /** Damage found while reading a segment that was not known to be damaged. */
  readonly onDamage: (segment: Segment, bytes: number) => void
}

/** Reads bytes [from, to) of a file. */
async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const bytes = Buffer.allocUnsafe(to - from)
    let read = 0
    while (read < bytes.length) {
      const { bytesRead } = await handle.read(bytes, read, bytes.length - read, from + read)
      if (bytesRead === 0) break
      read += bytesRead
    }
    return bytes.subarray(0, read)
  } finally {
    await handle.close()
  }
}

/**
 * Hands spooled records, in the order they were spooled, to a consumer (the
 * writer), and keeps the committed position: the end of the longest run of
 * records from the start whose commit is done.
 *
 * While it keeps up, records go on straight from memory as their group is
 * fsync'd. When it falls behind (the database is away or slow) by more than
 * `memoryBytes`, it lets those go and reads them back from the segment files
 * instead, one segment range at a time, so memory stays bounded by the
 * writer's buffer whatever the spool holds. Once it reaches the end of what
 * is on disk it switches back to memory.
 */
export class Drain {
  readonly #settings: DrainSettings
  #mode: 'memory' | 'disk' = 'disk'
  #read: Position
  #memory: (Placed | undefined)[] = []
  #memoryHead = 0
  #memoryBytes = 0
  #inFlight: InFlight[] = []
  #inFlightHead = 0
  #committed: Position
  /** Records committed since open. */
  committedRecords = 0
  #stopped = false
  #wake: (() => void) | undefined
  #running: Promise<void> | undefined
  #handedSinceYield = 0
  /** Set when a consumer failed (the writer closed or gave up): draining stops. */
  failure: unknown

  constructor(settings: DrainSettings, start: Position) {
    this.#settings = settings
    this.#read = start
    this.#committed = start
  }

  /** Every record before this is committed. */
  get committed(): Position {
    return this.#committed
  }

  /** Records handed to the consumer and not yet committed. */
  get inFlight(): number {
    return this.#inFlight.length - this.#inFlightHead
  }

  /** When the oldest record not yet committed arrived, as far as the drain knows. */
  get oldestReceivedAtMs(): number | undefined {
    const head = this.#inFlight[this.#inFlightHead]
    if (head) return head.receivedAtMs
    if (this.#mode === 'memory') return this.#memory[this.#memoryHead]?.record.receivedAtMs
    return this.#settings.registry.get(this.#read.seq)?.firstReceivedAtMs
  }

  start(): void {
    this.#running ??= this.#loop().catch((error: unknown) => {
      this.failure = error
      this.#settings.logger.error({ err: error }, 'the spool stopped draining')
    })
  }

  /** Stops handing on records; records already handed on still count once committed. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    // A hand-over waiting for the writer's room may never end (the database is away): do not wait for it.
    await Promise.race([this.#running, new Promise((resolve) => setTimeout(resolve, 50))])
  }

  /** Records just fsync'd: handed on from memory while the drain keeps up. */
  offer(placed: readonly Placed[]): void {
    if (this.#mode !== 'memory' || this.#stopped) return
    for (const record of placed) {
      this.#memory.push(record)
      this.#memoryBytes += record.end - record.offset
    }
    if (this.#memoryBytes > this.#settings.memoryBytes) this.#spill()
    this.#wake?.()
  }

  /** Too much waits in memory: read it back from disk later instead. */
  #spill(): void {
    const first = this.#memory[this.#memoryHead]!
    this.#read = { seq: first.seq, offset: first.offset }
    this.#mode = 'disk'
    this.#memory = []
    this.#memoryHead = 0
    this.#memoryBytes = 0
  }

  async #loop(): Promise<void> {
    while (!this.#stopped && this.failure === undefined) {
      if (this.#mode === 'disk') {
        await this.#readFromDisk()
        continue
      }
      const next = this.#memory[this.#memoryHead]
      if (next === undefined) {
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = undefined
        continue
      }
      this.#memory[this.#memoryHead] = undefined
      this.#memoryHead += 1
      this.#memoryBytes -= next.end - next.offset
      if (this.#memoryHead > 4_096 && this.#memoryHead * 2 > this.#memory.length) {
        this.#memory = this.#memory.slice(this.#memoryHead)
        this.#memoryHead = 0
      }
      await this.#hand(next.record, next.seq, next.end)
    }
  }

  /** Hands on the next range of the segment being read, or moves on; back to memory once all on disk is read. */
  async #readFromDisk(): Promise<void> {
    const { registry } = this.#settings
    const segment = registry.get(this.#read.seq) ?? registry.after(this.#read.seq)
    if (!segment) {
      this.#mode = 'memory'
      return
    }
    if (segment.seq !== this.#read.seq) this.#read = { seq: segment.seq, offset: 0 }
    const limit = segment.bytes
    if (this.#read.offset >= limit) {
      const next = registry.after(segment.seq)
      // The end of the segment being appended to: from now on its new records arrive through offer().
      if (next === undefined) this.#mode = 'memory'
      else this.#read = { seq: next.seq, offset: 0 }
      return
    }
    const base = this.#read.offset
    const bytes = await readRange(join(this.#settings.dir, segmentName(segment.seq)), base, limit)
    for (const item of readSegment(bytes)) {
      if (this.#stopped || this.failure !== undefined) return
      if (item.kind === 'record') {
        await this.#hand(item.record, segment.seq, base + item.end)
        this.#read = { seq: segment.seq, offset: base + item.end }
        continue
      }
      if (!segment.damaged) this.#settings.onDamage(segment, item.bytes)
      this.#read = { seq: segment.seq, offset: base + item.offset + item.bytes }
    }
    if (bytes.length < limit - base) this.#read = { seq: segment.seq, offset: limit } // a file shorter than known
  }

  async #hand(record: SpoolRecord, seq: number, end: number): Promise<void> {
    this.#handedSinceYield += 1
    if (this.#handedSinceYield >= YIELD_EVERY) {
      this.#handedSinceYield = 0
      await new Promise((resolve) => setImmediate(resolve))
    }
    let receipt: { readonly durable: Promise<unknown> }
    try {
      receipt = await this.#settings.consumer(record)
    } catch (error) {
      this.failure = error
      return
    }
    const flight: InFlight = { seq, end, receivedAtMs: record.receivedAtMs, done: false }
    this.#inFlight.push(flight)
    receipt.durable.then(
      () => {
        flight.done = true
        this.#advance()
      },
      () => {}, // not durable (the writer gave up): it stays in the spool for the next start
    )
  }

  #advance(): void {
    while (this.#inFlightHead < this.#inFlight.length && this.#inFlight[this.#inFlightHead]!.done) {
      const flight = this.#inFlight[this.#inFlightHead]!
      this.#inFlightHead += 1
      this.#committed = { seq: flight.seq, offset: flight.end }
      this.committedRecords += 1
    }
    if (this.#inFlightHead > 4_096 && this.#inFlightHead * 2 > this.#inFlight.length) {
      this.#inFlight = this.#inFlight.slice(this.#inFlightHead)
      this.#inFlightHead = 0
    }
  }
}

import { mkdir, readFile, rename, statfs, truncate, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../util/logger.js'
import { Appender, syncDirectory } from './appender.js'
import { Checkpoint, type Position } from './checkpoint.js'
import { Drain, type SpoolConsumer } from './drain.js'
import { lockDirectory } from './lock.js'
import { resolveSpoolOptions, type ResolvedSpoolOptions, type SpoolOptions } from './options.js'
import { assertChecksumsAvailable, type SpoolRecord } from './record.js'
import { SegmentRegistry, type Segment } from './registry.js'
import { listSegments, segmentName, setAsideName, summarizeSegment } from './segments.js'

/** The checkpoint is saved and drained segments removed this often. */
const TICK_MS = 100
/** Free space is read, and the drain rate sampled, every this many ticks. */
const SLOW_TICKS = 10
/** The drain rate is over the last this many samples. */
const RATE_SAMPLES = 10

/**
 * What a spool holds and does, from `ingestor.stats().spool`.
 *
 * @example
 * ```ts
 * const { bytes, records, oldestAgeMs, accepting } = ingestor.stats().spool!
 * ```
 */
export interface SpoolStats {
  /** Bytes of segment files on disk (what `maxBytes` bounds). */
  readonly bytes: number
  /** Records spooled and not yet committed to the database. */
  readonly records: number
  /** Age of the oldest record not yet committed, in ms; `null` when there is none. */
  readonly oldestAgeMs: number | null
  /** Records committed per second, over the last ten seconds. */
  readonly drainRate: number
  /** Damaged stretches of segments skipped (each logged, its segment kept as `*.corrupt`). */
  readonly setAside: number
  /** Bytes in those stretches. */
  readonly setAsideBytes: number
  /** Bytes of torn tails cut at open (a crash in the middle of a write). */
  readonly tornBytes: number
  /** Whether new messages are acknowledged once fsync'd. */
  readonly accepting: boolean
  /** Why not, when not: full, too little disk, or a write that failed. */
  readonly reason: string | null
  /** Messages waiting, unacknowledged, for the spool to accept again. */
  readonly waiting: number
  /** Records appended since open. */
  readonly appended: number
  /** fdatasync calls since open: `appended / fsyncs` is the messages per fsync. */
  readonly fsyncs: number
}

/** What an open found, for its one log line. */
interface Recovered {
  records: number
  bytes: number
  setAside: number
  setAsideBytes: number
  tornBytes: number
}

/**
 * A durable local spool of messages: appended with group commit and
 * acknowledged only once fsync'd, drained in order into the database, and
 * removed only once committed. A directory of segment files of checksummed
 * records (see `record.ts`), a `DRAINED` checkpoint and a `LOCK`.
 *
 * @example
 * ```ts
 * const spool = await Spool.open({ dir: './spool' }, logger)
 * spool.startDrain((record) => receive(record))
 * await spool.append({ topic, payload, retained: false, receivedAtMs: Date.now() }) // on disk now
 * await spool.close()
 * ```
 */
export class Spool {
  readonly options: ResolvedSpoolOptions
  readonly #logger: Logger
  readonly #registry: SegmentRegistry
  readonly #checkpoint: Checkpoint
  readonly #release: () => Promise<void>
  readonly #recovered: Recovered
  #appender!: Appender
  #drain: Drain | undefined
  readonly #start: Position
  #timer: NodeJS.Timeout | undefined
  #ticks = 0
  #freeBytes: number | undefined
  /** Bytes appended since the free space was last read, so the estimate does not lag a burst. */
  #writtenSinceStatfs = 0
  #appendedAtStatfs = 0
  #samples: { at: number; committed: number }[] = []
  #tidying = false
  #setAside: number
  #setAsideBytes: number

  private constructor(
    options: ResolvedSpoolOptions,
    logger: Logger,
    parts: {
      registry: SegmentRegistry
      checkpoint: Checkpoint
      release: () => Promise<void>
      start: Position
      recovered: Recovered
    },
  ) {
    this.options = options
    this.#logger = logger
    this.#registry = parts.registry
    this.#checkpoint = parts.checkpoint
    this.#release = parts.release
    this.#start = parts.start
    this.#recovered = parts.recovered
    this.#setAside = parts.recovered.setAside
    this.#setAsideBytes = parts.recovered.setAsideBytes
  }

  /**
   * Opens (or creates) a spool directory: takes its lock, cuts a torn tail,
   * notes damaged segments, and starts a new segment to append to. Reads
   * each segment once, a segment at a time; keeps none of it.
   */
  static async open(options: SpoolOptions, logger: Logger): Promise<Spool> {
    const settings = resolveSpoolOptions(options)
    assertChecksumsAvailable()
    await mkdir(settings.dir, { recursive: true })
    const release = await lockDirectory(settings.dir)
    try {
      const checkpoint = await Checkpoint.open(settings.dir)
      const { registry, start, recovered } = await recover(settings.dir, checkpoint.position, logger)
      const spool = new Spool(settings, logger, { registry, checkpoint, release, start, recovered })
      await spool.#begin()
      return spool
    } catch (error) {
      await release()
      throw error
    }
  }

  async #begin(): Promise<void> {
    await this.#readFreeSpace()
    this.#appender = await Appender.start(
      {
        dir: this.options.dir,
        segmentBytes: this.options.segmentBytes,
        logger: this.#logger,
        room: (wanted) => this.#room(wanted),
        placed: (records) => this.#drain?.offer(records),
      },
      this.#registry,
    )
    this.#timer = setInterval(() => void this.#tick(), TICK_MS)
    this.#timer.unref()
    const { records, bytes, setAside, tornBytes } = this.#recovered
    if (records > 0 || setAside > 0 || tornBytes > 0) {
      this.#logger.info(
        { dir: this.options.dir, records, bytes, setAside, tornBytes },
        `spool opened with ${records} record${records === 1 ? '' : 's'} to drain`,
      )
    }
  }

  /** Appends a message; resolves once it is on disk (fsync'd), which may wait while the spool is full. */
  append(record: SpoolRecord): Promise<void> {
    return this.#appender.append(record)
  }

  /** Starts handing spooled records, oldest first, to `consumer`. */
  startDrain(consumer: SpoolConsumer): void {
    this.#drain ??= new Drain(
      {
        dir: this.options.dir,
        registry: this.#registry,
        consumer,
        memoryBytes: this.options.memoryBytes,
        logger: this.#logger,
        onDamage: (segment, bytes) => this.#noteDamage(segment, bytes),
      },
      this.#start,
    )
    this.#drain.start()
  }

  stats(): SpoolStats {
    const committed = this.#drain?.committedRecords ?? 0
    const oldest = this.#drain?.oldestReceivedAtMs
    const records = this.#recovered.records + this.#appender.appended - committed
    const reason = this.#appender.reason
    return Object.freeze({
      bytes: this.#registry.bytes,
      records,
      oldestAgeMs: records > 0 && oldest !== undefined ? Math.max(0, Date.now() - oldest) : null,
      drainRate: this.#drainRate(),
      setAside: this.#setAside,
      setAsideBytes: this.#setAsideBytes,
      tornBytes: this.#recovered.tornBytes,
      accepting: reason === undefined,
      reason: reason ?? null,
      waiting: this.#appender.waiting,
      appended: this.#appender.appended,
      fsyncs: this.#appender.fsyncs,
    })
  }

  /**
   * Stops accepting, goes on draining for up to `closeDrainMs` (calling
   * `flush` so the writer commits promptly) or until nothing is left, then
   * saves where draining reached and releases the directory. What is left is
   * drained at the next open.
   */
  async close(flush: () => Promise<void> = async () => {}): Promise<void> {
    await this.#appender.close()
    const deadline = performance.now() + this.options.closeDrainMs
    while (this.#drain && this.stats().records > 0 && this.#drain.failure === undefined) {
      if (performance.now() >= deadline) break
      await Promise.race([flush(), new Promise((resolve) => setTimeout(resolve, 100))])
      if (this.stats().records > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await this.#drain?.stop()
    await flush().catch(() => {})
    clearInterval(this.#timer)
    while (this.#tidying) await new Promise((resolve) => setTimeout(resolve, 1))
    await this.#tidy()
    await this.#checkpoint.close()
    await this.#release()
  }

  /** Bytes that may still be written, and why not `wanted` of them when fewer. */
  #room(wanted: number): { bytes: number; reason: string | undefined } {
    const held = this.#registry.bytes
    const underLimit = this.options.maxBytes - held
    const free = this.#freeBytes === undefined ? Number.POSITIVE_INFINITY : this.#freeBytes - this.#writtenSinceStatfs
    const onDisk = free - this.options.minFreeBytes
    const bytes = Math.max(0, Math.min(underLimit, onDisk))
    if (bytes >= wanted) return { bytes, reason: undefined }
    const reason =
      underLimit <= onDisk
        ? `it holds ${held} bytes and its limit (maxBytes) is ${this.options.maxBytes}`
        : `the disk has ${Math.max(0, free)} bytes free and the spool leaves ${this.options.minFreeBytes} (minFreeBytes)`
    return { bytes, reason }
  }

  #noteDamage(segment: Segment, bytes: number): void {
    segment.damaged = true
    this.#setAside += 1
    this.#setAsideBytes += bytes
    this.#logger.error(
      { segment: segmentName(segment.seq), bytes },
      `the spool skipped ${bytes} damaged bytes in ${segmentName(segment.seq)}; ` +
        `the file is kept as ${setAsideName(segment.seq)} once drained`,
    )
  }

  #drainRate(): number {
    const first = this.#samples[0]
    const last = this.#samples.at(-1)
    if (!first || !last || last.at === first.at) return 0
    return ((last.committed - first.committed) * 1000) / (last.at - first.at)
  }

  async #tick(): Promise<void> {
    if (this.#tidying) return
    this.#ticks += 1
    if (this.#ticks % SLOW_TICKS === 0) {
      this.#samples.push({ at: performance.now(), committed: this.#drain?.committedRecords ?? 0 })
      if (this.#samples.length > RATE_SAMPLES + 1) this.#samples.shift()
      await this.#readFreeSpace()
    }
    this.#writtenSinceStatfs = this.#registry.bytes - this.#appendedAtStatfs
    await this.#tidy()
    this.#appender.recheckRoom()
  }

  async #readFreeSpace(): Promise<void> {
    this.#freeBytes = await freeBytesOf(this.options.dir)
    this.#appendedAtStatfs = this.#registry.bytes
    this.#writtenSinceStatfs = 0
  }

  /** Saves the committed position, then removes the segments wholly before it. */
  async #tidy(): Promise<void> {
    if (!this.#drain || this.#tidying) return
    this.#tidying = true
    try {
      const committed = this.#drain.committed
      await this.#checkpoint.save(committed)
      const active = this.#registry.active
      for (const segment of [...this.#registry.all]) {
        if (segment === active) break
        const drained =
          segment.seq < committed.seq || (segment.seq === committed.seq && committed.offset >= segment.bytes)
        if (!drained) break
        await removeSegment(this.options.dir, segment)
        this.#registry.remove(segment)
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'the spool could not save its drained position or remove a drained segment')
    } finally {
      this.#tidying = false
    }
  }
}

/** A drained segment is deleted, or kept under another name if it held damage. */
async function removeSegment(dir: string, segment: Segment): Promise<void> {
  const path = join(dir, segmentName(segment.seq))
  if (segment.damaged) await rename(path, join(dir, setAsideName(segment.seq)))
  else await unlink(path)
}

async function freeBytesOf(dir: string): Promise<number | undefined> {
  try {
    const stats = await statfs(dir)
    return stats.bavail * stats.bsize
  } catch {
    return undefined
  }
}

/**
 * The segments a directory holds after `checkpoint`: each read once to count
 * its records and find damage; a torn tail of the last one is cut at its last
 * whole record. Segments wholly before the checkpoint are removed (a crash
 * came between saving it and removing them).
 */
async function recover(
  dir: string,
  checkpoint: Position | undefined,
  logger: Logger,
): Promise<{ registry: SegmentRegistry; start: Position; recovered: Recovered }> {
  const registry = new SegmentRegistry()
  const recovered: Recovered = { records: 0, bytes: 0, setAside: 0, setAsideBytes: 0, tornBytes: 0 }
  const seqs = await listSegments(dir)
  for (const seq of seqs) {
    const path = join(dir, segmentName(seq))
    if (checkpoint && seq < checkpoint.seq) {
      await unlink(path)
      continue
    }
    const bytes = await readFile(path)
    const from = checkpoint?.seq === seq ? Math.min(checkpoint.offset, bytes.length) : 0
    const summary = summarizeSegment(bytes, from)
    const damaged = summary.damagedBytes > 0
    if (summary.tornBytes > 0) {
      await truncate(path, summary.validEnd)
      recovered.tornBytes += summary.tornBytes
      logger.warn(
        { segment: segmentName(seq), bytes: summary.tornBytes },
        `the spool cut a torn tail of ${summary.tornBytes} bytes from ${segmentName(seq)} (a write cut short by a crash)`,
      )
    }
    if (damaged) {
      recovered.setAside += 1
      recovered.setAsideBytes += summary.damagedBytes
      logger.error(
        { segment: segmentName(seq), bytes: summary.damagedBytes },
        `the spool found ${summary.damagedBytes} damaged bytes in ${segmentName(seq)}: skipped, the intact records ` +
          `around them are drained, and the file is kept as ${setAsideName(seq)} once drained`,
      )
    }
    registry.add(seq, {
      bytes: summary.validEnd,
      records: summary.records,
      firstReceivedAtMs: summary.firstReceivedAtMs,
      damaged,
    })
    recovered.records += summary.records
    recovered.bytes += summary.validEnd - from
  }
  if (recovered.tornBytes > 0) await syncDirectory(dir)
  const first = registry.first
  const start = checkpoint && first?.seq === checkpoint.seq ? checkpoint : { seq: first?.seq ?? 0, offset: 0 }
  return { registry, start, recovered }
}

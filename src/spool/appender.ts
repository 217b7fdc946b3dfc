import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { SpoolWriteError } from '../errors/errors.js'
import type { Logger } from '../util/logger.js'
import { encodeRecord, type SpoolRecord } from './record.js'
import type { Segment, SegmentRegistry } from './registry.js'
import { segmentName } from './segments.js'

/** A record on its way to disk, and whoever waits for it to be durable. */
interface Pending {
  readonly record: SpoolRecord
  readonly bytes: Buffer
  readonly resolve: () => void
  readonly reject: (error: Error) => void
}

/** A record that is on disk, and where. */
export interface Placed {
  readonly record: SpoolRecord
  readonly seq: number
  readonly offset: number
  readonly end: number
}

/** A group is written in one write call of at most this many bytes (more records wait for the next). */
const MAX_GROUP_BYTES = 1024 * 1024
/** After a failed write, a new segment is tried after this long, doubling up to a minute. */
const RETRY_FIRST_MS = 1_000
const RETRY_MAX_MS = 60_000

export interface AppenderSettings {
  readonly dir: string
  readonly segmentBytes: number
  readonly logger: Logger
  /**
   * How many more bytes may be written (the spool's limit, the disk's free
   * space) and, when that is less than `wanted`, why.
   */
  readonly room: (wanted: number) => { readonly bytes: number; readonly reason: string | undefined }
  /** Records that became durable, in order. */
  readonly placed: (records: readonly Placed[]) => void
}

/** fsyncs a directory, so that a file created in it survives a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Appends records to the active segment with group commit: while one write
 * and fdatasync are under way, the records that arrive meanwhile gather, and
 * go to disk together in the next one. A record's promise resolves once its
 * group is fsync'd, never before.
 *
 * When there is no room (the spool's limit, the disk's free space) or a
 * write failed, it stops accepting: records wait in memory, unacknowledged,
 * until there is room again or a new segment file takes writes again. A
 * failed fsync is never retried on the same file (after a failed fsync the
 * kernel may have dropped the dirty pages, and a second fsync would report
 * success for data that is gone): the segment is closed and never written
 * to again, and the records of the failed group go to a new one.
 */
export class Appender {
  readonly #settings: AppenderSettings
  readonly #registry: SegmentRegistry
  #handle: FileHandle | undefined
  #pending: Pending[] = []
  /** Records that arrived while not accepting: in order, ahead of anything newer. */
  #waiting: Pending[] = []
  #writing = false
  #closed = false
  /** Why records are not accepted now; undefined while they are. */
  #reason: string | undefined
  #failed = false
  #retryTimer: NodeJS.Timeout | undefined
  #retryMs = RETRY_FIRST_MS
  appended = 0
  fsyncs = 0

  private constructor(settings: AppenderSettings, registry: SegmentRegistry) {
    this.#settings = settings
    this.#registry = registry
  }

  /** Starts appending to a new segment after the registry's last. */
  static async start(settings: AppenderSettings, registry: SegmentRegistry): Promise<Appender> {
    const appender = new Appender(settings, registry)
    await appender.#newSegment()
    return appender
  }

  /** Why records are not accepted now, or undefined. */
  get reason(): string | undefined {
    return this.#reason
  }

  /** Records waiting, unacknowledged, for room or for a working segment. */
  get waiting(): number {
    return this.#waiting.length
  }

  /** Resolves once the record is fsync'd. */
  append(record: SpoolRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new SpoolWriteError('the spool is closed'))
    return new Promise((resolve, reject) => {
      const pending = { record, bytes: encodeRecord(record), resolve, reject }
      if (this.#reason === undefined) this.#pending.push(pending)
      else this.#waiting.push(pending)
      this.#kick()
    })
  }

  /**
   * Looks again whether there is room, after the spool deleted drained
   * segments or the disk freed up: it accepts again once a whole segment
   * fits, so it does not flap at the limit.
   */
  recheckRoom(): void {
    if (this.#failed || this.#reason === undefined) return
    if (this.#settings.room(this.#settings.segmentBytes).reason !== undefined) return
    this.#settings.logger.info({ waiting: this.#waiting.length }, 'the spool has room again: acknowledging again')
    this.#accept()
  }

  /** Stops: what is being written finishes; what waits for room is refused (never acknowledged). */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    while (this.#writing) await new Promise((resolve) => setTimeout(resolve, 1))
    const refused = new SpoolWriteError('the spool closed before this message was written; it was not acknowledged')
    for (const pending of [...this.#waiting, ...this.#pending]) pending.reject(refused)
    this.#waiting = []
    this.#pending = []
    await this.#handle?.close().catch(() => {})
    this.#handle = undefined
  }

  #accept(): void {
    this.#reason = undefined
    this.#pending = [...this.#waiting, ...this.#pending]
    this.#waiting = []
    this.#kick()
  }

  #stopAccepting(reason: string, group: Pending[]): void {
    this.#reason = reason
    this.#waiting = [...group, ...this.#pending, ...this.#waiting]
    this.#pending = []
  }

  #kick(): void {
    if (this.#writing || this.#pending.length === 0 || this.#closed) return
    this.#writing = true
    void this.#writeGroups().finally(() => {
      this.#writing = false
      this.#kick()
    })
  }

  async #writeGroups(): Promise<void> {
    while (this.#pending.length > 0 && this.#reason === undefined && !this.#closed) {
      try {
        if (this.#registry.active.bytes >= this.#settings.segmentBytes) await this.#newSegment()
      } catch (error) {
        this.#fail(error, [])
        return
      }
      const room = this.#settings.room(MAX_GROUP_BYTES)
      const inSegment = this.#settings.segmentBytes - this.#registry.active.bytes
      const { group, size } = this.#takeGroup(Math.min(room.bytes, MAX_GROUP_BYTES, inSegment), room.bytes)
      if (group.length === 0) {
        const noRoom = room.reason ?? 'no room'
        this.#stopAccepting(noRoom, group)
        this.#settings.logger.warn(
          { reason: noRoom },
          `the spool is full (${noRoom}): messages are no longer acknowledged until it drains, ` +
            "so the broker's window and queue apply again",
        )
        return
      }
      try {
        await this.#write(group, size)
      } catch (error) {
        this.#fail(error, group)
        return
      }
    }
  }

  /**
   * The records from the front of the line that fit in `budget` bytes; a
   * record larger than the budget goes alone when `room` allows it.
   */
  #takeGroup(budget: number, room: number): { group: Pending[]; size: number } {
    let size = 0
    let count = 0
    while (count < this.#pending.length && size + this.#pending[count]!.bytes.length <= budget) {
      size += this.#pending[count]!.bytes.length
      count += 1
    }
    if (count === 0 && this.#pending[0]!.bytes.length <= room) {
      count = 1
      size = this.#pending[0]!.bytes.length
    }
    const group = count === this.#pending.length ? this.#pending : this.#pending.slice(0, count)
    this.#pending = count === this.#pending.length ? [] : this.#pending.slice(count)
    return { group, size }
  }

  async #write(group: Pending[], size: number): Promise<void> {
    const segment = this.#registry.active
    const start = segment.bytes
    const bytes =
      group.length === 1
        ? group[0]!.bytes
        : Buffer.concat(
            group.map((pending) => pending.bytes),
            size,
          )
    // A short write is followed by another, which fails with the reason (ENOSPC on a full disk).
    for (let written = 0; written < size; ) {
      const { bytesWritten } = await this.#handle!.write(bytes, written, size - written, start + written)
      if (bytesWritten === 0) throw new SpoolWriteError(`no bytes written at ${start + written} of the segment`)
      written += bytesWritten
    }
    await this.#handle!.datasync()
    this.fsyncs += 1
    this.appended += group.length
    let offset = start
    const placed = group.map((pending): Placed => {
      const at = offset
      offset += pending.bytes.length
      return { record: pending.record, seq: segment.seq, offset: at, end: offset }
    })
    segment.bytes = offset
    segment.records += group.length
    segment.firstReceivedAtMs ??= group[0]!.record.receivedAtMs
    this.#settings.placed(placed)
    for (const pending of group) pending.resolve()
  }

  /** A new segment file, created exclusively, with the directory fsync'd so the file survives a power loss. */
  async #newSegment(): Promise<void> {
    const seq = (this.#registry.all.at(-1)?.seq ?? 0) + 1
    const path = join(this.#settings.dir, segmentName(seq))
    const handle = await open(path, 'wx', 0o644)
    try {
      await syncDirectory(this.#settings.dir)
    } catch (error) {
      await handle.close()
      throw error
    }
    const old = this.#handle
    this.#handle = handle
    this.#registry.add(seq)
    await old?.close().catch(() => {})
  }

  /** A write or fsync failed: this segment is done with; nothing is acknowledged until a new one works. */
  #fail(error: unknown, group: Pending[]): void {
    const segment: Segment = this.#registry.active
    const code = (error as NodeJS.ErrnoException).code
    const reason = `writing ${join(this.#settings.dir, segmentName(segment.seq))} failed: ${code ? `${code} ` : ''}${
      error instanceof Error ? error.message : String(error)
    }`
    this.#failed = true
    this.#stopAccepting(reason, group)
    this.#settings.logger.error(
      { err: error, retryInMs: this.#retryMs },
      `the spool cannot write (${reason}): messages are no longer acknowledged; ` +
        'trying a new segment file later (a failed fsync is never retried on the same file)',
    )
    const handle = this.#handle
    this.#handle = undefined
    void handle?.close().catch(() => {})
    this.#retryTimer = setTimeout(() => void this.#retry(), this.#retryMs)
    this.#retryTimer.unref()
  }

  async #retry(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#newSegment()
    } catch (error) {
      this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS)
      this.#settings.logger.warn(
        { err: error, retryInMs: this.#retryMs },
        'the spool still cannot create a segment file; not acknowledging',
      )
      this.#retryTimer = setTimeout(() => void this.#retry(), this.#retryMs)
      this.#retryTimer.unref()
      return
    }
    this.#failed = false
    this.#retryMs = RETRY_FIRST_MS
    this.#settings.logger.info({ waiting: this.#waiting.length }, 'the spool writes again to a new segment file')
    const room = this.#settings.room(this.#settings.segmentBytes)
    if (room.reason === undefined) this.#accept()
    else this.#reason = room.reason
  }
}

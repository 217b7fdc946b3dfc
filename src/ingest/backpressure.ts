import type { Admission } from './admission.js'
import type { Entry } from './entries.js'
import type { ResolvedWriterOptions } from './options.js'
import type { PacketTracker, WriteReceipt } from './outcome.js'

type Waiter = { entries: Entry[]; bytes: number; tracker: PacketTracker; admit: (receipt: WriteReceipt) => void }

/** The bounds of the writer's buffer. */
export type BufferBounds = Pick<ResolvedWriterOptions, 'maxBufferedRows' | 'maxBufferedBytes'>

/**
 * The writer's buffer bounds and the `write()` calls waiting for room, first
 * come first served: a write resolves once its entries are taken into the
 * buffer, which waits while the buffer is full instead of dropping anything.
 * `take` is how accepted entries reach the lanes.
 */
export class Backpressure {
  #rows = 0
  #bytes = 0
  readonly #waiting: Waiter[] = []

  constructor(
    private readonly bounds: BufferBounds,
    private readonly take: (entries: Entry[]) => void,
  ) {}

  /** Rows and estimated bytes held, from acceptance until their batch commits. */
  get rows(): number {
    return this.#rows
  }

  get bytes(): number {
    return this.#bytes
  }

  /** `write()` calls still waiting for room. */
  get waiting(): number {
    return this.#waiting.length
  }

  /** Takes the entries now if they fit and nobody waits before them; otherwise waits its turn. */
  admit({ entries, bytes, tracker }: Admission): Promise<WriteReceipt> {
    if (this.#waiting.length === 0 && this.#fits(entries.length, bytes)) {
      this.#accept(entries, bytes)
      return Promise.resolve(tracker)
    }
    return new Promise((admit) => this.#waiting.push({ entries, bytes, tracker, admit }))
  }

  /** A batch left the buffer: the waiting writes that now fit are taken, in order. */
  release(rows: number, bytes: number): void {
    this.#rows -= rows
    this.#bytes -= bytes
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.entries.length, this.#waiting[0]!.bytes)) {
      const next = this.#waiting.shift()!
      this.#accept(next.entries, next.bytes)
      next.admit(next.tracker)
    }
  }

  /** The entries of every waiting write, each of which then resolves (the writer gave up on them). */
  abandon(): Entry[] {
    const waiters = this.#waiting.splice(0)
    for (const waiter of waiters) waiter.admit(waiter.tracker)
    return waiters.flatMap((waiter) => waiter.entries)
  }

  /** A lone packet larger than the bounds still fits an empty buffer, so nothing can wait forever. */
  #fits(rows: number, bytes: number): boolean {
    return (
      this.#rows === 0 ||
      (this.#rows + rows <= this.bounds.maxBufferedRows && this.#bytes + bytes <= this.bounds.maxBufferedBytes)
    )
  }

  #accept(entries: Entry[], bytes: number): void {
    this.#rows += entries.length
    this.#bytes += bytes
    this.take(entries)
  }
}

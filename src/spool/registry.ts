/** One segment file of the spool, as far as this process knows it. */
export interface Segment {
  readonly seq: number
  /** Bytes of whole, fsync'd records: the extent that is read back. */
  bytes: number
  /** Records in it (from the drained position, for a segment found at open). */
  records: number
  /** receivedAt of its first record still to drain, when known. */
  firstReceivedAtMs: number | undefined
  /** It held damaged bytes: once drained it is renamed, not deleted. */
  damaged: boolean
}

/**
 * The spool's segments, oldest first; the last is the one appended to. The
 * appender adds and grows segments, the drain reads them, and the spool
 * removes the drained ones.
 */
export class SegmentRegistry {
  readonly #segments: Segment[] = []

  add(seq: number, fields: Partial<Omit<Segment, 'seq'>> = {}): Segment {
    const segment: Segment = { seq, bytes: 0, records: 0, firstReceivedAtMs: undefined, damaged: false, ...fields }
    this.#segments.push(segment)
    return segment
  }

  get(seq: number): Segment | undefined {
    return this.#segments.find((segment) => segment.seq === seq)
  }

  /** The first segment after `seq`. */
  after(seq: number): Segment | undefined {
    return this.#segments.find((segment) => segment.seq > seq)
  }

  get first(): Segment | undefined {
    return this.#segments[0]
  }

  /** The segment appended to. */
  get active(): Segment {
    return this.#segments.at(-1)!
  }

  get all(): readonly Segment[] {
    return this.#segments
  }

  /** Bytes on disk in the segments it holds. */
  get bytes(): number {
    return this.#segments.reduce((sum, segment) => sum + segment.bytes, 0)
  }

  remove(segment: Segment): void {
    const index = this.#segments.indexOf(segment)
    if (index >= 0) this.#segments.splice(index, 1)
  }
}

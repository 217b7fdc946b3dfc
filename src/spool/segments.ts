import { readdir } from 'node:fs/promises'
import { nextIntactRecord, parseRecord, type SpoolRecord } from './record.js'

/** Segments are named by their sequence number, zero-padded so that names sort in order. */
const SEGMENT_NAME = /^(\d{12})\.seg$/

/** The file name of segment `seq`. */
export function segmentName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.seg`
}

/** A segment that held damaged bytes is kept under this name once drained, for someone to look at. */
export function setAsideName(seq: number): string {
  return `${segmentName(seq)}.corrupt`
}

/** The sequence numbers of a directory's segments, oldest first. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(dir)
  return names
    .map((name) => SEGMENT_NAME.exec(name)?.[1])
    .filter((seq): seq is string => seq !== undefined)
    .map(Number)
    .sort((a, b) => a - b)
}

/** What reading a segment's bytes finds, in order. */
export type SegmentItem =
  | { readonly kind: 'record'; readonly record: SpoolRecord; readonly offset: number; readonly end: number }
  /** Bytes that are no intact record, with an intact one after them: skipped, and the segment set aside. */
  | { readonly kind: 'damaged'; readonly offset: number; readonly bytes: number }
  /** From `offset` to the end there is no whole record: what a crash cut short (or a damaged last record). */
  | { readonly kind: 'torn'; readonly offset: number; readonly bytes: number }

/**
 * Reads the records of a segment's bytes from `from` (a record boundary).
 * Past damage it resumes at the next intact record; bytes at the end that
 * hold no whole record are a torn tail.
 */
export function* readSegment(bytes: Buffer, from = 0): Generator<SegmentItem> {
  let offset = from
  while (offset < bytes.length) {
    const parsed = parseRecord(bytes, offset)
    if (parsed.kind === 'record') {
      yield { kind: 'record', record: parsed.record, offset, end: parsed.end }
      offset = parsed.end
      continue
    }
    const next = nextIntactRecord(bytes, offset + 1)
    if (next < 0) {
      yield { kind: 'torn', offset, bytes: bytes.length - offset }
      return
    }
    yield { kind: 'damaged', offset, bytes: next - offset }
    offset = next
  }
}

/** What a whole segment holds: its records, where the last whole one ends, and any damage. */
export interface SegmentSummary {
  readonly records: number
  /** The end of the last whole record: what is kept of a torn tail. */
  readonly validEnd: number
  readonly damagedBytes: number
  readonly tornBytes: number
  /** receivedAt of its first record, if it has one. */
  readonly firstReceivedAtMs: number | undefined
}

/** Counts a segment's records from `from` and finds its damage, without keeping them. */
export function summarizeSegment(bytes: Buffer, from = 0): SegmentSummary {
  let records = 0
  let validEnd = from
  let damagedBytes = 0
  let tornBytes = 0
  let firstReceivedAtMs: number | undefined
  for (const item of readSegment(bytes, from)) {
    if (item.kind === 'record') {
      records += 1
      validEnd = item.end
      firstReceivedAtMs ??= item.record.receivedAtMs
    } else if (item.kind === 'damaged') damagedBytes += item.bytes
    else tornBytes = item.bytes
  }
  return { records, validEnd, damagedBytes, tornBytes, firstReceivedAtMs }
}

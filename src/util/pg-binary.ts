/**
 * PostgreSQL's binary wire encodings of the few types the writer sends in
 * bulk: COPY rows and array parameters. The server copies eight bytes per
 * float and timestamp instead of parsing text, and Node writes numbers into
 * a buffer instead of printing them. Each writer returns the offset after
 * what it wrote, like `Buffer#write*`.
 */

/** PostgreSQL's timestamp epoch, 2000-01-01T00:00:00Z, in Unix milliseconds. */
const POSTGRES_EPOCH_MS = 946_684_800_000
const TWO_32 = 2 ** 32

/** The element types {@link binaryArray} encodes, with their type OIDs (`pg_type.oid`). */
const ELEMENT_OIDS = { float8: 701, int4: 23, text: 25, timestamptz: 1184 } as const

/** An element type {@link binaryArray} can encode. */
export type BinaryElementType = keyof typeof ELEMENT_OIDS

/** Bytes a fixed-size element takes with its length word. */
const FIXED_BYTES = { float8: 12, int4: 8, timestamptz: 12 } as const

/**
 * A `timestamptz` field: its length, then microseconds since 2000 as a 64-bit
 * integer (below 2^53 for any date a Date holds, so exact as doubles).
 */
export function writeTimestamp(buffer: Buffer, at: number, epochMs: number): number {
  const micros = (epochMs - POSTGRES_EPOCH_MS) * 1000
  const high = Math.floor(micros / TWO_32)
  at = buffer.writeInt32BE(8, at)
  at = buffer.writeInt32BE(high, at)
  return buffer.writeUInt32BE(micros - high * TWO_32, at)
}

/** A `text` field (or NULL): its UTF-8 length, then the bytes. */
export function writeText(buffer: Buffer, at: number, value: string | null): number {
  if (value === null) return buffer.writeInt32BE(-1, at)
  const length = buffer.write(value, at + 4, 'utf8')
  buffer.writeInt32BE(length, at)
  return at + 4 + length
}

/** A `float8` field (or NULL). */
export function writeFloat8(buffer: Buffer, at: number, value: number | null): number {
  if (value === null) return buffer.writeInt32BE(-1, at)
  at = buffer.writeInt32BE(8, at)
  return buffer.writeDoubleBE(value, at)
}

/** At most three UTF-8 bytes per UTF-16 unit; the exact length is known after writing. */
export function textCapacity(value: string | null): number {
  return value === null ? 0 : value.length * 3
}

/** An element writer for each type; NULL is handled before it is called. */
const ELEMENT_WRITERS: { readonly [T in BinaryElementType]: (buffer: Buffer, at: number, value: never) => number } = {
  float8: writeFloat8,
  int4: (buffer, at, value: number) => buffer.writeInt32BE(value, buffer.writeInt32BE(4, at)),
  timestamptz: writeTimestamp,
  text: writeText,
}

/**
 * A one-dimensional array in PostgreSQL's binary format (`array_recv`), for
 * a parameter cast to `type[]`: node-postgres sends a Buffer parameter in
 * binary. `timestamptz` elements are epoch milliseconds.
 *
 * @example
 * ```ts
 * await client.query('SELECT unnest($1::float8[])', [binaryArray('float8', [1.5, null])])
 * ```
 */
export function binaryArray(type: BinaryElementType, values: readonly (number | string | null)[]): Buffer {
  let capacity = 20
  let nulls = 0
  if (type === 'text') for (const value of values) capacity += 4 + textCapacity(value as string | null)
  else capacity += values.length * FIXED_BYTES[type]
  const buffer = Buffer.allocUnsafe(capacity)
  const write = ELEMENT_WRITERS[type] as (buffer: Buffer, at: number, value: number | string) => number
  let at = 20
  for (const value of values) {
    if (value === null) {
      at = buffer.writeInt32BE(-1, at)
      nulls += 1
    } else at = write(buffer, at, value)
  }
  buffer.writeInt32BE(1, 0) // dimensions
  buffer.writeInt32BE(nulls > 0 ? 1 : 0, 4) // has NULLs
  buffer.writeInt32BE(ELEMENT_OIDS[type], 8)
  buffer.writeInt32BE(values.length, 12)
  buffer.writeInt32BE(1, 16) // lower bound
  return buffer.subarray(0, at)
}

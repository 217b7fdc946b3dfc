import type { Row } from './statements.js'

/**
 * The two COPY encodings of telemetry rows. Binary is the fast path's: the
 * server copies eight bytes per float and timestamp instead of parsing text,
 * and Node writes numbers into one buffer instead of printing them. Text is
 * the careful path's, because it does not depend on the exact column types.
 */

/** COPY's text format: tab-separated, `\N` for NULL, backslash escapes. */
function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!)
    : value
}

/** Rows in COPY's text format. Numbers print in JavaScript's shortest exact form. */
export function copyTextPayload(rows: readonly Row[]): Buffer {
  let out = ''
  for (const row of rows) {
    const plant = row.plantId === null ? '\\N' : copyText(row.plantId)
    out += `${new Date(row.timeMs).toISOString()}\t${copyText(row.deviceId)}\t${plant}`
    for (const value of row.values) out += value === null ? '\t\\N' : `\t${value}`
    out += '\n'
  }
  return Buffer.from(out, 'utf8')
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** PostgreSQL's timestamp epoch, 2000-01-01T00:00:00Z, in Unix milliseconds. */
const POSTGRES_EPOCH_MS = 946_684_800_000
const TWO_32 = 2 ** 32
/** Bytes a row takes apart from its two ids and its metrics: field count, time, two id lengths. */
const FIXED_ROW_BYTES = 2 + (4 + 8) + 4 + 4
/** Bytes one metric takes: its length and a float8. */
const METRIC_BYTES = 4 + 8

/** At most three UTF-8 bytes per UTF-16 unit; the exact length is known after writing. */
function textCapacity(value: string | null): number {
  return value === null ? 0 : value.length * 3
}

/**
 * Rows in COPY's binary format for `(time timestamptz, device_id text,
 * plant_id text, one float8 per metric)`, the columns of `telemetryColumns()`.
 * Timestamps are microseconds since 2000 as a 64-bit integer: below 2^53 for
 * any date a Date holds, so exact as doubles.
 */
export function copyBinaryPayload(rows: readonly Row[]): Buffer {
  let capacity = SIGNATURE.length + 8 + 2
  for (const row of rows)
    capacity +=
      FIXED_ROW_BYTES + row.values.length * METRIC_BYTES + textCapacity(row.deviceId) + textCapacity(row.plantId)
  const buffer = Buffer.allocUnsafe(capacity)
  let at = SIGNATURE.copy(buffer, 0)
  at = buffer.writeInt32BE(0, at) // flags
  at = buffer.writeInt32BE(0, at) // header extension length
  for (const row of rows) {
    at = buffer.writeInt16BE(3 + row.values.length, at)
    const micros = (row.timeMs - POSTGRES_EPOCH_MS) * 1000
    const high = Math.floor(micros / TWO_32)
    at = buffer.writeInt32BE(8, at)
    at = buffer.writeInt32BE(high, at)
    at = buffer.writeUInt32BE(micros - high * TWO_32, at)
    at = writeText(buffer, at, row.deviceId)
    at = writeText(buffer, at, row.plantId)
    for (const value of row.values) {
      if (value === null) {
        at = buffer.writeInt32BE(-1, at)
      } else {
        at = buffer.writeInt32BE(8, at)
        at = buffer.writeDoubleBE(value, at)
      }
    }
  }
  at = buffer.writeInt16BE(-1, at)
  return buffer.subarray(0, at)
}

function writeText(buffer: Buffer, at: number, value: string | null): number {
  if (value === null) return buffer.writeInt32BE(-1, at)
  const length = buffer.write(value, at + 4, 'utf8')
  buffer.writeInt32BE(length, at)
  return at + 4 + length
}

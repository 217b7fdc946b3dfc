import { BinaryOut, textCapacity, writeFloat8, writeInt32, writeText, writeTimestamp } from '../util/pg-binary.js'
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
/** Bytes a row takes apart from its two ids and its metrics: field count, time, two id lengths. */
const FIXED_ROW_BYTES = 2 + (4 + 8) + 4 + 4
/** Bytes one metric takes: its length and a float8. */
const METRIC_BYTES = 4 + 8

/**
 * Rows in COPY's binary format for `(time timestamptz, device_id text,
 * plant_id text, one float8 per metric)`, the columns of `telemetryColumns()`.
 */
export function copyBinaryPayload(rows: readonly Row[]): Buffer {
  let capacity = SIGNATURE.length + 8 + 2
  for (const row of rows)
    capacity +=
      FIXED_ROW_BYTES + row.values.length * METRIC_BYTES + textCapacity(row.deviceId) + textCapacity(row.plantId)
  const out = new BinaryOut(capacity)
  let at = SIGNATURE.copy(out.bytes, 0)
  at = writeInt32(out, at, 0) // flags
  at = writeInt32(out, at, 0) // header extension length
  for (const row of rows) {
    out.view.setInt16(at, 3 + row.values.length)
    at = writeTimestamp(out, at + 2, row.timeMs)
    at = writeText(out, at, row.deviceId)
    at = writeText(out, at, row.plantId)
    for (const value of row.values) at = writeFloat8(out, at, value)
  }
  out.view.setInt16(at, -1)
  return out.upTo(at + 2)
}

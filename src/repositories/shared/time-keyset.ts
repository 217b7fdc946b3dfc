import { sql, type Expression, type RawBuilder } from 'kysely'
import { z } from 'zod'
import { decodeCursor, encodeCursor, type Page } from './paging.js'

/**
 * Keyset pagination over a TIMESTAMPTZ column must compare exact keys, but a
 * JavaScript `Date` keeps only milliseconds while PostgreSQL keeps
 * microseconds. The key therefore travels as PostgreSQL's own text rendering,
 * which casts back to the identical instant.
 */
export function timeKey(column: Expression<unknown>): RawBuilder<string> {
  return sql<string>`${column}::text`
}

/** The decoded shape of a `(time, tie-breaker)` cursor. */
export const timeCursorShape = z.tuple([z.string().max(64), z.union([z.string().max(200), z.number().int()])])

/** Removes the helper column a keyset query selected for its cursor. */
function withoutKey<T extends { cursor_time: string }>(row: T): Omit<T, 'cursor_time'> {
  const { cursor_time: _, ...rest } = row
  return rest
}

/**
 * Turns `limit + 1` rows of a `(time, tie-breaker)` keyset query into a page
 * whose cursor carries the last row's exact time key and its tie-breaker.
 */
export function toTimePage<T extends { cursor_time: string }>(
  rows: T[],
  limit: number,
  tieBreakerOf: (row: T) => string | number,
): Page<Omit<T, 'cursor_time'>> {
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  return {
    items: items.map(withoutKey),
    nextCursor: rows.length > limit && last ? encodeCursor([last.cursor_time, tieBreakerOf(last)]) : null,
  }
}

/**
 * The keyset condition of a `(time, tie-breaker)` list, newest first: rows
 * strictly after the cursor's row. The tie-breaker keeps its type (a serial
 * id, or a text id such as a device's).
 */
export function olderThanCursor(
  cursor: string,
  columns: { readonly time: string; readonly tieBreaker: string },
  what: string,
): RawBuilder<boolean> {
  const [time, tieBreaker] = decodeCursor(cursor, timeCursorShape, what)
  return sql<boolean>`(${sql.ref(columns.time)}, ${sql.ref(columns.tieBreaker)}) < (${time}::timestamptz, ${tieBreaker})`
}

import { sql, type Expression, type RawBuilder } from 'kysely'
import { z } from 'zod'

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
export function withoutKey<T extends { cursor_time: string }>(row: T): Omit<T, 'cursor_time'> {
  const { cursor_time: _, ...rest } = row
  return rest
}

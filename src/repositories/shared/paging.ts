import { z } from 'zod'
import { ValidationError } from '../../errors/errors.js'

/**
 * The largest page any list method returns.
 *
 * @example
 * ```ts
 * import { MAX_PAGE_SIZE } from 'plantops-db'
 * await repos.devices.list({ limit: MAX_PAGE_SIZE })
 * ```
 */
export const MAX_PAGE_SIZE = 1_000
/**
 * The page size when none is asked for.
 *
 * @example
 * ```ts
 * import { DEFAULT_PAGE_SIZE } from 'plantops-db'
 * const page = await repos.plants.list() // at most DEFAULT_PAGE_SIZE (100) plants
 * ```
 */
export const DEFAULT_PAGE_SIZE = 100

/**
 * One page of a list: `nextCursor` is `null` on the last page; pass it back
 * as `cursor` to get the next one.
 *
 * @example
 * ```ts
 * import type { Page, Plant } from 'plantops-db'
 * let page: Page<Plant> = await repos.plants.list({ limit: 50 })
 * while (page.nextCursor) page = await repos.plants.list({ limit: 50, cursor: page.nextCursor })
 * ```
 */
export interface Page<T> {
  readonly items: T[]
  readonly nextCursor: string | null
}

/** `limit` and `cursor`, shared by every list method. */
export const pageFields = {
  limit: z.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().max(1_000).optional(),
}

/** Cursors are opaque to callers: base64url of the keyset values of the last row. */
export function encodeCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url')
}

/** Decodes a cursor this library made; anything else is a `ValidationError`. */
export function decodeCursor<S extends z.ZodType>(cursor: string, shape: S, what: string): z.output<S> {
  let values: unknown
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    values = undefined
  }
  const parsed = shape.safeParse(values)
  if (!parsed.success)
    throw new ValidationError(what, [{ path: ['cursor'], message: 'is not a cursor this list returned' }])
  return parsed.data
}

/**
 * Turns `limit + 1` fetched rows into a page: the extra row only proves
 * there is more.
 */
export function toPage<T>(rows: T[], limit: number, cursorOf: (last: T) => readonly (string | number)[]): Page<T> {
  if (rows.length <= limit) return { items: rows, nextCursor: null }
  const items = rows.slice(0, limit)
  return { items, nextCursor: encodeCursor(cursorOf(items[items.length - 1]!)) }
}

import { z } from 'zod'
import { withoutNegativeZero } from './numbers.js'

/**
 * Text PostgreSQL stores exactly as given: no NUL characters (TEXT cannot hold
 * them) and no lone UTF-16 surrogates (they cannot be encoded as UTF-8, so
 * they would come back changed).
 */
export function storableText(maxLength: number) {
  return z
    .string()
    .max(maxLength)
    .refine((value) => !value.includes('\u0000'), { message: 'must not contain NUL characters' })
    .refine((value) => value.isWellFormed(), { message: 'must be well-formed Unicode (no lone surrogates)' })
}

/**
 * Identifiers of plants and devices: 1–128 characters from `[A-Za-z0-9_.:-]`,
 * so an id is safe in an MQTT topic segment, a URL path and a log line.
 */
export const idSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, { message: 'may only contain letters, digits, "_", ".", ":" and "-"' })

const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/

/** The rule of {@link idSchema} as a plain predicate, for hot paths. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}

/** A `Date`, or an ISO-8601 date-time with an offset; always a valid instant. */
export const instantSchema = z
  .union([z.date(), z.iso.datetime({ offset: true }).transform((text) => new Date(text))])
  .refine((date) => Number.isFinite(date.getTime()), { message: 'must be a valid date' })

/** A finite number (no NaN, no ±Infinity); -0 becomes 0, see `withoutNegativeZero`. */
export const finiteNumber = z
  .number()
  .refine(Number.isFinite, { message: 'must be a finite number' })
  .transform(withoutNegativeZero)

/**
 * A lower-case SQL identifier of at most `maxLength` characters: a table or
 * schema name that needs no quoting anywhere and reads the same in `psql`.
 */
export function sqlIdentifier(maxLength: number) {
  return z
    .string()
    .regex(
      new RegExp(`^[a-z_][a-z0-9_]{0,${maxLength - 1}}$`),
      `must be a lower-case SQL identifier (letters, digits, "_") of at most ${maxLength} characters`,
    )
}

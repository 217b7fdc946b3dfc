import type { z } from 'zod'
import { ValidationError } from '../errors/errors.js'

/**
 * Parses `input` with `schema`, or throws a `ValidationError` listing every
 * problem with its field path. Runs before any SQL.
 */
export function validate<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  throw new ValidationError(
    what,
    result.error.issues.map((issue) => ({
      path: issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key)),
      message: issue.message,
    })),
  )
}

import { z } from 'zod'

const SEPARATED = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i
const DOTTED = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/i
const BARE = /^[0-9a-f]{12}$/i

/** The 12 hex digits of a 48-bit MAC in any common spelling, or undefined. */
function hexDigitsOf(text: string): string | undefined {
  const trimmed = text.trim()
  const separated = SEPARATED.exec(trimmed)
  if (separated) return [1, 3, 4, 5, 6, 7].map((i) => separated[i]).join('')
  const dotted = DOTTED.exec(trimmed)
  if (dotted) return dotted.slice(1).join('')
  return BARE.test(trimmed) ? trimmed : undefined
}

/**
 * A 48-bit MAC address in any common spelling (`AA:BB:CC:DD:EE:FF`,
 * `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`, `AABBCCDDEEFF`), normalised to one
 * canonical form, lower-case and colon-separated, so two spellings of one
 * address are the same value and conflict.
 *
 * @example
 * ```ts
 * import { macAddressSchema } from 'plantops-db'
 * macAddressSchema.parse('AA-BB-CC-00-11-22') // 'aa:bb:cc:00:11:22'
 * ```
 */
export const macAddressSchema = z
  .string()
  .max(64)
  .transform((text, context) => {
    const digits = hexDigitsOf(text)
    if (digits === undefined) {
      context.addIssue({ code: 'custom', message: 'must be a 48-bit MAC address such as AA:BB:CC:DD:EE:FF' })
      return z.NEVER
    }
    return digits.toLowerCase().match(/../g)!.join(':')
  })

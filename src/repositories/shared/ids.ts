import { randomBytes } from 'node:crypto'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/**
 * A readable, unguessable id such as `plant_k3v9q2m7x4c8b5n6`: the prefix says
 * what it names; 16 base32 characters carry 80 random bits.
 */
export function generateId(prefix: string): string {
  const bytes = randomBytes(16)
  let suffix = ''
  for (const byte of bytes) suffix += ALPHABET[byte & 31]
  return `${prefix}_${suffix}`
}

import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const derive = promisify(pbkdf2)

/**
 * PBKDF2-HMAC-SHA512 iterations for new device passwords: OWASP's Password
 * Storage Cheat Sheet figure for PBKDF2-HMAC-SHA512 (210 000). Mosquitto's own
 * `mosquitto_passwd` default, 101, is far too low.
 *
 * @example
 * ```ts
 * import { createRepositories, DEFAULT_PASSWORD_ITERATIONS } from 'plantops-db'
 * const repos = createRepositories(db, { passwordIterations: DEFAULT_PASSWORD_ITERATIONS * 2 })
 * ```
 */
export const DEFAULT_PASSWORD_ITERATIONS = 210_000

const SALT_BYTES = 12 // what mosquitto_passwd writes
const HASH_BYTES = 64 // SHA-512 output
const MAX_ITERATIONS = 10_000_000 // refuse to burn a core on a corrupted line

/** A strong random password for a device: 24 random bytes, base64url (32 characters). */
export function generateDevicePassword(): string {
  return randomBytes(24).toString('base64url')
}

/**
 * Hashes `password` in Mosquitto's password-file format,
 * `$7$<iterations>$<base64 salt>$<base64 hash>`, exactly as `mosquitto_passwd`
 * writes it, so a real Mosquitto can authenticate the device. Runs on libuv's
 * thread pool, not the event loop.
 *
 * @example
 * ```ts
 * import { hashDevicePassword } from 'plantops-db'
 * const line = await hashDevicePassword('s3cret') // '$7$210000$…$…'
 * ```
 */
export async function hashDevicePassword(password: string, iterations = DEFAULT_PASSWORD_ITERATIONS): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const hash = await derive(password, salt, iterations, HASH_BYTES, 'sha512')
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`
}

interface ParsedHash {
  iterations: number
  salt: Buffer
  hash: Buffer
}

function parseHash(encoded: string): ParsedHash | undefined {
  const match = /^\$7\$(\d{1,9})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(encoded)
  if (!match) return undefined
  const iterations = Number(match[1])
  const hash = Buffer.from(match[3]!, 'base64')
  if (iterations < 1 || iterations > MAX_ITERATIONS || hash.length !== HASH_BYTES) return undefined
  return { iterations, salt: Buffer.from(match[2]!, 'base64'), hash }
}

/** Stands in for an unknown user's hash, at the cost of a real one. */
function decoy(iterations: number): ParsedHash {
  return { iterations, salt: Buffer.alloc(SALT_BYTES), hash: Buffer.alloc(HASH_BYTES) }
}

/**
 * Whether `password` matches a `$7$` line. Compares in constant time, and
 * spends the same work (`decoyIterations`, the deployment's own count) on a
 * missing or malformed hash (pass `undefined`), so timing tells nothing about
 * which usernames exist.
 *
 * @example
 * ```ts
 * import { hashDevicePassword, verifyDevicePassword } from 'plantops-db'
 * const line = await hashDevicePassword('s3cret')
 * await verifyDevicePassword('s3cret', line) // true
 * ```
 */
export async function verifyDevicePassword(
  password: string,
  encoded: string | undefined,
  decoyIterations = DEFAULT_PASSWORD_ITERATIONS,
): Promise<boolean> {
  const parsed = encoded === undefined ? undefined : parseHash(encoded)
  const against = parsed ?? decoy(decoyIterations)
  const candidate = await derive(password, against.salt, against.iterations, HASH_BYTES, 'sha512')
  return timingSafeEqual(candidate, against.hash) && parsed !== undefined
}

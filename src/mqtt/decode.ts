/**
 * Turns an MQTT payload into a sensor packet (or status). Throw to have the
 * message dead-lettered as `decode_failed` with its raw bytes.
 *
 * @example
 * ```ts
 * import type { PayloadDecoder } from 'plantops-db/mqtt'
 * const cbor: PayloadDecoder = (topic, payload) => decodeCbor(payload)
 * ```
 */
export type PayloadDecoder = (topic: string, payload: Buffer) => unknown

/**
 * The default decoder: UTF-8 JSON.
 *
 * @example
 * ```ts
 * import { decodeJson, type PayloadDecoder } from 'plantops-db/mqtt'
 * const lenient: PayloadDecoder = (topic, payload) => decodeJson(topic, Buffer.from(payload.toString().trim()))
 * ```
 */
export const decodeJson: PayloadDecoder = (_topic, payload) => JSON.parse(payload.toString('utf8'))

/** A status payload: `online` / `offline` as plain text, or `{ "status": "offline" }`. */
export function statusOf(decoded: unknown): 'online' | 'offline' | undefined {
  const value = typeof decoded === 'object' && decoded !== null ? (decoded as { status?: unknown }).status : decoded
  return value === 'online' || value === 'offline' ? value : undefined
}

/** Status payloads are often bare words, not JSON: accept both. */
export function decodeStatus(decode: PayloadDecoder, topic: string, payload: Buffer): unknown {
  const text = payload.toString('utf8').trim()
  if (text === 'online' || text === 'offline') return text
  return decode(topic, payload)
}

/**
 * The bytes a dead letter keeps of a packet: raw bytes as they came, text as
 * UTF-8, anything else as JSON, with the values JSON cannot say (NaN,
 * ±Infinity, BigInt) kept as strings rather than turned into null.
 */
export function jsonPayload(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value)
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  try {
    const text = JSON.stringify(value, (_key, item: unknown) => {
      if (typeof item === 'number' && !Number.isFinite(item)) return String(item)
      if (typeof item === 'bigint') return item.toString()
      return item
    })
    return Buffer.from(text ?? String(value), 'utf8')
  } catch {
    return Buffer.from(String(value), 'utf8')
  }
}

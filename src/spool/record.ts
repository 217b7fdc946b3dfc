import * as zlib from 'node:zlib'
import { ConfigurationError } from '../errors/errors.js'

/**
 * zlib's CRC-32 (Node 20.15 and later). Imported as a namespace so that an
 * older Node still loads the package, and only a host that spools is told.
 */
export function crc32(bytes: Buffer): number {
  return zlib.crc32(bytes)
}

/** Throws when this Node has no `zlib.crc32`, before anything is spooled. */
export function assertChecksumsAvailable(): void {
  if (typeof (zlib as { crc32?: unknown }).crc32 !== 'function') {
    throw new ConfigurationError(`the spool needs Node 20.15 or later (zlib.crc32); this is Node ${process.version}`)
  }
}

/**
 * One spooled message on disk, little-endian:
 *
 * ```
 * header (16 bytes)  u32 magic "PSR1" | u32 body length | u32 CRC-32 of the body | u32 CRC-32 of the first 12 bytes
 * body               u8 flags (bit 0: retained) | f64 receivedAt (epoch ms) | u16 topic length | topic (UTF-8) | payload
 * ```
 *
 * The header has a checksum of its own so that a damaged length is caught
 * before it is trusted, and a magic number so that, past a damaged record,
 * reading can find the next whole one by searching for it (a flipped byte
 * costs one record, not the rest of the segment).
 */
export const RECORD_MAGIC = 0x31525350 // "PSR1" read as little-endian bytes 50 53 52 31
export const HEADER_BYTES = 16
const FIXED_BODY_BYTES = 1 + 8 + 2
/** No record is longer than this (an MQTT packet is at most 256 MiB); a longer length is damage. */
export const MAX_BODY_BYTES = 256 * 1024 * 1024 + FIXED_BODY_BYTES + 65_535
const MAGIC_BYTES = Buffer.from([0x50, 0x53, 0x52, 0x31])

/**
 * A message as it is spooled: its topic and bytes, whether the broker sent it
 * as retained, and when it arrived (kept so that a replayed reading without a
 * time of its own gets the same time again, and deduplicates).
 */
export interface SpoolRecord {
  readonly topic: string
  readonly payload: Buffer
  readonly retained: boolean
  readonly receivedAtMs: number
}

/** The bytes of one record, header included. */
export function encodeRecord(record: SpoolRecord): Buffer {
  const topicBytes = Buffer.byteLength(record.topic, 'utf8')
  const bodyBytes = FIXED_BODY_BYTES + topicBytes + record.payload.length
  const out = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes)
  out.writeUInt8(record.retained ? 1 : 0, HEADER_BYTES)
  out.writeDoubleLE(record.receivedAtMs, HEADER_BYTES + 1)
  out.writeUInt16LE(topicBytes, HEADER_BYTES + 9)
  out.write(record.topic, HEADER_BYTES + FIXED_BODY_BYTES, 'utf8')
  record.payload.copy(out, HEADER_BYTES + FIXED_BODY_BYTES + topicBytes)
  out.writeUInt32LE(RECORD_MAGIC, 0)
  out.writeUInt32LE(bodyBytes, 4)
  out.writeUInt32LE(crc32(out.subarray(HEADER_BYTES)), 8)
  out.writeUInt32LE(crc32(out.subarray(0, 12)), 12)
  return out
}

/** What is found at an offset of a segment's bytes. */
export type Parsed =
  | { readonly kind: 'record'; readonly record: SpoolRecord; readonly end: number }
  /** Fewer bytes than a whole record: the end of what was written (or torn by a crash). */
  | { readonly kind: 'short' }
  /** Bytes that are not a whole, intact record. */
  | { readonly kind: 'damaged' }

/** Reads the record at `offset` of `bytes`, checking both checksums. */
export function parseRecord(bytes: Buffer, offset: number): Parsed {
  if (bytes.length - offset < HEADER_BYTES) return { kind: 'short' }
  const magic = bytes.readUInt32LE(offset)
  const headerSum = bytes.readUInt32LE(offset + 12)
  if (magic !== RECORD_MAGIC || crc32(bytes.subarray(offset, offset + 12)) !== headerSum) return { kind: 'damaged' }
  const bodyBytes = bytes.readUInt32LE(offset + 4)
  if (bodyBytes < FIXED_BODY_BYTES || bodyBytes > MAX_BODY_BYTES) return { kind: 'damaged' }
  const start = offset + HEADER_BYTES
  const end = start + bodyBytes
  if (end > bytes.length) return { kind: 'short' }
  const body = bytes.subarray(start, end)
  if (crc32(body) !== bytes.readUInt32LE(offset + 8)) return { kind: 'damaged' }
  const topicBytes = body.readUInt16LE(9)
  if (FIXED_BODY_BYTES + topicBytes > bodyBytes) return { kind: 'damaged' }
  return {
    kind: 'record',
    end,
    record: {
      retained: (body[0]! & 1) === 1,
      receivedAtMs: body.readDoubleLE(1),
      topic: body.toString('utf8', FIXED_BODY_BYTES, FIXED_BODY_BYTES + topicBytes),
      payload: body.subarray(FIXED_BODY_BYTES + topicBytes),
    },
  }
}

/** The next offset after `from` where an intact record starts, or -1: how reading resumes past damage. */
export function nextIntactRecord(bytes: Buffer, from: number): number {
  for (let at = bytes.indexOf(MAGIC_BYTES, from); at >= 0; at = bytes.indexOf(MAGIC_BYTES, at + 1)) {
    if (parseRecord(bytes, at).kind === 'record') return at
  }
  return -1
}

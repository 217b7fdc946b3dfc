import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from './record.js'

const CHECKPOINT_FILE = 'DRAINED'
const MAGIC = 0x31445350 // "PSD1"

/** A place in the spool: a segment and a byte offset in it. */
export interface Position {
  readonly seq: number
  readonly offset: number
}

function encode(position: Position): Buffer {
  const bytes = Buffer.alloc(16)
  bytes.writeUInt32LE(MAGIC, 0)
  bytes.writeUInt32LE(position.seq, 4)
  bytes.writeUInt32LE(position.offset, 8)
  bytes.writeUInt32LE(crc32(bytes.subarray(0, 12)), 12)
  return bytes
}

function decode(bytes: Buffer): Position | undefined {
  if (bytes.length < 16 || bytes.readUInt32LE(0) !== MAGIC) return undefined
  if (crc32(bytes.subarray(0, 12)) !== bytes.readUInt32LE(12)) return undefined
  return { seq: bytes.readUInt32LE(4), offset: bytes.readUInt32LE(8) }
}

/**
 * Where draining has reached: every record before this position is
 * committed to the database. Written in place, 16 bytes with a checksum,
 * after commits and before drained segments are deleted. It is not fsync'd:
 * after a power loss it may be older than the last commit, and the records
 * after it are written again, which the writer's deduplication absorbs; it
 * is never ahead of a commit.
 */
export class Checkpoint {
  readonly #handle: FileHandle
  #last: Position | undefined

  private constructor(handle: FileHandle, last: Position | undefined) {
    this.#handle = handle
    this.#last = last
  }

  static async open(dir: string): Promise<Checkpoint> {
    const path = join(dir, CHECKPOINT_FILE)
    // Not 'a+': writes in append mode ignore the position, and the checkpoint is rewritten in place.
    const handle = await open(path, 'r+').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return open(path, 'w+')
      throw error
    })
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(16), 0, 16, 0)
    return new Checkpoint(handle, decode(buffer.subarray(0, bytesRead)))
  }

  /** The position read at open (undefined: none, or a damaged one: drain from the first segment). */
  get position(): Position | undefined {
    return this.#last
  }

  async save(position: Position): Promise<void> {
    if (this.#last && this.#last.seq === position.seq && this.#last.offset === position.offset) return
    await this.#handle.write(encode(position), 0, 16, 0)
    this.#last = position
  }

  close(): Promise<void> {
    return this.#handle.close()
  }
}

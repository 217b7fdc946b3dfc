import { z } from 'zod'
import { validate } from '../util/validate.js'

/**
 * Where and how much an ingestor spools; see `MqttIngestorOptions.spool`.
 *
 * @example
 * ```ts
 * const spool: SpoolOptions = { dir: '/var/lib/plantops/spool', maxBytes: 2 * 1024 ** 3 }
 * ```
 */
export interface SpoolOptions {
  /** The directory, created if missing. One process owns it (a `LOCK` file). */
  readonly dir: string
  /** At most this many bytes of segments on disk; then messages wait unacknowledged. Default 1 GiB. */
  readonly maxBytes?: number
  /** Stop accepting while the disk has less than this free. Default 64 MiB. */
  readonly minFreeBytes?: number
  /** A segment file is closed and a new one started past this size. Default 8 MiB. */
  readonly segmentBytes?: number
  /**
   * While the drain keeps up, records go on to the writer from memory; when
   * it falls behind by more than this, they are read back from disk instead.
   * Default 8 MiB.
   */
  readonly memoryBytes?: number
  /** How long `close()` goes on draining what the spool holds into the database. Default 10 s. */
  readonly closeDrainMs?: number
}

const MiB = 1024 * 1024

const spoolSchema = z
  .strictObject({
    dir: z.string().min(1),
    maxBytes: z
      .number()
      .int()
      .min(MiB)
      .default(1024 * MiB),
    minFreeBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * MiB),
    segmentBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(1024 * MiB)
      .default(8 * MiB),
    memoryBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(8 * MiB),
    closeDrainMs: z.number().int().min(0).default(10_000),
  })
  .refine((o) => o.segmentBytes <= o.maxBytes, {
    message: 'must not exceed maxBytes',
    path: ['segmentBytes'],
  })

export type ResolvedSpoolOptions = Readonly<z.output<typeof spoolSchema>>

export function resolveSpoolOptions(options: SpoolOptions): ResolvedSpoolOptions {
  return Object.freeze(validate(spoolSchema, options, 'spool options'))
}

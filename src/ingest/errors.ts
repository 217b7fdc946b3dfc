import { PlantopsError } from '../errors/errors.js'

/**
 * `write()` or `deadLetter()` was called after `close()`.
 *
 * @example
 * ```ts
 * import { WriterClosedError } from 'plantops-db'
 * await writer.write(packet).catch((err) => { if (err instanceof WriterClosedError) reconnectLater() })
 * ```
 */
export class WriterClosedError extends PlantopsError {
  constructor() {
    super('WRITER_CLOSED', 'the telemetry writer is closed and accepts no more packets')
  }
}

/**
 * `close({ timeoutMs })` gave up before the database came back: the packets
 * still held were **not** made durable. Their `durable` promises reject with
 * this error, so an upstream source knows not to acknowledge them.
 *
 * @example
 * ```ts
 * import { WriterAbortedError } from 'plantops-db'
 * receipt.durable.catch((err) => { if (err instanceof WriterAbortedError) leaveUnacknowledged() })
 * ```
 */
export class WriterAbortedError extends PlantopsError {
  constructor(readonly pendingRows: number) {
    super(
      'WRITER_ABORTED',
      `the telemetry writer closed with ${pendingRows} rows not yet durable; they were not written`,
    )
  }
}

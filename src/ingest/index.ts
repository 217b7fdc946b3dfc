export { WriterAbortedError, WriterClosedError } from './errors.js'
export type {
  BatchErrorInfo,
  BatchInfo,
  FlushErrorInfo,
  FlushInfo,
  TelemetryWriterOptions,
  WriterStats,
} from './options.js'
export type { RejectReason, WriteOutcome, WriteReceipt } from './outcome.js'
export {
  EPOCH_MILLISECONDS_FROM,
  MAX_BACKLOG_READINGS,
  sensorPacketSchema,
  type PacketTime,
  type SensorPacket,
  type SensorReading,
} from './packet.js'
export { replayRejects, type ReplayOptions, type ReplayReport } from './replay.js'
export type { DeadLetterInput, PacketMeta } from './packet-meta.js'
export { createTelemetryWriter, TelemetryWriter } from './writer.js'

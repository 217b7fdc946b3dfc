import type { TimescaleMode } from '../src/schema/timescaledb.js'
import type { Logger } from '../src/util/logger.js'
import type { DuplicateReadings } from '../src/schema/migration.js'

/** What a migration may need from the run that applies it. */
export interface MigrationContext {
  readonly timescaledb: TimescaleMode
  readonly logger: Logger
  /** Told what migration 007 did about duplicate readings, when it found any. */
  readonly onDuplicateReadings?: (duplicates: DuplicateReadings) => void
}

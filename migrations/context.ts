import type { TimescaleMode } from '../src/schema/timescaledb.js'
import type { Logger } from '../src/util/logger.js'

/** What a migration may need from the run that applies it. */
export interface MigrationContext {
  readonly timescaledb: TimescaleMode
  readonly logger: Logger
}

import type { Logger } from '../src/logging/logger.js'

/**
 * What to do about TimescaleDB when creating `telemetry`:
 * - `'auto'` (default): make it a hypertable when the extension is available
 *   and can be created; otherwise keep a plain table and log why;
 * - `'require'`: the same, but fail the migration when it cannot;
 * - `'off'`: always a plain table.
 */
export type TimescaleMode = 'auto' | 'require' | 'off'

/** What a migration may need from the run that applies it. */
export interface MigrationContext {
  readonly timescaledb: TimescaleMode
  readonly logger: Logger
}

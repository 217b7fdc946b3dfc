import type { Logger } from '../src/util/logger.js'

/**
 * What to do about TimescaleDB when creating `telemetry`:
 * - `'auto'` (default): make it a hypertable when the extension is available
 *   and can be created; otherwise keep a plain table and log why;
 * - `'require'`: the same, but fail the migration when it cannot;
 * - `'off'`: always a plain table.
 *
 * @example
 * ```ts
 * import { migrateToLatest, type TimescaleMode } from 'plantops-db'
 * const mode: TimescaleMode = process.env.NODE_ENV === 'production' ? 'require' : 'auto'
 * await migrateToLatest(db, { timescaledb: mode })
 * ```
 */
export type TimescaleMode = 'auto' | 'require' | 'off'

/** What a migration may need from the run that applies it. */
export interface MigrationContext {
  readonly timescaledb: TimescaleMode
  readonly logger: Logger
}

/**
 * The logger plantops-db writes to: the subset of pino's interface it uses,
 * so a pino (or bunyan-style) logger can be passed as is. Each method takes an
 * object of fields and a message.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * import { migrateToLatest } from 'plantops-db'
 * await migrateToLatest(db, { logger: pino() })
 * ```
 */
export interface Logger {
  debug(fields: object, message: string): void
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

function hasFields(fields: object): boolean {
  return Object.keys(fields).length > 0
}

/**
 * The default logger: one line per event on the console, prefixed
 * `[plantops-db]`; `debug` is dropped.
 *
 * @example
 * ```ts
 * import { consoleLogger } from 'plantops-db'
 * consoleLogger.info({ migration: '001_create_plants' }, 'applying migration')
 * ```
 */
export const consoleLogger: Logger = Object.freeze({
  debug() {},
  info(fields: object, message: string) {
    if (hasFields(fields)) console.info(`[plantops-db] ${message}`, fields)
    else console.info(`[plantops-db] ${message}`)
  },
  warn(fields: object, message: string) {
    if (hasFields(fields)) console.warn(`[plantops-db] ${message}`, fields)
    else console.warn(`[plantops-db] ${message}`)
  },
  error(fields: object, message: string) {
    if (hasFields(fields)) console.error(`[plantops-db] ${message}`, fields)
    else console.error(`[plantops-db] ${message}`)
  },
})

/**
 * A logger that writes nothing.
 *
 * @example
 * ```ts
 * import { migrateToLatest, silentLogger } from 'plantops-db'
 * await migrateToLatest(db, { logger: silentLogger })
 * ```
 */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
})

import { z } from 'zod'

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
  /** Detail for debugging; the console logger drops it. */
  debug(fields: object, message: string): void
  /** Progress worth knowing: a migration applied, an ingestor subscribed. */
  info(fields: object, message: string): void
  /** Something went wrong and was handled: a retry, a plain table instead of a hypertable. */
  warn(fields: object, message: string): void
  /** Something went wrong that an operator should look at; the library still loses nothing. */
  error(fields: object, message: string): void
}

type ConsoleMethod = (...data: unknown[]) => void

/** An error as one line: its SQLSTATE or code, if any, and its message. */
function oneLine(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? `${code} ${error.message}` : error.message
}

/** Messages are written to be read alone; only an attached error adds to them, on the same line. */
function toConsole(write: ConsoleMethod) {
  return (fields: object, message: string): void => {
    const error = (fields as { err?: unknown }).err
    write(error === undefined ? `[plantops-db] ${message}` : `[plantops-db] ${message}: ${oneLine(error)}`)
  }
}

/**
 * The default logger: one line per event on the console, prefixed
 * `[plantops-db]`; `debug` is dropped.
 *
 * @example
 * ```ts
 * import { consoleLogger } from 'plantops-db'
 * consoleLogger.info({ migration: '001_create_plants' }, 'applying migration 001_create_plants')
 * ```
 */
export const consoleLogger: Logger = Object.freeze({
  debug() {},
  info: toConsole((...data) => console.info(...data)),
  warn: toConsole((...data) => console.warn(...data)),
  error: toConsole((...data) => console.error(...data)),
})

/** Fields as JSON: an `err` becomes its name, message, code and stack, which JSON.stringify would drop. */
function serializable(fields: object): object {
  const error = (fields as { err?: unknown }).err
  if (!(error instanceof Error)) return fields
  const code = (error as { code?: unknown }).code
  return {
    ...fields,
    err: { type: error.name, message: error.message, ...(code !== undefined && { code }), stack: error.stack },
  }
}

/**
 * A logger writing one JSON object per line (`time`, `level`, `msg` and the
 * fields, pino's shape), for log collectors; what `plantops-db ingest` uses.
 *
 * @example
 * ```ts
 * import { jsonLinesLogger } from 'plantops-db'
 * const logger = jsonLinesLogger((line) => process.stdout.write(line))
 * logger.info({ rows: 10 }, 'batch committed') // {"time":"…","level":"info","msg":"batch committed","rows":10}
 * ```
 */
export function jsonLinesLogger(write: (line: string) => void, options: { debug?: boolean } = {}): Logger {
  const at =
    (level: string) =>
    (fields: object, message: string): void =>
      write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...serializable(fields) })}\n`)
  return Object.freeze({
    debug: options.debug ? at('debug') : () => {},
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  })
}

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

function isLogger(value: unknown): value is Logger {
  if (typeof value !== 'object' || value === null) return false
  const methods = value as Record<string, unknown>
  return ['debug', 'info', 'warn', 'error'].every((name) => typeof methods[name] === 'function')
}

/** The `logger` option every entry point takes: a {@link Logger}, or `false` for silence. */
export const loggerOption = z
  .custom<Logger | false>((value) => value === false || isLogger(value), {
    message: 'must be a logger with debug, info, warn and error methods, or false for silence',
  })
  .optional()

/** The logger an entry point writes to: the one given, silence for `false`, else the console. */
export function resolveLogger(option: Logger | false | undefined): Logger {
  if (option === false) return silentLogger
  return option ?? consoleLogger
}

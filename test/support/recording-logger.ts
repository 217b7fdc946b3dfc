import type { Logger } from '../../src/index.js'

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error'
  fields: object
  message: string
}

/** A logger that keeps what it is told, for asserting on warnings the library must give. */
export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  const at = (level: LogEntry['level']) => (fields: object, message: string) => {
    entries.push({ level, fields, message })
  }
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

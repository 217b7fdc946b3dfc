import { sql, type RawBuilder } from 'kysely'
import type { KnownSettingKey } from './settings.js'

/** The stored text of one setting: no row when it was never written. */
export function settingValueQuery(key: KnownSettingKey): RawBuilder<{ value: string }> {
  return sql<{ value: string }>`SELECT value FROM settings WHERE key = ${key}`
}

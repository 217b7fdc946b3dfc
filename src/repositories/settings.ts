import { sql, type Kysely } from 'kysely'
import { z } from 'zod'
import { ValidationError } from '../errors/errors.js'
import type { Database, Setting } from '../schema/database.js'
import { decodeCursor, pageFields, storableText, toPage, validate, type Page } from './shared/index.js'

/** Whole numbers stored as their decimal text. */
const wholeNumberText = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, { message: 'must be a whole number' })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))

/**
 * The settings plantops-db itself reads, with their defaults and rules:
 *
 * | key | meaning | default | allowed |
 * | --- | --- | --- | --- |
 * | `alerts.cooldown_seconds` | quiet time after an alert (same plant, metric, direction) | 3600 | 0 … 2 592 000 |
 * | `telemetry.retention_days` | how long hosts keep telemetry (`telemetry.deleteOlderThan`) | 365 | 1 … 36 500 |
 *
 * @example
 * ```ts
 * import { KNOWN_SETTINGS } from 'plantops-db'
 * KNOWN_SETTINGS['alerts.cooldown_seconds'].default // 3600
 * ```
 */
export const KNOWN_SETTINGS = Object.freeze({
  'alerts.cooldown_seconds': Object.freeze({ default: 3_600, schema: wholeNumberText(0, 2_592_000) }),
  'telemetry.retention_days': Object.freeze({ default: 365, schema: wholeNumberText(1, 36_500) }),
})

/** A key of {@link KNOWN_SETTINGS}. @example `const key: KnownSettingKey = 'alerts.cooldown_seconds'` */
export type KnownSettingKey = keyof typeof KNOWN_SETTINGS

const keySchema = storableText(200).min(1)
const valueSchema = storableText(100_000)
const listOptionsSchema = z.strictObject({ ...pageFields })
const cursorShape = z.tuple([z.string()])

function isKnown(key: string): key is KnownSettingKey {
  return Object.hasOwn(KNOWN_SETTINGS, key)
}

/** Parses a known key's text, naming the key when it is not valid. */
function parseKnown(key: KnownSettingKey, text: string): number {
  const parsed = KNOWN_SETTINGS[key].schema.safeParse(text)
  if (parsed.success) return parsed.data
  throw new ValidationError(
    `setting ${key}`,
    parsed.error.issues.map((issue) => ({ path: ['value'], message: issue.message })),
  )
}

/**
 * The `settings` repository: plain text key/value pairs, plus typed access to
 * the library's own keys ({@link KNOWN_SETTINGS}), which are validated even
 * when written as text.
 *
 * @example
 * ```ts
 * const { settings } = createRepositories(db)
 * await settings.write('alerts.cooldown_seconds', 900)
 * await settings.read('alerts.cooldown_seconds') // 900
 * await settings.set('ui.theme', 'dark')
 * ```
 */
export interface SettingsRepository {
  /** The setting, or `undefined`. */
  get(key: string): Promise<Setting | undefined>
  /** Creates or replaces a setting and bumps `updated_at`. */
  set(key: string, value: string): Promise<Setting>
  /** Deletes a setting; whether it existed. */
  delete(key: string): Promise<boolean>
  /** Settings by key, a page at a time. */
  list(options?: { limit?: number; cursor?: string }): Promise<Page<Setting>>
  /** A known setting's value, or its default when unset. */
  read(key: KnownSettingKey): Promise<number>
  /** Writes a known setting after validating it. */
  write(key: KnownSettingKey, value: number): Promise<Setting>
}

export function createSettingsRepository(db: Kysely<Database>): SettingsRepository {
  const get = async (key: string) => {
    const name = validate(keySchema, key, 'setting key')
    return db.selectFrom('settings').selectAll().where('key', '=', name).executeTakeFirst()
  }
  const set = async (key: string, value: string) => {
    const name = validate(keySchema, key, 'setting key')
    const text = validate(valueSchema, value, `setting ${name}`)
    if (isKnown(name)) parseKnown(name, text)
    return db
      .insertInto('settings')
      .values({ key: name, value: text })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: text, updated_at: sql`now()` }))
      .returningAll()
      .executeTakeFirstOrThrow()
  }

  return {
    get,
    set,

    async delete(key) {
      const name = validate(keySchema, key, 'setting key')
      const deleted = await db.deleteFrom('settings').where('key', '=', name).returning('key').executeTakeFirst()
      return deleted !== undefined
    },

    async list(options = {}) {
      const { limit, cursor } = validate(listOptionsSchema, options, 'setting list options')
      let query = db
        .selectFrom('settings')
        .selectAll()
        .orderBy('key')
        .limit(limit + 1)
      if (cursor !== undefined)
        query = query.where('key', '>', decodeCursor(cursor, cursorShape, 'setting list options')[0])
      return toPage(await query.execute(), limit, (setting) => [setting.key])
    },

    async read(key) {
      const name = validate(z.enum(Object.keys(KNOWN_SETTINGS) as [KnownSettingKey]), key, 'setting key')
      const setting = await get(name)
      return setting === undefined ? KNOWN_SETTINGS[name].default : parseKnown(name, setting.value)
    },

    async write(key, value) {
      const name = validate(z.enum(Object.keys(KNOWN_SETTINGS) as [KnownSettingKey]), key, 'setting key')
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new ValidationError(`setting ${name}`, [{ path: ['value'], message: 'must be a finite number' }])
      }
      return set(name, String(value))
    },
  }
}

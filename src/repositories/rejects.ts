import type { Kysely } from 'kysely'
import { z } from 'zod'
import type { Database, TelemetryReject } from '../schema/database.js'
import {
  olderThanCursor,
  guarded,
  pageFields,
  storableText,
  timeKey,
  toTimePage,
  validate,
  type Page,
} from './shared/index.js'

/**
 * Options of `rejects.list`: one reason or all, replayed ones too or not, and a page.
 *
 * @example
 * ```ts
 * import { rejectListOptionsSchema } from 'plantops-db'
 * rejectListOptionsSchema.parse({ reason: 'unknown_device', limit: 20 })
 * ```
 */
export const rejectListOptionsSchema = z.strictObject({
  reason: storableText(200).min(1).optional(),
  /** Include dead letters `replayRejects` already resubmitted. Default `false`. */
  includeReplayed: z.boolean().default(false),
  ...pageFields,
})

/** Options of `rejects.list`. @example `const o: RejectListOptions = { reason: 'time_skew' }` */
export type RejectListOptions = z.input<typeof rejectListOptionsSchema>

/**
 * How many dead letters wait for one reason, and when the newest arrived.
 *
 * @example
 * ```ts
 * const counts: RejectCount[] = await repos.rejects.countByReason()
 * for (const c of counts) console.log(c.reason, c.count, c.newest)
 * ```
 */
export interface RejectCount {
  readonly reason: string
  readonly count: number
  readonly newest: Date
}

/**
 * The `telemetry_rejects` repository: the dead letters the writer and the
 * ingestor recorded, for operators to look at before `replayRejects`.
 *
 * @example
 * ```ts
 * const { rejects } = createRepositories(db)
 * const page = await rejects.list({ reason: 'unknown_device', limit: 20 })
 * for (const r of page.items) console.log(r.received_at, r.device_id, r.detail)
 * ```
 */
export interface RejectsRepository {
  /** Dead letters, newest first, a page at a time; not yet replayed unless `includeReplayed`. */
  list(options?: RejectListOptions): Promise<Page<TelemetryReject>>
  /** Dead letters not yet replayed, counted by reason, the most frequent first. */
  countByReason(): Promise<RejectCount[]>
}

export function createRejectsRepository(db: Kysely<Database>): RejectsRepository {
  return {
    async list(options = {}) {
      const { reason, includeReplayed, limit, cursor } = validate(
        rejectListOptionsSchema,
        options,
        'reject list options',
      )
      let query = db
        .selectFrom('telemetry_rejects')
        .selectAll()
        .select((eb) => timeKey(eb.ref('received_at')).as('cursor_time'))
        .orderBy('received_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
      if (reason !== undefined) query = query.where('reason', '=', reason)
      if (!includeReplayed) query = query.where('replayed_at', 'is', null)
      if (cursor !== undefined)
        query = query.where(olderThanCursor(cursor, { time: 'received_at', tieBreaker: 'id' }, 'reject list options'))
      const rows = await guarded('reject list options', () => query.execute())
      return toTimePage(rows, limit, (reject) => reject.id)
    },

    async countByReason() {
      const rows = await db
        .selectFrom('telemetry_rejects')
        .select((eb) => ['reason', eb.fn.countAll<string>().as('count'), eb.fn.max('received_at').as('newest')])
        .where('replayed_at', 'is', null)
        .groupBy('reason')
        .orderBy('count', 'desc')
        .orderBy('reason')
        .execute()
      return rows.map((row) => ({ reason: row.reason, count: Number(row.count), newest: row.newest }))
    },
  }
}

import { sql, type Kysely } from 'kysely'
import type { Database } from '../schema/database.js'
import { ROLLUPS } from '../schema/rollups.js'

/**
 * The tables retention and compression act on: the raw readings, or their
 * rollups. Each kind ages on its own, so charts outlive the raw rows.
 */
export const AGED_TABLES = {
  readings: [{ table: 'telemetry', time: 'time', segmentBy: 'device_id', orderBy: 'time DESC' }],
  rollups: Object.values(ROLLUPS).map(({ table, time, per }) => ({
    table,
    time,
    segmentBy: per,
    orderBy: `${time} DESC`,
  })),
} as const

/** Which of {@link AGED_TABLES}. */
export type AgedTable = keyof typeof AGED_TABLES

type AgedTableInfo = (typeof AGED_TABLES)[AgedTable][number]

/** Drops every chunk of `of`'s tables entirely older than `age`; returns how many. */
export async function dropOldChunks(db: Kysely<Database>, age: string, of: AgedTable): Promise<number> {
  let dropped = 0
  for (const { table } of AGED_TABLES[of]) {
    const { rows } = await sql<{ chunk: string }>`
      SELECT drop_chunks(${table}::regclass, older_than => now() - ${age}::interval) AS chunk`.execute(db)
    dropped += rows.length
  }
  return dropped
}

/**
 * Deletes rows of `of`'s tables older than `age` in batches, so no single
 * statement holds locks on, or writes WAL for, the whole backlog at once.
 */
export async function deleteOldRows(
  db: Kysely<Database>,
  age: string,
  of: AgedTable,
  batchSize = 10_000,
): Promise<number> {
  let total = 0
  for (const aged of AGED_TABLES[of]) total += await deleteOldRowsOf(db, age, aged, batchSize)
  return total
}

async function deleteOldRowsOf(db: Kysely<Database>, age: string, aged: AgedTableInfo, batchSize: number) {
  const [table, time] = [sql.id(aged.table), sql.id(aged.time)]
  let total = 0
  for (;;) {
    const result = await sql`
      DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM ${table} WHERE ${time} < now() - ${age}::interval LIMIT ${batchSize}))`.execute(db)
    const deleted = Number(result.numAffectedRows ?? 0)
    total += deleted
    if (deleted < batchSize) return total
  }
}

/** The two TimescaleDB policies plantops-db manages, by the job procedure, its age key and its remover. */
const POLICIES = {
  compression: { procedure: 'policy_compression', ageKey: 'compress_after', remove: 'remove_compression_policy' },
  retention: { procedure: 'policy_retention', ageKey: 'drop_after', remove: 'remove_retention_policy' },
} as const

type PolicyKind = keyof typeof POLICIES

/** The job of `kind` on `table`, with whether its age is `age`; none when there is no such job. */
async function policyJob(db: Kysely<Database>, kind: PolicyKind, table: string, age: string) {
  const { procedure, ageKey } = POLICIES[kind]
  const { rows } = await sql<{ job_id: number; same: boolean }>`
    SELECT job_id, (config->>${ageKey})::interval = ${age}::interval AS same
    FROM timescaledb_information.jobs
    WHERE hypertable_schema = current_schema() AND hypertable_name = ${table} AND proc_name = ${procedure}`.execute(db)
  return rows[0]
}

/**
 * Schedules a policy at `age` on each of `of`'s tables: the job already
 * there when its age is the same; otherwise the old job is replaced, in one
 * transaction. TimescaleDB's own `if_not_exists` would keep the old age and
 * only warn. Returns the first table's job id.
 */
async function schedulePolicy(db: Kysely<Database>, kind: PolicyKind, of: AgedTable, age: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    let first: number | undefined
    for (const { table } of AGED_TABLES[of]) {
      const job = await scheduleOn(trx, kind, table, age)
      first ??= job
    }
    return first!
  })
}

async function scheduleOn(trx: Kysely<Database>, kind: PolicyKind, table: string, age: string): Promise<number> {
  const existing = await policyJob(trx, kind, table, age)
  if (existing?.same) return Number(existing.job_id)
  if (existing) await sql`SELECT ${sql.raw(POLICIES[kind].remove)}(${table}::regclass)`.execute(trx)
  const add = kind === 'compression' ? sql`add_compression_policy` : sql`add_retention_policy`
  const { rows } = await sql<{ job: number }>`SELECT ${add}(${table}::regclass, ${age}::interval) AS job`.execute(trx)
  return Number(rows[0]!.job)
}

/**
 * Enables native compression of `of`'s tables (segmented by device, or by
 * plant) and schedules it after `after`, replacing a compression policy of
 * another age; returns the first table's job id.
 */
export async function addCompressionJob(db: Kysely<Database>, after: string, of: AgedTable): Promise<number> {
  for (const { table, segmentBy, orderBy } of AGED_TABLES[of])
    await sql`ALTER TABLE ${sql.id(table)} SET (timescaledb.compress, timescaledb.compress_segmentby = ${sql.lit(segmentBy)},
      timescaledb.compress_orderby = ${sql.lit(orderBy)})`.execute(db)
  return schedulePolicy(db, 'compression', of, after)
}

/** Schedules dropping chunks of `of`'s tables older than `after`, replacing a retention policy of another age; returns the first table's job id. */
export function addRetentionJob(db: Kysely<Database>, after: string, of: AgedTable): Promise<number> {
  return schedulePolicy(db, 'retention', of, after)
}

import { METRICS } from '../schema/metrics.js'
import { telemetryColumns, type MetricRow } from '../schema/metric-values.js'
import { copyBinaryPayload, copyTextPayload } from './copy-format.js'
import type { Session } from './store.js'

/** A reading resolved against its device, as it goes into `telemetry`. */
export interface Row {
  /** Epoch milliseconds. */
  readonly timeMs: number
  readonly deviceId: string
  readonly plantId: string | null
  readonly values: MetricRow
}

/** The rows as the arrays `unnest` takes, column by column: time, device, plant, then each metric. */
function columnsOf(rows: readonly Row[], metrics: readonly string[]): unknown[] {
  return [
    rows.map((r) => new Date(r.timeMs).toISOString()),
    rows.map((r) => r.deviceId),
    rows.map((r) => r.plantId),
    ...metrics.map((_, i) => rows.map((r) => r.values[i] ?? null)),
  ]
}

/** `unnest` over the arrays of {@link columnsOf}, each cast to its column's type. */
function unnestRows(metrics: readonly string[]): string {
  const types = ['timestamptz', 'text', 'text', ...metrics.map(() => 'float8')]
  return `unnest(${types.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})`
}

/**
 * The fast path: every row straight in; fails with 23505 if any is already
 * stored. `metrics` is the table's metric columns, in order (`METRICS`).
 * `whileStoring` runs once the rows are on their way (on a COPY, while the
 * server stores them, so its work costs the batch no time; otherwise after
 * the INSERT).
 */
export async function insertRows(
  session: Session,
  rows: readonly Row[],
  metrics: readonly string[] = METRICS,
  whileStoring: () => void = () => {},
): Promise<void> {
  const columns = telemetryColumns(metrics)
  if (session.copy) {
    const copy = session.copy('telemetry', columns, copyBinaryPayload(rows), 'binary')
    await copy.sent
    try {
      whileStoring()
    } finally {
      await copy.stored
    }
    return
  }
  await session.query(
    `INSERT INTO telemetry (${columns.join(', ')}) SELECT * FROM ${unnestRows(metrics)}`,
    columnsOf(rows, metrics),
  )
  whileStoring()
}

/** The slow path: rows not yet stored go in; returns the keys (`device|ms`) it wrote. */
export async function insertNewRows(
  session: Session,
  rows: readonly Row[],
  metrics: readonly string[] = METRICS,
): Promise<Set<string>> {
  const conflict = `ON CONFLICT (device_id, time) DO NOTHING RETURNING device_id, time`
  const columns = telemetryColumns(metrics)
  let result: { rows: { device_id: string; time: Date }[] }
  if (session.copy) {
    await session.query('CREATE TEMP TABLE IF NOT EXISTS plantops_incoming (LIKE telemetry) ON COMMIT DELETE ROWS')
    await session.query('TRUNCATE plantops_incoming')
    await session.copy('plantops_incoming', columns, copyTextPayload(rows), 'text').stored
    result = await session.query(`INSERT INTO telemetry SELECT * FROM plantops_incoming ${conflict}`)
  } else {
    const sql = `INSERT INTO telemetry (${columns.join(', ')}) SELECT * FROM ${unnestRows(metrics)} ${conflict}`
    result = await session.query(sql, columnsOf(rows, metrics))
  }
  return new Set(result.rows.map((r) => rowKey(r.device_id, r.time.getTime())))
}

export function rowKey(deviceId: string, timeMs: number): string {
  return `${deviceId}|${timeMs}`
}

/** A dead letter, ready for `telemetry_rejects`. */
export interface DeadLetter {
  readonly receivedAt: Date
  readonly deviceId: string | null
  readonly source: string | null
  readonly payload: Buffer
  readonly reason: string
  readonly detail: string | null
}

const MAX_DETAIL = 2_000

/**
 * Text PostgreSQL can store: a dead letter's words come from anywhere (a
 * parser quoting the bytes it choked on, a topic, a caller), and TEXT cannot
 * hold NUL. A letter that cannot be stored would block its batch for good.
 */
function storable(text: string | null, max = MAX_DETAIL): string | null {
  if (text === null) return null
  const clean = text.replaceAll('\u0000', '\\u0000')
  return clean.length > max ? `${clean.slice(0, max)}…` : clean
}

/** Payloads travel as hex text: the one bytea encoding every driver passes through arrays unchanged. */
export async function insertDeadLetters(session: Session, letters: readonly DeadLetter[]): Promise<void> {
  if (letters.length === 0) return
  await session.query(
    `INSERT INTO telemetry_rejects (received_at, device_id, source, payload, reason, detail)
     SELECT r.received_at, r.device_id, r.source, decode(r.payload_hex, 'hex'), r.reason, r.detail
     FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       AS r(received_at, device_id, source, payload_hex, reason, detail)`,
    [
      letters.map((l) => l.receivedAt.toISOString()),
      letters.map((l) => storable(l.deviceId, 200)),
      letters.map((l) => storable(l.source, 1_000)),
      letters.map((l) => l.payload.toString('hex')),
      letters.map((l) => storable(l.reason, 200)),
      letters.map((l) => storable(l.detail)),
    ],
  )
}

/**
 * Lowers `random_page_cost` for this transaction only (never raises it).
 * Each row COPY writes fires a foreign-key check against `plants` and
 * `devices`; with the server default of 4 the planner scans a small `plants`
 * table whole for every row instead of using its primary key, which cost a
 * quarter of the write speed in `npm run bench`.
 */
const lowerRandomPageCost =
  "set_config('random_page_cost', least(current_setting('random_page_cost')::float8, $1::float8)::text, true)"

/**
 * A batch's opening statement, one round trip: lowers `random_page_cost`
 * (unless it is `null`) and returns the device context's epoch (see
 * `DeviceContext`; 0 before migration 009 has ever bumped it).
 */
export async function openBatch(session: Session, randomPageCost: number | null): Promise<string> {
  const epoch = '(SELECT epoch FROM plantops_context_epoch) AS epoch'
  const { rows } =
    randomPageCost === null
      ? await session.query<{ epoch: unknown }>(`SELECT ${epoch}`)
      : await session.query<{ epoch: unknown }>(`SELECT ${lowerRandomPageCost}, ${epoch}`, [randomPageCost])
  return String(rows[0]?.epoch ?? 0)
}

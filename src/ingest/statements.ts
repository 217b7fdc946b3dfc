import type { Thresholds } from '../schema/json-columns.js'
import { markDevicesSeenQuery, setDeviceStatusesQuery } from '../repositories/device-statements.js'
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
 */
export async function insertRows(session: Session, rows: readonly Row[], metrics: readonly string[] = METRICS): Promise<void> {
  const columns = telemetryColumns(metrics)
  if (session.copy) return session.copy('telemetry', columns, copyBinaryPayload(rows), 'binary')
  await session.query(`INSERT INTO telemetry (${columns.join(', ')}) SELECT * FROM ${unnestRows(metrics)}`, columnsOf(rows, metrics))
}

/** The slow path: rows not yet stored go in; returns the keys (`device|ms`) it wrote. */
export async function insertNewRows(session: Session, rows: readonly Row[], metrics: readonly string[] = METRICS): Promise<Set<string>> {
  const conflict = `ON CONFLICT (device_id, time) DO NOTHING RETURNING device_id, time`
  const columns = telemetryColumns(metrics)
  let result: { rows: { device_id: string; time: Date }[] }
  if (session.copy) {
    await session.query('CREATE TEMP TABLE IF NOT EXISTS plantops_incoming (LIKE telemetry) ON COMMIT DELETE ROWS')
    await session.query('TRUNCATE plantops_incoming')
    await session.copy('plantops_incoming', columns, copyTextPayload(rows), 'text')
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
  const clean = text.replace(/\u0000/g, '\\u0000')
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

/** Newest time (epoch ms) per device, once per batch, in one statement; never moves backwards. */
export async function markDevicesSeen(session: Session, seen: ReadonlyMap<string, number>): Promise<void> {
  if (seen.size === 0) return
  const { sql, parameters } = session.compile(markDevicesSeenQuery([...seen.keys()], [...seen.values()].map((ms) => new Date(ms))))
  await session.query(sql, parameters)
}

/** Applies the batch's last status per device, after its rows marked the devices seen. */
export async function setDeviceStatuses(session: Session, statuses: ReadonlyMap<string, 'online' | 'offline'>): Promise<void> {
  if (statuses.size === 0) return
  const { sql, parameters } = session.compile(setDeviceStatusesQuery([...statuses.keys()], [...statuses.values()]))
  await session.query(sql, parameters)
}

/**
 * Lowers `random_page_cost` for this transaction only (never raises it).
 * Each row COPY writes fires a foreign-key check against `plants` and
 * `devices`; with the server default of 4 the planner scans a small `plants`
 * table whole for every row instead of using its primary key, which cost a
 * quarter of the write speed in `npm run bench`.
 */
export async function planForSmallTables(session: Session, randomPageCost: number): Promise<void> {
  await session.query(`SELECT set_config('random_page_cost', least(current_setting('random_page_cost')::float8, $1::float8)::text, true)`, [randomPageCost])
}

export async function readContextEpoch(session: Session): Promise<string> {
  const { rows } = await session.query<{ epoch: unknown }>('SELECT epoch FROM plantops_context_epoch')
  return String(rows[0]?.epoch ?? 0)
}

/** What the writer needs to know about a device, for a batch. */
export interface DeviceInfo {
  readonly plantId: string | null
  readonly decommissioned: boolean
  readonly thresholds: Thresholds | null
}

export async function selectDevices(session: Session, ids: readonly string[]): Promise<Map<string, DeviceInfo>> {
  const { rows } = await session.query<{ id: string; plant_id: string | null; decommissioned: boolean; thresholds: Thresholds | null }>(
    `SELECT d.id, d.plant_id, d.status = 'decommissioned' AS decommissioned, p.thresholds
     FROM devices d LEFT JOIN plants p ON p.id = d.plant_id
     WHERE d.id = ANY($1::text[])`,
    [ids],
  )
  return new Map(rows.map((r) => [r.id, { plantId: r.plant_id, decommissioned: r.decommissioned === true, thresholds: r.thresholds }]))
}

/**
 * Devices a packet's source vouched for: no plant, no MQTT username, and a
 * password hash no password matches (`*`). They are left out of
 * `mosquittoPasswordFile()` until `devices.rotateCredentials()` issues real
 * credentials. Returns the rows inserted.
 */
export async function insertProvisionedDevices(session: Session, ids: readonly string[]): Promise<number> {
  const { rowCount } = await session.query(
    `INSERT INTO devices (id, mqtt_password_hash, status) SELECT id, '*', 'provisioning' FROM unnest($1::text[]) AS id ON CONFLICT (id) DO NOTHING`,
    [ids],
  )
  return rowCount
}

export async function readAlertCooldownSeconds(session: Session, fallback: number): Promise<number> {
  const { rows } = await session.query<{ value: string }>(`SELECT value FROM settings WHERE key = 'alerts.cooldown_seconds'`)
  const value = rows[0] === undefined ? Number.NaN : Number(rows[0].value)
  return Number.isInteger(value) && value >= 0 ? value : fallback
}

/** A threshold crossing to record, unless the same one is still cooling down. */
export interface AlertCandidate {
  readonly plantId: string
  readonly deviceId: string
  readonly metric: string
  readonly value: number
  readonly threshold: number
  readonly direction: 'below' | 'above'
}

/**
 * Inserts the candidates whose (plant, metric, direction) had no alert within
 * the cooldown. Advisory locks, taken in a fixed order, serialise concurrent
 * batches on the same key so two writers cannot both decide "no recent alert".
 */
export async function insertAlerts(session: Session, candidates: readonly AlertCandidate[], cooldownSeconds: number): Promise<number> {
  if (candidates.length === 0) return 0
  const keys = candidates.map((c) => `plantops-alert:${c.plantId}:${c.metric}:${c.direction}`)
  await session.query(`SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k ORDER BY k`, [keys])
  const { rowCount } = await session.query(
    `INSERT INTO alerts (plant_id, device_id, metric, value, threshold, direction)
     SELECT c.plant_id, c.device_id, c.metric, c.value, c.threshold, c.direction
     FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[])
       AS c(plant_id, device_id, metric, value, threshold, direction)
     WHERE NOT EXISTS (
       SELECT 1 FROM alerts a
       WHERE a.plant_id = c.plant_id AND a.metric = c.metric AND a.direction = c.direction
         AND a.sent_at > now() - make_interval(secs => $7::float8))`,
    [
      candidates.map((c) => c.plantId),
      candidates.map((c) => c.deviceId),
      candidates.map((c) => c.metric),
      candidates.map((c) => c.value),
      candidates.map((c) => c.threshold),
      candidates.map((c) => c.direction),
      cooldownSeconds,
    ],
  )
  return rowCount
}

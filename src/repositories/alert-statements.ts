import { sql, type RawBuilder } from 'kysely'
import type { AlertDirection, Metric } from '../schema/metrics.js'

/** A threshold crossing to record, unless the same one is still cooling down. */
export interface AlertCandidate {
  readonly plantId: string
  readonly deviceId: string
  readonly metric: Metric
  readonly value: number
  readonly threshold: number
  readonly direction: AlertDirection
}

/**
 * Takes a transaction-scoped advisory lock per (plant, metric, direction), in
 * a fixed order, so two writers cannot both decide "no recent alert" for the
 * same key and neither can deadlock the other.
 */
export function lockAlertKeysQuery(candidates: readonly AlertCandidate[]): RawBuilder<unknown> {
  const keys = candidates.map((c) => `plantops-alert:${c.plantId}:${c.metric}:${c.direction}`)
  return sql`SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(${keys}::text[]) AS k ORDER BY k`
}

/**
 * Inserts the candidates whose (plant, metric, direction) had no alert within
 * the cooldown; run it after {@link lockAlertKeysQuery} in the same transaction.
 */
export function insertAlertsQuery(candidates: readonly AlertCandidate[], cooldownSeconds: number): RawBuilder<unknown> {
  return sql`
    INSERT INTO alerts (plant_id, device_id, metric, value, threshold, direction)
    SELECT c.plant_id, c.device_id, c.metric, c.value, c.threshold, c.direction
    FROM unnest(
      ${candidates.map((c) => c.plantId)}::text[], ${candidates.map((c) => c.deviceId)}::text[],
      ${candidates.map((c) => c.metric)}::text[], ${candidates.map((c) => c.value)}::float8[],
      ${candidates.map((c) => c.threshold)}::float8[], ${candidates.map((c) => c.direction)}::text[]
    ) AS c(plant_id, device_id, metric, value, threshold, direction)
    WHERE NOT EXISTS (
      SELECT 1 FROM alerts a
      WHERE a.plant_id = c.plant_id AND a.metric = c.metric AND a.direction = c.direction
        AND a.sent_at > now() - make_interval(secs => ${cooldownSeconds}::float8))`
}

import { sql, type RawBuilder } from 'kysely'

/**
 * Records when devices were last heard from and marks them online, in one
 * statement: the newest time wins (an id may repeat), decommissioned devices
 * are untouched, and a row already up to date is not rewritten. Shared by
 * `devices.markSeen` and the telemetry writer's once-per-batch update.
 */
export function markDevicesSeenQuery(ids: readonly string[], times: readonly Date[]): RawBuilder<unknown> {
  return sql`
    UPDATE devices AS d SET last_seen_at = GREATEST(d.last_seen_at, v.seen), status = 'online'
    FROM (
      SELECT id, max(seen) AS seen
      FROM unnest(${[...ids]}::text[], ${times.map((time) => time.toISOString())}::timestamptz[]) AS u(id, seen)
      GROUP BY id
    ) AS v
    WHERE d.id = v.id AND d.status IS DISTINCT FROM 'decommissioned'
      AND (d.last_seen_at IS NULL OR d.last_seen_at < v.seen OR d.status IS DISTINCT FROM 'online')`
}

/**
 * Sets each device's `online` / `offline` status in one statement, leaving
 * decommissioned devices alone. Used by the telemetry writer for status
 * messages, in the same transaction (and lane order) as the device's readings.
 */
export function setDeviceStatusesQuery(ids: readonly string[], statuses: readonly ('online' | 'offline')[]): RawBuilder<unknown> {
  return sql`
    UPDATE devices AS d SET status = v.status
    FROM unnest(${[...ids]}::text[], ${[...statuses]}::text[]) AS v(id, status)
    WHERE d.id = v.id AND d.status IS DISTINCT FROM 'decommissioned' AND d.status IS DISTINCT FROM v.status`
}

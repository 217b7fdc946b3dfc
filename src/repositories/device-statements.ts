import { sql, type RawBuilder } from 'kysely'
import type { Thresholds } from '../schema/json-columns.js'

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
export function setDeviceStatusesQuery(
  ids: readonly string[],
  statuses: readonly ('online' | 'offline')[],
): RawBuilder<unknown> {
  return sql`
    UPDATE devices AS d SET status = v.status
    FROM unnest(${[...ids]}::text[], ${[...statuses]}::text[]) AS v(id, status)
    WHERE d.id = v.id AND d.status IS DISTINCT FROM 'decommissioned' AND d.status IS DISTINCT FROM v.status`
}

/**
 * What the telemetry writer needs to know about devices for a batch: each
 * one's plant, whether it is retired, and its plant's thresholds.
 */
export function deviceContextQuery(ids: readonly string[]): RawBuilder<DeviceContextRow> {
  return sql<DeviceContextRow>`
    SELECT d.id, d.plant_id, d.status = 'decommissioned' AS decommissioned, p.thresholds
    FROM devices d LEFT JOIN plants p ON p.id = d.plant_id
    WHERE d.id = ANY(${[...ids]}::text[])`
}

/** A row of {@link deviceContextQuery}. */
export interface DeviceContextRow {
  readonly id: string
  readonly plant_id: string | null
  readonly decommissioned: boolean
  readonly thresholds: Thresholds | null
}

/**
 * Registers devices a packet's source vouched for: no plant, no MQTT
 * username, and a password hash no password matches (`*`). They are left out
 * of `mosquittoPasswordFile()` until `devices.rotateCredentials()` issues
 * real credentials. Existing ids are left alone.
 */
export function provisionDevicesQuery(ids: readonly string[]): RawBuilder<unknown> {
  return sql`
    INSERT INTO devices (id, mqtt_password_hash, status)
    SELECT id, '*', 'provisioning' FROM unnest(${[...ids]}::text[]) AS id
    ON CONFLICT (id) DO NOTHING`
}

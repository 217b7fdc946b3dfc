import type { Attributes } from '../util/metrics.js'
import { observeStats, one, type MeterLike, type ObservedInstrument, type Observation } from '../util/metrics.js'
import type { ConnectionStats } from './connection.js'
import type { IngestorStats } from './ingestor.js'

type Instrument = ObservedInstrument<IngestorStats>

/** One value per broker connection, named by its client id. */
const perConnection =
  (read: (c: ConnectionStats) => number | null) =>
  (s: IngestorStats): readonly Observation[] =>
    s.connections.flatMap((c) => {
      const value = read(c)
      return value === null ? [] : [[value, { 'messaging.client.id': c.clientId }] as const]
    })

/**
 * Every ingestor counter and level, each the `stats()` field it names; the
 * messages consumed under OpenTelemetry's messaging convention.
 */
function ingestorInstruments(consumed: Attributes): readonly Instrument[] {
  return [
    {
      name: 'messaging.client.consumed.messages',
      kind: 'counter',
      unit: '{message}',
      description: 'Messages read from the broker (stats().received)',
      values: (s) => [[s.received, consumed]],
    },
    {
      name: 'plantops.mqtt.dead_lettered',
      kind: 'counter',
      unit: '{message}',
      description: 'Messages the ingestor dead-lettered itself (stats().deadLettered)',
      values: (s) => one(s.deadLettered),
    },
    {
      name: 'plantops.mqtt.status_updates',
      kind: 'counter',
      unit: '{status}',
      description: 'Status messages applied (stats().statusUpdates)',
      values: (s) => one(s.statusUpdates),
    },
    {
      name: 'plantops.mqtt.held_acks',
      kind: 'gauge',
      unit: '{message}',
      description: 'PUBACKs held until their message is durable, per connection',
      values: perConnection((c) => c.heldAcks),
    },
    {
      name: 'plantops.mqtt.window',
      kind: 'gauge',
      unit: '{message}',
      description: 'Unacknowledged messages the broker lets a connection have, as measured',
      values: perConnection((c) => c.window),
    },
    {
      name: 'plantops.mqtt.connected',
      kind: 'gauge',
      unit: '1',
      description: '1 while a broker connection is up, 0 while it is down',
      values: perConnection((c) => (c.connected ? 1 : 0)),
    },
    ...spoolInstruments(),
    {
      name: 'plantops.mqtt.renewals',
      kind: 'counter',
      unit: '{renewal}',
      description: 'Connections renewed so the broker resends what could not be made durable',
      values: perConnection((c) => c.renewals),
    },
  ]
}

/** A spool's levels and counters (`stats().spool`); nothing is reported without a spool. */
function spoolInstruments(): readonly Instrument[] {
  const of =
    (read: (s: NonNullable<IngestorStats['spool']>) => number | null) =>
    (s: IngestorStats): readonly Observation[] => {
      const value = s.spool === null ? null : read(s.spool)
      return value === null ? [] : one(value)
    }
  return [
    {
      name: 'plantops.spool.bytes',
      kind: 'gauge',
      unit: 'By',
      description: 'Bytes of spool segments on disk (stats().spool.bytes)',
      values: of((s) => s.bytes),
    },
    {
      name: 'plantops.spool.records',
      kind: 'gauge',
      unit: '{record}',
      description: 'Records spooled and not yet committed (stats().spool.records)',
      values: of((s) => s.records),
    },
    {
      name: 'plantops.spool.oldest_age',
      kind: 'gauge',
      unit: 's',
      description: 'Age of the oldest record not yet committed (stats().spool.oldestAgeMs)',
      values: of((s) => (s.oldestAgeMs === null ? 0 : s.oldestAgeMs / 1000)),
    },
    {
      name: 'plantops.spool.drain_rate',
      kind: 'gauge',
      unit: '{record}/s',
      description: 'Records drained into the database per second (stats().spool.drainRate)',
      values: of((s) => s.drainRate),
    },
    {
      name: 'plantops.spool.set_aside',
      kind: 'counter',
      unit: '{stretch}',
      description: 'Damaged stretches of spool segments skipped (stats().spool.setAside)',
      values: of((s) => s.setAside),
    },
    {
      name: 'plantops.spool.accepting',
      kind: 'gauge',
      unit: '1',
      description: '1 while the spool acknowledges new messages, 0 while it is full or cannot write',
      values: of((s) => (s.accepting ? 1 : 0)),
    },
  ]
}

/**
 * Instruments an ingestor, read from its `stats()` at collection. `shareGroup`
 * becomes `messaging.consumer.group.name` on the consumed-messages counter.
 */
export function meterIngestor(meter: MeterLike, stats: () => IngestorStats, shareGroup: string | undefined): void {
  const consumed: Attributes = {
    'messaging.system': 'mqtt',
    ...(shareGroup !== undefined && { 'messaging.consumer.group.name': shareGroup }),
  }
  observeStats(meter, stats, ingestorInstruments(consumed))
}

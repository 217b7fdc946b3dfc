import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createDatabase,
  migrateToLatest,
  TelemetryWriter,
  type PacketMeta,
  type WriteReceipt,
} from '../../../src/index.js'
import { createMqttIngestor, type MqttIngestor, type MqttIngestorOptions } from '../../../src/mqtt/index.js'
import { backends, type Backend } from '../../support/backends.js'
import { closeIngestion, type BrokerKind, type TestBroker } from '../../support/brokers.js'
import { eventually } from '../../support/eventually.js'
import { randomMac, useMigratedDatabase } from '../../support/migrated.js'

const dbBackends = backends.filter((b) => b.name !== 'timescaledb')

/** A writer that refuses the packets of one device while `refusing` is set: messages that cannot be made durable. */
class RefusingWriter extends TelemetryWriter {
  refusing = true
  refused = 0
  victim = ''

  override writeRaw(packet: unknown, meta?: PacketMeta): Promise<WriteReceipt> {
    if (this.refusing && (packet as { deviceId?: string }).deviceId === this.victim) {
      this.refused += 1
      return Promise.reject(new Error('the store is not taking this device right now'))
    }
    return super.writeRaw(packet, meta)
  }
}

/** How messages are delivered, dead-lettered and brought back; each test counts rows. */
export function deliverySuites(kind: BrokerKind): void {
  for (const backend of dbBackends) {
    const define = kind.enabled && backend.enabled ? describe : describe.skip
    define(`MQTT delivery rules [${kind.name}, ${backend.name}]`, () => deliverySuite(kind, backend))
  }
}

function deliverySuite(kind: BrokerKind, backend: Backend): void {
  const m = useMigratedDatabase(backend)
  let broker: TestBroker
  let publisher: MqttClient
  const open: { ingestor: MqttIngestor; writer: TelemetryWriter }[] = []

  beforeAll(async () => {
    broker = await kind.start()
    publisher = await mqtt.connectAsync(broker.url, { clientId: `publisher-${randomBytes(3).toString('hex')}` })
  })
  afterEach(() => closeIngestion(open))
  afterAll(async () => {
    await publisher?.endAsync()
    await broker?.stop()
  })

  async function start(
    prefix: string,
    options: Partial<MqttIngestorOptions> = {},
    writer = new TelemetryWriter(m.t.db, { logger: false }),
  ) {
    const ingestor = await createMqttIngestor({
      url: broker.url,
      writer,
      clientId: `rules-${randomBytes(4).toString('hex')}`,
      topicPrefix: prefix,
      logger: false,
      ...options,
    })
    open.push({ ingestor, writer })
    return { writer, ingestor }
  }

  const provision = async () =>
    (await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })).device.id
  const prefix = () => `rules-${randomBytes(3).toString('hex')}`
  const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000

  async function rows(deviceId: string): Promise<{ n: number; distinct: number }> {
    const { rows } = await sql<{ n: number; distinct: number }>`
      SELECT count(*)::int AS n, count(DISTINCT time)::int AS distinct FROM telemetry WHERE device_id = ${deviceId}`.execute(
      m.t.db,
    )
    return rows[0]!
  }

  async function letters(source: string) {
    return m.t.db
      .selectFrom('telemetry_rejects')
      .select(['reason', 'device_id'])
      .where('source', 'like', source)
      .orderBy('id')
      .execute()
  }

  for (const protocolVersion of [undefined, 4] as const) {
    it(`25 messages in a row that cannot be made durable, then the cause removed: ingestion never stops and each is written once (${protocolVersion ? '3.1.1' : 'defaults'})`, async () => {
      const topicPrefix = prefix()
      const [victim, bystander] = [await provision(), await provision()]
      const writer = new RefusingWriter(m.t.db, { logger: false })
      writer.victim = victim
      const { ingestor } = await start(topicPrefix, protocolVersion ? { protocolVersion } : {}, writer)
      for (let i = 0; i < 25; i += 1)
        await publisher.publishAsync(
          `${topicPrefix}/${victim}/telemetry`,
          JSON.stringify({ time: base + i * 1000, humidity: i }),
          { qos: 1 },
        )
      for (let i = 0; i < 100; i += 1)
        await publisher.publishAsync(
          `${topicPrefix}/${bystander}/telemetry`,
          JSON.stringify({ time: base + i * 1000, humidity: i }),
          { qos: 1 },
        )
      // While the victim's messages are refused, the others still get through, unless the refused ones
      // fill the broker's whole window (a stock Mosquitto caps 3.1.1 clients): then they wait for the cause to go.
      const capped = protocolVersion === 4 && broker.stockMosquitto
      if (!capped)
        await eventually(async () => (await rows(bystander)).n === 100, 'the other device is written meanwhile', 30_000)
      await eventually(
        () => ingestor.stats().connections.some((c) => c.renewals > 0),
        'a connection is renewed to get the refused messages back',
        30_000,
      )
      expect(writer.refused).toBeGreaterThanOrEqual(capped ? 20 : 25)
      writer.refusing = false
      await eventually(
        async () => (await rows(victim)).n === 25 && (await rows(bystander)).n === 100,
        'every refused message comes back and is written',
        60_000,
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await rows(victim)).toEqual({ n: 25, distinct: 25 })
      expect(await rows(bystander)).toEqual({ n: 100, distinct: 100 })
    }, 90_000)
  }

  it('applies statuses through the writer, in order with readings, and counts them', async () => {
    const topicPrefix = prefix()
    const device = await provision()
    const { ingestor } = await start(topicPrefix)
    await publisher.publishAsync(`${topicPrefix}/${device}/telemetry`, JSON.stringify({ time: base, humidity: 1 }), {
      qos: 1,
    })
    await publisher.publishAsync(`${topicPrefix}/${device}/status`, 'offline', { qos: 1 })
    await eventually(() => ingestor.stats().statusUpdates === 1, 'the status is applied')
    expect((await m.repos.devices.get(device)).status).toBe('offline')
    expect(await rows(device)).toEqual({ n: 1, distinct: 1 })
  })

  it('with the default connections, a last will lands after every reading sent before it, even from a connection that dropped', async () => {
    const topicPrefix = prefix()
    const fleet = await Promise.all(Array.from({ length: 30 }, () => provision()))
    const { ingestor, writer } = await start(topicPrefix)
    const connections = ingestor.stats().connections.length
    expect(connections).toBe(kind.name === 'aedes' ? 1 : 2)
    // One connection drops (as a network blip would) while each device sends readings and then its last
    // will: the broker keeps dealing messages out in turn, queueing the dropped connection's share in its
    // session, so a status can arrive on the live connection long before readings sent ahead of it.
    const dropped = ingestor.clients[connections - 1]!
    dropped.stream.destroy()
    await eventually(() => !dropped.connected, 'the connection is down')
    // Three messages a device, so its status falls on each connection in turn.
    for (const device of fleet) {
      for (let i = 0; i < 2; i += 1)
        await publisher.publishAsync(
          `${topicPrefix}/${device}/telemetry`,
          JSON.stringify({ time: base + i * 1000, humidity: i }),
          { qos: 1 },
        )
      await publisher.publishAsync(`${topicPrefix}/${device}/status`, 'offline', { qos: 1 })
    }
    await eventually(
      () => ingestor.stats().statusUpdates === fleet.length && writer.stats().written === fleet.length * 2,
      'every reading and every status is applied, the dropped connection back',
      30_000,
    )
    const statuses = await m.t.db.selectFrom('devices').select(['id', 'status']).where('id', 'in', fleet).execute()
    expect(statuses.filter((d) => d.status !== 'offline')).toEqual([])
    expect(statuses).toHaveLength(fleet.length)
    for (const device of fleet) expect(await rows(device)).toEqual({ n: 2, distinct: 2 })
  }, 60_000)

  it('does not store a retained reading twice: with its own time once, without one only as a dead letter', async () => {
    const topicPrefix = prefix()
    const [timed, untimed] = [await provision(), await provision()]
    await publisher.publishAsync(`${topicPrefix}/${timed}/telemetry`, JSON.stringify({ time: base, humidity: 5 }), {
      qos: 1,
      retain: true,
    })
    await publisher.publishAsync(`${topicPrefix}/${untimed}/telemetry`, JSON.stringify({ humidity: 6 }), {
      qos: 1,
      retain: true,
    })
    try {
      // Each start is a new session: the broker replays both retained messages every time. (One connection:
      // a shared subscription, as several connections use, is never sent retained messages, MQTT 5 §4.8.2.)
      for (let run = 0; run < 2; run += 1) {
        const { writer, ingestor } = await start(topicPrefix, { connections: 1 })
        await eventually(() => ingestor.stats().received === 2, 'both retained messages are replayed')
        await writer.flush()
        await eventually(() => ingestor.stats().heldAcks === 0, 'both are acknowledged')
        open.splice(0)
        await ingestor.close({ forgetSession: true })
        await writer.close()
      }
      expect(await rows(timed)).toEqual({ n: 1, distinct: 1 })
      expect(await rows(untimed)).toEqual({ n: 0, distinct: 0 })
      const untimedLetters = await letters(`mqtt:${topicPrefix}/${untimed}/%`)
      expect(untimedLetters).toEqual([
        { reason: 'retained_without_time', device_id: untimed },
        { reason: 'retained_without_time', device_id: untimed },
      ])
    } finally {
      for (const id of [timed, untimed])
        await publisher.publishAsync(`${topicPrefix}/${id}/telemetry`, '', { qos: 1, retain: true })
    }
  })

  it('sees everything under the prefix: topics that do not fit, and a leading "/", are dead-lettered as unknown_topic', async () => {
    const topicPrefix = prefix()
    const device = await provision()
    const { writer } = await start(topicPrefix)
    const strays = [
      `${topicPrefix}/${device}/telemetry/extra`,
      `/${topicPrefix}/${device}/telemetry`,
      `${topicPrefix}/${device}`,
      `${topicPrefix}/${device}/readings`,
    ]
    for (const topic of strays) await publisher.publishAsync(topic, JSON.stringify({ humidity: 1 }), { qos: 1 })
    await publisher.publishAsync(`${topicPrefix}/${device}/telemetry`, JSON.stringify({ time: base, humidity: 1 }), {
      qos: 1,
    })
    await eventually(
      () => writer.stats().written === 1 && writer.stats().rejected.unknown_topic === strays.length,
      'one written, every stray dead-lettered',
    )
    const stored = await m.t.db
      .selectFrom('telemetry_rejects')
      .select(['source'])
      .where('reason', '=', 'unknown_topic')
      .where(
        'source',
        'in',
        strays.map((t) => `mqtt:${t}`),
      )
      .execute()
    expect(stored.map((r) => r.source).sort()).toEqual(strays.map((t) => `mqtt:${t}`).sort())
  })

  it(
    kind.name === 'aedes'
      ? 'falls back to MQTT 3.1.1 when the broker refuses 5, and works'
      : 'speaks MQTT 5 by default',
    async () => {
      const topicPrefix = prefix()
      const device = await provision()
      const { ingestor, writer } = await start(topicPrefix)
      expect(ingestor.stats().protocolVersion).toBe(kind.name === 'aedes' ? 4 : 5)
      await publisher.publishAsync(`${topicPrefix}/${device}/telemetry`, JSON.stringify({ time: base, humidity: 1 }), {
        qos: 1,
      })
      await eventually(() => writer.stats().written === 1, 'the reading is written')
    },
  )

  if (backend.name === 'pglite') {
    it('a status on an unmigrated database never crashes the host: retried, then dead-lettered once the tables exist (QoS 0, 1, at-most-once)', async () => {
      const db = createDatabase({ embedded: true })
      const topicPrefix = prefix()
      try {
        const writer = new TelemetryWriter(db, { logger: false, initialRetryDelayMs: 10, maxRetryDelayMs: 50 })
        const atLeastOnce = await start(topicPrefix, {}, writer)
        const atMostOnce = await start(topicPrefix, { delivery: 'at-most-once' }, writer)
        await publisher.publishAsync(`${topicPrefix}/dev_nobody_0/status`, 'offline', { qos: 0 })
        await publisher.publishAsync(`${topicPrefix}/dev_nobody_1/status`, 'offline', { qos: 1 })
        await eventually(
          () => writer.stats().retries >= 2,
          'the writer retries the statuses against the missing tables',
        )
        expect(atLeastOnce.ingestor.stats().heldAcks).toBe(1)
        await migrateToLatest(db, { logger: false })
        await eventually(
          () => writer.stats().rejected.unknown_device === 4,
          'each ingestor dead-letters both statuses once the tables exist',
          30_000,
        )
        await eventually(() => atLeastOnce.ingestor.stats().heldAcks === 0, 'and acknowledges them')
        const stored = await db
          .selectFrom('telemetry_rejects')
          .select(['reason', 'device_id'])
          .orderBy('device_id')
          .execute()
        expect(stored.map((r) => `${r.reason}:${r.device_id}`)).toEqual([
          'unknown_device:dev_nobody_0',
          'unknown_device:dev_nobody_0',
          'unknown_device:dev_nobody_1',
          'unknown_device:dev_nobody_1',
        ])
        expect(atMostOnce.ingestor.stats().statusUpdates).toBe(0)
      } finally {
        await closeIngestion(open)
        await db.destroy()
      }
    })
  }
}
